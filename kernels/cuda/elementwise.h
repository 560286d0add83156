#pragma once
// Launchers for the pointwise and reduction kernels in elementwise.cu. Plain device
// pointers and a stream, no engine types, so the .cu file stays C++17 and free of the
// engine's headers. Each launcher returns the launch status (cudaGetLastError) for
// the caller to check; n may be 0 (nothing is launched).
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/optimizer_math.h"

namespace cpc::cuda {

cudaError_t launch_fill(float* y, int64_t n, float value, cudaStream_t s);
cudaError_t launch_axpy(float alpha, const float* x, float* y, int64_t n, cudaStream_t s);  // y += alpha x
// y += alpha * s[0] * x, s on the device
cudaError_t launch_axpy_scaled(float alpha, const float* s, const float* x, float* y, int64_t n, cudaStream_t st);
cudaError_t launch_add(const float* a, const float* b, float* y, int64_t n, cudaStream_t s);

// Backward launchers accumulate into dx, as the Backend interface requires.
cudaError_t launch_relu_forward(const float* x, float* y, int64_t n, cudaStream_t s);
// dx += relu'(y) dy, or dx = relu'(y) dy when !accumulate (dx may be dy itself).
cudaError_t launch_relu_backward(const float* y, const float* dy, float* dx, int64_t n, bool accumulate,
                                 cudaStream_t s);
cudaError_t launch_gelu_forward(const float* x, float* y, int64_t n, cudaStream_t s);
cudaError_t launch_gelu_backward(const float* x, const float* dy, float* dx, int64_t n, cudaStream_t s);
// Inverted dropout with the counter-based mask of kernels/common/counter_rng.h; scale
// is 1 / (1 - p) computed by the caller in float, as the CPU does.
cudaError_t launch_dropout(const float* x, float* y, int64_t n, float p, float scale, uint64_t seed,
                           bool accumulate, cudaStream_t s);

// vmax / buf may be null when amsgrad / momentum is off.
cudaError_t launch_adam(float* p, const float* g, float* m, float* v, float* vmax, int64_t n,
                        const math::AdamScalars& sc, cudaStream_t s);
cudaError_t launch_sgd(float* p, const float* g, float* buf, int64_t n, const math::SgdScalars& sc,
                       cudaStream_t s);

// Multi-tensor apply: one launch for many tensors. Each chunk is at most
// kMultiTensorChunk elements of one tensor, its pointers already offset to the chunk's
// first element; one thread block per chunk. The chunk table lives on the device.
constexpr int64_t kMultiTensorChunk = 16384;  // small enough that a few big tensors still fill the GPU
struct AdamChunk {
  float* p;
  const float* g;
  float* m;
  float* v;
  float* vmax;  // null without amsgrad
  int64_t n;
};
struct SpanChunk {
  const float* x;
  int64_t n;
};
cudaError_t launch_adam_multi(const AdamChunk* chunks, int64_t count, const math::AdamScalars& sc, cudaStream_t s);
// Sum of squares over every chunk into scratch (kReduceScratch doubles), as
// launch_reduce_sum: the result lands in scratch[kReduceBlocks]. Deterministic for a
// given table.
cudaError_t launch_sum_squares_multi(const SpanChunk* chunks, int64_t count, double* scratch, cudaStream_t s);

// bf16 mixed precision (kernels/common/bf16.h rounding, ties to even): y = bf16(x), and
// y = float(x) (or y += float(x) with accumulate). bf16 values travel as uint16_t.
cudaError_t launch_to_bf16(const float* x, uint16_t* y, int64_t n, cudaStream_t s);
cudaError_t launch_from_bf16(const uint16_t* x, float* y, int64_t n, bool accumulate, cudaStream_t s);

// Sum (or sum of squares) in double. scratch holds kReduceScratch doubles on the
// device; the result lands in scratch[kReduceBlocks] for the caller to copy back.
constexpr int kReduceBlocks = 512;
constexpr int kReduceScratch = kReduceBlocks + 1;
cudaError_t launch_reduce_sum(const float* x, int64_t n, bool squares, double* scratch, cudaStream_t s);

}  // namespace cpc::cuda
