// The checked front of Backend: one function per op validates its arguments once, for
// every backend, then calls the backend's unchecked `<op>_impl`. Messages name the op,
// the backend, the argument and the shapes: "conv1d_forward on cuda: y (2, 4, 9)
// expected (2, 4, 8)". Nothing here touches tensor data, so a wrong call fails the
// same way with or without a device.
#include <algorithm>
#include <climits>
#include <cstdint>

#include "engine/core/backend.h"
#include "engine/core/backend_front.h"
#include "engine/core/error.h"

namespace cpc {

namespace {

constexpr const char* kOpNames[kNumOps] = {
    "gemm", "fill", "axpy", "axpy_scaled", "add", "add_bias", "bias_grad", "relu_forward", "relu_backward",
    "gelu_forward", "gelu_backward", "dropout_forward", "dropout_backward", "sum_squares", "sum", "transpose",
    "narrow_forward", "narrow_backward", "mean_axis_forward", "mean_axis_backward", "max_axis_forward",
    "max_axis_backward", "conv1d_forward", "conv1d_backward_data", "conv1d_backward_weights",
    "batchnorm_forward_train", "batchnorm_forward_eval", "batchnorm_backward", "batchnorm_stats", "channel_affine",
    "channel_norm_forward", "channel_norm_backward", "gru_layer_forward", "gru_layer_backward", "contrastive_forward",
    "l2_normalize_forward", "l2_normalize_backward", "adam_update", "adam_update_multi", "sum_squares_multi",
    "sgd_update", "copy_async"};

}  // namespace

const char* op_name(Op op) {
  const int i = static_cast<int>(op);
  return i >= 0 && i < kNumOps ? kOpNames[i] : "unknown op";
}

// ---------------------------------------------------------------- common checks
// Every tensor argument: defined, of a dtype this backend runs the op on, contiguous,
// and on this backend's device.
void Backend::require(Op op, const Tensor& t, const char* role, bool bf16_ok) const {
  CPC_CHECK(t.defined(), op_name(op), " on ", name(), ": ", role, " is undefined");
  CPC_CHECK((bf16_ok && t.dtype() == DType::bf16) || supports_op(op, t.dtype()), op_name(op), " on ", name(), ": ", role, " ", t.shape(), " is ",
            dtype_name(t.dtype()), ", which this backend does not run this op on (tensors are f32; "
            "precision bf16 rounds inside the ops)");
  CPC_CHECK(t.is_contiguous(), op_name(op), " on ", name(), ": ", role, " ", t.shape(), " must be contiguous");
  CPC_CHECK(&backend(t.device()) == this, op_name(op), " on ", name(), ": ", role, " ", t.shape(), " is on ",
            t.device().str(), "; move it to this backend's device first");
}

void Backend::require_opt(Op op, const Tensor& t, const char* role) const {
  if (t.defined()) require(op, t, role);
}

using namespace front;

// ---------------------------------------------------------------- memory
uint64_t Backend::copy_async(const Tensor& dst, const Tensor& src) {
  const Front f{*this, Op::copy_async};
  require(Op::copy_async, dst, "dst");
  if (!(src.defined() && src.device().kind == DeviceKind::cpu && src.is_contiguous()))
    f.fail_("src must be a contiguous host tensor, found ", src.defined() ? src.device().str() : "none");
  if (src.dtype() != dst.dtype() || src.numel() != dst.numel())
    f.fail_("src ", src.shape(), " ", dtype_name(src.dtype()), " vs dst ", dst.shape(), " ", dtype_name(dst.dtype()));
  f.apart(dst, "dst", src, "src");
  return copy_async_impl(dst, src);
}

uint64_t Backend::copy_async_impl(const Tensor& dst, const Tensor& src) {
  Tensor d = dst;  // shares dst's storage
  d.copy_from(src);
  return 0;
}

// ---------------------------------------------------------------- BLAS
void Backend::gemm(const GemmArgs& g) {
  const Front f{*this, Op::gemm};
  CPC_CHECK(supports_op(Op::gemm, DType::f32), "gemm on ", name(), ": not available");
  f.ints({g.m, g.n, g.k}, "m, n, k: extent");
  f.ints({g.lda, g.ldb, g.ldc}, "lda, ldb, ldc: leading dimension");
  const int64_t a_cols = g.trans_a ? g.m : g.k, b_cols = g.trans_b ? g.k : g.n;
  if (g.lda < std::max<int64_t>(1, a_cols)) f.fail_("lda ", g.lda, " < ", a_cols, ", the row width of A");
  if (g.ldb < std::max<int64_t>(1, b_cols)) f.fail_("ldb ", g.ldb, " < ", b_cols, ", the row width of B");
  if (g.ldc < std::max<int64_t>(1, g.n)) f.fail_("ldc ", g.ldc, " < n = ", g.n);
  if (g.precision != Precision::fp32) check_precision(g.precision);
  if (g.m == 0 || g.n == 0) return;
  if (g.c == nullptr) f.fail_("C is a null pointer");
  if (g.k > 0 && (g.a == nullptr || g.b == nullptr)) f.fail_("A or B is a null pointer");
  // C must not overlap A or B (the kernels read them while writing C).
  const char* c0 = reinterpret_cast<const char*>(g.c);
  const char* c1 = reinterpret_cast<const char*>(g.c + (g.m - 1) * g.ldc + g.n);
  auto span_overlaps = [&](const float* p, int64_t rows, int64_t cols, int64_t ld) {
    if (p == nullptr || rows == 0 || cols == 0) return false;
    const char* p0 = reinterpret_cast<const char*>(p);
    const char* p1 = reinterpret_cast<const char*>(p + (rows - 1) * ld + cols);
    return p0 < c1 && c0 < p1;
  };
  if (g.k > 0 && (span_overlaps(g.a, g.trans_a ? g.k : g.m, a_cols, g.lda) ||
                  span_overlaps(g.b, g.trans_b ? g.n : g.k, b_cols, g.ldb)))
    f.fail_("C overlaps A or B");
  gemm_impl(g);
}

// ---------------------------------------------------------------- elementwise
void Backend::fill(const Tensor& y, float value) {
  require(Op::fill, y, "y");
  fill_impl(y, value);
}

void Backend::axpy(float alpha, const Tensor& x, const Tensor& y) {
  const Front f{*this, Op::axpy};
  require(Op::axpy, x, "x"), require(Op::axpy, y, "y");
  f.same(x, "x", y, "y");
  f.in_place_or_apart(y, "y", x, "x");
  axpy_impl(alpha, x, y);
}

void Backend::axpy_scaled(float alpha, const Tensor& s, const Tensor& x, const Tensor& y) {
  const Front f{*this, Op::axpy_scaled};
  require(Op::axpy_scaled, s, "s"), require(Op::axpy_scaled, x, "x"), require(Op::axpy_scaled, y, "y");
  f.numel(s, 1, "the scale s");
  f.same(x, "x", y, "y");
  f.in_place_or_apart(y, "y", x, "x");
  f.apart(y, "y", s, "s");
  axpy_scaled_impl(alpha, s, x, y);
}

void Backend::add(const Tensor& a, const Tensor& b, const Tensor& y) {
  const Front f{*this, Op::add};
  require(Op::add, a, "a"), require(Op::add, b, "b"), require(Op::add, y, "y");
  f.same(a, "a", y, "y");
  f.same(b, "b", y, "y");
  f.in_place_or_apart(y, "y", a, "a");
  f.in_place_or_apart(y, "y", b, "b");
  add_impl(a, b, y);
}

namespace {
// y viewed as (O, C, inner) with C = bias.numel(); returns O.
int64_t bias_outer(const Front& f, const Tensor& y, const char* role, const Tensor& bias, int64_t inner) {
  const int64_t C = bias.numel();
  if (inner < 1) f.fail_("inner extent ", inner, " must be >= 1");
  if (C == 0 ? y.numel() != 0 : y.numel() % (C * inner) != 0)
    f.fail_(role, " ", y.shape(), " is not (O, ", C, ", ", inner, ") for a bias of ", C, " channels");
  return C == 0 ? 0 : y.numel() / (C * inner);
}
}  // namespace

void Backend::add_bias(const Tensor& y, const Tensor& bias, int64_t inner) {
  const Front f{*this, Op::add_bias};
  require(Op::add_bias, y, "y"), require(Op::add_bias, bias, "bias");
  const int64_t O = bias_outer(f, y, "y", bias, inner);
  f.apart(y, "y", bias, "bias");
  add_bias_impl(y, bias, O, bias.numel(), inner);
}

void Backend::bias_grad(const Tensor& dy, const Tensor& dbias, int64_t inner) {
  const Front f{*this, Op::bias_grad};
  require(Op::bias_grad, dy, "dy"), require(Op::bias_grad, dbias, "dbias");
  const int64_t O = bias_outer(f, dy, "dy", dbias, inner);
  f.apart(dbias, "dbias", dy, "dy");
  bias_grad_impl(dy, dbias, O, dbias.numel(), inner);
}

void Backend::relu_forward(const Tensor& x, const Tensor& y) {
  const Front f{*this, Op::relu_forward};
  require(Op::relu_forward, x, "x"), require(Op::relu_forward, y, "y");
  f.same(x, "x", y, "y");
  f.in_place_or_apart(y, "y", x, "x");
  relu_forward_impl(x, y);
}

void Backend::relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool accumulate) {
  const Front f{*this, Op::relu_backward};
  require(Op::relu_backward, y, "y"), require(Op::relu_backward, dy, "dy"), require(Op::relu_backward, dx, "dx");
  f.same(dy, "dy", y, "y");
  f.same(dx, "dx", y, "y");
  f.apart(dx, "dx", y, "y");
  f.in_place_or_apart(dx, "dx", dy, "dy");
  relu_backward_impl(y, dy, dx, accumulate);
}

void Backend::gelu_forward(const Tensor& x, const Tensor& y) {
  const Front f{*this, Op::gelu_forward};
  require(Op::gelu_forward, x, "x"), require(Op::gelu_forward, y, "y");
  f.same(x, "x", y, "y");
  f.in_place_or_apart(y, "y", x, "x");
  gelu_forward_impl(x, y);
}

void Backend::gelu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) {
  const Front f{*this, Op::gelu_backward};
  require(Op::gelu_backward, x, "x"), require(Op::gelu_backward, dy, "dy"), require(Op::gelu_backward, dx, "dx");
  f.same(dy, "dy", x, "x");
  f.same(dx, "dx", x, "x");
  f.apart(dx, "dx", x, "x");
  f.in_place_or_apart(dx, "dx", dy, "dy");
  gelu_backward_impl(x, dy, dx);
}

void Backend::dropout_forward(const Tensor& x, float p, uint64_t seed, const Tensor& y) {
  const Front f{*this, Op::dropout_forward};
  require(Op::dropout_forward, x, "x"), require(Op::dropout_forward, y, "y");
  if (!(p >= 0.f && p < 1.f)) f.fail_("p = ", p, " outside [0, 1)");
  f.same(x, "x", y, "y");
  f.in_place_or_apart(y, "y", x, "x");
  dropout_forward_impl(x, p, seed, y);
}

void Backend::dropout_backward(const Tensor& dy, float p, uint64_t seed, const Tensor& dx) {
  const Front f{*this, Op::dropout_backward};
  require(Op::dropout_backward, dy, "dy"), require(Op::dropout_backward, dx, "dx");
  if (!(p >= 0.f && p < 1.f)) f.fail_("p = ", p, " outside [0, 1)");
  f.same(dy, "dy", dx, "dx");
  f.apart(dx, "dx", dy, "dy");  // dx accumulates
  dropout_backward_impl(dy, p, seed, dx);
}

double Backend::sum_squares(const Tensor& x) {
  require(Op::sum_squares, x, "x");
  return sum_squares_impl(x);
}

double Backend::sum(const Tensor& x) {
  require(Op::sum, x, "x");
  return sum_impl(x);
}

// ---------------------------------------------------------------- layout
void Backend::transpose(const Tensor& x, int64_t O, int64_t M, int64_t N, int64_t I, const Tensor& y, float beta) {
  const Front f{*this, Op::transpose};
  require(Op::transpose, x, "x"), require(Op::transpose, y, "y");
  if (O < 0 || M < 0 || N < 0 || I < 0) f.fail_("negative extent in (", O, ", ", M, ", ", N, ", ", I, ")");
  f.numel(x, O * M * N * I, "x (O, M, N, I)");
  f.numel(y, O * M * N * I, "y (O, N, M, I)");
  f.apart(y, "y", x, "x");
  transpose_impl(x, O, M, N, I, y, beta);
}

void Backend::narrow_forward(const Tensor& x, int64_t start, const Tensor& y) {
  const Front f{*this, Op::narrow_forward};
  require(Op::narrow_forward, x, "x"), require(Op::narrow_forward, y, "y");
  check_narrow(f, x, y, start);
  f.apart(y, "y", x, "x");
  narrow_forward_impl(x, start, y);
}

void Backend::narrow_backward(const Tensor& dy, int64_t start, const Tensor& dx) {
  const Front f{*this, Op::narrow_backward};
  require(Op::narrow_backward, dy, "dy"), require(Op::narrow_backward, dx, "dx");
  check_narrow(f, dx, dy, start);
  f.apart(dx, "dx", dy, "dy");
  narrow_backward_impl(dy, start, dx);
}

void Backend::mean_axis_forward(const Tensor& x, const Tensor& y) {
  const Front f{*this, Op::mean_axis_forward};
  require(Op::mean_axis_forward, x, "x"), require(Op::mean_axis_forward, y, "y");
  f.rank(x, 3, "x", "(O, N, I)");
  f.numel(y, x.size(0) * x.size(2), "y (O, I)");
  if (x.size(1) < 1) f.fail_("x ", x.shape(), " has an empty axis");
  f.apart(y, "y", x, "x");
  mean_axis_forward_impl(x, y);
}

void Backend::mean_axis_backward(const Tensor& dy, const Tensor& dx) {
  const Front f{*this, Op::mean_axis_backward};
  require(Op::mean_axis_backward, dy, "dy"), require(Op::mean_axis_backward, dx, "dx");
  f.rank(dx, 3, "dx", "(O, N, I)");
  f.numel(dy, dx.size(0) * dx.size(2), "dy (O, I)");
  f.apart(dx, "dx", dy, "dy");
  mean_axis_backward_impl(dy, dx);
}

void Backend::max_axis_forward(const Tensor& x, const Tensor& y, const Tensor& argmax) {
  const Front f{*this, Op::max_axis_forward};
  require(Op::max_axis_forward, x, "x"), require(Op::max_axis_forward, y, "y");
  require(Op::max_axis_forward, argmax, "argmax");
  f.rank(x, 3, "x", "(O, N, I)");
  f.numel(y, x.size(0) * x.size(2), "y (O, I)");
  f.numel(argmax, x.size(0) * x.size(2), "argmax (O, I)");
  if (x.size(1) < 1) f.fail_("x ", x.shape(), " has an empty axis");
  f.apart(y, "y", x, "x");
  f.apart(argmax, "argmax", x, "x");
  f.apart(argmax, "argmax", y, "y");
  max_axis_forward_impl(x, y, argmax);
}

void Backend::max_axis_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx) {
  const Front f{*this, Op::max_axis_backward};
  require(Op::max_axis_backward, dy, "dy"), require(Op::max_axis_backward, argmax, "argmax");
  require(Op::max_axis_backward, dx, "dx");
  f.rank(dx, 3, "dx", "(O, N, I)");
  f.numel(dy, dx.size(0) * dx.size(2), "dy (O, I)");
  f.numel(argmax, dx.size(0) * dx.size(2), "argmax (O, I)");
  f.apart(dx, "dx", dy, "dy");
  f.apart(dx, "dx", argmax, "argmax");
  max_axis_backward_impl(dy, argmax, dx);
}

// ---------------------------------------------------------------- optimizers
namespace {
void check_adam_slots(const Front& f, const Tensor& p, const Tensor& g, const Tensor& m,
                      const Tensor& v, const Tensor& vmax, bool amsgrad) {
  f.same(g, "grad", p, "param"), f.same(m, "exp_avg", p, "param"), f.same(v, "exp_avg_sq", p, "param");
  if (amsgrad) {
    if (!vmax.defined()) f.fail_("amsgrad needs the max_exp_avg_sq state of ", p.shape(), ", found none");
    f.same(vmax, "max_exp_avg_sq", p, "param");
  }
  f.apart(p, "param", g, "grad"), f.apart(p, "param", m, "exp_avg"), f.apart(p, "param", v, "exp_avg_sq");
  f.apart(m, "exp_avg", v, "exp_avg_sq");
}
}  // namespace

void Backend::adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
                          const Tensor& vmax, const AdamHyper& h) {
  const Op kOp = Op::adam_update;
  const Front f{*this, kOp};
  require(kOp, param, "param"), require(kOp, grad, "grad"), require(kOp, m, "exp_avg"), require(kOp, v, "exp_avg_sq");
  if (h.amsgrad) require(kOp, vmax, "max_exp_avg_sq");
  CPC_FRONT_CHECK(h.step >= 1, "step is 1-based, found ", h.step);
  check_adam_slots(f, param, grad, m, v, vmax, h.amsgrad);
  adam_update_impl(param, grad, m, v, vmax, h);
}

void Backend::adam_update_multi(const std::vector<AdamSlots>& slots, const AdamHyper& h) {
  const Op kOp = Op::adam_update_multi;
  const Front f{*this, kOp};
  CPC_FRONT_CHECK(h.step >= 1, "step is 1-based, found ", h.step);
  for (const AdamSlots& s : slots) {
    require(kOp, s.param, "param"), require(kOp, s.grad, "grad");
    require(kOp, s.exp_avg, "exp_avg"), require(kOp, s.exp_avg_sq, "exp_avg_sq");
    if (h.amsgrad) require(kOp, s.max_exp_avg_sq, "max_exp_avg_sq");
    check_adam_slots(f, s.param, s.grad, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, h.amsgrad);
  }
  // One launch updates every tensor concurrently: two slots may not share a parameter.
  for (size_t i = 0; i < slots.size(); ++i)
    for (size_t j = i + 1; j < slots.size(); ++j)
      f.apart(slots[i].param, "a param", slots[j].param, "another param");
  adam_update_multi_impl(slots, h);
}

void Backend::adam_update_multi_impl(const std::vector<AdamSlots>& slots, const AdamHyper& h) {
  for (const AdamSlots& s : slots) adam_update_impl(s.param, s.grad, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, h);
}

double Backend::sum_squares_multi(const std::vector<Tensor>& xs) {
  for (const Tensor& x : xs) require(Op::sum_squares_multi, x, "x");
  return sum_squares_multi_impl(xs);
}

double Backend::sum_squares_multi_impl(const std::vector<Tensor>& xs) {
  double ss = 0;
  for (const Tensor& x : xs) ss += sum_squares_impl(x);
  return ss;
}

void Backend::sgd_update(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr, float momentum,
                         float dampening, float weight_decay, bool nesterov, bool first_step) {
  const Op kOp = Op::sgd_update;
  const Front f{*this, kOp};
  require(kOp, param, "param"), require(kOp, grad, "grad");
  f.same(grad, "grad", param, "param");
  f.apart(param, "param", grad, "grad");
  if (momentum != 0.f) {
    CPC_FRONT_CHECK(buf.defined(), "momentum ", momentum, " needs a momentum buffer, found none");
    require(kOp, buf, "momentum_buffer");
    f.same(buf, "momentum_buffer", param, "param");
    f.apart(param, "param", buf, "momentum_buffer");
  }
  sgd_update_impl(param, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first_step);
}

}  // namespace cpc
