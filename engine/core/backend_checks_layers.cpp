// The checked front, continued: the layer ops (conv1d, norms, GRU, contrastive loss,
// L2 normalize). Same rules as backend_checks.cpp.
#include <cmath>

#include "engine/core/backend.h"
#include "engine/core/backend_front.h"
#include "engine/core/error.h"

namespace cpc {

using namespace front;

// ---------------------------------------------------------------- conv1d
namespace {

// A saved space must be the size its backend asked for, on the op's device.
Conv1dSaved* checked_saved(const Front& f, Conv1dSaved* saved, int64_t bytes, const Tensor& on) {
  if (!saved || !saved->space.defined()) return nullptr;
  if (bytes <= 0 || static_cast<int64_t>(saved->space.nbytes()) < bytes)
    f.fail_("saved space of ", saved->space.nbytes(), " bytes where this convolution saves ", bytes);
  if (saved->space.device() != on.device())
    f.fail_("saved space on ", saved->space.device().str(), ", tensors on ", on.device().str());
  return saved;
}

// x given as bf16 (rounded activations): only where the backend takes it for these dims.
Conv1dDims with_rounded_x(const Front& f, Conv1dDims d, const Tensor& x) {
  d.x_bf16 = x.dtype() == DType::bf16;
  if (d.x_bf16 && !(d.bf16() && f.b.conv1d_rounded_input(d)))
    f.fail_("x ", x.shape(), " is bf16, which this backend takes only as the rounded input of a convolution under "
            "precision bf16 that it runs on rounded inputs (conv1d_rounded_input); precision is ",
            d.bf16() ? "bf16" : "fp32");
  return d;
}

// y given as bf16 (BatchNorm writing a convolution's rounded input): only where the
// backend writes it for these dims.
void check_rounded_y(const Front& f, const Tensor& y, const NormDims& d, const Tensor& x) {
  if (y.dtype() == DType::bf16 && !f.b.batchnorm_rounded_output(d))
    f.fail_("y ", y.shape(), " is bf16, which this backend does not write for input ", x.shape());
}

}  // namespace

int64_t Backend::conv1d_saved_bytes(const Tensor& x, const Tensor& w, const Conv1dGeometry& g, const Tensor& y) {
  const Front f{*this, Op::conv1d_forward};
  return conv1d_saved_bytes_impl(with_rounded_x(f, conv_dims(f, x, "x", w, g, y, "y"), x));
}

void Backend::conv1d_forward(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv1dGeometry& g,
                             const Tensor& y, Conv1dSaved* saved) {
  const Front f{*this, Op::conv1d_forward};
  require(Op::conv1d_forward, x, "x", true);
  require(Op::conv1d_forward, w, "weight"), require(Op::conv1d_forward, y, "y");
  if (g.precision != Precision::fp32) check_precision(g.precision);
  const Conv1dDims d = with_rounded_x(f, conv_dims(f, x, "x", w, g, y, "y"), x);
  if (bias) require(Op::conv1d_forward, *bias, "bias"), f.numel(*bias, d.Cout, "bias");
  f.apart(y, "y", x, "x"), f.apart(y, "y", w, "weight");
  saved = checked_saved(f, saved, conv1d_saved_bytes_impl(d), y);
  if (saved) saved->dy_ready = false;
  conv1d_forward_impl(x, w, bias, d, y, saved);
}

void Backend::conv1d_backward_data(const Tensor& dy, const Tensor& w, const Conv1dGeometry& g, const Tensor& dx,
                                   bool accumulate, Conv1dSaved* saved) {
  const Front f{*this, Op::conv1d_backward_data};
  require(Op::conv1d_backward_data, dy, "dy"), require(Op::conv1d_backward_data, w, "weight");
  require(Op::conv1d_backward_data, dx, "dx");
  if (g.precision != Precision::fp32) check_precision(g.precision);
  const Conv1dDims d = conv_dims(f, dx, "dx", w, g, dy, "dy");
  f.apart(dx, "dx", dy, "dy"), f.apart(dx, "dx", w, "weight");
  // Its dims cannot say whether the forward's input came rounded (then nothing was saved
  // for it): the space must hold at least the parts before the input's.
  Conv1dDims without_x = d;
  without_x.x_bf16 = true;
  conv1d_backward_data_impl(dy, w, d, dx, accumulate,
                            checked_saved(f, saved, conv1d_saved_bytes_impl(without_x), dy));
}

void Backend::conv1d_backward_weights(const Tensor& x, const Tensor& dy, const Conv1dGeometry& g, const Tensor& dw,
                                      const Tensor* dbias, Conv1dSaved* saved) {
  const Front f{*this, Op::conv1d_backward_weights};
  require(Op::conv1d_backward_weights, x, "x", true), require(Op::conv1d_backward_weights, dy, "dy");
  require(Op::conv1d_backward_weights, dw, "dw");
  if (g.precision != Precision::fp32) check_precision(g.precision);
  const Conv1dDims d = with_rounded_x(f, conv_dims(f, x, "x", dw, g, dy, "dy"), x);
  if (dbias && !dbias->defined()) dbias = nullptr;
  if (dbias) require(Op::conv1d_backward_weights, *dbias, "dbias"), f.numel(*dbias, d.Cout, "dbias");
  f.apart(dw, "dw", x, "x"), f.apart(dw, "dw", dy, "dy");
  if (dbias) f.apart(*dbias, "dbias", dy, "dy"), f.apart(*dbias, "dbias", dw, "dw");
  conv1d_backward_weights_impl(x, dy, d, dw, dbias, checked_saved(f, saved, conv1d_saved_bytes_impl(d), dy));
}

// ---------------------------------------------------------------- norms
void Backend::batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float momentum,
                                      float eps, const Tensor& rm, const Tensor& rv, const Tensor& mean,
                                      const Tensor& invstd, const Tensor& y, bool relu) {
  const Op kOp = Op::batchnorm_forward_train;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, gamma, "weight"), require(kOp, beta, "bias");
  require(kOp, mean, "save_mean"), require(kOp, invstd, "save_invstd");
  const NormDims d = norm_dims(f, x);
  require(kOp, y, "y", true);
  check_rounded_y(f, y, d, x);
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
  batchnorm_forward_train_impl(x, gamma, beta, momentum, eps, rm, rv, mean, invstd, d, y, relu);
}

void Backend::batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                     const Tensor& rm, const Tensor& rv, const Tensor& invstd, const Tensor& y,
                                     bool relu) {
  const Op kOp = Op::batchnorm_forward_eval;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require(kOp, gamma, "weight"), require(kOp, beta, "bias");
  require(kOp, rm, "running_mean"), require(kOp, rv, "running_var");
  require(kOp, invstd, "save_invstd");
  const NormDims d = norm_dims(f, x);
  require(kOp, y, "y", true);
  check_rounded_y(f, y, d, x);
  f.numel(gamma, d.C, "weight"), f.numel(beta, d.C, "bias");
  f.numel(rm, d.C, "running_mean"), f.numel(rv, d.C, "running_var"), f.numel(invstd, d.C, "save_invstd");
  f.shape(y, x.shape(), "y");
  f.apart(y, "y", x, "x");
  batchnorm_forward_eval_impl(x, gamma, beta, eps, rm, rv, invstd, d, y, relu);
}

void Backend::batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                                 const Tensor& invstd, bool training, const Tensor& dx, const Tensor& dgamma,
                                 const Tensor& dbeta, bool accumulate, const BatchNormRelu* relu) {
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
  if (relu) {
    require(kOp, relu->y, "relu y", batchnorm_rounded_output(d));
    require(kOp, relu->beta, "relu beta");
    f.shape(relu->y, x.shape(), "relu y"), f.numel(relu->beta, d.C, "relu beta");
    if (dx.defined()) f.apart(dx, "dx", relu->y, "relu y");
  }
  batchnorm_backward_impl(x, dy, gamma, mean, invstd, training, d, dx, dgamma, dbeta, accumulate, relu);
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
                                    const Tensor& dbeta, bool accumulate) {
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
  channel_norm_backward_impl(x, dy, gamma, mean, invstd, d, dx, dgamma, dbeta, accumulate);
}

// ---------------------------------------------------------------- GRU
Shape Backend::gru_reserve_shape(int64_t B, int64_t T, int64_t, int64_t H) { return Shape({B, T, 4 * H}); }

void Backend::gru_layer_forward(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                                const Tensor& b_ih, const Tensor& b_hh, const Tensor& y, const Tensor& reserve,
                                Precision precision) {
  const Op kOp = Op::gru_layer_forward;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require_opt(kOp, h0, "h0"), require(kOp, w_ih, "weight_ih"), require(kOp, w_hh, "weight_hh");
  require(kOp, b_ih, "bias_ih"), require(kOp, b_hh, "bias_hh"), require(kOp, y, "y"), require(kOp, reserve, "reserve");
  GruDims d = gru_dims(f, x, w_ih, w_hh);
  d.precision = precision;
  if (precision != Precision::fp32) check_precision(precision);
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
                                 const Tensor& db_ih, const Tensor& db_hh, Precision precision) {
  const Op kOp = Op::gru_layer_backward;
  const Front f{*this, kOp};
  require(kOp, x, "x"), require_opt(kOp, h0, "h0"), require(kOp, w_ih, "weight_ih"), require(kOp, w_hh, "weight_hh");
  require(kOp, y, "y"), require(kOp, reserve, "reserve");
  require_opt(kOp, dy, "dy"), require_opt(kOp, dh_n, "dh_n"), require_opt(kOp, dx, "dx"), require_opt(kOp, dh0, "dh0");
  require_opt(kOp, dw_ih, "dweight_ih"), require_opt(kOp, dw_hh, "dweight_hh");
  require_opt(kOp, db_ih, "dbias_ih"), require_opt(kOp, db_hh, "dbias_hh");
  GruDims d = gru_dims(f, x, w_ih, w_hh);
  d.precision = precision;
  if (precision != Precision::fp32) check_precision(precision);
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
  CPC_FRONT_CHECK(spec.scale > 0.f && std::isfinite(spec.scale) && spec.l2_eps >= 0.f, "scale ", spec.scale,
                  " must be finite and > 0 and l2_eps ", spec.l2_eps, " >= 0");
  if (spec.row_candidates) {
    CPC_FRONT_CHECK(spec.candidates_per_row >= 1, "sampled candidates: candidates_per_row ", spec.candidates_per_row,
                    " must be >= 1");
    CPC_FRONT_CHECK(spec.blocks == 1 && !spec.row_group && !spec.excl_offsets && !spec.neg_l2 && !spec.column_argmax,
                    "sampled candidates do not combine with blocks, groups, exclusions, neg_l2 or column_argmax");
    f.ints({R * spec.candidates_per_row}, "anchors x candidates_per_row");
    for (int64_t e = 0; e < R * spec.candidates_per_row; ++e)
      CPC_FRONT_CHECK(spec.row_candidates[e] >= 0 && spec.row_candidates[e] < M, "sampled candidate ",
                      spec.row_candidates[e], " of anchor ", e / spec.candidates_per_row, " is outside [0, ", M, ")");
  } else {
    CPC_FRONT_CHECK(spec.candidates_per_row == 0, "candidates_per_row ", spec.candidates_per_row,
                    " without row_candidates");
  }
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

}  // namespace cpc
