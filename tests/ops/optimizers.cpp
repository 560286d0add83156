// adam_update (Adam and AdamW, with amsgrad), adam_update_multi (the same bits as
// per-tensor updates) and sgd_update (momentum, dampening, Nesterov, first step),
// against the update formulas in double.
#include <cmath>

#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

// PyTorch's Adam / AdamW step in double. in: param, grad, m, v, vmax (v, vmax >= 0).
std::vector<Vec> adam_reference(const std::vector<Vec>& in, const AdamHyper& h) {
  Vec p = in[0], m = in[2], v = in[3], vmax = in[4];
  const double bc1 = 1 - std::pow(double(h.beta1), double(h.step)), bc2 = 1 - std::pow(double(h.beta2), double(h.step));
  for (size_t i = 0; i < p.size(); ++i) {
    double g = in[1][i];
    if (h.decoupled)
      p[i] *= 1 - double(h.lr) * h.weight_decay;
    else
      g += h.weight_decay * p[i];
    m[i] = h.beta1 * m[i] + (1 - double(h.beta1)) * g;
    v[i] = h.beta2 * v[i] + (1 - double(h.beta2)) * g * g;
    double denom_v = v[i];
    if (h.amsgrad) vmax[i] = std::max(vmax[i], v[i]), denom_v = vmax[i];
    p[i] -= h.lr / bc1 * m[i] / (std::sqrt(denom_v / bc2) + h.eps);
  }
  return {p, m, v, vmax};
}

OpCase adam_case(const char* name, bool decoupled, bool amsgrad, int64_t step) {
  AdamHyper h;
  h.lr = 1e-2f, h.weight_decay = 0.05f, h.decoupled = decoupled, h.amsgrad = amsgrad, h.step = step;
  OpCase c;
  c.name = std::string("adam/") + name;
  c.ops = {Op::adam_update};
  c.inputs = {Shape{1000}, Shape{1000}, Shape{1000}, Shape{1000}, Shape{1000}};
  c.kinds = {Inputs::uniform, Inputs::uniform, Inputs::uniform, Inputs::positive, Inputs::positive};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor p = copy_of(in[0]), m = copy_of(in[2]), v = copy_of(in[3]), vmax = copy_of(in[4]);
    b.adam_update(p, in[1], m, v, amsgrad ? vmax : Tensor(), h);
    return Tensors{p, m, v, vmax};
  };
  c.reference = [=](const std::vector<Vec>& in) { return adam_reference(in, h); };
  c.tol = 1e-6;
  c.device_tol = 1e-6;
  return c;
}

// Three tensors of awkward sizes (one spans several multi-tensor chunks) updated in one
// call; outputs: the multi results then the per-tensor results, which must be equal bits.
OpCase adam_multi_case() {
  AdamHyper h;
  h.lr = 3e-3f, h.weight_decay = 0.01f, h.decoupled = true, h.amsgrad = true, h.step = 7;
  const std::vector<int64_t> sizes = {5, 0, 70001, 333};  // an empty tensor and one of several chunks
  OpCase c;
  c.name = "adam/multi_equals_per_tensor";
  c.ops = {Op::adam_update_multi, Op::adam_update};
  for (int64_t n : sizes)
    for (int k = 0; k < 5; ++k) c.inputs.push_back(Shape{n}), c.kinds.push_back(k >= 3 ? Inputs::positive : Inputs::uniform);
  c.run = [=](Backend& b, const Tensors& in) {
    std::vector<AdamSlots> slots;
    Tensors multi, single;
    for (size_t t = 0; t < sizes.size(); ++t) {
      const Tensor* x = &in[5 * t];
      AdamSlots s{copy_of(x[0]), x[1], copy_of(x[2]), copy_of(x[3]), copy_of(x[4])};
      slots.push_back(s);
      Tensor p = copy_of(x[0]), m = copy_of(x[2]), v = copy_of(x[3]), vm = copy_of(x[4]);
      b.adam_update(p, x[1], m, v, vm, h);
      single.insert(single.end(), {p, m, v, vm});
    }
    b.adam_update_multi(slots, h);
    for (const AdamSlots& s : slots) multi.insert(multi.end(), {s.param, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq});
    multi.insert(multi.end(), single.begin(), single.end());
    return multi;
  };
  c.reference = [=](const std::vector<Vec>& in) {
    std::vector<Vec> out, again;
    for (size_t t = 0; t < sizes.size(); ++t) {
      const std::vector<Vec> r = adam_reference({in[5 * t], in[5 * t + 1], in[5 * t + 2], in[5 * t + 3], in[5 * t + 4]}, h);
      out.insert(out.end(), r.begin(), r.end());
    }
    again = out;
    out.insert(out.end(), again.begin(), again.end());
    return out;
  };
  c.tol = 1e-6;
  c.device_tol = 1e-6;
  c.check = [n = sizes.size()](const std::vector<std::vector<float>>& out) {
    for (size_t i = 0; i < 4 * n; ++i)
      if (out[i] != out[i + 4 * n])
        return ::testing::AssertionFailure() << "adam_update_multi differs from adam_update in output " << i;
    return ::testing::AssertionSuccess();
  };
  return c;
}

OpCase sgd_case(const char* name, float momentum, float dampening, bool nesterov, bool first_step) {
  const float lr = 0.1f, wd = 0.01f;
  OpCase c;
  c.name = std::string("sgd/") + name;
  c.ops = {Op::sgd_update};
  c.inputs = {Shape{777}, Shape{777}, Shape{777}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor p = copy_of(in[0]), buf = copy_of(in[2]);
    b.sgd_update(p, in[1], momentum != 0.f ? buf : Tensor(), lr, momentum, dampening, wd, nesterov, first_step);
    return Tensors{p, buf};
  };
  c.reference = [=](const std::vector<Vec>& in) {  // torch.optim.SGD
    Vec p = in[0], buf = in[2];
    for (size_t i = 0; i < p.size(); ++i) {
      double g = in[1][i] + double(wd) * p[i];
      if (momentum != 0.f) {
        buf[i] = first_step ? g : double(momentum) * buf[i] + (1 - double(dampening)) * g;
        g = nesterov ? g + double(momentum) * buf[i] : buf[i];
      }
      p[i] -= double(lr) * g;
    }
    return std::vector<Vec>{p, buf};
  };
  c.tol = 1e-6;
  c.device_tol = 1e-6;
  return c;
}

CPC_OP_CASES({adam_case("adam", false, false, 1), adam_case("adamw_amsgrad", true, true, 1000),
              adam_case("adamw_late_step", true, false, 123456), adam_multi_case(),
              sgd_case("plain", 0.f, 0.f, false, false), sgd_case("momentum_first_step", 0.9f, 0.f, false, true),
              sgd_case("nesterov", 0.9f, 0.f, true, false), sgd_case("dampening", 0.8f, 0.3f, false, false)});

}  // namespace
}  // namespace cpc::ops_test
