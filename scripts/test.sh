#!/usr/bin/env bash
# The whole test suite: install what is missing, build (Release, build/) and run
# every CTest label (unit, errors, conformance, models, threads), then build with
# AddressSanitizer + UBSan (build-asan/) and run the unit and error tests there,
# then build only kiln_thread_tests with ThreadSanitizer (build-tsan/) and run
# the thread pool and CPU-backend thread-count tests there (a report fails).
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
# ThreadSanitizer: kiln_lib is built again, instrumented.
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_BUILD_TESTS=ON \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread -O1 -g" >/dev/null
ninja -C build-tsan -j"$JOBS" kiln_thread_tests
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ctest --output-on-failure -L threads)
