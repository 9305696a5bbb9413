// DEVELOPMENT SCAFFOLD: infer functions not yet written. Each family moves its
// functions out of here into ir/ops/<family>.cpp; this file is deleted when empty.
#include "ir/ops/infer_fns.h"

namespace kiln::ir {


}  // namespace kiln::ir
