// The CUDA backend: a thin dispatcher from the checked Backend front to the CUDA
// implementations. cuBLAS for GEMMs (and the GEMM parts of the GRU and the fused
// contrastive loss), cuDNN for Conv1d and BatchNorm, our kernels for the rest, with the
// per-element math of kernels/common shared with the CPU backend. Every op is an NVTX
// range (domain "cpc") so Nsight Systems shows the op structure. Registered for
// DeviceKind::cuda.
//
// The arguments arrive checked (engine/core/backend_checks.cpp); what is left here is
// the device index (tensors on another index than the served one are rejected rather
// than read across devices). The device, its stream and handles are runtime/
// device_context.h; the loader's copy stream runtime/copy_stream.h.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "kernels/common/optimizer_math.h"
#include "kernels/cuda/batchnorm_cudnn.h"
#include "kernels/cuda/contrastive.h"
#include "kernels/cuda/conv1d_cudnn.h"
#include "kernels/cuda/cublas_gemm.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gru.h"
#include "kernels/cuda/gru_cudnn.h"
#include "kernels/cuda/bias.h"
#include "kernels/cuda/l2_normalize.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/norms.h"
#include "kernels/cuda/runtime/copy_stream.h"
#include "kernels/cuda/runtime/cuda_check.h"
#include "kernels/cuda/runtime/device_context.h"
#include "kernels/cuda/runtime/device_probe.h"
#include "kernels/cuda/runtime/device_table.h"
#include "kernels/cuda/runtime/host_staging.h"
#include "kernels/cuda/runtime/nvtx.h"

namespace cpc {
namespace {

class CudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda"; }
  bool available() const override { return cuda::device_count() > 0; }
  // Every op on f32 tensors; bf16 is a precision mode inside the ops, not a tensor dtype.
  bool supports_op(Op, DType dtype) const override { return dtype == DType::f32; }
  void check_precision(Precision p) override {
    if (p == Precision::bf16) dev_.require_bf16();
  }

  std::string describe() const override {
    return cat("cuda: ", cuda::describe_libraries(), ", fp32 GEMM/conv ",
               dev_.tf32() ? "with TF32 (CPC_CUDA_TF32)" : "without TF32",
               ", ", conv_.describe(), ", GRU ",
               gru_cudnn_ ? gru_.describe() : "cells (cuBLAS GEMMs + fused cell)", ", caching allocator ",
               dev_.alloc().caching() ? "on" : "off (CPC_CUDA_CACHE=0)", ", pinned staging ",
               staging_.enabled() ? "on" : "off", "; ", cuda::describe_devices());
  }

  // tf32 = on|off (cuBLAS and cuDNN math mode), contrastive_tile = N (score-tile budget
  // in elements; tests force small tiles with it), gru =
  // cells|cudnn (the GRU implementation; default cells or CPC_CUDA_GRU). The gru option
  // must not change between a GRU forward and its backward: the reserve layouts differ
  // (a mismatch is rejected by the front's reserve-size check).
  void set_option(const std::string& key, const std::string& value) override {
    if (key == "tf32") {
      CPC_CHECK(value == "on" || value == "off", "cuda option tf32: expected on or off, found '", value, "'");
      dev_.set_tf32(value == "on");
      return;
    }
    if (key == "contrastive_tile") {
      char* end = nullptr;
      const long long v = std::strtoll(value.c_str(), &end, 10);
      CPC_CHECK(end && *end == '\0' && v >= 1, "cuda option contrastive_tile: expected an integer >= 1, found '", value,
                "'");
      contrastive_tile_ = v;
      return;
    }
    if (key == "gru") {
      CPC_CHECK(value == "cells" || value == "cudnn", "cuda option gru: expected cells or cudnn, found '", value, "'");
      gru_cudnn_ = value == "cudnn";
      return;
    }
    Backend::set_option(key, value);
  }

  size_t workspace_bytes() const override { return dev_.alloc().stats().cached + conv_.peak_workspace(); }

  void* allocate(size_t bytes) override {
    CPC_CHECK(available(), "cuda: cannot allocate ", bytes, " bytes: ", cuda::no_device_reason());
    if (bytes == 0) return nullptr;
    return dev_.alloc().allocate(bytes, dev_.stream());
  }

  void deallocate(void* p) override {
    if (p == nullptr) return;
    // Reached from Buffer's destructor: must not throw (the allocator does not).
    dev_.alloc().deallocate(p, dev_.stream_if_made());
  }

  void copy(void* dst, Device dd, const void* src, Device sd, size_t bytes) override {
    if (bytes == 0) return;
    const bool dst_host = dd.kind == DeviceKind::cpu, src_host = sd.kind == DeviceKind::cpu;
    if (dst_host && src_host) {
      std::memcpy(dst, src, bytes);
      return;
    }
    CPC_NVTX_RANGE("copy");
    CPC_CHECK(dst != nullptr && src != nullptr, "cuda: copy of ", bytes, " bytes ", sd.str(), " -> ", dd.str(),
              " with a null pointer");
    cudaStream_t s = dev_.stream();
    if (!dst_host && !src_host && dd.index != sd.index) {
      CPC_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dd.index, src, sd.index, bytes, s));
    } else if (src_host) {
      // Staged through pinned memory and queued: the caller may reuse src at once.
      staging_.copy_to_device(dst, src, bytes, s);
    } else {
      CPC_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, dst_host ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice, s));
    }
    if (dst_host) CPC_CUDA_CHECK(cudaStreamSynchronize(s));
  }

  void wait_copy(uint64_t ticket) override { copies_.wait(ticket, dev_.stream(), dev_.device()); }

  void synchronize() override {
    if (cudaStream_t s = dev_.stream_if_made()) CPC_CUDA_CHECK(cudaStreamSynchronize(s));
  }

  Shape gru_reserve_shape(int64_t B, int64_t T, int64_t Din, int64_t H) override {
    // cuDNN sizes the reserve, which needs a device; without one the default shape is as
    // good as any (nothing can run).
    if (use_cudnn_gru({B, T, Din, H}) && available())
      return Shape({gru_.reserve_floats(dev_.ctx(true), {B, T, Din, H})});
    return Backend::gru_reserve_shape(B, T, Din, H);
  }

 protected:
  uint64_t copy_async_impl(const Tensor& dst, const Tensor& src) override {
    CPC_NVTX_RANGE("copy_async");
    float* d = p(dst, "copy_async", "dst");
    return copies_.copy(d, src.raw(), src.nbytes(), dev_.stream(), dev_.device());
  }

  void gemm_impl(const GemmArgs& g) override {
    CPC_NVTX_RANGE("gemm");
    dev_.check_device_pointer(g.c, "gemm", "C");
    if (g.k > 0) dev_.check_device_pointer(g.a, "gemm", "A"), dev_.check_device_pointer(g.b, "gemm", "B");
    cuda::RowMajorGemm r;
    static_cast<GemmArgs&>(r) = g;
    cuda::gemm(dev_.ctx(false), r, "gemm on cuda");
  }

  // ---------------------------------------------------------------- elementwise
  void fill_impl(const Tensor& y, float value) override {
    CPC_NVTX_RANGE("fill");
    CPC_CUDA_CHECK(cuda::launch_fill(p(y, "fill", "y"), y.numel(), value, s()));
  }
  void axpy_impl(float alpha, const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("axpy");
    CPC_CUDA_CHECK(cuda::launch_axpy(alpha, p(x, "axpy", "x"), p(y, "axpy", "y"), y.numel(), s()));
  }
  void axpy_scaled_impl(float alpha, const Tensor& sc, const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("axpy_scaled");
    const char* op = "axpy_scaled";
    CPC_CUDA_CHECK(cuda::launch_axpy_scaled(alpha, p(sc, op, "s"), p(x, op, "x"), p(y, op, "y"), y.numel(), s()));
  }
  void add_impl(const Tensor& a, const Tensor& b, const Tensor& y) override {
    CPC_NVTX_RANGE("add");
    CPC_CUDA_CHECK(cuda::launch_add(p(a, "add", "a"), p(b, "add", "b"), p(y, "add", "y"), y.numel(), s()));
  }
  void add_bias_impl(const Tensor& y, const Tensor& bias, int64_t O, int64_t C, int64_t inner) override {
    CPC_NVTX_RANGE("add_bias");
    CPC_CUDA_CHECK(cuda::launch_add_bias(p(y, "add_bias", "y"), p(bias, "add_bias", "bias"), O, C, inner, s()));
  }
  void bias_grad_impl(const Tensor& dy, const Tensor& dbias, int64_t O, int64_t C, int64_t inner) override {
    CPC_NVTX_RANGE("bias_grad");
    CPC_CUDA_CHECK(cuda::launch_bias_grad(p(dy, "bias_grad", "dy"), p(dbias, "bias_grad", "dbias"), O, C, inner, s()));
  }
  void relu_forward_impl(const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("relu_forward");
    CPC_CUDA_CHECK(cuda::launch_relu_forward(p(x, "relu", "x"), p(y, "relu", "y"), x.numel(), s()));
  }
  void relu_backward_impl(const Tensor& y, const Tensor& dy, const Tensor& dx, bool accumulate) override {
    CPC_NVTX_RANGE("relu_backward");
    const char* op = "relu_backward";
    CPC_CUDA_CHECK(
        cuda::launch_relu_backward(p(y, op, "y"), p(dy, op, "dy"), p(dx, op, "dx"), y.numel(), accumulate, s()));
  }
  void gelu_forward_impl(const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("gelu_forward");
    CPC_CUDA_CHECK(cuda::launch_gelu_forward(p(x, "gelu", "x"), p(y, "gelu", "y"), x.numel(), s()));
  }
  void gelu_backward_impl(const Tensor& x, const Tensor& dy, const Tensor& dx) override {
    CPC_NVTX_RANGE("gelu_backward");
    const char* op = "gelu_backward";
    CPC_CUDA_CHECK(cuda::launch_gelu_backward(p(x, op, "x"), p(dy, op, "dy"), p(dx, op, "dx"), x.numel(), s()));
  }
  void dropout_forward_impl(const Tensor& x, float prob, uint64_t seed, const Tensor& y) override {
    CPC_NVTX_RANGE("dropout_forward");
    dropout(x, prob, seed, y, false, "dropout");
  }
  void dropout_backward_impl(const Tensor& dy, float prob, uint64_t seed, const Tensor& dx) override {
    CPC_NVTX_RANGE("dropout_backward");
    dropout(dy, prob, seed, dx, true, "dropout_backward");
  }
  double sum_squares_impl(const Tensor& x) override {
    CPC_NVTX_RANGE("sum_squares");
    return reduce(x, true, "sum_squares");
  }
  double sum_impl(const Tensor& x) override {
    CPC_NVTX_RANGE("sum");
    return reduce(x, false, "sum");
  }

  // ---------------------------------------------------------------- layout
  void transpose_impl(const Tensor& x, int64_t O, int64_t M, int64_t N, int64_t I, const Tensor& y,
                      float beta) override {
    CPC_NVTX_RANGE("transpose");
    const float* xp = p(x, "transpose", "x");
    float* yp = p(y, "transpose", "y");
    if (I == 1)  // the last two axes: the tiled kernel
      CPC_CUDA_CHECK(cuda::launch_transpose_last2(xp, yp, O, M, N, beta, s()));
    else
      CPC_CUDA_CHECK(cuda::launch_swap_axes(xp, yp, O, M, N, I, beta, s()));
  }
  void narrow_forward_impl(const Tensor& x, int64_t start, const Tensor& y) override {
    CPC_NVTX_RANGE("narrow_forward");
    CPC_CUDA_CHECK(cuda::launch_narrow_copy(p(x, "narrow", "x"), p(y, "narrow", "y"), x.size(0), x.size(1), x.size(2),
                                            start, y.size(1), s()));
  }
  void narrow_backward_impl(const Tensor& dy, int64_t start, const Tensor& dx) override {
    CPC_NVTX_RANGE("narrow_backward");
    CPC_CUDA_CHECK(cuda::launch_narrow_add(p(dy, "narrow_backward", "dy"), p(dx, "narrow_backward", "dx"), dx.size(0),
                                           dx.size(1), dx.size(2), start, dy.size(1), s()));
  }
  void mean_axis_forward_impl(const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("mean_axis_forward");
    CPC_CUDA_CHECK(cuda::launch_mean_axis_forward(p(x, "mean_axis", "x"), p(y, "mean_axis", "y"), x.size(0), x.size(1),
                                                  x.size(2), s()));
  }
  void mean_axis_backward_impl(const Tensor& dy, const Tensor& dx) override {
    CPC_NVTX_RANGE("mean_axis_backward");
    CPC_CUDA_CHECK(cuda::launch_mean_axis_backward(p(dy, "mean_axis_backward", "dy"), p(dx, "mean_axis_backward", "dx"),
                                                   dx.size(0), dx.size(1), dx.size(2), s()));
  }
  void max_axis_forward_impl(const Tensor& x, const Tensor& y, const Tensor& argmax) override {
    CPC_NVTX_RANGE("max_axis_forward");
    const char* op = "max_axis";
    CPC_CUDA_CHECK(cuda::launch_max_axis_forward(p(x, op, "x"), p(y, op, "y"), p(argmax, op, "argmax"), x.size(0),
                                                 x.size(1), x.size(2), s()));
  }
  void max_axis_backward_impl(const Tensor& dy, const Tensor& argmax, const Tensor& dx) override {
    CPC_NVTX_RANGE("max_axis_backward");
    const char* op = "max_axis_backward";
    CPC_CUDA_CHECK(cuda::launch_max_axis_backward(p(dy, op, "dy"), p(argmax, op, "argmax"), p(dx, op, "dx"),
                                                  dx.size(0), dx.size(1), dx.size(2), s()));
  }
  void l2_normalize_forward_impl(const Tensor& x, float eps, const Tensor& y) override {
    CPC_NVTX_RANGE("l2_normalize_forward");
    CPC_CUDA_CHECK(cuda::launch_l2_normalize_forward(p(x, "l2_normalize", "x"), p(y, "l2_normalize", "y"), x.size(0),
                                                     x.size(1), eps, s()));
  }
  void l2_normalize_backward_impl(const Tensor& x, const Tensor& dy, float eps, const Tensor& dx) override {
    CPC_NVTX_RANGE("l2_normalize_backward");
    const char* op = "l2_normalize_backward";
    CPC_CUDA_CHECK(cuda::launch_l2_normalize_backward(p(x, op, "x"), p(dy, op, "dy"), p(dx, op, "dx"), x.size(0),
                                                      x.size(1), eps, s()));
  }

  // ---------------------------------------------------------------- conv1d (cuDNN)
  void conv1d_forward_impl(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv1dDims& d,
                           const Tensor& y, Conv1dSaved*) override {  // saves nothing (no saved bytes)
    CPC_NVTX_RANGE("conv1d_forward");
    const char* op = "conv1d";
    conv_.forward(dev_.ctx(true, d.bf16()), p(x, op, "x"), p(w, op, "weight"), bias ? p(*bias, op, "bias") : nullptr, d,
                  p(y, op, "y"));
  }
  void conv1d_backward_data_impl(const Tensor& dy, const Tensor& w, const Conv1dDims& d, const Tensor& dx,
                                 bool accumulate, Conv1dSaved*) override {
    CPC_NVTX_RANGE("conv1d_backward_data");
    const char* op = "conv1d_backward_data";
    if (!accumulate) fill_impl(dx, 0.f);  // the kernels below add
    conv_.backward_data(dev_.ctx(true, d.bf16()), p(dy, op, "dy"), p(w, op, "weight"), d, p(dx, op, "dx"));
  }
  void conv1d_backward_weights_impl(const Tensor& x, const Tensor& dy, const Conv1dDims& d, const Tensor& dw,
                                    const Tensor* dbias, Conv1dSaved*) override {
    CPC_NVTX_RANGE("conv1d_backward_weights");
    const char* op = "conv1d_backward_weights";
    conv_.backward_weights(dev_.ctx(true, d.bf16()), p(x, op, "x"), p(dy, op, "dy"), d, p(dw, op, "dw"),
                           dbias ? p(*dbias, op, "dbias") : nullptr);
  }

  // ---------------------------------------------------------------- norms
  void batchnorm_forward_train_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, float momentum, float eps,
                                    const Tensor& rm, const Tensor& rv, const Tensor& mean, const Tensor& invstd,
                                    const NormDims& d, const Tensor& y, bool relu) override {
    CPC_NVTX_RANGE("batchnorm_forward_train");
    const char* op = "batch_norm";
    bn_.forward_train(dev_.ctx(true), p(x, op, "x"), p(gamma, op, "weight"), p(beta, op, "bias"), momentum, eps, d,
                      po(rm, op, "running_mean"), po(rv, op, "running_var"), p(mean, op, "save_mean"),
                      p(invstd, op, "save_invstd"), p(y, op, "y"));
    if (relu) relu_forward_impl(y, y);  // not fused here: cuDNN's BN then the ReLU in place
  }
  void batchnorm_forward_eval_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                   const Tensor& rm, const Tensor& rv, const Tensor& invstd, const NormDims& d,
                                   const Tensor& y, bool relu) override {
    CPC_NVTX_RANGE("batchnorm_forward_eval");
    const char* op = "batch_norm (eval)";
    bn_.forward_eval(dev_.ctx(true), p(x, op, "x"), p(gamma, op, "weight"), p(beta, op, "bias"), eps, d,
                     p(rm, op, "running_mean"), p(rv, op, "running_var"), p(invstd, op, "save_invstd"), p(y, op, "y"));
    if (relu) relu_forward_impl(y, y);
  }
  void batchnorm_backward_impl(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                               const Tensor& invstd, bool training, const NormDims& d, const Tensor& dx,
                               const Tensor& dgamma, const Tensor& dbeta, bool accumulate,
                               const BatchNormRelu* relu) override {
    CPC_NVTX_RANGE("batchnorm_backward");
    const char* op = "batch_norm_backward";
    if (!accumulate && dx.defined()) fill_impl(dx, 0.f);  // the kernels below add
    Tensor masked;  // a fused ReLU's gradient first, into a buffer of its own (not fused here)
    if (relu) {
      masked = Tensor::empty(dy.shape(), dy.device());
      relu_backward_impl(relu->y, dy, masked, false);
    }
    const Tensor& g = relu ? masked : dy;
    bn_.backward(dev_.ctx(training), p(x, op, "x"), p(g, op, "dy"), p(gamma, op, "weight"), p(mean, op, "mean"),
                 p(invstd, op, "invstd"), training, d, po(dx, op, "dx"), po(dgamma, op, "dgamma"),
                 po(dbeta, op, "dbeta"));
  }
  void batchnorm_stats_impl(const Tensor& x, const NormDims& d, const Tensor& mean, const Tensor& var) override {
    CPC_NVTX_RANGE("batchnorm_stats");
    const char* op = "batchnorm_stats";
    CPC_CUDA_CHECK(cuda::launch_batchnorm_stats(p(x, op, "x"), d, p(mean, op, "mean"), p(var, op, "var"), s()));
  }
  void channel_affine_impl(const Tensor& x, const Tensor& scale, const Tensor& shift, const NormDims& d,
                           const Tensor& y) override {
    CPC_NVTX_RANGE("channel_affine");
    const char* op = "channel_affine";
    CPC_CUDA_CHECK(cuda::launch_channel_affine(p(x, op, "x"), p(scale, op, "scale"), p(shift, op, "shift"), d,
                                               p(y, op, "y"), s()));
  }
  void channel_norm_forward_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                 const NormDims& d, const Tensor& mean, const Tensor& invstd,
                                 const Tensor& y) override {
    CPC_NVTX_RANGE("channel_norm_forward");
    const char* op = "channel_norm";
    CPC_CUDA_CHECK(cuda::launch_channel_norm_forward(p(x, op, "x"), p(gamma, op, "weight"), p(beta, op, "bias"), eps, d,
                                                     p(mean, op, "save_mean"), p(invstd, op, "save_invstd"),
                                                     p(y, op, "y"), s()));
  }
  void channel_norm_backward_impl(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                                  const Tensor& invstd, const NormDims& d, const Tensor& dx, const Tensor& dgamma,
                                  const Tensor& dbeta, bool accumulate) override {
    CPC_NVTX_RANGE("channel_norm_backward");
    const char* op = "channel_norm_backward";
    if (!accumulate && dx.defined()) fill_impl(dx, 0.f);  // the kernels below add
    CPC_CUDA_CHECK(cuda::launch_channel_norm_backward(p(x, op, "x"), p(dy, op, "dy"), p(gamma, op, "weight"),
                                                      p(mean, op, "mean"), p(invstd, op, "invstd"), d, po(dx, op, "dx"),
                                                      po(dgamma, op, "dgamma"), po(dbeta, op, "dbeta"), s()));
  }

  // ---------------------------------------------------------------- GRU
  // Two implementations (the gru option): cells (gru.h: cuBLAS GEMMs + the fused cell of
  // kernels/common/gru_cell.h, reserve (B, T, 4H)) and cudnn (gru_cudnn.h: cuDNN's RNN v8
  // API, a 1-D reserve holding the packed weights and cuDNN's reserve space). Empty
  // shapes (a zero B, T, Din or H) always take cells, which returns at once.
  void gru_layer_forward_impl(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                              const Tensor& b_ih, const Tensor& b_hh, const GruDims& d, const Tensor& y,
                              const Tensor& reserve) override {
    CPC_NVTX_RANGE("gru_layer_forward");
    const char* op = "gru";
    const float *xp = p(x, op, "x"), *h0p = po(h0, op, "h0");
    const float *wi = p(w_ih, op, "weight_ih"), *wh = p(w_hh, op, "weight_hh");
    const float *bi = p(b_ih, op, "bias_ih"), *bh = p(b_hh, op, "bias_hh");
    float *yp = p(y, op, "y"), *rp = p(reserve, op, "reserve");
    if (use_cudnn_gru(d))
      gru_.forward(dev_.ctx(true), xp, h0p, wi, wh, bi, bh, d, yp, rp);
    else
      cuda::gru_forward(dev_.ctx(false, d.bf16()), xp, h0p, wi, wh, bi, bh, d, yp, rp);
  }
  void gru_layer_backward_impl(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                               const Tensor& y, const Tensor& reserve, const Tensor& dy, const Tensor& dh_n,
                               const GruDims& d, const Tensor& dx, const Tensor& dh0, const Tensor& dw_ih,
                               const Tensor& dw_hh, const Tensor& db_ih, const Tensor& db_hh) override {
    CPC_NVTX_RANGE("gru_layer_backward");
    const char* op = "gru_backward";
    const float *xp = p(x, op, "x"), *h0p = po(h0, op, "h0");
    const float *wi = p(w_ih, op, "weight_ih"), *wh = p(w_hh, op, "weight_hh");
    const float* yp = p(y, op, "y");
    float* rp = p(reserve, op, "reserve");  // cuDNN's backward writes into its reserve space
    const float *dyp = po(dy, op, "dy"), *dhn = po(dh_n, op, "dh_n");
    float *dxp = po(dx, op, "dx"), *dh0p = po(dh0, op, "dh0");
    float *dwi = po(dw_ih, op, "dweight_ih"), *dwh = po(dw_hh, op, "dweight_hh");
    float *dbi = po(db_ih, op, "dbias_ih"), *dbh = po(db_hh, op, "dbias_hh");
    // cudnn takes the weights the forward packed into the reserve (w_ih and w_hh are
    // checked but not read; the Backend passes no biases to backward).
    if (use_cudnn_gru(d))
      gru_.backward(dev_.ctx(true), xp, h0p, yp, rp, dyp, dhn, d, dxp, dh0p, dwi, dwh, dbi, dbh);
    else
      cuda::gru_backward(dev_.ctx(false, d.bf16()), xp, h0p, wi, wh, yp, rp, dyp, dhn, d, dxp, dh0p, dwi, dwh, dbi, dbh);
  }

  // ---------------------------------------------------------------- contrastive
  ContrastiveStats contrastive_forward_impl(const Tensor& a, const Tensor& c, const ContrastiveSpec& spec,
                                            const Tensor& da, const Tensor& dc) override {
    CPC_NVTX_RANGE("contrastive_forward");
    const char* op = "contrastive_loss";
    const cuda::ContrastiveOutcome r =
        cuda::contrastive_forward(dev_.ctx(false), staging_, p(a, op, "anchors"), p(c, op, "candidates"), a.size(0),
                                  c.size(0), a.size(1), spec, po(da, op, "d(anchors)"), po(dc, op, "d(candidates)"),
                                  contrastive_tile_);
    return {r.loss, r.used, r.skipped, r.correct, r.column_correct};
  }

  // ---------------------------------------------------------------- optimizers
  void adam_update_impl(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const Tensor& vmax,
                        const AdamHyper& h) override {
    CPC_NVTX_RANGE("adam_update");
    const char* op = "adam_update";
    float* vmp = h.amsgrad ? p(vmax, op, "max_exp_avg_sq") : nullptr;
    CPC_CUDA_CHECK(cuda::launch_adam(p(param, op, "param"), p(grad, op, "grad"), p(m, op, "exp_avg"),
                                     p(v, op, "exp_avg_sq"), vmp, param.numel(), adam_scalars(h), s()));
  }

  // Every tensor in one launch: a table of chunks (at most kMultiTensorChunk elements of
  // one tensor each, pointers pre-offset), one thread block per chunk. The per-element
  // math is adam_update's, so the results are the same bits.
  void adam_update_multi_impl(const std::vector<AdamSlots>& slots, const AdamHyper& h) override {
    CPC_NVTX_RANGE("adam_update_multi");
    const char* op = "adam_update_multi";
    std::vector<cuda::AdamChunk>& chunks = adam_chunks_;
    chunks.clear();  // keeps its capacity: steady-state steps allocate nothing
    for (const AdamSlots& t : slots) {
      float* pp = p(t.param, op, "param");
      const float* g = p(t.grad, op, "grad");
      float *m = p(t.exp_avg, op, "exp_avg"), *v = p(t.exp_avg_sq, op, "exp_avg_sq");
      float* vm = h.amsgrad ? p(t.max_exp_avg_sq, op, "max_exp_avg_sq") : nullptr;
      for (int64_t i = 0; i < t.param.numel(); i += cuda::kMultiTensorChunk)
        chunks.push_back({pp + i, g + i, m + i, v + i, vm ? vm + i : nullptr,
                          std::min(cuda::kMultiTensorChunk, t.param.numel() - i)});
    }
    if (chunks.empty()) return;
    const auto* table = static_cast<const cuda::AdamChunk*>(
        adam_table_.upload(chunks.data(), sizeof(cuda::AdamChunk) * chunks.size(), dev_.alloc(), staging_, s()));
    CPC_CUDA_CHECK(cuda::launch_adam_multi(table, static_cast<int64_t>(chunks.size()), adam_scalars(h), s()));
  }

  double sum_squares_multi_impl(const std::vector<Tensor>& xs) override {
    CPC_NVTX_RANGE("sum_squares_multi");
    std::vector<cuda::SpanChunk>& chunks = norm_chunks_;
    chunks.clear();
    for (const Tensor& x : xs) {
      const float* xp = p(x, "sum_squares_multi", "x");
      for (int64_t i = 0; i < x.numel(); i += cuda::kMultiTensorChunk)
        chunks.push_back({xp + i, std::min(cuda::kMultiTensorChunk, x.numel() - i)});
    }
    if (chunks.empty()) return 0.0;
    const auto* table = static_cast<const cuda::SpanChunk*>(
        norm_table_.upload(chunks.data(), sizeof(cuda::SpanChunk) * chunks.size(), dev_.alloc(), staging_, s()));
    double* sc = dev_.scratch();
    CPC_CUDA_CHECK(cuda::launch_sum_squares_multi(table, static_cast<int64_t>(chunks.size()), sc, s()));
    return read_result(sc);
  }

  void sgd_update_impl(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr, float momentum,
                       float dampening, float weight_decay, bool nesterov, bool first_step) override {
    CPC_NVTX_RANGE("sgd_update");
    const char* op = "sgd_update";
    float* bp = momentum != 0.f ? p(buf, op, "momentum_buffer") : nullptr;
    const math::SgdScalars sc{lr, momentum, dampening, weight_decay, nesterov, first_step};
    CPC_CUDA_CHECK(cuda::launch_sgd(p(param, op, "param"), p(grad, op, "grad"), bp, param.numel(), sc, s()));
  }

 private:
  cuda::DeviceContext dev_;
  cuda::HostStaging staging_;
  cuda::CopyStream copies_;
  cuda::CudnnConv1d conv_;
  cuda::CudnnBatchNorm bn_;
  cuda::CudnnGru gru_;
  bool gru_cudnn_ = cuda::gru_cudnn_from_env();  // gru option: cuDNN RNN (true) or cells (gru.h)
  int64_t contrastive_tile_ = cuda::kDefaultContrastiveTile;
  // Chunk tables of the multi-tensor ops, kept on the device while the tensors stay the same.
  cuda::DeviceTable adam_table_, norm_table_;
  std::vector<cuda::AdamChunk> adam_chunks_;  // host tables, reused between calls
  std::vector<cuda::SpanChunk> norm_chunks_;

  cudaStream_t s() { return dev_.stream(); }
  float* p(const Tensor& t, const char* op, const char* role) { return dev_.ptr(t, op, role); }
  float* po(const Tensor& t, const char* op, const char* role) { return dev_.ptr_opt(t, op, role); }

  // The CPU backend's scalars (bias corrections in double on the host).
  static math::AdamScalars adam_scalars(const AdamHyper& h) {
    return math::adam_scalars(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.decoupled, h.amsgrad, h.step);
  }

  // The GRU option, except for empty shapes (cells returns at once for them).
  bool use_cudnn_gru(const GruDims& d) const { return gru_cudnn_ && d.B > 0 && d.T > 0 && d.Din > 0 && d.H > 0; }

  void dropout(const Tensor& x, float prob, uint64_t seed, const Tensor& y, bool accumulate, const char* op) {
    const float* xp = p(x, op, accumulate ? "dy" : "x");
    float* yp = p(y, op, accumulate ? "dx" : "y");
    const float scale = 1.f / (1.f - prob);  // float, as the CPU computes it
    CPC_CUDA_CHECK(cuda::launch_dropout(xp, yp, x.numel(), prob, scale, seed, accumulate, s()));
  }

  // The reduction's result, scratch[kReduceBlocks], read back (one sync).
  double read_result(double* sc) {
    double out = 0.0;
    CPC_CUDA_CHECK(cudaMemcpyAsync(&out, sc + cuda::kReduceBlocks, sizeof(double), cudaMemcpyDeviceToHost, s()));
    CPC_CUDA_CHECK(cudaStreamSynchronize(s()));
    return out;
  }

  double reduce(const Tensor& x, bool squares, const char* op) {
    const float* xp = p(x, op, "x");
    if (x.numel() == 0) return 0.0;
    double* sc = dev_.scratch();
    CPC_CUDA_CHECK(cuda::launch_reduce_sum(xp, x.numel(), squares, sc, s()));
    return read_result(sc);
  }
};

CudaBackend g_cuda;
BackendRegistrar g_register(DeviceKind::cuda, &g_cuda);

}  // namespace
}  // namespace cpc
