#!/usr/bin/env bash
# Packs what the GPU check (tools/gpu/device_check.sh) runs on a bare GPU machine that
# has CUDA, cuDNN, cuBLAS, NCCL and PyTorch but none of the Debian packages we build
# with: our binaries (built here, sm_80 and sm_90) and every shared library they load
# except CUDA's own (libcudart, libcublas*, libcudnn*, libnccl, libcuda, libnvrtc: those
# come from that machine's toolkit and pip wheels) and glibc's (that machine's newer glibc
# runs binaries built against Debian 12's). The copy of the repository that travels with
# the call supplies the scripts and configs.
#
# Usage: tools/gpu/make_bundle.sh [BUILD_DIR [OUT_DIR]]   (defaults: build, .gpu-bundle)
# Writes OUT_DIR/cpc-gpu-bundle.tar.xz (a git-ignored folder: the device tool's `carry`).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
out=${2:-$src/.gpu-bundle}
max_mib=50

# The CPU tests carried need no PyTorch reference file (it is ~100 MiB): the core, the
# finite-difference gradient checks and the HDF5 dataset (the bundled libhdf5 at work).
bins=(tools/cpc-engine tests/gpu/cuda_backend_test tests/backend_ops_test bench/cpc-cuda-loss-bench
      tests/tensor_test tests/autograd_test tests/gradcheck_test tests/contrastive_gradcheck_test
      tests/window_dataset_test)
for b in "${bins[@]}"; do
  [ -x "$build/$b" ] || { echo "make_bundle: $build/$b is missing: build with -DCPC_CUDA=ON first" >&2; exit 1; }
done

# Libraries that must come from the GPU machine (CUDA) or its C library (glibc).
from_machine='^(linux-vdso\.so|ld-linux-x86-64\.so|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libresolv\.so|libutil\.so|libcuda\.so|libcudart\.so|libcublas(Lt)?\.so|libcudnn[a-z_]*\.so|libnccl\.so|libnvrtc[a-z-]*\.so)'

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/cpc-gpu-bundle
mkdir -p "$root/bin" "$root/lib"
for b in "${bins[@]}"; do
  cp "$build/$b" "$root/bin/"
  strip --strip-unneeded "$root/bin/$(basename "$b")"
done

# Every library the dynamic loader resolves for them (ldd lists the whole closure).
for b in "${bins[@]}"; do ldd "$build/$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
while read -r soname path; do
  if [[ $soname =~ $from_machine ]]; then continue; fi
  cp -L "$path" "$root/lib/$soname"
done
missing=$(for b in "${bins[@]}"; do ldd "$build/$b"; done | grep "not found" | sort -u || true)
[ -z "$missing" ] || { echo "make_bundle: unresolved libraries here:"$'\n'"$missing" >&2; exit 1; }

{
  echo "commit $(git -C "$src" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$src" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -n 1)"
  echo "cuda architectures: $(grep -E '^CMAKE_CUDA_ARCHITECTURES' "$build/CMakeCache.txt" | cut -d= -f2)"
  echo "binaries: ${bins[*]##*/}"
  echo "bundled libraries: $(ls "$root/lib" | tr '\n' ' ')"
  echo "from the GPU machine: CUDA runtime, cuBLAS, cuBLASLt, cuDNN, NCCL, driver; glibc"
} > "$root/MANIFEST"

mkdir -p "$out"
XZ_OPT="-6 -T$(nproc)" tar -C "$stage" -cJf "$out/cpc-gpu-bundle.tar.xz.tmp" cpc-gpu-bundle
mv "$out/cpc-gpu-bundle.tar.xz.tmp" "$out/cpc-gpu-bundle.tar.xz"
size=$(stat -c %s "$out/cpc-gpu-bundle.tar.xz")
echo "make_bundle: $out/cpc-gpu-bundle.tar.xz: $((size / 1048576)) MiB ($(du -sm "$root" | cut -f1) MiB unpacked," \
     "${#bins[@]} binaries, $(ls "$root/lib" | wc -l) libraries)"
if [ "$size" -gt $((max_mib * 1048576)) ]; then
  echo "make_bundle: the bundle is over ${max_mib} MiB: it would not travel with the repository (64 MiB in all)" >&2
  exit 1
fi
