// The checked front of Backend: one function per op validates its arguments once, for
// every backend, then calls the backend's unchecked `<op>_impl`. Messages name the op,
// the backend, the argument and the shapes: "conv1d_forward on cuda: y (2, 4, 9)
// expected (2, 4, 8)". Nothing here touches tensor data, so a wrong call fails the
// same way with or without a device.
#include <algorithm>
#include <climits>
#include <cstdint>

#include "engine/core/backend.h"
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

// [begin, end) of a tensor's bytes.
const char* lo(const Tensor& t) { return static_cast<const char*>(t.raw()); }
const char* hi(const Tensor& t) { return lo(t) + t.nbytes(); }

bool overlaps(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.nbytes() > 0 && b.nbytes() > 0 && lo(a) < hi(b) && lo(b) < hi(a);
}

}  // namespace

const char* op_name(Op op) {
  const int i = static_cast<int>(op);
  return i >= 0 && i < kNumOps ? kOpNames[i] : "unknown op";
}

// ---------------------------------------------------------------- common checks
// Every tensor argument: defined, of a dtype this backend runs the op on, contiguous,
// and on this backend's device.
void Backend::require(Op op, const Tensor& t, const char* role) const {
  CPC_CHECK(t.defined(), op_name(op), " on ", name(), ": ", role, " is undefined");
  CPC_CHECK(supports_op(op, t.dtype()), op_name(op), " on ", name(), ": ", role, " ", t.shape(), " is ",
            dtype_name(t.dtype()), ", which this backend does not run this op on (tensors are f32; "
            "precision bf16 rounds inside the ops)");
  CPC_CHECK(t.is_contiguous(), op_name(op), " on ", name(), ": ", role, " ", t.shape(), " must be contiguous");
  CPC_CHECK(&backend(t.device()) == this, op_name(op), " on ", name(), ": ", role, " ", t.shape(), " is on ",
            t.device().str(), "; move it to this backend's device first");
}

void Backend::require_opt(Op op, const Tensor& t, const char* role) const {
  if (t.defined()) require(op, t, role);
}

#define CPC_FRONT_FAIL(...) ::cpc::fail(op_name(kOp), " on ", name(), ": ", __VA_ARGS__)
#define CPC_FRONT_CHECK(cond, ...) \
  do {                             \
    if (!(cond)) CPC_FRONT_FAIL(__VA_ARGS__); \
  } while (0)

namespace {
// Shape, element-count and overlap checks with the op's prefix.
struct Front {
  const Backend& b;
  Op op;
  template <class... P>
  [[noreturn]] void fail_(const P&... parts) const {
    fail(op_name(op), " on ", b.name(), ": ", parts...);
  }
  void shape(const Tensor& t, const Shape& s, const char* role) const {
    if (t.shape() != s) fail_(role, " ", t.shape(), " expected ", s);
  }
  void numel(const Tensor& t, int64_t n, const char* role) const {
    if (t.numel() != n) fail_(role, " ", t.shape(), " expected ", n, " elements");
  }
  void rank(const Tensor& t, int r, const char* role, const char* layout) const {
    if (t.rank() != r) fail_(role, " ", t.shape(), " expected a ", r, "-D tensor ", layout);
  }
  void same(const Tensor& a, const char* ra, const Tensor& x, const char* rx) const {
    if (a.shape() != x.shape()) fail_(ra, " ", a.shape(), " and ", rx, " ", x.shape(), " differ");
  }
  // An output may not share memory with an input (exact aliasing too).
  void apart(const Tensor& out, const char* ro, const Tensor& in, const char* ri) const {
    if (overlaps(out, in)) fail_(ro, " ", out.shape(), " overlaps ", ri, " ", in.shape());
  }
  // Elementwise ops may write in place (the same elements) but not partially overlapping.
  void in_place_or_apart(const Tensor& out, const char* ro, const Tensor& in, const char* ri) const {
    if (overlaps(out, in) && !(out.raw() == in.raw() && out.nbytes() == in.nbytes()))
      fail_(ro, " ", out.shape(), " partially overlaps ", ri, " ", in.shape());
  }
  void ints(std::initializer_list<int64_t> vs, const char* what) const {
    for (int64_t v : vs)
      if (!fits_int(v)) fail_(what, " ", v, " outside [0, ", INT_MAX, "]");
  }
};

NormDims norm_dims(const Front& f, const Tensor& x) {
  f.rank(x, 3, "x", "(B, C, L)");
  return {x.size(0), x.size(1), x.size(2)};
}

// x (B, Cin, L), w (Cout, Cin, K), y (B, Cout, Lout) with Lout from the geometry.
Conv1dDims conv_dims(const Front& f, const Tensor& x, const char* xrole, const Tensor& w, const Conv1dGeometry& g,
                     const Tensor& y, const char* yrole) {
  f.rank(x, 3, xrole, "(B, Cin, L)");
  f.rank(w, 3, "weight", "(Cout, Cin, K)");
  f.rank(y, 3, yrole, "(B, Cout, Lout)");
  if (!(g.stride >= 1 && g.dilation >= 1 && g.padding >= 0))
    f.fail_("stride ", g.stride, ", dilation ", g.dilation, " must be >= 1 and padding ", g.padding, " >= 0");
  if (x.size(1) != w.size(1))
    f.fail_(xrole, " ", x.shape(), " has ", x.size(1), " channels, the weight ", w.shape(), " expects ", w.size(1));
  const int64_t lout = g.out_length(x.size(2), w.size(2));
  if (lout < 1)
    f.fail_("length ", x.size(2), " is too short for kernel ", w.size(2), ", dilation ", g.dilation, " and padding ",
            g.padding);
  f.shape(y, {x.size(0), w.size(0), lout}, yrole);
  f.ints({x.size(0), x.size(1), x.size(2), w.size(0), w.size(2), lout, g.stride, g.padding, g.dilation},
         "dimension");
  return {x.size(0), x.size(1), x.size(2), w.size(0), w.size(2), lout, g.stride, g.padding, g.dilation};
}

GruDims gru_dims(const Front& f, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh) {
  f.rank(x, 3, "x", "(B, T, Din)");
  f.rank(w_hh, 2, "weight_hh", "(3H, H)");
  const int64_t H = w_hh.size(1);
  f.shape(w_hh, {3 * H, H}, "weight_hh");
  f.shape(w_ih, {3 * H, x.size(2)}, "weight_ih");
  f.ints({x.size(0), x.size(1), x.size(2), 3 * H}, "dimension");
  return {x.size(0), x.size(1), x.size(2), H};
}

void check_narrow(const Front& f, const Tensor& full, const Tensor& part, int64_t start) {
  f.rank(full, 3, "full tensor", "(O, N, I)");
  f.rank(part, 3, "slice", "(O, len, I)");
  if (full.size(0) != part.size(0) || full.size(2) != part.size(2))
    f.fail_(full.shape(), " and ", part.shape(), " differ outside the narrowed axis");
  if (start < 0 || start + part.size(1) > full.size(1))
    f.fail_("[", start, ", ", start + part.size(1), ") out of range for axis 1 of ", full.shape());
}
}  // namespace

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

void Backend::relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) {
  const Front f{*this, Op::relu_backward};
  require(Op::relu_backward, y, "y"), require(Op::relu_backward, dy, "dy"), require(Op::relu_backward, dx, "dx");
  f.same(dy, "dy", y, "y");
  f.same(dx, "dx", y, "y");
  f.apart(dx, "dx", y, "y");
  f.in_place_or_apart(dx, "dx", dy, "dy");
  relu_backward_impl(y, dy, dx);
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

// ---------------------------------------------------------------- conv1d
void Backend::conv1d_forward(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv1dGeometry& g,
                             const Tensor& y) {
  const Front f{*this, Op::conv1d_forward};
  require(Op::conv1d_forward, x, "x"), require(Op::conv1d_forward, w, "weight"), require(Op::conv1d_forward, y, "y");
  const Conv1dDims d = conv_dims(f, x, "x", w, g, y, "y");
  if (bias) require(Op::conv1d_forward, *bias, "bias"), f.numel(*bias, d.Cout, "bias");
  f.apart(y, "y", x, "x"), f.apart(y, "y", w, "weight");
  conv1d_forward_impl(x, w, bias, d, y);
}

void Backend::conv1d_backward_data(const Tensor& dy, const Tensor& w, const Conv1dGeometry& g, const Tensor& dx) {
  const Front f{*this, Op::conv1d_backward_data};
  require(Op::conv1d_backward_data, dy, "dy"), require(Op::conv1d_backward_data, w, "weight");
  require(Op::conv1d_backward_data, dx, "dx");
  const Conv1dDims d = conv_dims(f, dx, "dx", w, g, dy, "dy");
  f.apart(dx, "dx", dy, "dy"), f.apart(dx, "dx", w, "weight");
  conv1d_backward_data_impl(dy, w, d, dx);
}

void Backend::conv1d_backward_weights(const Tensor& x, const Tensor& dy, const Conv1dGeometry& g, const Tensor& dw,
                                      const Tensor* dbias) {
  const Front f{*this, Op::conv1d_backward_weights};
  require(Op::conv1d_backward_weights, x, "x"), require(Op::conv1d_backward_weights, dy, "dy");
  require(Op::conv1d_backward_weights, dw, "dw");
  const Conv1dDims d = conv_dims(f, x, "x", dw, g, dy, "dy");
  if (dbias && !dbias->defined()) dbias = nullptr;
  if (dbias) require(Op::conv1d_backward_weights, *dbias, "dbias"), f.numel(*dbias, d.Cout, "dbias");
  f.apart(dw, "dw", x, "x"), f.apart(dw, "dw", dy, "dy");
  if (dbias) f.apart(*dbias, "dbias", dy, "dy"), f.apart(*dbias, "dbias", dw, "dw");
  conv1d_backward_weights_impl(x, dy, d, dw, dbias);
}

// ---------------------------------------------------------------- norms
void Backend::batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float momentum,
                                      float eps, const Tensor& rm, const Tensor& rv, const Tensor& mean,
                                      const Tensor& invstd, const Tensor& y) {
  const Op kOp = Op::batchnorm_forward_train;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, gamma, "weight"), require(kOp, beta, "bias");
  require(kOp, mean, "save_mean"), require(kOp, invstd, "save_invstd"), require(kOp, y, "y");
  const NormDims d = norm_dims(f, x);
  f.numel(gamma, d.C, "weight"), f.numel(beta, d.C, "bias");
  CPC_FRONT_CHECK(rm.defined() == rv.defined(), "running mean and variance go together");
  if (rm.defined()) {
    require(kOp, rm, "running_mean"), require(kOp, rv, "running_var");
    f.numel(rm, d.C, "running_mean"), f.numel(rv, d.C, "running_var");
  }
  f.numel(mean, d.C, "save_mean"), f.numel(invstd, d.C, "save_invstd");
  f.shape(y, x.shape(), "y");
  CPC_FRONT_CHECK(d.B * d.L > 1, "training needs more than one value per channel, input ", x.shape());
  f.apart(y, "y", x, "x");
  batchnorm_forward_train_impl(x, gamma, beta, momentum, eps, rm, rv, mean, invstd, d, y);
}

void Backend::batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                     const Tensor& rm, const Tensor& rv, const Tensor& invstd, const Tensor& y) {
  const Op kOp = Op::batchnorm_forward_eval;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, gamma, "weight"), require(kOp, beta, "bias");
  require(kOp, rm, "running_mean"), require(kOp, rv, "running_var");
  require(kOp, invstd, "save_invstd"), require(kOp, y, "y");
  const NormDims d = norm_dims(f, x);
  f.numel(gamma, d.C, "weight"), f.numel(beta, d.C, "bias");
  f.numel(rm, d.C, "running_mean"), f.numel(rv, d.C, "running_var"), f.numel(invstd, d.C, "save_invstd");
  f.shape(y, x.shape(), "y");
  f.apart(y, "y", x, "x");
  batchnorm_forward_eval_impl(x, gamma, beta, eps, rm, rv, invstd, d, y);
}

void Backend::batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                                 const Tensor& invstd, bool training, const Tensor& dx, const Tensor& dgamma,
                                 const Tensor& dbeta) {
  const Op kOp = Op::batchnorm_backward;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, dy, "dy"), require(kOp, gamma, "weight");
  require(kOp, mean, "mean"), require(kOp, invstd, "invstd");
  require_opt(kOp, dx, "dx"), require_opt(kOp, dgamma, "dgamma"), require_opt(kOp, dbeta, "dbeta");
  const NormDims d = norm_dims(f, x);
  f.shape(dy, x.shape(), "dy");
  f.numel(gamma, d.C, "weight"), f.numel(mean, d.C, "mean"), f.numel(invstd, d.C, "invstd");
  if (dx.defined()) f.shape(dx, x.shape(), "dx"), f.apart(dx, "dx", x, "x"), f.apart(dx, "dx", dy, "dy");
  if (dgamma.defined()) f.numel(dgamma, d.C, "dgamma");
  if (dbeta.defined()) f.numel(dbeta, d.C, "dbeta");
  batchnorm_backward_impl(x, dy, gamma, mean, invstd, training, d, dx, dgamma, dbeta);
}

void Backend::batchnorm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) {
  const Op kOp = Op::batchnorm_stats;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, mean, "mean"), require(kOp, var, "var");
  const NormDims d = norm_dims(f, x);
  f.numel(mean, d.C, "mean"), f.numel(var, d.C, "var");
  f.apart(mean, "mean", x, "x"), f.apart(var, "var", x, "x"), f.apart(var, "var", mean, "mean");
  batchnorm_stats_impl(x, d, mean, var);
}

void Backend::channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, const Tensor& y) {
  const Op kOp = Op::channel_affine;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, scale, "scale"), require(kOp, shift, "shift"), require(kOp, y, "y");
  const NormDims d = norm_dims(f, x);
  f.numel(scale, d.C, "scale"), f.numel(shift, d.C, "shift");
  f.shape(y, x.shape(), "y");
  f.in_place_or_apart(y, "y", x, "x");
  f.apart(y, "y", scale, "scale"), f.apart(y, "y", shift, "shift");
  channel_affine_impl(x, scale, shift, d, y);
}

void Backend::channel_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                   const Tensor& mean, const Tensor& invstd, const Tensor& y) {
  const Op kOp = Op::channel_norm_forward;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, gamma, "weight"), require(kOp, beta, "bias");
  require(kOp, mean, "save_mean"), require(kOp, invstd, "save_invstd"), require(kOp, y, "y");
  const NormDims d = norm_dims(f, x);
  f.numel(gamma, d.C, "weight"), f.numel(beta, d.C, "bias");
  f.numel(mean, d.B * d.L, "save_mean (B, L)"), f.numel(invstd, d.B * d.L, "save_invstd (B, L)");
  f.shape(y, x.shape(), "y");
  f.apart(y, "y", x, "x");
  channel_norm_forward_impl(x, gamma, beta, eps, d, mean, invstd, y);
}

void Backend::channel_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                                    const Tensor& invstd, const Tensor& dx, const Tensor& dgamma,
                                    const Tensor& dbeta) {
  const Op kOp = Op::channel_norm_backward;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, dy, "dy"), require(kOp, gamma, "weight");
  require(kOp, mean, "mean"), require(kOp, invstd, "invstd");
  require_opt(kOp, dx, "dx"), require_opt(kOp, dgamma, "dgamma"), require_opt(kOp, dbeta, "dbeta");
  const NormDims d = norm_dims(f, x);
  f.shape(dy, x.shape(), "dy");
  f.numel(gamma, d.C, "weight");
  f.numel(mean, d.B * d.L, "mean (B, L)"), f.numel(invstd, d.B * d.L, "invstd (B, L)");
  if (dx.defined()) f.shape(dx, x.shape(), "dx"), f.apart(dx, "dx", x, "x"), f.apart(dx, "dx", dy, "dy");
  if (dgamma.defined()) f.numel(dgamma, d.C, "dgamma");
  if (dbeta.defined()) f.numel(dbeta, d.C, "dbeta");
  channel_norm_backward_impl(x, dy, gamma, mean, invstd, d, dx, dgamma, dbeta);
}

// ---------------------------------------------------------------- GRU
Shape Backend::gru_reserve_shape(int64_t B, int64_t T, int64_t, int64_t H) { return Shape({B, T, 4 * H}); }

void Backend::gru_layer_forward(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                                const Tensor& b_ih, const Tensor& b_hh, const Tensor& y, const Tensor& reserve) {
  const Op kOp = Op::gru_layer_forward;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require_opt(kOp, h0, "h0"), require(kOp, w_ih, "weight_ih"), require(kOp, w_hh, "weight_hh");
  require(kOp, b_ih, "bias_ih"), require(kOp, b_hh, "bias_hh"), require(kOp, y, "y"), require(kOp, reserve, "reserve");
  const GruDims d = gru_dims(f, x, w_ih, w_hh);
  if (h0.defined()) f.numel(h0, d.B * d.H, "h0 (B, H)");
  f.numel(b_ih, 3 * d.H, "bias_ih"), f.numel(b_hh, 3 * d.H, "bias_hh");
  f.numel(y, d.B * d.T * d.H, "y (B, T, H)");
  f.numel(reserve, gru_reserve_shape(d.B, d.T, d.Din, d.H).numel(), "reserve (gru_reserve_shape)");
  f.apart(y, "y", x, "x"), f.apart(reserve, "reserve", x, "x"), f.apart(reserve, "reserve", y, "y");
  if (h0.defined()) f.apart(y, "y", h0, "h0");
  gru_layer_forward_impl(x, h0, w_ih, w_hh, b_ih, b_hh, d, y, reserve);
}

void Backend::gru_layer_backward(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                                 const Tensor& y, const Tensor& reserve, const Tensor& dy, const Tensor& dh_n,
                                 const Tensor& dx, const Tensor& dh0, const Tensor& dw_ih, const Tensor& dw_hh,
                                 const Tensor& db_ih, const Tensor& db_hh) {
  const Op kOp = Op::gru_layer_backward;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require_opt(kOp, h0, "h0"), require(kOp, w_ih, "weight_ih"), require(kOp, w_hh, "weight_hh");
  require(kOp, y, "y"), require(kOp, reserve, "reserve");
  require_opt(kOp, dy, "dy"), require_opt(kOp, dh_n, "dh_n"), require_opt(kOp, dx, "dx"), require_opt(kOp, dh0, "dh0");
  require_opt(kOp, dw_ih, "dweight_ih"), require_opt(kOp, dw_hh, "dweight_hh");
  require_opt(kOp, db_ih, "dbias_ih"), require_opt(kOp, db_hh, "dbias_hh");
  const GruDims d = gru_dims(f, x, w_ih, w_hh);
  if (h0.defined()) f.numel(h0, d.B * d.H, "h0 (B, H)");
  f.numel(y, d.B * d.T * d.H, "y (B, T, H)");
  f.numel(reserve, gru_reserve_shape(d.B, d.T, d.Din, d.H).numel(),
          "reserve (gru_reserve_shape; did the backend's GRU option change since the forward?)");
  if (dy.defined()) f.numel(dy, d.B * d.T * d.H, "dy (B, T, H)");
  if (dh_n.defined()) f.numel(dh_n, d.B * d.H, "dh_n (B, H)");
  if (dx.defined()) f.numel(dx, x.numel(), "dx (B, T, Din)"), f.apart(dx, "dx", x, "x");
  if (dh0.defined()) f.numel(dh0, d.B * d.H, "dh0 (B, H)");
  if (dw_ih.defined()) f.shape(dw_ih, w_ih.shape(), "dweight_ih"), f.apart(dw_ih, "dweight_ih", w_ih, "weight_ih");
  if (dw_hh.defined()) f.shape(dw_hh, w_hh.shape(), "dweight_hh"), f.apart(dw_hh, "dweight_hh", w_hh, "weight_hh");
  if (db_ih.defined()) f.numel(db_ih, 3 * d.H, "dbias_ih");
  if (db_hh.defined()) f.numel(db_hh, 3 * d.H, "dbias_hh");
  gru_layer_backward_impl(x, h0, w_ih, w_hh, y, reserve, dy, dh_n, d, dx, dh0, dw_ih, dw_hh, db_ih, db_hh);
}

// ---------------------------------------------------------------- contrastive
ContrastiveStats Backend::contrastive_forward(const Tensor& a, const Tensor& c, const ContrastiveSpec& spec,
                                              const Tensor& da, const Tensor& dc) {
  const Op kOp = Op::contrastive_forward;
  const Front f{*this, kOp};
  require(kOp, a, "anchors"), require(kOp, c, "candidates");
  require_opt(kOp, da, "d(anchors)"), require_opt(kOp, dc, "d(candidates)");
  f.rank(a, 2, "anchors", "(R, D)");
  f.rank(c, 2, "candidates", "(M, D)");
  const int64_t R = a.size(0), M = c.size(0), D = a.size(1);
  CPC_FRONT_CHECK(c.size(1) == D, "anchors ", a.shape(), " and candidates ", c.shape(), " differ in D");
  f.ints({R, M, D}, "dimension");
  CPC_FRONT_CHECK(spec.blocks >= 1 && R % spec.blocks == 0 && M % spec.blocks == 0, spec.blocks,
                  " blocks do not divide ", R, " anchors and ", M, " candidates");
  CPC_FRONT_CHECK(spec.row_label && spec.col_label, "row and column labels are required");
  CPC_FRONT_CHECK(!spec.row_group == !spec.col_group && !spec.row_group == !spec.row_keep,
                  "row_group, col_group and row_keep go together");
  CPC_FRONT_CHECK(!spec.excl_offsets == !spec.excl_cols, "excl_offsets and excl_cols go together");
  CPC_FRONT_CHECK(spec.scale > 0.f && spec.l2_eps >= 0.f, "scale ", spec.scale, " must be > 0 and l2_eps ",
                  spec.l2_eps, " >= 0");
  if (da.defined()) f.shape(da, a.shape(), "d(anchors)"), f.apart(da, "d(anchors)", a, "anchors");
  if (dc.defined()) f.shape(dc, c.shape(), "d(candidates)"), f.apart(dc, "d(candidates)", c, "candidates");
  if (da.defined()) f.apart(da, "d(anchors)", c, "candidates");
  if (dc.defined()) f.apart(dc, "d(candidates)", a, "anchors");
  const bool shared_grad = da.defined() && dc.defined() && da.raw() == dc.raw();
  CPC_FRONT_CHECK(!shared_grad || a.raw() == c.raw(),
                  "one gradient buffer for anchors and candidates needs them to be one tensor");
  if (da.defined() && dc.defined() && !shared_grad) f.apart(dc, "d(candidates)", da, "d(anchors)");
  return contrastive_forward_impl(a, c, spec, da, dc);
}

void Backend::l2_normalize_forward(const Tensor& x, float eps, const Tensor& y) {
  const Op kOp = Op::l2_normalize_forward;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, y, "y");
  f.rank(x, 2, "x", "(N, D)");
  f.shape(y, x.shape(), "y");
  CPC_FRONT_CHECK(eps > 0.f, "eps ", eps, " must be > 0");
  f.apart(y, "y", x, "x");
  l2_normalize_forward_impl(x, eps, y);
}

void Backend::l2_normalize_backward(const Tensor& x, const Tensor& dy, float eps, const Tensor& dx) {
  const Op kOp = Op::l2_normalize_backward;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, dy, "dy"), require(kOp, dx, "dx");
  f.rank(x, 2, "x", "(N, D)");
  f.shape(dy, x.shape(), "dy"), f.shape(dx, x.shape(), "dx");
  CPC_FRONT_CHECK(eps > 0.f, "eps ", eps, " must be > 0");
  f.apart(dx, "dx", x, "x"), f.apart(dx, "dx", dy, "dy");
  l2_normalize_backward_impl(x, dy, eps, dx);
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
