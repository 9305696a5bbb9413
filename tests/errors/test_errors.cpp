// Bad input gives one clear line on stderr and a non-zero exit, never a crash,
// a hang or a half-written output. Each test runs the real `kiln` binary on a
// bad input made here (truncated/corrupt models, unknown ops, external data
// escaping the model folder, wrong input count/shape/dtype, missing files,
// shapes too large for memory, bad options).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/tensor.h"
#include "io/npy.h"

namespace fs = std::filesystem;

namespace {

struct Outcome {
  int exit_code = -1;   // -1: killed by a signal (a crash)
  std::string err;
  std::string out;
};

fs::path work_dir() {
  static fs::path d = [] {
    fs::path p = fs::temp_directory_path() / ("kiln-errors-" + std::to_string(getpid()));
    fs::create_directories(p);
    return p;
  }();
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Outcome run_kiln(const std::string& args) {
  fs::path out = work_dir() / "stdout.txt", err = work_dir() / "stderr.txt";
  std::string cmd = std::string("timeout 120 ") + KILN_BIN + " " + args + " >" + out.string() + " 2>" + err.string();
  int st = std::system(cmd.c_str());
  Outcome o;
  if (WIFEXITED(st)) o.exit_code = WEXITSTATUS(st);
  o.err = slurp(err);
  o.out = slurp(out);
  return o;
}

// One line on stderr, starting "kiln: error:", containing `needle`; exit 1 or 2.
void expect_clean_error(const Outcome& o, const std::string& needle) {
  EXPECT_TRUE(o.exit_code == 1 || o.exit_code == 2) << "exit " << o.exit_code << " stderr: " << o.err;
  EXPECT_EQ(o.err.rfind("kiln: error: ", 0), 0u) << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << "not one line: " << o.err;
  EXPECT_NE(o.err.find(needle), std::string::npos) << "expected '" << needle << "' in: " << o.err;
}

const std::string kLenet = std::string(KILN_SOURCE_DIR) + "/models/lenet.onnx";

void write_bytes(const fs::path& p, const std::string& b) {
  std::ofstream f(p, std::ios::binary);
  f << b;
}

void save_model(const onnx::ModelProto& m, const fs::path& p) { write_bytes(p, m.SerializeAsString()); }

// A one-node model: y = op(x), x f32[2,3].
onnx::ModelProto one_node_model(const std::string& op, const std::string& domain = "", int opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  if (!domain.empty()) {
    auto* d = m.add_opset_import();
    d->set_domain(domain);
    d->set_version(1);
  }
  auto* g = m.mutable_graph();
  g->set_name("g");
  auto* n = g->add_node();
  n->set_name("the_node");
  n->set_op_type(op);
  n->set_domain(domain);
  n->add_input("x");
  n->add_output("y");
  for (const char* name : {"x", "y"}) {
    auto* vi = std::string(name) == "x" ? g->add_input() : g->add_output();
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(1);
    tt->mutable_shape()->add_dim()->set_dim_value(2);
    tt->mutable_shape()->add_dim()->set_dim_value(3);
  }
  return m;
}

}  // namespace

TEST(Errors, TruncatedModel) {
  std::string b = slurp(kLenet);
  ASSERT_GT(b.size(), 1000u);
  write_bytes(work_dir() / "truncated.onnx", b.substr(0, b.size() / 2));
  expect_clean_error(run_kiln("info " + (work_dir() / "truncated.onnx").string()), "truncated or corrupt");
}

TEST(Errors, CorruptModel) {
  std::string b = slurp(kLenet);
  for (size_t i = 0; i < 64; ++i) b[i * 7 % b.size()] = char(0xff - i);
  write_bytes(work_dir() / "corrupt.onnx", b);
  Outcome o = run_kiln("run " + (work_dir() / "corrupt.onnx").string() + " --random 1");
  expect_clean_error(o, "corrupt.onnx");
  write_bytes(work_dir() / "empty.onnx", "");
  expect_clean_error(run_kiln("info " + (work_dir() / "empty.onnx").string()), "empty");
}

TEST(Errors, UnknownOpNamesNodeOpDomainOpset) {
  save_model(one_node_model("FancyOp"), work_dir() / "unknown.onnx");
  Outcome o = run_kiln("info " + (work_dir() / "unknown.onnx").string());
  expect_clean_error(o, "node 'the_node' (op FancyOp, domain 'ai.onnx', opset 13): unsupported op");
  save_model(one_node_model("Relu", "com.example"), work_dir() / "custom.onnx");
  expect_clean_error(run_kiln("info " + (work_dir() / "custom.onnx").string()), "domain 'com.example'");
}

TEST(Errors, UnsupportedOpset) {
  save_model(one_node_model("Relu", "", 99), work_dir() / "opset99.onnx");
  expect_clean_error(run_kiln("info " + (work_dir() / "opset99.onnx").string()), "opset 99");
}

TEST(Errors, ExternalDataOutsideModelFolder) {
  onnx::ModelProto m = one_node_model("Add");
  auto* n = m.mutable_graph()->mutable_node(0);
  n->add_input("w");
  auto* init = m.mutable_graph()->add_initializer();
  init->set_name("w");
  init->set_data_type(1);
  init->add_dims(3);
  init->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = init->add_external_data();
  kv->set_key("location");
  kv->set_value("../../../etc/passwd");
  fs::create_directories(work_dir() / "ext");
  save_model(m, work_dir() / "ext" / "model.onnx");
  expect_clean_error(run_kiln("info " + (work_dir() / "ext" / "model.onnx").string()), "points outside the model's folder");
  kv->set_value("weights.bin");
  save_model(m, work_dir() / "ext" / "model2.onnx");
  expect_clean_error(run_kiln("info " + (work_dir() / "ext" / "model2.onnx").string()), "'weights.bin' not found");
}

TEST(Errors, WrongInputShapeDtypeAndCount) {
  auto x = kiln::Tensor::create(kiln::DType::kF32, {1, 1, 27, 28});
  ASSERT_TRUE(kiln::io::save_npy(*x, (work_dir() / "bad_shape.npy").string()).ok());
  Outcome o = run_kiln("run " + kLenet + " --input " + (work_dir() / "bad_shape.npy").string());
  expect_clean_error(o, "input 'input' has shape f32[1,1,27,28], model expects f32[N,1,28,28] (dim 2)");

  auto i32 = kiln::Tensor::create(kiln::DType::kI32, {1, 1, 28, 28});
  ASSERT_TRUE(kiln::io::save_npy(*i32, (work_dir() / "bad_dtype.npy").string()).ok());
  expect_clean_error(run_kiln("run " + kLenet + " --input " + (work_dir() / "bad_dtype.npy").string()), "has dtype i32");

  std::string f = (work_dir() / "bad_shape.npy").string();
  expect_clean_error(run_kiln("run " + kLenet + " --input " + f + " --input " + f), "too many input files");
  expect_clean_error(run_kiln("run " + kLenet + " --input nosuch=" + f), "no input named 'nosuch'");
}

TEST(Errors, MissingAndCorruptInputFiles) {
  expect_clean_error(run_kiln("run " + kLenet + " --input /nonexistent/x.npy"), "input file not found");
  expect_clean_error(run_kiln("info /nonexistent/model.onnx"), "model file not found");
  write_bytes(work_dir() / "junk.npy", "\x93NUMPY\x01\x00garbage");
  expect_clean_error(run_kiln("run " + kLenet + " --input " + (work_dir() / "junk.npy").string()), "junk.npy");
  write_bytes(work_dir() / "junk.pb", std::string("\xff\xff\xff\xff\x0f", 5));
  expect_clean_error(run_kiln("run " + kLenet + " --input " + (work_dir() / "junk.pb").string()), "junk.pb");
}

TEST(Errors, ShapesThatWouldOverflowMemory) {
  Outcome o = run_kiln("run " + kLenet + " --random 1 --dim N=4000000000000");
  expect_clean_error(o, "memory");
  o = run_kiln("bench " + kLenet + " --dim N=100000000 --iters 1 --warmup 0");
  expect_clean_error(o, "memory");
}

TEST(Errors, OutOfRangeOptions) {
  expect_clean_error(run_kiln("bench " + kLenet + " --batch 0"), "--batch");
  expect_clean_error(run_kiln("run " + kLenet + " --random 1 --dim N=-3"), "N=-3");
  expect_clean_error(run_kiln("eval " + kLenet + " --dataset imagenet"), "unknown dataset 'imagenet'");
  expect_clean_error(run_kiln("run " + kLenet), "--random");
}

TEST(Errors, BadDatasetFiles) {
  fs::create_directories(work_dir() / "fm");
  write_bytes(work_dir() / "fm" / "t10k-images-idx3-ubyte", std::string("\x00\x00\x08\x03\x00\x00\x27\x10", 8));
  write_bytes(work_dir() / "fm" / "t10k-labels-idx1-ubyte", std::string("\x00\x00\x08\x01\x00\x00\x27\x10", 8));
  Outcome o = run_kiln("eval " + kLenet + " --dataset fashion-mnist --data-dir " + (work_dir() / "fm").string());
  expect_clean_error(o, "IDX");
  o = run_kiln("eval " + kLenet + " --dataset fashion-mnist --data-dir /nonexistent");
  expect_clean_error(o, "Fashion-MNIST not found");
}

TEST(Errors, DamagedKilnFile) {
  fs::path good = work_dir() / "lenet.kiln";
  Outcome w = run_kiln("convert " + kLenet + " -o " + good.string());
  ASSERT_EQ(w.exit_code, 0) << w.err;
  std::string b = slurp(good.string());
  std::string flipped = b;
  flipped[b.size() / 2] = char(flipped[b.size() / 2] ^ 1);
  write_bytes(work_dir() / "flipped.kiln", flipped);
  expect_clean_error(run_kiln("run " + (work_dir() / "flipped.kiln").string() + " --random 1"), "checksum mismatch");
  write_bytes(work_dir() / "short.kiln", b.substr(0, 7));
  expect_clean_error(run_kiln("info " + (work_dir() / "short.kiln").string()), "short.kiln: truncated");
  // A .kiln holding kiln's integer ops cannot become ONNX: named refusal, no file.
  fs::path q = work_dir() / "q.kiln", back = work_dir() / "q_back.onnx";
  fs::remove(back);
  Outcome qo = run_kiln("quantize " + kLenet + " --calib-samples 64 --eval-limit 100 -o " + q.string());
  ASSERT_EQ(qo.exit_code, 0) << qo.err;
  expect_clean_error(run_kiln("convert " + q.string() + " -o " + back.string()), "has no ONNX form");
  EXPECT_FALSE(fs::exists(back));
}

TEST(Errors, NoHalfWrittenOutputs) {
  // A failing run leaves no output files behind.
  fs::path out = work_dir() / "outs";
  fs::remove_all(out);
  std::string f = (work_dir() / "bad_shape.npy").string();
  Outcome o = run_kiln("run " + kLenet + " --input " + f + " -o " + out.string());
  EXPECT_NE(o.exit_code, 0);
  EXPECT_TRUE(!fs::exists(out) || fs::is_empty(out));
}

TEST(Errors, QuantizeBadInputs) {
  fs::path out = work_dir() / "q.onnx";
  fs::remove(out);
  std::string q = "quantize " + kLenet + " -o " + out.string();
  expect_clean_error(run_kiln(q + " --bits 17"), "bit width 17 is out of range");
  expect_clean_error(run_kiln(q + " --mode fancy"), "unknown --mode 'fancy'");
  // calibration data of the wrong shape / dtype, and an empty calibration set
  auto bad = kiln::Tensor::create(kiln::DType::kF32, {2, 1, 27, 28});
  ASSERT_TRUE(kiln::io::save_npy(*bad, (work_dir() / "calib_bad_shape.npy").string()).ok());
  expect_clean_error(run_kiln(q + " --calib " + (work_dir() / "calib_bad_shape.npy").string()), "calib_bad_shape.npy");
  auto i32 = kiln::Tensor::create(kiln::DType::kI32, {2, 1, 28, 28});
  ASSERT_TRUE(kiln::io::save_npy(*i32, (work_dir() / "calib_i32.npy").string()).ok());
  expect_clean_error(run_kiln(q + " --calib " + (work_dir() / "calib_i32.npy").string()), "calib_i32.npy");
  fs::create_directories(work_dir() / "empty_calib");
  expect_clean_error(run_kiln(q + " --calib " + (work_dir() / "empty_calib").string()), "empty_calib");
  // a model with nothing quantizable
  save_model(one_node_model("Relu"), work_dir() / "relu_only.onnx");
  expect_clean_error(run_kiln("quantize " + (work_dir() / "relu_only.onnx").string() + " -o " + out.string()),
                     "nothing to quantize");
  // every failure above left no output file behind
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp-kiln"));
}

TEST(Errors, PruneBadInputs) {
  fs::path out = work_dir() / "p.kiln";
  fs::remove(out);
  std::string p = "prune " + kLenet + " -o " + out.string();
  Outcome range = run_kiln(p + " --sparsity 1.5");
  EXPECT_EQ(range.exit_code, 2) << range.err;
  expect_clean_error(run_kiln(p + " --nm 4:2"), "N:M pattern 4:2 is invalid");
  expect_clean_error(run_kiln(p + " --nm two"), "--nm must look like N:M");
  expect_clean_error(run_kiln(p + " --sparsity 0.5 --recover"), "--recover re-fits layers after channel pruning");
  expect_clean_error(run_kiln(p), "choose --sparsity, --nm, --channels or --max-accuracy-drop");
  // A model with no weights: nothing to prune, named; bad calibration data, named.
  save_model(one_node_model("Relu"), work_dir() / "relu_prune.onnx");
  auto x = kiln::Tensor::create(kiln::DType::kF32, {2, 3});
  ASSERT_TRUE(kiln::io::save_npy(*x, (work_dir() / "relu_calib.npy").string()).ok());
  expect_clean_error(run_kiln("prune " + (work_dir() / "relu_prune.onnx").string() + " --sparsity 0.5 --calib " +
                              (work_dir() / "relu_calib.npy").string() + " -o " + out.string()),
                     "nothing to prune");
  auto bad = kiln::Tensor::create(kiln::DType::kF32, {2, 1, 27, 28});
  ASSERT_TRUE(kiln::io::save_npy(*bad, (work_dir() / "prune_bad_calib.npy").string()).ok());
  expect_clean_error(run_kiln(p + " --channels 0.3 --recover --calib " + (work_dir() / "prune_bad_calib.npy").string()),
                     "prune_bad_calib.npy");
  EXPECT_FALSE(fs::exists(out));
}

TEST(Errors, OptimizeBadInputs) {
  fs::path out = work_dir() / "opt.onnx";
  fs::remove(out);
  std::string o = "optimize " + kLenet + " -o " + out.string();
  Outcome bad_pass = run_kiln(o + " --passes fold_constants,nope");
  EXPECT_EQ(bad_pass.exit_code, 2);
  expect_clean_error(bad_pass, "nope");
  expect_clean_error(run_kiln(o + " --dump-after nope"), "nope");
  expect_clean_error(run_kiln(o + " --quantize int4"), "--quantize supports int8");
  expect_clean_error(run_kiln(o + " --prune 0.5 --recover"), "--recover re-fits layers after channel pruning");
  EXPECT_FALSE(fs::exists(out));
}

TEST(Errors, CpuBackendBadOptions) {
  std::string b = "bench " + kLenet + " --backend cpu --iters 1 --warmup 0";
  expect_clean_error(run_kiln(b + " --isa bogus"), "unknown instruction set 'bogus'");
  expect_clean_error(run_kiln(b + " --threads 0"), "--threads");
  expect_clean_error(run_kiln(b + " --conv3x3 fft"), "--conv3x3");
  expect_clean_error(run_kiln("run " + kLenet + " --random 1 --backend gpu"), "unknown backend 'gpu'");
  // An instruction set this CPU lacks is named, not executed (skipped where
  // the CPU has AVX-512).
  Outcome o = run_kiln(b + " --isa avx512");
  if (o.exit_code != 0) expect_clean_error(o, "not available on this CPU");
}
