// Pointwise, optimizer and reduction kernels. The per-element math comes from
// kernels/common (CPC_HD), the same code the CPU backend runs, so the two backends
// differ only by float rounding (FMA contraction, libm vs CUDA erff/expf).
#include "kernels/common/activation_math.h"
#include "kernels/common/bf16.h"
#include "kernels/common/counter_rng.h"
#include "kernels/common/optimizer_math.h"
#include "kernels/cuda/elementwise.h"

namespace cpc::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 4096;  // grid-stride loops cover the rest
static_assert((kReduceBlocks & (kReduceBlocks - 1)) == 0, "block_sum needs a power-of-two block");

int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < kMaxBlocks ? b : kMaxBlocks);
}

// 64-bit indices: tensors may exceed 2^31 elements.
__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

__global__ void fill_kernel(float* y, int64_t n, float v) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = v;
}

// No __restrict__: x may be y (gradient clipping scales a gradient in place).
__global__ void axpy_kernel(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] += a * x[i];
}

// No __restrict__: y may alias a or b (in-place add).
__global__ void add_kernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = a[i] + b[i];
}

__global__ void relu_forward_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = math::relu(x[i]);
}

__global__ void relu_backward_kernel(const float* y, const float* dy, float* dx, int64_t n, bool accumulate) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float g = math::relu_grad_from_output(y[i], dy[i]);
    dx[i] = accumulate ? dx[i] + g : g;
  }
}

__global__ void gelu_forward_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = math::gelu(x[i]);
}

__global__ void gelu_backward_kernel(const float* x, const float* dy, float* dx, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) dx[i] += dy[i] * math::gelu_grad(x[i]);
}

__global__ void dropout_kernel(const float* x, float* y, int64_t n, float p, float scale, uint64_t seed,
                               bool accumulate) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float v = math::dropout_keep(seed, static_cast<uint64_t>(i), p) ? x[i] * scale : 0.f;
    y[i] = accumulate ? y[i] + v : v;
  }
}

__global__ void adam_kernel(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                            math::AdamScalars sc) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    float dummy = 0.f;
    math::adam_element(p[i], g[i], m[i], v[i], vmax ? vmax[i] : dummy, sc);
  }
}

__global__ void sgd_kernel(float* p, const float* g, float* buf, int64_t n, math::SgdScalars sc) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    float dummy = 0.f;
    math::sgd_element(p[i], g[i], buf ? buf[i] : dummy, sc);
  }
}

__global__ void adam_multi_kernel(const AdamChunk* chunks, math::AdamScalars sc) {
  const AdamChunk c = chunks[blockIdx.x];
  for (int64_t i = threadIdx.x; i < c.n; i += blockDim.x) {
    float dummy = 0.f;
    math::adam_element(c.p[i], c.g[i], c.m[i], c.v[i], c.vmax ? c.vmax[i] : dummy, sc);
  }
}

__global__ void to_bf16_kernel(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] = math::float_to_bf16(x[i]);
}

__global__ void from_bf16_kernel(const uint16_t* x, float* y, int64_t n, bool accumulate) {
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const float v = math::bf16_to_float(x[i]);
    y[i] = accumulate ? y[i] + v : v;
  }
}

// Tree reduction of one value per thread in shared memory; blockDim.x is a power of two.
__device__ double block_sum(double v) {
  __shared__ double sh[kReduceBlocks > kThreads ? kReduceBlocks : kThreads];
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  return sh[0];
}

// Pass 1: each block sums its grid-stride share into partial[blockIdx.x].
__global__ void reduce_partial_kernel(const float* x, int64_t n, bool squares, double* partial) {
  double acc = 0.0;
  for (int64_t i = first_index(); i < n; i += grid_stride()) {
    const double v = x[i];
    acc += squares ? v * v : v;
  }
  const double s = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Pass 1 over a chunk table: block b sums chunks b, b + grid, ... in that order.
__global__ void sum_squares_multi_partial_kernel(const SpanChunk* chunks, int64_t count, double* partial) {
  double acc = 0.0;
  for (int64_t c = blockIdx.x; c < count; c += gridDim.x) {
    const SpanChunk ch = chunks[c];
    for (int64_t i = threadIdx.x; i < ch.n; i += blockDim.x) {
      const double v = ch.x[i];
      acc += v * v;
    }
  }
  const double s = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// Pass 2: one block of kReduceBlocks threads sums the partials. The fixed grid and
// order make the result deterministic for a given n.
__global__ void reduce_final_kernel(const double* partial, int count, double* out) {
  const double s = block_sum(static_cast<int>(threadIdx.x) < count ? partial[threadIdx.x] : 0.0);
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

cudaError_t launch_fill(float* y, int64_t n, float value, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  fill_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, n, value);
  return cudaGetLastError();
}

cudaError_t launch_axpy(float alpha, const float* x, float* y, int64_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  axpy_kernel<<<blocks_for(n), kThreads, 0, s>>>(alpha, x, y, n);
  return cudaGetLastError();
}

__global__ void axpy_scaled_kernel(float a, const float* s, const float* x, float* y, int64_t n) {
  const float as = a * *s;  // the same product the CPU forms before its loop
  for (int64_t i = first_index(); i < n; i += grid_stride()) y[i] += as * x[i];
}

cudaError_t launch_axpy_scaled(float alpha, const float* s, const float* x, float* y, int64_t n, cudaStream_t st) {
  if (n == 0) return cudaSuccess;
  axpy_scaled_kernel<<<blocks_for(n), kThreads, 0, st>>>(alpha, s, x, y, n);
  return cudaGetLastError();
}

cudaError_t launch_add(const float* a, const float* b, float* y, int64_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  add_kernel<<<blocks_for(n), kThreads, 0, s>>>(a, b, y, n);
  return cudaGetLastError();
}

cudaError_t launch_relu_forward(const float* x, float* y, int64_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  relu_forward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t launch_relu_backward(const float* y, const float* dy, float* dx, int64_t n, bool accumulate,
                                 cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, dy, dx, n, accumulate);
  return cudaGetLastError();
}

cudaError_t launch_gelu_forward(const float* x, float* y, int64_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  gelu_forward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t launch_gelu_backward(const float* x, const float* dy, float* dx, int64_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  gelu_backward_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, dy, dx, n);
  return cudaGetLastError();
}

cudaError_t launch_dropout(const float* x, float* y, int64_t n, float p, float scale, uint64_t seed,
                           bool accumulate, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  dropout_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n, p, scale, seed, accumulate);
  return cudaGetLastError();
}

cudaError_t launch_adam(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                        const math::AdamScalars& sc, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  adam_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, g, m, v, vmax, n, sc);
  return cudaGetLastError();
}

cudaError_t launch_sgd(float* p, const float* g, float* buf, int64_t n, const math::SgdScalars& sc,
                       cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  sgd_kernel<<<blocks_for(n), kThreads, 0, s>>>(p, g, buf, n, sc);
  return cudaGetLastError();
}

cudaError_t launch_adam_multi(const AdamChunk* chunks, int64_t count, const math::AdamScalars& sc, cudaStream_t s) {
  if (count == 0) return cudaSuccess;
  if (count > 0x7fffffff) return cudaErrorInvalidValue;
  adam_multi_kernel<<<static_cast<unsigned>(count), kThreads, 0, s>>>(chunks, sc);
  return cudaGetLastError();
}

cudaError_t launch_sum_squares_multi(const SpanChunk* chunks, int64_t count, double* scratch, cudaStream_t s) {
  const int blocks = static_cast<int>(count < 1 ? 1 : (count < kReduceBlocks ? count : kReduceBlocks));
  sum_squares_multi_partial_kernel<<<blocks, kThreads, 0, s>>>(chunks, count, scratch);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  reduce_final_kernel<<<1, kReduceBlocks, 0, s>>>(scratch, blocks, scratch + kReduceBlocks);
  return cudaGetLastError();
}

cudaError_t launch_to_bf16(const float* x, uint16_t* y, int64_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  to_bf16_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t launch_from_bf16(const uint16_t* x, float* y, int64_t n, bool accumulate, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  from_bf16_kernel<<<blocks_for(n), kThreads, 0, s>>>(x, y, n, accumulate);
  return cudaGetLastError();
}

cudaError_t launch_reduce_sum(const float* x, int64_t n, bool squares, double* scratch, cudaStream_t s) {
  const int64_t want = (n + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(want < 1 ? 1 : (want < kReduceBlocks ? want : kReduceBlocks));
  reduce_partial_kernel<<<blocks, kThreads, 0, s>>>(x, n, squares, scratch);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  reduce_final_kernel<<<1, kReduceBlocks, 0, s>>>(scratch, blocks, scratch + kReduceBlocks);
  return cudaGetLastError();
}

}  // namespace cpc::cuda
