#pragma once
// The op interface every device implements. The engine dispatches on a tensor's
// device; kernels/<backend>/ registers an implementation at static-initialisation
// time. Every op has a default that fails with "`op` is not available on <device>
// yet", so a backend can grow op by op without the layers changing.
//
// Conventions: all tensors are contiguous f32 unless stated. Backward ops ADD into
// their gradient outputs (dx, dw, db): gradients accumulate, callers zero them once.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace cpc {

struct Conv1dGeometry {
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t dilation = 1;
  // Output length for input length L and kernel size K (PyTorch's formula).
  int64_t out_length(int64_t L, int64_t K) const { return (L + 2 * padding - dilation * (K - 1) - 1) / stride + 1; }
};

struct GemmArgs {  // C = alpha * op(A) * op(B) + beta * C, row-major, device pointers
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.f, beta = 0.f;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;
};

struct AdamHyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  bool decoupled = false;  // AdamW: decay the weights, not the gradient
  bool amsgrad = false;
  int64_t step = 1;  // 1-based, for bias correction
};

// One parameter's Adam tensors; max_exp_avg_sq is undefined without amsgrad.
struct AdamSlots {
  Tensor param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq;
};

// A fused contrastive cross-entropy problem (see ops::contrastive_loss). Index
// arrays are host memory owned by the caller for the duration of the call.
struct ContrastiveSpec {
  int64_t blocks = 1;  // rows and columns in equal blocks; candidates only within a row's block
  float scale = 1.f;   // score = scale * a.c, or -scale * ||a - c|| with neg_l2
  bool neg_l2 = false;
  float l2_eps = 1e-12f;
  bool logsumexp_positives = false;    // multi-positive form: false = SupCon mean, true = seed 003's logsumexp
  const int32_t* row_label = nullptr;  // positive iff row_label[i] == col_label[j]
  const int32_t* col_label = nullptr;
  const int32_t* row_group = nullptr;  // excluded iff row_group[i] == col_group[j] && j != row_keep[i]
  const int32_t* col_group = nullptr;
  const int32_t* row_keep = nullptr;
  const int32_t* excl_offsets = nullptr;  // excluded pairs, CSR over rows, ascending columns
  const int32_t* excl_cols = nullptr;
  bool column_argmax = false;
};

struct ContrastiveStats {
  double loss = 0;
  int64_t used = 0, skipped = 0, correct = 0, column_correct = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual bool available() const { return true; }

  // Memory. copy() moves bytes where at least one side is this backend's device.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p) = 0;
  virtual void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) = 0;
  // Host -> device copy of a whole tensor that may overlap work queued after it (the
  // loader's next batch while a step runs). It starts after all work queued before the
  // call (across threads: work whose queueing happened-before it); dst must not be used
  // by work queued before wait_copy(ticket), only after. May be called from another
  // thread than the one queueing work. Default: a plain copy, ticket 0.
  virtual uint64_t copy_async(const Tensor& dst, const Tensor& src);
  // The work queued after this call waits for copy `ticket` (0: nothing to wait for).
  virtual void wait_copy(uint64_t ticket) {}
  virtual void synchronize() {}
  // Worker threads of this backend's host-side math (BLAS and OpenMP on the CPU).
  virtual void set_threads(int n) {}
  virtual int threads() const { return 1; }
  // Scratch memory the backend holds for its kernels (benchmarks report it).
  virtual size_t workspace_bytes() const { return 0; }
  // One line naming the libraries and kernels this backend runs (for bench and info).
  virtual std::string describe() const { return name(); }
  // A library choice by name (cpu: gemm = onednn|openblas, conv = onednn|im2col).
  virtual void set_option(const std::string& key, const std::string& value);

  // BLAS.
  virtual void gemm(const GemmArgs& g);

  // Elementwise.
  virtual void fill(const Tensor& y, float value);
  virtual void axpy(float alpha, const Tensor& x, const Tensor& y);              // y += alpha * x
  // y += alpha * s[0] * x with s a one-element tensor on this device: scales by a value
  // the device computed (an upstream gradient) without reading it back to the host.
  virtual void axpy_scaled(float alpha, const Tensor& s, const Tensor& x, const Tensor& y);
  virtual void add(const Tensor& a, const Tensor& b, const Tensor& y);           // y = a + b
  virtual void add_bias(const Tensor& y, const Tensor& bias, int64_t inner);     // y[o, c, i] += bias[c]
  virtual void bias_grad(const Tensor& dy, const Tensor& dbias, int64_t inner);  // dbias[c] += sum dy[o, c, i]
  virtual void relu_forward(const Tensor& x, const Tensor& y);
  virtual void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx);
  virtual void gelu_forward(const Tensor& x, const Tensor& y);
  virtual void gelu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx);
  virtual void dropout_forward(const Tensor& x, float p, uint64_t seed, const Tensor& y);
  virtual void dropout_backward(const Tensor& dy, float p, uint64_t seed, const Tensor& dx);
  virtual double sum_squares(const Tensor& x);
  virtual double sum(const Tensor& x);

  // Layout. x viewed as (O, M, N) -> y (O, N, M); y = transpose(x) + beta * y.
  virtual void transpose_last2(const Tensor& x, const Tensor& y, float beta);
  // x viewed as (O, N, I): y (O, len, I) = x[:, start:start+len, :]; backward adds back.
  virtual void narrow_forward(const Tensor& x, int64_t start, const Tensor& y);
  virtual void narrow_backward(const Tensor& dy, int64_t start, const Tensor& dx);
  // Reductions over the middle axis of (O, N, I) -> (O, I).
  virtual void mean_axis_forward(const Tensor& x, const Tensor& y);
  virtual void mean_axis_backward(const Tensor& dy, const Tensor& dx);
  virtual void max_axis_forward(const Tensor& x, const Tensor& y, const Tensor& argmax);
  virtual void max_axis_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx);

  // Conv1d: x (B, Cin, L), w (Cout, Cin, K), y (B, Cout, Lout).
  virtual void conv1d_forward(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv1dGeometry& g,
                              const Tensor& y);
  virtual void conv1d_backward_data(const Tensor& dy, const Tensor& w, const Conv1dGeometry& g, const Tensor& dx);
  virtual void conv1d_backward_weights(const Tensor& x, const Tensor& dy, const Conv1dGeometry& g, const Tensor& dw,
                                       const Tensor* dbias);

  // BatchNorm1d over (B, C, L): statistics per channel over B and L.
  // Training: saves mean and 1/sqrt(var + eps), updates running stats (unbiased var).
  virtual void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float momentum,
                                       float eps, const Tensor& running_mean, const Tensor& running_var,
                                       const Tensor& save_mean, const Tensor& save_invstd, const Tensor& y);
  // Eval: uses running stats; save_invstd receives 1/sqrt(running_var + eps) for backward.
  virtual void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                      const Tensor& running_mean, const Tensor& running_var, const Tensor& save_invstd,
                                      const Tensor& y);
  // training: statistics were the batch's (their gradient flows); else constants.
  virtual void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                                  const Tensor& invstd, bool training, const Tensor& dx, const Tensor& dgamma,
                                  const Tensor& dbeta);

  // Synchronised BatchNorm's pieces: per-channel mean and biased variance of x
  // (B, C, L), and y[b, c, l] += scale[c] * x[b, c, l] + shift[c].
  virtual void batchnorm_stats(const Tensor& x, const Tensor& mean, const Tensor& var);
  virtual void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, const Tensor& y);

  // Channel LayerNorm over (B, C, L): statistics over C at each (b, l).
  virtual void channel_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                    const Tensor& save_mean, const Tensor& save_invstd, const Tensor& y);
  virtual void channel_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                                     const Tensor& invstd, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta);

  // One GRU layer, batch-first. x (B, T, Din), h0 (B, H) or undefined (zeros),
  // w_ih (3H, Din), w_hh (3H, H), b_ih/b_hh (3H). y (B, T, H).
  // reserve keeps what backward needs; its shape is the backend's (gru_reserve_shape):
  // by default (B, T, 4H) = r, z, n and W_hn h + b_hn per step.
  virtual Shape gru_reserve_shape(int64_t B, int64_t T, int64_t Din, int64_t H);
  virtual void gru_layer_forward(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                                 const Tensor& b_ih, const Tensor& b_hh, const Tensor& y, const Tensor& reserve);
  // dy (B, T, H) is the gradient of y; dh_n (B, H) or undefined is the extra gradient
  // of the last state. Accumulates dx, dh0 (if defined) and the weight gradients.
  virtual void gru_layer_backward(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                                  const Tensor& y, const Tensor& reserve, const Tensor& dy, const Tensor& dh_n,
                                  const Tensor& dx, const Tensor& dh0, const Tensor& dw_ih, const Tensor& dw_hh,
                                  const Tensor& db_ih, const Tensor& db_hh);

  // Fused contrastive loss: anchors a (R, D) vs candidates c (M, D). When defined,
  // da (R, D) and dc (M, D) are overwritten with d(loss)/da and d(loss)/dc (the same
  // tensor when a and c are one tensor: then it receives their sum).
  virtual ContrastiveStats contrastive_forward(const Tensor& a, const Tensor& c, const ContrastiveSpec& spec,
                                               const Tensor& da, const Tensor& dc);
  // Rows of x (N, D) scaled to unit L2 norm: y = x / max(||x||, eps) (F.normalize).
  virtual void l2_normalize_forward(const Tensor& x, float eps, const Tensor& y);
  virtual void l2_normalize_backward(const Tensor& x, const Tensor& dy, float eps, const Tensor& dx);
  // x viewed as (O, M, N, I) -> y (O, N, M, I); y = permuted x + beta * y.
  virtual void swap_axes(const Tensor& x, int64_t O, int64_t M, int64_t N, int64_t I, const Tensor& y, float beta);

  // Optimizer updates over one parameter tensor (state tensors have its shape).
  virtual void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                           const Tensor& max_exp_avg_sq, const AdamHyper& h);
  // Every parameter of an optimizer in one call, so a device can update them all in
  // one launch (multi-tensor apply); the parameters must be distinct tensors (one launch
  // updates them concurrently). Default: adam_update per tensor.
  virtual void adam_update_multi(const std::vector<AdamSlots>& slots, const AdamHyper& h);
  // Sum of squares over several tensors with one host read. Default: sum_squares each.
  virtual double sum_squares_multi(const std::vector<Tensor>& xs);
  virtual void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, float lr, float momentum,
                          float dampening, float weight_decay, bool nesterov, bool first_step);

 protected:
  [[noreturn]] void unavailable(const char* op) const;
};

// Registry: one backend per device kind, registered by kernels/<kind>/.
void register_backend(DeviceKind kind, Backend* backend);
Backend& backend(Device device);
bool has_backend(DeviceKind kind);

// Registers a backend while static objects are constructed.
struct BackendRegistrar {
  BackendRegistrar(DeviceKind kind, Backend* backend) { register_backend(kind, backend); }
};

}  // namespace cpc
