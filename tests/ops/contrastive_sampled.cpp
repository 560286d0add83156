// The fused contrastive loss with sampled candidates (ContrastiveSpec::row_candidates):
// each row scored against its own list of columns, with repeats, its positive listed
// once (InfoNCE's negatives_count) or several times / not at all (multi-positive labels,
// a skipped row); one tensor as anchors and candidates. Against a plain double
// reference (gathered scores, log-softmax), with finite differences of the loss.
#include <cmath>
#include <memory>
#include <random>

#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

struct Sampled {
  std::string name;
  int64_t R, M, D, S;
  bool multi = false;  // labels (i * 7) % 5 vs (j * 3) % 6: several or no positives per row
  bool same = false;   // one tensor (R == M)
  float scale = 1.f;
  bool logsumexp = false;
};

struct Lists {
  std::vector<int32_t> row, col, cand;
  ContrastiveSpec spec;
};

std::shared_ptr<Lists> make_lists(const Sampled& v) {
  auto l = std::make_shared<Lists>();
  std::mt19937 rng(static_cast<uint32_t>(v.R * 131 + v.S));
  for (int64_t i = 0; i < v.R; ++i) l->row.push_back(v.multi ? static_cast<int32_t>((i * 7) % 5) : static_cast<int32_t>(i));
  for (int64_t j = 0; j < v.M; ++j) l->col.push_back(v.multi ? static_cast<int32_t>((j * 3) % 6) : static_cast<int32_t>(j));
  std::uniform_int_distribution<int32_t> any(0, static_cast<int32_t>(v.M - 1));
  for (int64_t i = 0; i < v.R; ++i) {
    for (int64_t j = 0; j < v.S; ++j) {
      int32_t c = any(rng);
      if (!v.multi) {  // InfoNCE's layout: the positive first, then negatives (repeats allowed)
        if (j == 0) c = static_cast<int32_t>(i);
        else
          while (c == i) c = any(rng);
      }
      l->cand.push_back(c);
    }
    if (i % 5 == 1) l->cand[static_cast<size_t>(i * v.S + v.S - 1)] = l->cand[static_cast<size_t>(i * v.S + 1)];
  }
  ContrastiveSpec& s = l->spec;
  s.scale = v.scale, s.logsumexp_positives = v.logsumexp;
  s.row_label = l->row.data(), s.col_label = l->col.data();
  s.row_candidates = l->cand.data(), s.candidates_per_row = v.S;
  return l;
}

// The plain way: gather each row's S scores, log-softmax, mean over rows with a positive.
std::vector<Vec> reference(const Sampled& v, const Lists& l, const Vec& a, const Vec& c) {
  double loss = 0;
  int64_t used = 0, correct = 0;
  std::vector<std::vector<double>> dscore(static_cast<size_t>(v.R));
  for (int64_t i = 0; i < v.R; ++i) {
    std::vector<double> s(static_cast<size_t>(v.S));
    std::vector<bool> pos(static_cast<size_t>(v.S));
    int n_pos = 0;
    for (int64_t j = 0; j < v.S; ++j) {
      const int64_t cj = l.cand[static_cast<size_t>(i * v.S + j)];
      double dot = 0;
      for (int64_t d = 0; d < v.D; ++d) dot += a[i * v.D + d] * c[cj * v.D + d];
      s[j] = v.scale * dot, pos[j] = l.row[i] == l.col[cj], n_pos += pos[j];
    }
    dscore[i].assign(static_cast<size_t>(v.S), 0.0);
    if (!n_pos) continue;
    ++used;
    double mx = -INFINITY, best = -INFINITY, lse = 0, lse_pos = 0, sum_pos = 0, mx_pos = -INFINITY;
    bool best_pos = false;
    for (int64_t j = 0; j < v.S; ++j) {
      mx = std::max(mx, s[j]);
      if (s[j] > best) best = s[j], best_pos = pos[j];
      if (pos[j]) mx_pos = std::max(mx_pos, s[j]), sum_pos += s[j];
    }
    for (int64_t j = 0; j < v.S; ++j) {
      lse += std::exp(s[j] - mx);
      if (pos[j]) lse_pos += std::exp(s[j] - mx_pos);
    }
    lse = mx + std::log(lse), lse_pos = mx_pos + std::log(lse_pos);
    loss += v.logsumexp ? lse - lse_pos : lse - sum_pos / n_pos;
    correct += best_pos;
    for (int64_t j = 0; j < v.S; ++j) {
      const double target = !pos[j] ? 0.0 : v.logsumexp ? std::exp(s[j] - lse_pos) : 1.0 / n_pos;
      dscore[i][j] = std::exp(s[j] - lse) - target;
    }
  }
  Vec da(a.size(), 0.0), dc(c.size(), 0.0);
  for (int64_t i = 0; i < v.R; ++i)
    for (int64_t j = 0; j < v.S; ++j) {
      const int64_t cj = l.cand[static_cast<size_t>(i * v.S + j)];
      const double w = v.scale * dscore[i][j] / std::max<int64_t>(used, 1);
      for (int64_t d = 0; d < v.D; ++d) {
        da[i * v.D + d] += w * c[cj * v.D + d];
        dc[cj * v.D + d] += w * a[i * v.D + d];
      }
    }
  if (v.same)
    for (size_t k = 0; k < da.size(); ++k) da[k] += dc[k];
  return {{used ? loss / used : 0.0}, {double(used)}, {double(v.R - used)}, {double(correct)}, {0.0},
          da, v.same ? Vec{} : dc};
}

OpCase sampled_case(const Sampled& v) {
  const std::shared_ptr<Lists> l = make_lists(v);
  OpCase c;
  c.name = "contrastive_sampled/" + v.name;
  c.ops = {Op::contrastive_forward};
  c.inputs = {Shape{v.R, v.D}};
  if (!v.same) c.inputs.push_back(Shape{v.M, v.D});
  c.run = [=](Backend& b, const Tensors& in) {
    const Tensor& a = in[0];
    const Tensor& cand = v.same ? in[0] : in[1];
    Tensor da = zeros_like(a), dc = v.same ? da : zeros_like(cand);
    b.fill(da, 7.f);  // overwritten, not accumulated
    if (!v.same) b.fill(dc, -3.f);
    const ContrastiveStats s = b.contrastive_forward(a, cand, l->spec, da, dc);
    return Tensors{scalar(s.loss),    scalar(double(s.used)), scalar(double(s.skipped)), scalar(double(s.correct)),
                   scalar(double(s.column_correct)), da, v.same ? Tensor::zeros({0}) : dc};
  };
  c.reference = [=](const std::vector<Vec>& in) { return reference(v, *l, in[0], v.same ? in[0] : in[1]); };
  c.tol = 1e-5;
  c.device_tol = 1e-5;
  c.grad.inputs.push_back(0), c.grad.outputs.push_back(5);
  if (!v.same) c.grad.inputs.push_back(1), c.grad.outputs.push_back(6);
  c.grad.eps = 1e-2;
  return c;
}

std::vector<OpCase> sampled_cases() {
  std::vector<OpCase> out;
  for (const Sampled& v : std::vector<Sampled>{
           {"infonce_positive_first", 40, 48, 17, 9},
           {"infonce_scaled", 24, 24, 33, 5, false, false, 0.3f},
           {"multi_positive_supcon", 30, 36, 12, 7, true},
           {"multi_positive_logsumexp", 30, 36, 12, 7, true, false, 1.f, true},
           {"one_tensor", 20, 20, 8, 6, true, true, 2.f},
           {"large", 512, 2048, 64, 129, false, false, 0.1f},
       })
    out.push_back(sampled_case(v));
  out.back().grad = {};  // the small cases have the finite differences
  return out;
}

CPC_OP_CASES(sampled_cases());

}  // namespace
}  // namespace cpc::ops_test
