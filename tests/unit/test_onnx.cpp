// ONNX import/export: LeNet imports with symbolic batch, exports at opset 21,
// re-imports to the same graph, and both run to identical outputs; opset
// upgrades move attributes to inputs.
#include <gtest/gtest.h>
#include <unistd.h>
#include <onnx/onnx_pb.h>

#include <filesystem>

#include "ir/print.h"
#include "ir/verify.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "runtime/session.h"

namespace kiln {
namespace {

const std::string kLenet = std::string(KILN_SOURCE_DIR) + "/models/lenet.onnx";

Tensor ramp(Shape s) {
  Tensor t = Tensor::create(DType::kF32, s).value();
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i % 255) / 255.0f;
  return t;
}

}  // namespace

TEST(OnnxImport, LenetHasSymbolicBatchAndVerifies) {
  auto g = onnx_io::load_model(kLenet);
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_TRUE(ir::verify(*g).ok());
  ASSERT_EQ(g->inputs.size(), 1u);
  const auto& in = g->value(g->inputs[0]).type;
  ASSERT_EQ(in.shape.size(), 4u);
  EXPECT_LT(in.shape[0], 0);
  EXPECT_EQ(g->symbols[size_t(-in.shape[0] - 1)], "N");
  const auto& out = g->value(g->outputs[0]).type;
  EXPECT_EQ(out.shape[0], in.shape[0]) << "batch symbol propagates to the logits";
  EXPECT_EQ(out.shape[1], 10);
  std::string text = ir::print_graph(*g);
  EXPECT_NE(text.find("Conv(%input, @conv1.weight, @conv1.bias) {dilations=[1,1], kernel_shape=[5,5]"), std::string::npos) << text;
}

TEST(OnnxExport, RoundTripRunsIdentically) {
  auto g = onnx_io::load_model(kLenet);
  ASSERT_TRUE(g.ok());
  std::string path = (std::filesystem::temp_directory_path() / ("kiln_roundtrip_" + std::to_string(getpid()) + ".onnx")).string();
  ASSERT_TRUE(onnx_io::save_model(*g, path).ok());
  auto g2 = onnx_io::load_model(path);
  ASSERT_TRUE(g2.ok()) << g2.error().message;
  EXPECT_EQ(g2->nodes.size(), g->nodes.size());
  std::vector<Tensor> x = {ramp({3, 1, 28, 28})};
  auto s1 = runtime::Session::create(*g);
  auto s2 = runtime::Session::create(*g2);
  ASSERT_TRUE(s1.ok() && s2.ok());
  auto y1 = s1->run(x), y2 = s2->run(x);
  ASSERT_TRUE(y1.ok()) << y1.error().message;
  ASSERT_TRUE(y2.ok()) << y2.error().message;
  ASSERT_EQ((*y1)[0].shape(), (Shape{3, 10}));
  for (int64_t i = 0; i < (*y1)[0].numel(); ++i) EXPECT_EQ((*y1)[0].data<float>()[i], (*y2)[0].data<float>()[i]);
  std::filesystem::remove(path);
}

TEST(OnnxImport, OldReduceAxesAttributeBecomesInput) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(11);
  auto* g = m.mutable_graph();
  auto* n = g->add_node();
  n->set_op_type("ReduceMean");
  n->add_input("x");
  n->add_output("y");
  auto* a = n->add_attribute();
  a->set_name("axes");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(1);
  auto* x = g->add_input();
  x->set_name("x");
  x->mutable_type()->mutable_tensor_type()->set_elem_type(1);
  for (int d : {2, 5}) x->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(d);
  g->add_output()->set_name("y");
  auto r = onnx_io::import_model(m, "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->nodes[0].inputs.size(), 2u);
  const ir::Value& axes = r->value(r->nodes[0].inputs[1]);
  ASSERT_TRUE(axes.is_constant());
  EXPECT_EQ(axes.constant.as_int(0), 1);
}

TEST(Session, RejectsInconsistentSymbolBinding) {
  auto g = onnx_io::load_model(kLenet);
  ASSERT_TRUE(g.ok());
  auto s = runtime::Session::create(*g);
  ASSERT_TRUE(s.ok());
  std::vector<Tensor> two = {ramp({1, 1, 28, 28}), ramp({1, 1, 28, 28})};
  auto r = s->run(two);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expects 1 input"), std::string::npos);
}

}  // namespace kiln
