#!/usr/bin/env bash
# The GPU check's rehearsal (CI): packs the bundle from this build exactly as for a GPU
# machine (tools/gpu/make_bundle.sh), runs tools/gpu/device_check.sh on it, and asserts
# that every library the bundled binaries load resolves inside the bundle, to CUDA or to
# glibc; that the carried CPU tests pass; and that the GPU stages ran and skipped cleanly
# here (or passed, on a machine with a GPU). Usage: device_check_rehearsal_test.sh BUILD SRC
set -euo pipefail
build=$1
src=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
bash "$src/tools/gpu/make_bundle.sh" "$build" "$d/bundle"
cd "$src"
status=0
bash tools/gpu/device_check.sh "$d/out" --bundle "$d/bundle/cpc-gpu-bundle.tar.xz" --quick || status=$?
s=$d/out/summary.md
fail() { echo "rehearsal: $*" >&2; exit 1; }
[ $status -eq 0 ] || fail "device_check.sh exited $status"
grep -q '^| libraries | ok |' "$s" || fail "libraries resolve outside the bundle: $(grep -E '^(MISSING|OUTSIDE)' "$d/out/libraries.txt" | head)"
! grep -qE '^(MISSING|OUTSIDE)' "$d/out/libraries.txt" || fail "libraries.txt lists unresolved or outside libraries"
grep -q '^bundle *libhdf5' "$d/out/libraries.txt" || fail "libhdf5 does not come from the bundle"
grep -q '^bundle *libdnnl' "$d/out/libraries.txt" || fail "libdnnl does not come from the bundle"
grep -qE '^\| CPU tests \([0-9]+ binaries\) \| ok \| [1-9][0-9]* passed' "$s" || fail "the carried CPU tests did not pass"
if grep -q '^| machine | no GPU |' "$s"; then
  grep -qE '^\| cuda_backend_test \| skipped \| no CUDA device: [1-9][0-9]* ran without one .*, [1-9][0-9]* skipped' "$s" ||
    fail "cuda_backend_test did not run and skip cleanly"
  grep -qE '^\| backend_ops_test \| skipped \| no CUDA device: [1-9][0-9]* ran without one .*, [1-9][0-9]* skipped' "$s" ||
    fail "backend_ops_test did not run its CPU cases and skip its CUDA ones cleanly"
  grep -q '^| cli train cuda vs cpu | skipped | no CUDA device |' "$s" || fail "cli_train_cuda_test did not skip"
  grep -q '^| benchmarks | skipped | no CUDA device' "$s" || fail "the benchmarks did not skip"
else
  grep -q '^| cuda_backend_test | ok |' "$s" || fail "cuda_backend_test failed on this GPU"
  grep -q '^| backend_ops_test | ok |' "$s" || fail "backend_ops_test failed on this GPU"
fi
echo "rehearsal: ok"
