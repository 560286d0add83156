#pragma once
// Warp and block reductions for the CUDA kernels (device code only; include from .cu).
#include <cstdint>

namespace cpc::cuda {

constexpr unsigned kFullMask = 0xffffffffu;

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(kFullMask, v, o);
  return v;  // complete in lane 0
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); the result is
// returned to every thread. `shared` holds 32 T. Contains __syncthreads: call from
// all threads of the block.
template <class T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T r = lane < warps ? shared[lane] : T(0);
  if (warp == 0) r = warp_sum(r);
  if (threadIdx.x == 0) shared[0] = r;
  __syncthreads();
  return shared[0];
}

// 64-bit grid-stride indices: tensors may exceed 2^31 elements.
__device__ __forceinline__ int64_t global_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t global_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

inline int grid_for(int64_t n, int threads, int64_t max_blocks = 65535) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<int>(b < 1 ? 1 : (b < max_blocks ? b : max_blocks));
}

}  // namespace cpc::cuda
