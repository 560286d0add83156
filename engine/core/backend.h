#pragma once
// The op interface every device implements. The engine dispatches on a tensor's
// device; kernels/<backend>/ registers an implementation at static-initialisation time.
//
// A checked front: each op is one non-virtual function here that validates its
// arguments once, for every backend (defined, dtype, contiguity, device, shapes, overlap,
// int ranges; backend_checks.cpp), then calls the backend's unchecked `<op>_impl`. A
// backend says what it can run with supports_op(op, dtype); the front refuses the rest
// with one message naming op, dtype and backend.
//
// Conventions: all tensors are contiguous f32 unless stated. Backward ops ADD into
// their gradient outputs (dx, dw, db): gradients accumulate, callers zero them once.
// Where a backward op takes `accumulate`, false makes it overwrite dx instead: dx may
// hold anything before, and every element is written (the first gradient to reach a
// value needs no zeroing pass and no read of zeros; Tape::grad_to_write).
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/op_args.h"
#include "engine/core/op_dims.h"
#include "engine/core/tensor.h"

namespace cpc {

// Every op of the front, for supports_op and the backend-ops test table.
enum class Op : uint8_t {
  gemm, fill, axpy, axpy_scaled, add, add_bias, bias_grad, relu_forward, relu_backward, gelu_forward, gelu_backward,
  dropout_forward, dropout_backward, sum_squares, sum, transpose, narrow_forward, narrow_backward, mean_axis_forward,
  mean_axis_backward, max_axis_forward, max_axis_backward, conv1d_forward, conv1d_backward_data,
  conv1d_backward_weights, batchnorm_forward_train, batchnorm_forward_eval, batchnorm_backward, batchnorm_stats,
  channel_affine, channel_norm_forward, channel_norm_backward, gru_layer_forward, gru_layer_backward,
  contrastive_forward, l2_normalize_forward, l2_normalize_backward, adam_update, adam_update_multi,
  sum_squares_multi, sgd_update, copy_async, 
  kCount
};
constexpr int kNumOps = static_cast<int>(Op::kCount);
const char* op_name(Op op);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual bool available() const { return true; }
  // Whether this backend runs `op` on tensors of `dtype` (the front refuses the rest).
  virtual bool supports_op(Op op, DType dtype) const = 0;
  // Fails, saying why, when this backend cannot run a step in `p` (bf16 needs AVX-512 on
  // the CPU, compute capability 8.0 on CUDA). The front asks it for every bf16 op.
  virtual void check_precision(Precision p) {}

  // Memory. copy() moves bytes where at least one side is this backend's device.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p) = 0;
  virtual void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) = 0;
  // Host -> device copy of a whole tensor that may overlap work queued after it (the
  // loader's next batch while a step runs). It starts after all work queued before the
  // call (across threads: work whose queueing happened-before it); dst must not be used
  // by work queued before wait_copy(ticket), only after. May be called from another
  // thread than the one queueing work. Default: a plain copy, ticket 0.
  uint64_t copy_async(const Tensor& dst, const Tensor& src);
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
  // A library choice by name (cpu: gemm = onednn|openblas, conv = onednn|im2col). The
  // arithmetic is not an option: it is the step's (Precision, passed with each op).
  virtual void set_option(const std::string& key, const std::string& value);

  // ---- The checked front (backend_checks.cpp). ----
  // BLAS. Pointers in GemmArgs must be this backend's memory.
  void gemm(const GemmArgs& g);

  // Elementwise.
  void fill(const Tensor& y, float value);
  void axpy(float alpha, const Tensor& x, const Tensor& y);  // y += alpha * x
  // y += alpha * s[0] * x with s a one-element tensor on this device: scales by a value
  // the device computed (an upstream gradient) without reading it back to the host.
  void axpy_scaled(float alpha, const Tensor& s, const Tensor& x, const Tensor& y);
  void add(const Tensor& a, const Tensor& b, const Tensor& y);           // y = a + b
  void add_bias(const Tensor& y, const Tensor& bias, int64_t inner);     // y[o, c, i] += bias[c]
  void bias_grad(const Tensor& dy, const Tensor& dbias, int64_t inner);  // dbias[c] += sum dy[o, c, i]
  void relu_forward(const Tensor& x, const Tensor& y);
  void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx,  // dx += (y > 0) * dy
                     bool accumulate = true);
  void gelu_forward(const Tensor& x, const Tensor& y);
  void gelu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx);
  // Inverted dropout, mask from counter_rng(seed, index); 0 <= p < 1.
  void dropout_forward(const Tensor& x, float p, uint64_t seed, const Tensor& y);
  void dropout_backward(const Tensor& dy, float p, uint64_t seed, const Tensor& dx);
  double sum_squares(const Tensor& x);
  double sum(const Tensor& x);

  // Layout. x viewed as (O, M, N, I) -> y (O, N, M, I); y = permuted x + beta * y: swaps
  // two adjacent axes (the last two with I = 1; the first two with O = 1).
  void transpose(const Tensor& x, int64_t O, int64_t M, int64_t N, int64_t I, const Tensor& y, float beta);
  // x viewed as (O, N, I): y (O, len, I) = x[:, start:start+len, :]; backward adds back.
  void narrow_forward(const Tensor& x, int64_t start, const Tensor& y);
  void narrow_backward(const Tensor& dy, int64_t start, const Tensor& dx);
  // Reductions over the middle axis of (O, N, I) -> (O, I); argmax holds indices as floats.
  void mean_axis_forward(const Tensor& x, const Tensor& y);
  void mean_axis_backward(const Tensor& dy, const Tensor& dx);
  void max_axis_forward(const Tensor& x, const Tensor& y, const Tensor& argmax);
  void max_axis_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx);

  // Conv1d: x (B, Cin, L), w (Cout, Cin, K), y (B, Cout, Lout); with g.channels_last
  // x (B, L, Cin) and y (B, Lout, Cout), where conv1d_channels_last() says it runs them.
  // ops::conv1d transposes around the (B, C, L) kernels where it does not.
  virtual bool conv1d_channels_last() const { return false; }
  // Whether encoders run faster channels-last here (models ask once per forward; the
  // answer must not change between runs of the same settings: it decides the
  // arithmetic's order).
  virtual bool conv1d_prefers_channels_last() const { return false; }
  // Whether conv1d_forward and conv1d_backward_weights take x as a bf16 tensor for these
  // dims under precision bf16 (d.B and d.L may be 0): the values the convolution would
  // round its input to, stored once by the op that produced them (autocast's bf16
  // activations). The rest of the op's tensors stay f32.
  virtual bool conv1d_rounded_input(const Conv1dDims&) const { return false; }
  // Whether the BatchNorm forwards write a bf16 y (its values rounded) for these dims.
  virtual bool batchnorm_rounded_output(const NormDims&) const { return false; }
  // Bytes a forward may leave for its backward (Conv1dSaved; 0: none). With a saved
  // space of that size, the forward fills it and both backward calls of the same
  // convolution (same tensors' values, backward_data first) read it; without, each call
  // stands alone.
  int64_t conv1d_saved_bytes(const Tensor& x, const Tensor& w, const Conv1dGeometry& g, const Tensor& y);
  void conv1d_forward(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv1dGeometry& g, const Tensor& y,
                      Conv1dSaved* saved = nullptr);
  void conv1d_backward_data(const Tensor& dy, const Tensor& w, const Conv1dGeometry& g, const Tensor& dx,
                            bool accumulate = true, Conv1dSaved* saved = nullptr);
  void conv1d_backward_weights(const Tensor& x, const Tensor& dy, const Conv1dGeometry& g, const Tensor& dw,
                               const Tensor* dbias, Conv1dSaved* saved = nullptr);

  // BatchNorm1d over (B, C, L): statistics per channel over B and L.
  // Training: saves mean and 1/sqrt(var + eps), updates running stats (unbiased var);
  // running_mean/var may both be undefined (no running statistics). relu: y is the
  // ReLU of the normalised values (the two layers in one pass over memory).
  void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float momentum, float eps,
                               const Tensor& running_mean, const Tensor& running_var, const Tensor& save_mean,
                               const Tensor& save_invstd, const Tensor& y, bool relu = false);
  // Eval: uses running stats; save_invstd receives 1/sqrt(running_var + eps) for backward.
  void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                              const Tensor& running_mean, const Tensor& running_var, const Tensor& save_invstd,
                              const Tensor& y, bool relu = false);
  // training: statistics were the batch's (their gradient flows); else constants.
  // dx, dgamma, dbeta may each be undefined; accumulate is dx's (dgamma, dbeta add).
  // relu (the forward ran with relu): dy is the ReLU's upstream gradient.
  void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                          const Tensor& invstd, bool training, const Tensor& dx, const Tensor& dgamma,
                          const Tensor& dbeta, bool accumulate = true, const BatchNormRelu* relu = nullptr);

  // Synchronised BatchNorm's pieces: per-channel mean and biased variance of x
  // (B, C, L), and y[b, c, l] += scale[c] * x[b, c, l] + shift[c] (y may be x itself).
  void batchnorm_stats(const Tensor& x, const Tensor& mean, const Tensor& var);
  void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, const Tensor& y);

  // Channel LayerNorm over (B, C, L): statistics over C at each (b, l); save_* (B, L).
  void channel_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                            const Tensor& save_mean, const Tensor& save_invstd, const Tensor& y);
  void channel_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                             const Tensor& invstd, const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta,
                             bool accumulate = true);

  // One GRU layer, batch-first. x (B, T, Din), h0 (B, H) or undefined (zeros),
  // w_ih (3H, Din), w_hh (3H, H), b_ih/b_hh (3H). y (B, T, H).
  // reserve keeps what backward needs; its shape is the backend's (gru_reserve_shape):
  // by default (B, T, 4H) = r, z, n and W_hn h + b_hn per step.
  virtual Shape gru_reserve_shape(int64_t B, int64_t T, int64_t Din, int64_t H);
  void gru_layer_forward(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                         const Tensor& b_ih, const Tensor& b_hh, const Tensor& y, const Tensor& reserve,
                         Precision precision = Precision::fp32);
  // dy (B, T, H) is the gradient of y; dh_n (B, H) or undefined is the extra gradient
  // of the last state. Accumulates dx, dh0 (if defined) and the weight gradients.
  void gru_layer_backward(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh, const Tensor& y,
                          const Tensor& reserve, const Tensor& dy, const Tensor& dh_n, const Tensor& dx,
                          const Tensor& dh0, const Tensor& dw_ih, const Tensor& dw_hh, const Tensor& db_ih,
                          const Tensor& db_hh, Precision precision = Precision::fp32);

  // Fused contrastive loss: anchors a (R, D) vs candidates c (M, D). When defined,
  // da (R, D) and dc (M, D) are overwritten with d(loss)/da and d(loss)/dc (the same
  // tensor when a and c are one tensor: then it receives their sum).
  ContrastiveStats contrastive_forward(const Tensor& a, const Tensor& c, const ContrastiveSpec& spec, const Tensor& da,
                                       const Tensor& dc);
  // Rows of x (N, D) scaled to unit L2 norm: y = x / max(||x||, eps) (F.normalize).
  void l2_normalize_forward(const Tensor& x, float eps, const Tensor& y);
  void l2_normalize_backward(const Tensor& x, const Tensor& dy, float eps, const Tensor& dx);

  // Optimizer updates over one parameter tensor (state tensors have its shape).
  void adam_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                   const Tensor& max_exp_avg_sq, const AdamHyper& h);
  // Every parameter of an optimizer in one call, so a device can update them all in
  // one launch (multi-tensor apply); the parameters must be distinct tensors.
  void adam_update_multi(const std::vector<AdamSlots>& slots, const AdamHyper& h);
  // Sum of squares over several tensors with one host read.
  double sum_squares_multi(const std::vector<Tensor>& xs);
  void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, float lr, float momentum,
                  float dampening, float weight_decay, bool nesterov, bool first_step);

 protected:
  // ---- What a backend implements: called only with checked arguments. ----
  virtual uint64_t copy_async_impl(const Tensor& dst, const Tensor& src);
  virtual void gemm_impl(const GemmArgs& g) = 0;
  virtual void fill_impl(const Tensor& y, float value) = 0;
  virtual void axpy_impl(float alpha, const Tensor& x, const Tensor& y) = 0;
  virtual void axpy_scaled_impl(float alpha, const Tensor& s, const Tensor& x, const Tensor& y) = 0;
  virtual void add_impl(const Tensor& a, const Tensor& b, const Tensor& y) = 0;
  // y and dy viewed as (O, C, inner).
  virtual void add_bias_impl(const Tensor& y, const Tensor& bias, int64_t O, int64_t C, int64_t inner) = 0;
  virtual void bias_grad_impl(const Tensor& dy, const Tensor& dbias, int64_t O, int64_t C, int64_t inner) = 0;
  virtual void relu_forward_impl(const Tensor& x, const Tensor& y) = 0;
  virtual void relu_backward_impl(const Tensor& y, const Tensor& dy, const Tensor& dx, bool accumulate) = 0;
  virtual void gelu_forward_impl(const Tensor& x, const Tensor& y) = 0;
  virtual void gelu_backward_impl(const Tensor& x, const Tensor& dy, const Tensor& dx) = 0;
  virtual void dropout_forward_impl(const Tensor& x, float p, uint64_t seed, const Tensor& y) = 0;
  virtual void dropout_backward_impl(const Tensor& dy, float p, uint64_t seed, const Tensor& dx) = 0;
  virtual double sum_squares_impl(const Tensor& x) = 0;
  virtual double sum_impl(const Tensor& x) = 0;
  virtual void transpose_impl(const Tensor& x, int64_t O, int64_t M, int64_t N, int64_t I, const Tensor& y,
                              float beta) = 0;
  // x (O, N, I), y (O, len, I) as 3-D tensors.
  virtual void narrow_forward_impl(const Tensor& x, int64_t start, const Tensor& y) = 0;
  virtual void narrow_backward_impl(const Tensor& dy, int64_t start, const Tensor& dx) = 0;
  // x / dx (O, N, I) as 3-D tensors.
  virtual void mean_axis_forward_impl(const Tensor& x, const Tensor& y) = 0;
  virtual void mean_axis_backward_impl(const Tensor& dy, const Tensor& dx) = 0;
  virtual void max_axis_forward_impl(const Tensor& x, const Tensor& y, const Tensor& argmax) = 0;
  virtual void max_axis_backward_impl(const Tensor& dy, const Tensor& argmax, const Tensor& dx) = 0;
  virtual int64_t conv1d_saved_bytes_impl(const Conv1dDims&) const { return 0; }
  // saved: null, or a space of conv1d_saved_bytes_impl(d) bytes.
  virtual void conv1d_forward_impl(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv1dDims& d,
                                   const Tensor& y, Conv1dSaved* saved) = 0;
  virtual void conv1d_backward_data_impl(const Tensor& dy, const Tensor& w, const Conv1dDims& d, const Tensor& dx,
                                         bool accumulate, Conv1dSaved* saved) = 0;
  // dbias null or defined.
  virtual void conv1d_backward_weights_impl(const Tensor& x, const Tensor& dy, const Conv1dDims& d, const Tensor& dw,
                                            const Tensor* dbias, Conv1dSaved* saved) = 0;
  virtual void batchnorm_forward_train_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, float momentum,
                                            float eps, const Tensor& running_mean, const Tensor& running_var,
                                            const Tensor& save_mean, const Tensor& save_invstd, const NormDims& d,
                                            const Tensor& y, bool relu) = 0;
  virtual void batchnorm_forward_eval_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                           const Tensor& running_mean, const Tensor& running_var,
                                           const Tensor& save_invstd, const NormDims& d, const Tensor& y,
                                           bool relu) = 0;
  // relu null or checked.
  virtual void batchnorm_backward_impl(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                                       const Tensor& invstd, bool training, const NormDims& d, const Tensor& dx,
                                       const Tensor& dgamma, const Tensor& dbeta, bool accumulate,
                                       const BatchNormRelu* relu) = 0;
  virtual void batchnorm_stats_impl(const Tensor& x, const NormDims& d, const Tensor& mean, const Tensor& var) = 0;
  virtual void channel_affine_impl(const Tensor& x, const Tensor& scale, const Tensor& shift, const NormDims& d,
                                   const Tensor& y) = 0;
  virtual void channel_norm_forward_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                         const NormDims& d, const Tensor& save_mean, const Tensor& save_invstd,
                                         const Tensor& y) = 0;
  virtual void channel_norm_backward_impl(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                                          const Tensor& invstd, const NormDims& d, const Tensor& dx,
                                          const Tensor& dgamma, const Tensor& dbeta, bool accumulate) = 0;
  virtual void gru_layer_forward_impl(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                                      const Tensor& b_ih, const Tensor& b_hh, const GruDims& d, const Tensor& y,
                                      const Tensor& reserve) = 0;
  virtual void gru_layer_backward_impl(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                                       const Tensor& y, const Tensor& reserve, const Tensor& dy, const Tensor& dh_n,
                                       const GruDims& d, const Tensor& dx, const Tensor& dh0, const Tensor& dw_ih,
                                       const Tensor& dw_hh, const Tensor& db_ih, const Tensor& db_hh) = 0;
  virtual ContrastiveStats contrastive_forward_impl(const Tensor& a, const Tensor& c, const ContrastiveSpec& spec,
                                                    const Tensor& da, const Tensor& dc) = 0;
  virtual void l2_normalize_forward_impl(const Tensor& x, float eps, const Tensor& y) = 0;
  virtual void l2_normalize_backward_impl(const Tensor& x, const Tensor& dy, float eps, const Tensor& dx) = 0;
  virtual void adam_update_impl(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                                const Tensor& exp_avg_sq, const Tensor& max_exp_avg_sq, const AdamHyper& h) = 0;
  // Default: adam_update_impl per tensor.
  virtual void adam_update_multi_impl(const std::vector<AdamSlots>& slots, const AdamHyper& h);
  // Default: sum_squares_impl per tensor.
  virtual double sum_squares_multi_impl(const std::vector<Tensor>& xs);
  virtual void sgd_update_impl(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, float lr,
                               float momentum, float dampening, float weight_decay, bool nesterov,
                               bool first_step) = 0;

 private:
  // The front's common checks (backend_checks.cpp).
  // bf16_ok: a bf16 tensor passes the dtype check too (the caller has checked that this
  // backend takes it rounded: conv1d_rounded_input, batchnorm_rounded_output).
  void require(Op op, const Tensor& t, const char* role, bool bf16_ok = false) const;
  void require_opt(Op op, const Tensor& t, const char* role) const;
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
