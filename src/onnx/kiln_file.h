// The .kiln model file: kiln's compact deployment container, for the case
// where the file on disk is what counts (a quantized or pruned model shipped
// to a device). ONNX stays the interchange format; `kiln convert` turns one
// into the other both ways, and every command that reads a model reads both
// (onnx_io::load_model looks at the first bytes).
//
// Layout (all integers little-endian; "varint" is unsigned LEB128):
//   "KILN"  u32 version (1)
//   varint graph_bytes, varint deflated_bytes, deflated graph
//       the graph is an ONNX ModelProto (kiln-domain ops allowed, see
//       ExportOptions) whose initializers carry name, dtype and dims only
//   varint tensor_count (= number of initializers, in the same order)
//   per tensor: u8 encoding, varint payload_bytes, payload
//       0 dense:  the tensor's bytes as ONNX raw_data lays them out
//       1 bitmask: ceil(n/8) bytes, bit i set (LSB first) when element i is
//                  non-zero, then the non-zero elements' bytes in order
//   u32 CRC-32 (zlib) of every byte before it
// The writer picks, per tensor, whichever encoding is smaller, so pruned
// weights really shrink the file. The graph is deflated because its names and
// attributes are repetitive; tensor bytes are stored as they are.
// Tested in tests/unit/test_kiln_file.cpp and tests/errors.
#pragma once
#include <cstdint>
#include <string>

#include "ir/graph.h"

namespace kiln::onnx_io {

struct KilnFileStats {
  int64_t file_bytes = 0;
  int64_t graph_bytes = 0;      // deflated graph section
  int64_t tensor_bytes = 0;     // tensor payloads (after encoding)
  int64_t dense_bytes = 0;      // what those tensors take dense
  int tensors = 0, sparse_tensors = 0;
};

// True when `bytes` starts like a .kiln file.
bool is_kiln_file(const std::string& bytes);
Result<std::string> encode_kiln(const ir::Graph& g, KilnFileStats* stats = nullptr);
Result<ir::Graph> decode_kiln(const std::string& bytes);
// Written atomically (no partial file on error).
Result<void> save_kiln(const ir::Graph& g, const std::string& path, KilnFileStats* stats = nullptr);

}  // namespace kiln::onnx_io
