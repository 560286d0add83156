#!/usr/bin/env bash
# The CPU code under AddressSanitizer + UndefinedBehaviorSanitizer, and the fuzzers.
# A clang build in build-asan/ (CUDA and MPI off; OpenMP through GCC's libgomp, the
# runtime oneDNN uses) with -fsanitize=address,undefined and libFuzzer's coverage
# instrumentation; runs the CPU tests (ctest) with every sanitizer report fatal, then
# each libFuzzer target of tests/fuzz/ for FUZZ_SECONDS on its seed corpus
# (tests/fuzz/corpus/<target>/) and the regression inputs (tests/fuzz/regressions/<target>/).
# Usage: tools/scripts/sanitizers.sh [FUZZ_SECONDS]   (default 15; 0 runs the regression inputs only)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
gomp=$(g++ -print-file-name=libgomp.so)
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -fsanitize=fuzzer-no-link"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELEASE="-O1 -g1 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_C_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DOpenMP_CXX_FLAGS="-fopenmp=libgomp" -DOpenMP_CXX_LIB_NAMES=gomp -DOpenMP_gomp_LIBRARY="$gomp" \
  -DOpenMP_C_FLAGS="-fopenmp=libgomp" -DOpenMP_C_LIB_NAMES=gomp \
  -DCPC_CUDA=OFF -DCPC_MPI=OFF -DCPC_BENCH=OFF -DCPC_FUZZ=ON -DCPC_SANITIZE=ON -DPython3_EXECUTABLE=/usr/bin/python3 > /dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0
# Under the sanitizers: everything but the slow end-to-end runs (learning, PyTorch
# benchmarks), which the plain build runs and which add no code path of their own.
ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -E '^(CpcLearns\.|cli_bench_torch|gpu_check_rehearsal)'
for t in fuzz_wav fuzz_wfdb fuzz_csv fuzz_config fuzz_safetensors fuzz_h5_dataset; do
  inputs=()
  for d in tests/fuzz/corpus/$t tests/fuzz/regressions/$t; do [ -d "$d" ] && inputs+=("$d"); done
  work=$(mktemp -d)
  # Regression inputs first, each must pass; then fuzzing for secs seconds (corpus copy in work).
  if [ -d tests/fuzz/regressions/$t ]; then
    ./build-asan/tests/fuzz/$t -runs=0 tests/fuzz/regressions/$t/* > "$work/regress.log" 2>&1 ||
      { cat "$work/regress.log"; echo "sanitizers: $t fails on a regression input" >&2; exit 1; }
  fi
  if [ "$secs" -gt 0 ]; then
    mkdir -p "$work/corpus"
    for d in "${inputs[@]}"; do cp "$d"/* "$work/corpus/" 2>/dev/null || true; done
    if ! ./build-asan/tests/fuzz/$t -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/" "$work/corpus" > "$work/fuzz.log" 2>&1; then
      tail -n 40 "$work/fuzz.log"
      echo "sanitizers: $t found a crash: $(ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null)" >&2
      exit 1
    fi
    echo "$t: $(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$work/fuzz.log" | tail -n 1)"
  fi
  rm -rf "$work"
done
echo "sanitizers: clean"
