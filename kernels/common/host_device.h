#pragma once
// CPC_HD marks math shared by the CPU backend and CUDA kernels: compiled as
// __host__ __device__ under nvcc, plain inline functions elsewhere. Float and double
// overloads of the elementary functions keep both compilers on the same code.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define CPC_HD __host__ __device__ __forceinline__
#else
#define CPC_HD inline
#endif

namespace cpc::math {

CPC_HD float exp_(float x) { return expf(x); }
CPC_HD double exp_(double x) { return exp(x); }
CPC_HD float tanh_(float x) { return tanhf(x); }
CPC_HD double tanh_(double x) { return tanh(x); }
CPC_HD float erf_(float x) { return erff(x); }
CPC_HD double erf_(double x) { return erf(x); }
CPC_HD float sqrt_(float x) { return sqrtf(x); }
CPC_HD double sqrt_(double x) { return sqrt(x); }

}  // namespace cpc::math
