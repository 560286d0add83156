#include "kernels/cuda/conv1d_cudnn.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/core/error.h"
#include "kernels/cuda/runtime/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/bias.h"

namespace cpc::cuda {

namespace {


// The candidate to run from cuDNN's list (sorted fastest first): the fastest
// deterministic one that succeeded, else the fastest that succeeded. cudnnFind* tries
// the descriptor's math type and CUDNN_DEFAULT_MATH, and default math permits TF32 on
// sm_80+: without TF32 only CUDNN_FMA_MATH candidates qualify (the descriptor stays at
// FMA); if cuDNN offers none, the non-tensor-op ones, still run under FMA math. -1
// when nothing is usable. With TF32 allowed every math type qualifies; with bf16 data
// every one but ALLOW_CONVERSION first (the data are bf16 already; conversion could
// only lower what cuDNN computes internally), then any.
template <class Perf>
int pick(const Perf* p, int n, bool tf32, bool bf16) {
  for (int pass = 0; pass < 2; ++pass) {
    int any = -1;
    for (int i = 0; i < n; ++i) {
      if (p[i].status != CUDNN_STATUS_SUCCESS) continue;
      const cudnnMathType_t m = p[i].mathType;
      const bool tensor_op = m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
      const bool ok = tf32 || m == CUDNN_FMA_MATH || (bf16 && (pass == 1 || m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) ||
                      (pass == 1 && !tensor_op);
      if (!ok) continue;
      if (p[i].determinism == CUDNN_DETERMINISTIC) return i;
      if (any < 0) any = i;
    }
    if (any >= 0 || tf32) return any;
  }
  return -1;
}

struct Choice {
  int algo = -1;
  size_t workspace = 0;
};

// bf16 copy of n floats in buf (sized 2n bytes by the caller).
const uint16_t* round_bf16(const CudaContext& ctx, const float* src, int64_t n, const DeviceScratch& buf) {
  CPC_CUDA_CHECK(launch_to_bf16(src, buf.get<uint16_t>(), n, ctx.stream));
  return buf.get<uint16_t>();
}

}  // namespace

struct CudnnConv1d::Entry {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv[3] = {nullptr, nullptr, nullptr};  // forward, backward data, backward filter
  Choice fwd, bwd_data, bwd_filter;
  bool any_math = false;  // TF32 allowed or bf16 data: the algorithm's own math type is set
  bool tf32 = false, bf16 = false;
  ~Entry() {
    // Host-side objects only: safe at any time.
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (w) cudnnDestroyFilterDescriptor(w);
    for (auto* c : conv)
      if (c) cudnnDestroyConvolutionDescriptor(c);
  }
};

CudnnConv1d::CudnnConv1d() {
  const char* v = std::getenv("CPC_CUDA_CONV_SEARCH");
  heuristic_ = v && std::strcmp(v, "heuristic") == 0;
  // Constructed during static initialisation: warn rather than throw.
  if (v && !heuristic_ && std::strcmp(v, "find") != 0)
    std::fprintf(stderr, "cpc: CPC_CUDA_CONV_SEARCH='%s' is neither find nor heuristic; using find\n", v);
}

CudnnConv1d::~CudnnConv1d() = default;

std::string CudnnConv1d::describe() const {
  return cat("cuDNN conv (", heuristic_ ? "heuristic" : "find", " algorithm search, deterministic preferred)");
}

CudnnConv1d::Entry& CudnnConv1d::entry(const CudaContext& ctx, const Conv1dDims& d) {
  const Key key{d.B, d.Cin, d.L, d.Cout, d.K, d.stride, d.padding, d.dilation, ctx.tf32, ctx.bf16};
  auto it = cache_.find(key);
  if (it != cache_.end()) return *it->second;
  for (int64_t v : {d.B, d.Cin, d.L, d.Cout, d.K, d.Lout, d.stride, d.padding, d.dilation})
    CPC_CHECK(fits_int(v), "conv1d on cuda: dimension ", v, " exceeds cuDNN's int range");
  auto e = std::make_unique<Entry>();
  e->any_math = ctx.tf32 || ctx.bf16;
  e->tf32 = ctx.tf32;
  e->bf16 = ctx.bf16;
  const cudnnDataType_t data = ctx.bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  CPC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->x));
  CPC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->y));
  CPC_CUDNN_CHECK(cudnnCreateFilterDescriptor(&e->w));
  const int B = static_cast<int>(d.B), Cin = static_cast<int>(d.Cin), Cout = static_cast<int>(d.Cout);
  CPC_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NCHW, data, B, Cin, 1, static_cast<int>(d.L)));
  CPC_CUDNN_CHECK(
      cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NCHW, data, B, Cout, 1, static_cast<int>(d.Lout)));
  CPC_CUDNN_CHECK(
      cudnnSetFilter4dDescriptor(e->w, data, CUDNN_TENSOR_NCHW, Cout, Cin, 1, static_cast<int>(d.K)));
  for (auto*& c : e->conv) {
    CPC_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&c));
    CPC_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(c, 0, static_cast<int>(d.padding), 1, static_cast<int>(d.stride), 1,
                                                    static_cast<int>(d.dilation), CUDNN_CROSS_CORRELATION,
                                                    CUDNN_DATA_FLOAT));
    // FMA math: no TF32 tensor cores for fp32 data (cuDNN's default math allows them on
    // sm_80+). Compute is fp32 in both precisions (PSEUDO_BFLOAT16 for bf16 data).
    CPC_CUDNN_CHECK(cudnnSetConvolutionMathType(c, e->any_math ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  }
  int n = 0, c = 0, h = 0, w = 0;
  CPC_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(e->conv[0], e->x, e->w, &n, &c, &h, &w));
  CPC_CHECK(n == B && c == Cout && h == 1 && w == d.Lout, "conv1d on cuda: cuDNN computes output (", n, ", ", c, ", ",
            h, ", ", w, ") for input (", d.B, ", ", d.Cin, ", 1, ", d.L, "), expected (", d.B, ", ", d.Cout, ", 1, ",
            d.Lout, ")");
  Entry& ref = *e;
  cache_.emplace(key, std::move(e));
  return ref;
}

void CudnnConv1d::forward(const CudaContext& ctx, const float* x, const float* w, const float* bias, const Conv1dDims& d,
                          float* y) {
  Choice ch;
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entry(ctx, d);
    if (e.fwd.algo < 0) {
      int max_count = 0, got = 0;
      CPC_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(ctx.dnn, &max_count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
      if (heuristic_)
        CPC_CUDNN_CHECK(
            cudnnGetConvolutionForwardAlgorithm_v7(ctx.dnn, e.x, e.w, e.conv[0], e.y, max_count, &got, perf.data()));
      else
        CPC_CUDNN_CHECK(
            cudnnFindConvolutionForwardAlgorithm(ctx.dnn, e.x, e.w, e.conv[0], e.y, max_count, &got, perf.data()));
      const int i = pick(perf.data(), got, e.tf32, e.bf16);
      CPC_CHECK(i >= 0, "conv1d on cuda: cuDNN offers no usable forward algorithm for x (", d.B, ", ", d.Cin, ", ", d.L,
                "), w (", d.Cout, ", ", d.Cin, ", ", d.K, ")");
      if (e.any_math) CPC_CUDNN_CHECK(cudnnSetConvolutionMathType(e.conv[0], perf[i].mathType));
      CPC_CUDNN_CHECK(
          cudnnGetConvolutionForwardWorkspaceSize(ctx.dnn, e.x, e.w, e.conv[0], e.y, perf[i].algo, &e.fwd.workspace));
      e.fwd.algo = static_cast<int>(perf[i].algo);
    }
    ch = e.fwd, xd = e.x, yd = e.y, wd = e.w, cd = e.conv[0];
    peak_workspace_ = std::max(peak_workspace_, ch.workspace);
  }
  DeviceScratch ws = ctx.scratch(ch.workspace);
  const float one = 1.f, zero = 0.f;
  const auto algo = static_cast<cudnnConvolutionFwdAlgo_t>(ch.algo);
  if (ctx.bf16) {
    const int64_t nx = d.x_numel(), nw = d.w_numel(), ny = d.y_numel();
    DeviceScratch x16 = ctx.scratch(2 * nx), w16 = ctx.scratch(2 * nw), y16 = ctx.scratch(2 * ny);
    CPC_CUDNN_CHECK(cudnnConvolutionForward(ctx.dnn, &one, xd, round_bf16(ctx, x, nx, x16), wd,
                                            round_bf16(ctx, w, nw, w16), cd, algo, ws.get(), ch.workspace, &zero, yd,
                                            y16.get()));
    CPC_CUDA_CHECK(launch_from_bf16(y16.get<uint16_t>(), y, ny, false, ctx.stream));
  } else {
    CPC_CUDNN_CHECK(
        cudnnConvolutionForward(ctx.dnn, &one, xd, x, wd, w, cd, algo, ws.get(), ch.workspace, &zero, yd, y));
  }
  if (bias) CPC_CUDA_CHECK(launch_add_bias(y, bias, d.B, d.Cout, d.Lout, ctx.stream));
}

void CudnnConv1d::backward_data(const CudaContext& ctx, const float* dy, const float* w, const Conv1dDims& d,
                                float* dx) {
  Choice ch;
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entry(ctx, d);
    if (e.bwd_data.algo < 0) {
      int max_count = 0, got = 0;
      CPC_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(ctx.dnn, &max_count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
      if (heuristic_)
        CPC_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx.dnn, e.w, e.y, e.conv[1], e.x, max_count, &got,
                                                                    perf.data()));
      else
        CPC_CUDNN_CHECK(
            cudnnFindConvolutionBackwardDataAlgorithm(ctx.dnn, e.w, e.y, e.conv[1], e.x, max_count, &got, perf.data()));
      const int i = pick(perf.data(), got, e.tf32, e.bf16);
      CPC_CHECK(i >= 0, "conv1d on cuda: cuDNN offers no usable backward-data algorithm for x (", d.B, ", ", d.Cin,
                ", ", d.L, "), w (", d.Cout, ", ", d.Cin, ", ", d.K, ")");
      if (e.any_math) CPC_CUDNN_CHECK(cudnnSetConvolutionMathType(e.conv[1], perf[i].mathType));
      CPC_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(ctx.dnn, e.w, e.y, e.conv[1], e.x, perf[i].algo,
                                                                   &e.bwd_data.workspace));
      e.bwd_data.algo = static_cast<int>(perf[i].algo);
    }
    ch = e.bwd_data, xd = e.x, yd = e.y, wd = e.w, cd = e.conv[1];
    peak_workspace_ = std::max(peak_workspace_, ch.workspace);
  }
  DeviceScratch ws = ctx.scratch(ch.workspace);
  const float one = 1.f, zero = 0.f;
  const auto algo = static_cast<cudnnConvolutionBwdDataAlgo_t>(ch.algo);
  if (ctx.bf16) {  // dx16 = conv^T(dy16, w16), then dx += dx16
    const int64_t nx = d.x_numel(), nw = d.w_numel(), ny = d.y_numel();
    DeviceScratch dy16 = ctx.scratch(2 * ny), w16 = ctx.scratch(2 * nw), dx16 = ctx.scratch(2 * nx);
    CPC_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.dnn, &one, wd, round_bf16(ctx, w, nw, w16), yd,
                                                 round_bf16(ctx, dy, ny, dy16), cd, algo, ws.get(), ch.workspace,
                                                 &zero, xd, dx16.get()));
    CPC_CUDA_CHECK(launch_from_bf16(dx16.get<uint16_t>(), dx, nx, true, ctx.stream));
  } else {  // beta = 1: dx accumulates
    CPC_CUDNN_CHECK(
        cudnnConvolutionBackwardData(ctx.dnn, &one, wd, w, yd, dy, cd, algo, ws.get(), ch.workspace, &one, xd, dx));
  }
}

void CudnnConv1d::backward_weights(const CudaContext& ctx, const float* x, const float* dy, const Conv1dDims& d,
                                   float* dw, float* dbias) {
  if (dbias) CPC_CUDA_CHECK(launch_bias_grad(dy, dbias, d.B, d.Cout, d.Lout, ctx.stream));
  if (!dw) return;
  Choice ch;
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = entry(ctx, d);
    if (e.bwd_filter.algo < 0) {
      int max_count = 0, got = 0;
      CPC_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(ctx.dnn, &max_count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
      if (heuristic_)
        CPC_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx.dnn, e.x, e.y, e.conv[2], e.w, max_count,
                                                                      &got, perf.data()));
      else
        CPC_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithm(ctx.dnn, e.x, e.y, e.conv[2], e.w, max_count, &got,
                                                                    perf.data()));
      const int i = pick(perf.data(), got, e.tf32, e.bf16);
      CPC_CHECK(i >= 0, "conv1d on cuda: cuDNN offers no usable backward-filter algorithm for x (", d.B, ", ", d.Cin,
                ", ", d.L, "), w (", d.Cout, ", ", d.Cin, ", ", d.K, ")");
      if (e.any_math) CPC_CUDNN_CHECK(cudnnSetConvolutionMathType(e.conv[2], perf[i].mathType));
      CPC_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx.dnn, e.x, e.y, e.conv[2], e.w, perf[i].algo,
                                                                     &e.bwd_filter.workspace));
      e.bwd_filter.algo = static_cast<int>(perf[i].algo);
    }
    ch = e.bwd_filter, xd = e.x, yd = e.y, wd = e.w, cd = e.conv[2];
    peak_workspace_ = std::max(peak_workspace_, ch.workspace);
  }
  DeviceScratch ws = ctx.scratch(ch.workspace);
  const float one = 1.f, zero = 0.f;
  const auto algo = static_cast<cudnnConvolutionBwdFilterAlgo_t>(ch.algo);
  if (ctx.bf16) {  // dw16 = corr(x16, dy16), then dw += dw16
    const int64_t nx = d.x_numel(), nw = d.w_numel(), ny = d.y_numel();
    DeviceScratch x16 = ctx.scratch(2 * nx), dy16 = ctx.scratch(2 * ny), dw16 = ctx.scratch(2 * nw);
    CPC_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.dnn, &one, xd, round_bf16(ctx, x, nx, x16), yd,
                                                   round_bf16(ctx, dy, ny, dy16), cd, algo, ws.get(), ch.workspace,
                                                   &zero, wd, dw16.get()));
    CPC_CUDA_CHECK(launch_from_bf16(dw16.get<uint16_t>(), dw, nw, true, ctx.stream));
  } else {  // beta = 1: dw accumulates
    CPC_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.dnn, &one, xd, x, yd, dy, cd, algo, ws.get(), ch.workspace,
                                                   &one, wd, dw));
  }
}

}  // namespace cpc::cuda
