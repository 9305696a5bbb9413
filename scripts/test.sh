#!/usr/bin/env bash
# The whole test suite: install what is missing, build (Release, build/) and run
# every CTest label (unit, errors, conformance, models), then build with
# AddressSanitizer + UBSan (build-asan/) and run the unit and error tests there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
JOBS=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build -j"$JOBS"
(cd build && ctest --output-on-failure -j"$JOBS")
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=ON >/dev/null
ninja -C build-asan -j"$JOBS" kiln kiln_unit_tests kiln_error_tests
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$JOBS" -L "unit|errors")
