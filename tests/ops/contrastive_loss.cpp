// The fused contrastive loss (contrastive_forward): InfoNCE with blocks, batch-time
// negatives with own-sequence exclusion, explicit exclusions, multi-positive labels in
// both forms (with rows that have no positive), -L2 scores with a duplicate pair, seed
// 004's column accuracy, one tensor as anchors and candidates (NT-Xent), one-sided
// gradients; against the double kernel, counts exactly, with finite differences of the
// loss. On CUDA every case also runs with tiles forced down to one block, row slices and
// single rows (option contrastive_tile). Gradients to 1e-4 of their scale with
// near-duplicate -L2 pairs, whose gradient is ~1/sqrt(eps).
#include <memory>

#include "kernels/cpu/contrastive.h"
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

struct Variant {
  std::string name;
  int64_t R, M, D, blocks;
  enum class Kind { diagonal, multi, nt_xent } kind;
  bool groups = false, exclusions = false, neg_l2 = false, logsumexp = false, column_argmax = false;
  bool want_da = true, want_dc = true;
  float scale = 1.f;
};
using K = Variant::Kind;

struct Labels {
  std::vector<int32_t> row, col, row_group, col_group, keep, offsets, cols;
  ContrastiveSpec spec;
};

std::shared_ptr<Labels> make_labels(const Variant& c) {
  auto l = std::make_shared<Labels>();
  for (int64_t i = 0; i < c.R; ++i)
    l->row.push_back(c.kind == K::multi ? static_cast<int32_t>((i * 7) % 5) : static_cast<int32_t>(i));
  for (int64_t j = 0; j < c.M; ++j)
    l->col.push_back(c.kind == K::multi ? static_cast<int32_t>((j * 3) % 6) : static_cast<int32_t>(j));
  if (c.kind == K::nt_xent)  // 2N views: i and i + N are positives, self excluded
    for (int64_t i = 0; i < c.R; ++i) l->row[i] = l->col[i] = static_cast<int32_t>(i % (c.R / 2));
  if (c.groups) {
    if (c.kind == K::nt_xent) {  // NT-Xent: only the self pair is excluded
      for (int64_t i = 0; i < c.R; ++i) l->row_group.push_back(static_cast<int32_t>(i)), l->keep.push_back(-1);
      l->col_group = l->row_group;
    } else {  // batch_time: sequence = i % 4; one's own positive stays
      for (int64_t i = 0; i < c.R; ++i) l->row_group.push_back(static_cast<int32_t>(i % 4));
      for (int64_t j = 0; j < c.M; ++j) l->col_group.push_back(static_cast<int32_t>(j % 4));
      for (int64_t i = 0; i < c.R; ++i) l->keep.push_back(static_cast<int32_t>(i));
    }
  }
  if (c.exclusions) {  // a few explicit pairs per row, ascending within the row's block
    const int64_t Mg = c.M / c.blocks, Rg = c.R / c.blocks;
    l->offsets.push_back(0);
    for (int64_t i = 0; i < c.R; ++i) {
      const int64_t c0 = (i / Rg) * Mg;
      for (int64_t j = (i * 5) % 3; j < Mg; j += 4 + i % 3) l->cols.push_back(static_cast<int32_t>(c0 + j));
      l->offsets.push_back(static_cast<int32_t>(l->cols.size()));
    }
  }
  ContrastiveSpec& s = l->spec;
  s.blocks = c.blocks, s.scale = c.scale, s.neg_l2 = c.neg_l2, s.logsumexp_positives = c.logsumexp;
  s.row_label = l->row.data(), s.col_label = l->col.data();
  if (!l->row_group.empty())
    s.row_group = l->row_group.data(), s.col_group = l->col_group.data(), s.row_keep = l->keep.data();
  if (!l->offsets.empty()) s.excl_offsets = l->offsets.data(), s.excl_cols = l->cols.data();
  s.column_argmax = c.column_argmax;
  return l;
}

std::vector<double> stats_of(const ContrastiveStats& s) {
  return {s.loss, double(s.used), double(s.skipped), double(s.correct), double(s.column_correct)};
}

// Inputs: anchors (R, D) and, unless one tensor, candidates (M, D). Outputs: loss,
// used, skipped, correct, column_correct, d(anchors), d(candidates).
OpCase contrastive_case(const Variant& v, int64_t tile = 0) {
  const std::shared_ptr<Labels> l = make_labels(v);
  const bool same = v.kind == K::nt_xent;
  OpCase c;
  c.name = "contrastive/" + v.name + (tile ? "_tile" + std::to_string(tile) : "");
  c.ops = {Op::contrastive_forward};
  c.inputs = {Shape{v.R, v.D}};
  if (!same) c.inputs.push_back(Shape{v.M, v.D});
  if (v.neg_l2 && !same)  // a duplicate pair (anchor 1, candidate 1): the explicit-difference path
    c.prepare = [D = v.D](std::vector<std::vector<float>>& in) {
      for (int64_t d = 0; d < D; ++d) in[1][D + d] = in[0][D + d];
    };
  c.run = [=](Backend& b, const Tensors& in) {
    const Tensor& a = in[0];
    const Tensor& cand = same ? in[0] : in[1];
    Tensor da = v.want_da ? zeros_like(a) : Tensor(), dc = same ? da : v.want_dc ? zeros_like(cand) : Tensor();
    if (da.defined()) b.fill(da, 7.f);  // overwritten, not accumulated: start from garbage
    if (dc.defined() && !same) b.fill(dc, -3.f);
    const ContrastiveStats s = b.contrastive_forward(a, cand, l->spec, da, dc);
    Tensors out;
    for (double x : stats_of(s)) out.push_back(scalar(x));
    out.push_back(da.defined() ? da : Tensor::zeros({0}));
    out.push_back(dc.defined() && !same ? dc : Tensor::zeros({0}));
    return out;
  };
  c.reference = [=](const std::vector<Vec>& in) {
    const cpu::ContrastiveProblem p(l->spec, v.R, v.M, v.D);
    const Vec& a = in[0];
    const Vec& cand = same ? in[0] : in[1];
    Vec ws(p.workspace()), da(v.want_da ? a.size() : 0, 0.0), dc(v.want_dc && !same ? cand.size() : 0, 0.0);
    const cpu::ContrastiveResult r =
        cpu::contrastive_forward(a.data(), cand.data(), p, ws.data(), v.want_da ? da.data() : nullptr,
                                 same ? (v.want_da ? da.data() : nullptr) : (v.want_dc ? dc.data() : nullptr));
    std::vector<Vec> out;
    for (double x : {r.loss, double(r.used), double(r.skipped), double(r.correct), double(r.column_correct)})
      out.push_back({x});
    out.push_back(da), out.push_back(dc);
    return out;
  };
  c.tol = 1e-5;
  c.device_tol = v.neg_l2 ? 1e-4 : 1e-5;
  c.check = [](const std::vector<std::vector<float>>& out) {
    if (out[1][0] > 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "no anchor was used";
  };
  if (!v.neg_l2) {  // d(loss)/d(anchors) and /d(candidates) (their sum for one tensor)
    if (v.want_da) c.grad.inputs.push_back(0), c.grad.outputs.push_back(5);
    if (v.want_dc && !same) c.grad.inputs.push_back(1), c.grad.outputs.push_back(6);
    c.grad.eps = 1e-2;
  }
  if (tile) c.options = {{"cuda", "contrastive_tile", std::to_string(tile), "8388608"}};
  return c;
}

std::vector<OpCase> contrastive_cases() {
  const std::vector<Variant> variants = {
      {"infonce_blocks", 48, 48, 33, 4, K::diagonal},
      {"infonce_batch_time_exclude_own", 32, 32, 20, 1, K::diagonal, true},
      {"supcon_exclusions", 30, 36, 17, 3, K::multi, false, true},
      {"logsumexp_positives", 30, 36, 17, 3, K::multi, false, true, false, true},
      {"neg_l2", 24, 24, 9, 2, K::diagonal, false, false, true, false, false, true, true, 1.7f},
      {"neg_l2_multi_logsumexp", 24, 36, 9, 1, K::multi, false, true, true, true},
      {"column_argmax", 40, 40, 16, 5, K::diagonal, false, false, false, false, true},
      {"nt_xent_one_tensor", 32, 32, 12, 1, K::nt_xent, true, false, false, false, false, true, true, 10.f},
      {"anchor_gradient_only", 24, 24, 8, 2, K::diagonal, false, false, false, false, false, true, false},
      {"candidate_gradient_only", 24, 24, 8, 2, K::diagonal, false, false, false, false, false, false, true},
      {"stats_only", 16, 16, 8, 2, K::diagonal, false, false, false, false, false, false, false},
      {"large", 1024, 1024, 128, 1, K::diagonal, false, false, false, false, false, true, true, 0.1f},
  };
  std::vector<OpCase> cases;
  for (const Variant& v : variants) {
    cases.push_back(contrastive_case(v));
    if (v.name == "large") {
      cases.back().grad = {};  // 32 more runs of a 1024 x 1024 problem: the small variants cover the gradient
      continue;
    }
    // CUDA tilings: one block per tile, row slices of 3, single rows.
    for (int64_t tile : {(v.R / v.blocks) * (v.M / v.blocks), 3 * (v.M / v.blocks), int64_t{1}}) {
      OpCase t = contrastive_case(v, tile);
      t.grad = {};  // the untiled case has the finite differences
      cases.push_back(std::move(t));
    }
  }
  return cases;
}

CPC_OP_CASES(contrastive_cases());

}  // namespace
}  // namespace cpc::ops_test
