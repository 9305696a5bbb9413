// The portable kernel set: plain C++ for any x86-64 (SSE2) or other CPU.
#include <cstdint>

#include "backends/cpu/kernel_set.h"

namespace kiln::cpu {
namespace portable {
#include "backends/cpu/kernels_impl.inc"
}  // namespace portable

const KernelSet& kernel_set_portable() {
  static const KernelSet set = {Isa::kPortable,
                                "gemm_f32_portable_4x8",
                                4,
                                8,
                                &portable::gemm_ukernel_plain<4, 8>,
                                &portable::gemm_ukernel_plain_half<4, 8>,
                                &portable::gemm_ukernel_narrow_plain<4>,
                                2,
                                &portable::activate_impl,
                                &portable::depthwise_impl,
                                &portable::depthwise8_impl,
                                &portable::softmax_rows_impl,
                                &portable::layernorm_rows_impl,
                                {&portable::winograd_input_panel_impl<8, 4>, &portable::winograd_input_panel_impl<8, 2>},
                                {&portable::winograd_output_panel_impl<8, 4>, &portable::winograd_output_panel_impl<8, 2>},
                                nullptr,
                                nullptr,
                                0,
                                0,
                                nullptr,
                                0,
                                0,
                                false};
  return set;
}

const KernelSet& kernel_set(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return kernel_set_avx512();
    case Isa::kAvx512Amx: return kernel_set_avx512_amx();
    case Isa::kAvx2: return kernel_set_avx2();
    case Isa::kPortable: break;
  }
  return kernel_set_portable();
}

}  // namespace kiln::cpu
