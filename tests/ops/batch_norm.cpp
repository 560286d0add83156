// BatchNorm1d: training forward (batch statistics, running statistics updated with the
// unbiased variance), eval forward, the backward in both modes, and synchronised
// BatchNorm's pieces (batchnorm_stats, channel_affine); against the double kernels,
// with finite differences for x, weight and bias. The "rows" cases are channels-last
// activations as the encoder passes them, (B * L, C, 1): the CPU kernels take their own
// path there, so their reference is the (B, C, L) path on the transposed input (1, C, N).
#include "kernels/cpu/norms.h"
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

constexpr float kMomentum = 0.1f, kEps = 1e-5f;

// The reference of a rows case: `ref` run on (1, C, N) with activations transposed.
std::function<std::vector<Vec>(const std::vector<Vec>&)> via_columns(
    int64_t N, int64_t C, std::vector<bool> activation_in, std::vector<bool> activation_out,
    std::function<std::vector<Vec>(const std::vector<Vec>&, const NormDims&)> ref) {
  return [=](const std::vector<Vec>& in) {
    std::vector<Vec> t = in;
    for (size_t i = 0; i < t.size(); ++i)
      if (activation_in[i]) t[i] = swap_last2(in[i], 1, N, C);
    std::vector<Vec> out = ref(t, NormDims{1, C, N});
    for (size_t i = 0; i < out.size(); ++i)
      if (activation_out[i]) out[i] = swap_last2(out[i], 1, C, N);
    return out;
  };
}

// Inputs: x, gamma, beta, dy, running_mean, running_var (positive).
// overwrite: dx starts as garbage and is overwritten (accumulate = false). relu: the
// fused BatchNorm + ReLU (y = relu(bn(x)), backward from relu's upstream gradient),
// against the reference's BatchNorm, then ReLU, then BatchNorm's backward of the masked dy.
OpCase train_case(const char* name, int64_t B, int64_t C, int64_t L, bool running = true, bool rows = false,
                  bool overwrite = false, bool relu = false) {
  OpCase c;
  c.name = std::string("batch_norm/train_") + name;
  c.ops = {Op::batchnorm_forward_train, Op::batchnorm_backward};
  c.inputs = {Shape{B, C, L}, Shape{C}, Shape{C}, Shape{B, C, L}, Shape{C}, Shape{C}};
  c.kinds = {Inputs::uniform, Inputs::uniform, Inputs::uniform, Inputs::uniform, Inputs::uniform, Inputs::positive};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = zeros_like(in[0]), mean = zeros_like(in[1]), invstd = zeros_like(in[1]);
    Tensor rm = running ? copy_of(in[4]) : Tensor(), rv = running ? copy_of(in[5]) : Tensor();
    Tensor dx = overwrite ? garbage_like(in[0]) : zeros_like(in[0]), dg = zeros_like(in[1]), dbeta = zeros_like(in[1]);
    b.batchnorm_forward_train(in[0], in[1], in[2], kMomentum, kEps, rm, rv, mean, invstd, y, relu);
    const BatchNormRelu r{y, in[2]};
    b.batchnorm_backward(in[0], in[3], in[1], mean, invstd, true, dx, dg, dbeta, !overwrite, relu ? &r : nullptr);
    Tensors out{y, dx, dg, dbeta, mean, invstd};
    if (running) out.push_back(rm), out.push_back(rv);
    return out;
  };
  auto ref = [=](const std::vector<Vec>& in, const NormDims& d) {
    Vec y(in[0].size()), mean(C), invstd(C), rm = in[4], rv = in[5], dx(in[0].size(), 0.0), dg(C, 0.0), db(C, 0.0);
    cpu::batchnorm_forward_train(in[0].data(), in[1].data(), in[2].data(), double(kMomentum), double(kEps), d,
                                 running ? rm.data() : nullptr, running ? rv.data() : nullptr, mean.data(),
                                 invstd.data(), y.data());
    Vec dy = in[3];
    if (relu)
      for (size_t i = 0; i < y.size(); ++i) y[i] = std::max(y[i], 0.0), dy[i] = y[i] > 0 ? dy[i] : 0.0;
    cpu::batchnorm_backward(in[0].data(), dy.data(), in[1].data(), mean.data(), invstd.data(), true, d, dx.data(),
                            dg.data(), db.data());
    std::vector<Vec> out{y, dx, dg, db, mean, invstd};
    if (running) out.push_back(rm), out.push_back(rv);
    return out;
  };
  if (rows)
    c.reference = via_columns(B, C, {true, false, false, true, false, false},
                              {true, true, false, false, false, false, false, false}, ref);
  else
    c.reference = [=](const std::vector<Vec>& in) { return ref(in, NormDims{B, C, L}); };
  c.tol = 2e-5;
  c.device_tol = 1e-4;  // cuDNN's batch statistics: another summation order over B*L
  c.grad = {3, {0, 1, 2}, {1, 2, 3}};
  if (relu) c.grad = {};  // differences across the ReLU's kink: the reference holds the gradients
  return c;
}

OpCase eval_case(const char* name, int64_t B, int64_t C, int64_t L, bool rows = false, bool relu = false) {
  OpCase c;
  c.name = std::string("batch_norm/eval_") + name;
  c.ops = {Op::batchnorm_forward_eval, Op::batchnorm_backward};
  c.inputs = {Shape{B, C, L}, Shape{C}, Shape{C}, Shape{B, C, L}, Shape{C}, Shape{C}};
  c.kinds = {Inputs::uniform, Inputs::uniform, Inputs::uniform, Inputs::uniform, Inputs::uniform, Inputs::positive};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = zeros_like(in[0]), invstd = zeros_like(in[1]);
    Tensor dx = zeros_like(in[0]), dg = zeros_like(in[1]), dbeta = zeros_like(in[1]);
    b.batchnorm_forward_eval(in[0], in[1], in[2], kEps, in[4], in[5], invstd, y, relu);
    const BatchNormRelu r{y, in[2]};
    b.batchnorm_backward(in[0], in[3], in[1], in[4], invstd, false, dx, dg, dbeta, true, relu ? &r : nullptr);
    return Tensors{y, dx, dg, dbeta, invstd};
  };
  auto ref = [=](const std::vector<Vec>& in, const NormDims& d) {
    Vec y(in[0].size()), invstd(C), dx(in[0].size(), 0.0), dg(C, 0.0), db(C, 0.0);
    cpu::batchnorm_forward_eval(in[0].data(), in[1].data(), in[2].data(), double(kEps), d, in[4].data(), in[5].data(),
                                invstd.data(), y.data());
    Vec dy = in[3];
    if (relu)
      for (size_t i = 0; i < y.size(); ++i) y[i] = std::max(y[i], 0.0), dy[i] = y[i] > 0 ? dy[i] : 0.0;
    cpu::batchnorm_backward(in[0].data(), dy.data(), in[1].data(), in[4].data(), invstd.data(), false, d, dx.data(),
                            dg.data(), db.data());
    return std::vector<Vec>{y, dx, dg, db, invstd};
  };
  if (rows)
    c.reference =
        via_columns(B, C, {true, false, false, true, false, false}, {true, true, false, false, false}, ref);
  else
    c.reference = [=](const std::vector<Vec>& in) { return ref(in, NormDims{B, C, L}); };
  c.device_tol = 1e-5;
  c.grad = {3, {0, 1, 2}, {1, 2, 3}};
  if (relu) c.grad = {};
  return c;
}

OpCase sync_pieces_case(const char* name, int64_t B, int64_t C, int64_t L, bool rows = false) {
  OpCase c;
  c.name = std::string("batch_norm/sync_pieces") + name;
  c.ops = {Op::batchnorm_stats, Op::channel_affine};
  c.inputs = {Shape{B, C, L}, Shape{C}, Shape{C}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor mean = zeros_like(in[1]), var = zeros_like(in[1]), y = zeros_like(in[0]), inplace = copy_of(in[0]);
    b.batchnorm_stats(in[0], mean, var);
    b.channel_affine(in[0], in[1], in[2], y);
    b.channel_affine(inplace, in[1], in[2], inplace);
    return Tensors{mean, var, y, inplace};
  };
  auto ref = [=](const std::vector<Vec>& in, const NormDims& d) {
    Vec mean(C), var(C), y(in[0].size());
    cpu::batchnorm_stats(in[0].data(), d, mean.data(), var.data());
    cpu::channel_affine(in[0].data(), in[1].data(), in[2].data(), d, y.data());
    Vec inplace = in[0];  // y += scale * x + shift with y = x
    for (size_t i = 0; i < y.size(); ++i) inplace[i] += y[i];
    return std::vector<Vec>{mean, var, y, inplace};
  };
  if (rows)
    c.reference = via_columns(B, C, {true, false, false}, {false, false, true, true}, ref);
  else
    c.reference = [=](const std::vector<Vec>& in) { return ref(in, NormDims{B, C, L}); };
  c.tol = 1e-6;
  c.device_tol = 1e-6;
  return c;
}

// Rows: (B * L, C, 1); the large ones split into the kernels' 64 chunks over 2 threads.
CPC_OP_CASES({train_case("encoder", 4, 6, 25), train_case("no_running_stats", 2, 3, 9, false),
              train_case("batch1", 1, 4, 16), eval_case("encoder", 3, 5, 14), sync_pieces_case("", 3, 5, 11),
              train_case("rows", 37, 6, 1, true, true), train_case("rows_large", 1500, 48, 1, true, true),
              eval_case("rows", 29, 5, 1, true), eval_case("rows_large", 1500, 48, 1, true),
              sync_pieces_case("_rows", 1500, 48, 1, true), train_case("overwrite", 4, 6, 25, true, false, true),
              train_case("rows_overwrite", 1500, 48, 1, true, true, true),
              train_case("relu", 4, 6, 25, true, false, false, true),
              train_case("rows_relu_overwrite", 1500, 48, 1, true, true, true, true),
              train_case("rows_relu", 37, 6, 1, true, true, false, true), eval_case("relu", 3, 5, 14, false, true),
              eval_case("rows_relu", 29, 5, 1, true, true)});

}  // namespace
}  // namespace cpc::ops_test
