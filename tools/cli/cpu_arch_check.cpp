// Runs before anything else in cpc-engine and is compiled for any x86-64 CPU: the rest
// of the binary uses the instructions of CPC_CPU_ARCH (CMakeLists.txt), and a CPU
// without them would otherwise die of SIGILL without a word.
#if defined(__x86_64__) && defined(CPC_REQUIRES_AVX2_FMA)
#include <cstdio>
#include <cstdlib>

namespace {
__attribute__((constructor(101))) void cpc_check_cpu_arch() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return;
  std::fputs(
      "cpc-engine: this CPU lacks AVX2/FMA, which this build requires (CPC_CPU_ARCH=x86-64-v3); "
      "rebuild with cmake -DCPC_CPU_ARCH=x86-64\n",
      stderr);
  std::_Exit(1);
}
}  // namespace
#endif
