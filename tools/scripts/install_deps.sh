#!/usr/bin/env bash
# Installs the Debian packages cpc-engine builds, tests and benchmarks with.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail
PACKAGES=(
  cmake g++ make ccache xz-utils                                    # xz: the GPU check's bundle
  libopenblas-dev libdnnl-dev ocl-icd-opencl-dev opencl-c-headers  # CPU math (oneDNN's CMake config needs OpenCL headers)
  libhdf5-dev nlohmann-json3-dev libcli11-dev                       # data, config, command line
  libopenmpi-dev openmpi-bin                                        # multi-process training
  slurm-wlm munge                                                   # a one-node SLURM in the tests
  chromium                                                          # the report page in a headless browser (tests)
  libgtest-dev libgmock-dev libbenchmark-dev                        # tests and benchmarks
  clang libclang-rt-14-dev                                          # sanitizer build and libFuzzer (tools/scripts/sanitizers.sh)
  python3-torch python3-numpy python3-h5py libjemalloc2             # the PyTorch reference (/usr/bin/python3)
  espeak-ng                                                         # the speech benchmark's corpus (tools/scripts/speech_bench.sh)
  libopenblas0-openmp                                               # the tuned PyTorch peer's BLAS (bench --torch)
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
