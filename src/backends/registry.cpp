// The list of backends, in default priority order. A new backend is one line here.
#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "backends/reference/reference.h"

namespace kiln {

std::vector<const Backend*> all_backends() {
  static const ref::ReferenceBackend reference;
  static const cpu::CpuBackend cpu;
  return {&reference, &cpu};
}

const Backend* find_backend(std::string_view name) {
  for (const Backend* b : all_backends())
    if (b->name() == name) return b;
  return nullptr;
}

}  // namespace kiln
