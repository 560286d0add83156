#!/usr/bin/env bash
# The GPU check: verifies the CUDA backend on a bare GPU machine in one command.
#
#   bash tools/gpu/device_check.sh OUT_DIR [--bundle FILE] [--quick]
#
# Run from the repository root, with the bundle that tools/gpu/make_bundle.sh made here
# (.gpu-bundle/cpc-gpu-bundle.tar.xz by default: our binaries and every non-CUDA library
# they load). CUDA, cuDNN, cuBLAS, NCCL and PyTorch come from the machine. Stages, each
# under its own time limit, logs in OUT_DIR/check.log:
#   1. unpack; find the machine's CUDA libraries (pip wheels, toolkit, driver);
#   2. libraries: every library each binary loads resolves inside the bundle, to CUDA,
#      or to glibc (OUT_DIR/libraries.txt); versions loaded (OUT_DIR/versions.txt);
#   3. the CPU tests the bundle carries (tensor core, autograd, finite-difference
#      gradients of every op and loss, HDF5 windows);
#   4. the GPU tests (cuda_backend_test, OUT_DIR/cuda_tests.json) and the command line
#      on CUDA against the CPU (tests/gpu/cli_train_cuda_test.sh);
#   5. benchmarks (OUT_DIR/bench.txt): `cpc-engine bench --device cuda --torch` for ecg12
#      and audio_cdck2 at batch 64, fp32 (TF32 off on both sides), TF32, bf16 (PyTorch's
#      CUDA autocast); the fused contrastive kernel against cuBLAS (cpc-cuda-loss-bench).
# The summary (OUT_DIR/summary.md) is printed last. Without a GPU (the rehearsal, CI) the
# GPU stages report "skipped: no CUDA device" and the rest runs: the exit status is 0
# when nothing that ran failed. --quick runs one bench configuration (the rehearsal).
# Time: benchmarks start only while the elapsed time is under CPC_CHECK_BUDGET - 60 s
# (default budget 300 s), so the whole check ends within about the budget and a second
# run fits in a 15-minute device lease.
set -uo pipefail
out=${1:?usage: device_check.sh OUT_DIR [--bundle FILE] [--quick]}
shift
src=$(pwd)
bundle=$src/.gpu-bundle/cpc-gpu-bundle.tar.xz
quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --bundle) bundle=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    *) echo "device_check: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -f "$src/tools/gpu/device_check.sh" ] || { echo "device_check: run it from the repository root" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
log=$out/check.log
: > "$log"
t_start=$(date +%s)
budget=${CPC_CHECK_BUDGET:-300}
failures=0
rows=()  # summary rows: "| stage | result | detail |"
note() { echo "== $*" | tee -a "$log"; }
row() { rows+=("| $1 | $2 | $3 |"); }
elapsed() { echo $(($(date +%s) - t_start)); }

# ---------------------------------------------------------------- 1. unpack, CUDA libraries
note "unpack $bundle"
[ -f "$bundle" ] || { echo "device_check: no bundle at $bundle (run tools/gpu/make_bundle.sh here first)" | tee -a "$log" >&2; exit 2; }
work=$(mktemp -d /tmp/cpc-gpu-check.XXXXXX)
if ! tar -C "$work" -xJf "$bundle" 2>>"$log"; then  # no xz: Python's tarfile reads it too
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$bundle" "$work" >>"$log" 2>&1 ||
    { echo "device_check: cannot unpack $bundle" | tee -a "$log" >&2; exit 2; }
fi
root=$work/cpc-gpu-bundle
cat "$root/MANIFEST" >>"$log"

# The interpreter with PyTorch: $CPC_PYTHON, python3 on PATH, or Debian's.
py=${CPC_PYTHON:-}
for cand in "$py" "$(command -v python3 || true)" /usr/bin/python3; do
  if [ -n "$cand" ] && "$cand" -c 'import torch' 2>/dev/null; then py=$cand; break; fi
done
[ -n "$py" ] || py=$(command -v python3 || echo /usr/bin/python3)
export CPC_PYTHON=$py CPC_SOURCE_DIR=$src

cuda_dirs=()
for site in $("$py" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
  for d in "$site"/nvidia/*/lib "$site"/nvidia/*/*/lib; do [ -d "$d" ] && cuda_dirs+=("$d"); done
done
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d "$d" ] && cuda_dirs+=("$d")
done
libpath=$root/lib$(printf ':%s' "${cuda_dirs[@]}")
ldso=/lib64/ld-linux-x86-64.so.2
# Our binaries run through the loader with the bundle's search path: nothing is exported,
# so PyTorch (a child of bench) loads its own libraries, not ours.
mkdir -p "$work/wrap"
for b in "$root"/bin/*; do
  printf '#!/bin/sh\nexec %s --library-path "%s" "%s" "$@"\n' "$ldso" "$libpath" "$b" > "$work/wrap/$(basename "$b")"
  chmod +x "$work/wrap/$(basename "$b")"
done
W=$work/wrap

# ---------------------------------------------------------------- 2. libraries and versions
note "libraries (search path: $libpath)"
glibc='^(linux-vdso\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libutil\.so)'
cuda_libs='^(libcuda\.so|libcudart\.so|libcublas(Lt)?\.so|libcudnn[a-z_]*\.so|libnccl\.so|libnvrtc[a-z-]*\.so)'
bad=0
{
  for b in "$root"/bin/*; do
    echo "# $(basename "$b")"
    "$ldso" --library-path "$libpath" --list "$b" 2>&1 | while read -r line; do
      soname=$(echo "$line" | awk '{print $1}')
      path=$(echo "$line" | awk '$2 == "=>" {print $3}')
      if echo "$line" | grep -q "not found"; then echo "MISSING  $line"
      elif [[ $soname =~ $glibc ]] || [[ $line != *"=>"* ]]; then echo "glibc    $line"
      elif [[ $path == "$root/lib/"* ]]; then echo "bundle   $soname"
      elif [[ $soname =~ $cuda_libs ]]; then echo "cuda     $soname => $path"
      else echo "OUTSIDE  $line"
      fi
    done
  done
} > "$out/libraries.txt"
if grep -qE '^(MISSING|OUTSIDE)' "$out/libraries.txt"; then
  bad=1
  grep -E '^(MISSING|OUTSIDE)' "$out/libraries.txt" | sort -u | tee -a "$log"
fi
n_bundle=$(grep -c '^bundle' "$out/libraries.txt"); n_cuda=$(grep '^cuda' "$out/libraries.txt" | awk '{print $2}' | sort -u | wc -l)
if [ $bad -eq 0 ]; then
  row "libraries" "ok" "every library resolves in the bundle ($n_bundle loads), to CUDA ($n_cuda: $(grep '^cuda' "$out/libraries.txt" | awk '{print $4}' | sort -u | xargs -n1 dirname | sort -u | tr '\n' ' ')) or glibc"
else
  failures=$((failures + 1))
  row "libraries" "FAILED" "$(grep -cE '^(MISSING|OUTSIDE)' "$out/libraries.txt") resolutions outside the bundle/CUDA/glibc (libraries.txt)"
fi

note "versions"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "bundle: $(head -n 2 "$root/MANIFEST" | tr '\n' ';')"
  echo "host: $(uname -srm); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"); $(ldd --version 2>/dev/null | head -n 1)"
  echo "cpus: $(nproc)"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
  else
    echo "gpu: nvidia-smi not found"
  fi
  echo "cpc-engine info:"
  timeout 60 "$W/cpc-engine" info 2>&1 | sed 's/^/  /'
  echo "pytorch ($py):"
  timeout 60 "$py" -c 'import torch; print("  torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>&1 | tail -n 3
  echo "CUDA library directories:"; printf '  %s\n' "${cuda_dirs[@]}"
} > "$out/versions.txt" 2>&1
cat "$out/versions.txt" >>"$log"
device=0
if timeout 60 "$W/cpc-engine" info 2>/dev/null | grep -q '^cuda:' && ! timeout 60 "$W/cpc-engine" info 2>/dev/null | grep -q 'no CUDA device present'; then
  device=1
fi
gpu_name=$(grep '^gpu:' "$out/versions.txt" | head -n 1 | cut -d' ' -f2- | cut -d, -f1)
row "machine" "$([ $device = 1 ] && echo "GPU" || echo "no GPU")" "$gpu_name; $(grep -o 'CUDA runtime [^,]*, cuDNN [^,]*, cuBLAS [^,]*' "$out/versions.txt" | head -n 1); $(grep -o 'NCCL: [^;]*' "$out/versions.txt" | head -n 1)"

# ---------------------------------------------------------------- 3. CPU tests carried
gtest_counts() {  # json file -> "passed failed skipped"
  "$py" - "$1" <<'PYEOF'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception:
    print("0 1 0"); sys.exit()
p = f = s = 0
for suite in j.get("testsuites", []):
    for t in suite.get("testsuite", []):
        if t.get("result") == "SKIPPED" or t.get("status") == "NOTRUN": s += 1
        elif t.get("failures"): f += 1
        else: p += 1
print(p, f, s)
PYEOF
}
note "CPU tests carried ($(elapsed) s)"
cpu_p=0; cpu_f=0; cpu_s=0; cpu_failed=()
cpu_tests=(tensor_test autograd_test gradcheck_test contrastive_gradcheck_test window_dataset_test)
for t in "${cpu_tests[@]}"; do
  OMP_NUM_THREADS=4 timeout 120 "$W/$t" --gtest_brief=1 --gtest_output=json:"$work/$t.json" >>"$log" 2>&1
  rc=$?
  read -r p f s <<<"$(gtest_counts "$work/$t.json")"
  [ $rc -ne 0 ] && [ "$f" = 0 ] && f=1  # crashed or timed out
  cpu_p=$((cpu_p + p)); cpu_f=$((cpu_f + f)); cpu_s=$((cpu_s + s))
  [ "$f" != 0 ] && cpu_failed+=("$t")
done
if [ $cpu_f -eq 0 ]; then row "CPU tests (${#cpu_tests[@]} binaries)" "ok" "$cpu_p passed, $cpu_s skipped"
else failures=$((failures + 1)); row "CPU tests (${#cpu_tests[@]} binaries)" "FAILED" "$cpu_p passed, $cpu_f failed (${cpu_failed[*]}), $cpu_s skipped"; fi

# ---------------------------------------------------------------- 4. GPU tests
# cuda_backend_test: the backend beyond its ops (allocator, copies, options, bf16,
# loader, NCCL, the whole CPC step); backend_ops_test: every op against the CPU backend
# (the backend-ops table, tests/ops/), whose CPU cases also run without a device.
gpu_tests() {  # NAME JSON
  local name=$1 json=$2 rc gp gf gs failed_names
  note "GPU tests: $name ($(elapsed) s)"
  OMP_NUM_THREADS=4 timeout 180 "$W/$name" --gtest_output=json:"$out/$json" >>"$log" 2>&1
  rc=$?
  read -r gp gf gs <<<"$(gtest_counts "$out/$json")"
  [ $rc -ne 0 ] && [ "$gf" = 0 ] && gf=1
  failed_names=$("$py" -c '
import json, sys
try: j = json.load(open(sys.argv[1]))
except Exception: sys.exit()
print(" ".join(s["name"] + "." + t["name"] for s in j.get("testsuites", []) for t in s.get("testsuite", []) if t.get("failures")))' "$out/$json" 2>/dev/null)
  if [ "$gf" = 0 ] && [ $device = 1 ]; then row "$name" "ok" "$gp passed, $gs skipped"
  elif [ "$gf" = 0 ]; then row "$name" "skipped" "no CUDA device: $gp ran without one (checks, options, CPU cases), $gs skipped"
  else failures=$((failures + 1)); row "$name" "FAILED" "$gp passed, $gf failed (exit $rc), $gs skipped: ${failed_names:-see check.log}"; fi
}
gpu_tests cuda_backend_test cuda_tests.json
gpu_tests backend_ops_test ops_tests.json

note "GPU tests: the command line on CUDA against the CPU ($(elapsed) s)"
OMP_NUM_THREADS=4 timeout 90 bash "$src/tests/gpu/cli_train_cuda_test.sh" "$W/cpc-engine" "$src" >>"$log" 2>&1
rc=$?
case $rc in
  0) row "cli train cuda vs cpu" "ok" "$(grep -E '^(channel|batch|bf16)' "$log" | tail -n 3 | tr '\n' ';' | cut -c1-300)" ;;
  77) row "cli train cuda vs cpu" "skipped" "no CUDA device" ;;
  *) failures=$((failures + 1)); row "cli train cuda vs cpu" "FAILED" "exit $rc (check.log)" ;;
esac

# ---------------------------------------------------------------- 5. benchmarks
: > "$out/bench.txt"
bench_rows=()
if [ $device = 1 ]; then
  configs=(ecg12 audio_cdck2); modes=(fp32 tf32 bf16)
  [ $quick = 1 ] && configs=(ecg12) && modes=(fp32)
  for cfg in "${configs[@]}"; do
    for mode in "${modes[@]}"; do
      if [ "$(elapsed)" -gt $((budget - 60)) ]; then bench_rows+=("| $cfg | $mode | skipped: the check's ${budget} s budget was spent | | |"); continue; fi
      args=(bench --device cuda --torch --config "$src/models/configs/$cfg.json" --batch 64 --rounds 5 --steps 10)
      case $mode in tf32) args+=(--tf32 on) ;; bf16) args+=(--set train.precision=bf16) ;; esac
      note "bench $cfg $mode ($(elapsed) s)"
      echo "### $cfg, batch 64, $mode" >>"$out/bench.txt"
      timeout 90 "$W/cpc-engine" "${args[@]}" >"$work/bench.out" 2>&1
      rc=$?
      cat "$work/bench.out" >>"$out/bench.txt"
      ours=$(grep '^cpc-engine CUDA' "$work/bench.out" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) {print $i; exit}}')
      theirs=$(grep '^PyTorch CUDA' "$work/bench.out" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) {print $i; exit}}')
      ratio=$(grep '^cpc-engine CUDA' "$work/bench.out" | grep -oE '[0-9.]+x$')
      if [ $rc -eq 0 ] && [ -n "$ours" ]; then
        bench_rows+=("| $cfg | $mode | $ours | $theirs | $ratio |")
      else
        failures=$((failures + 1))
        bench_rows+=("| $cfg | $mode | FAILED (exit $rc): $(grep -m1 -i error "$work/bench.out" | cut -c1-160) | | |")
      fi
    done
  done
  if [ "$(elapsed)" -le $((budget - 30)) ]; then
    note "contrastive kernel vs cuBLAS ($(elapsed) s)"
    echo "### fused contrastive vs cuBLAS" >>"$out/bench.txt"
    timeout 60 "$W/cpc-cuda-loss-bench" --sizes 1024,4096,16384 >>"$out/bench.txt" 2>&1 || failures=$((failures + 1))
  fi
  row "benchmarks" "ran" "bench.txt"
else
  timeout 60 "$W/cpc-cuda-loss-bench" >>"$out/bench.txt" 2>&1
  row "benchmarks" "skipped" "no CUDA device ($(head -c 120 "$out/bench.txt"))"
fi

# ---------------------------------------------------------------- summary
{
  echo "# GPU check: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(elapsed) s, $([ $failures = 0 ] && echo "no failures" || echo "$failures FAILED")"
  echo
  echo "| stage | result | detail |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
  if [ ${#bench_rows[@]} -gt 0 ]; then
    echo
    echo "| config (batch 64) | precision | cpc-engine ms/step | PyTorch ms/step | speed-up |"
    echo "|---|---|---:|---:|---:|"
    printf '%s\n' "${bench_rows[@]}"
    grep -A8 '^InfoNCE block' "$out/bench.txt" | sed 's/^/    /'
  fi
} > "$out/summary.md"
cat "$out/summary.md" >>"$log"
rm -rf "$work"
echo
cat "$out/summary.md"
[ $failures -eq 0 ]
