// Optimizers against torch.optim: 10 training steps of a small conv-BN-GRU-linear
// model reproduce PyTorch's losses (rel. 1e-4) and final weights; LR schedules and
// clipping against their formulas.
#include "engine/optim/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/optim/lr_schedule.h"
#include "engine/ops/ops.h"
#include "layers/batch_norm1d.h"
#include "layers/conv1d.h"
#include "layers/gru.h"
#include "layers/linear.h"
#include "tests/support/reference_case.h"

namespace cpc::test {
namespace {

// The reference script's SmallNet, with the same names.
class SmallNet : public Module {
 public:
  explicit SmallNet(Generator& gen) {
    conv = register_module("conv", std::make_unique<Conv1d>(2, 8, 5, Conv1dGeometry{2, 2, 1}, false, gen));
    bn = register_module("bn", std::make_unique<BatchNorm1d>(8));
    gru = register_module("gru", std::make_unique<GRU>(8, 16, 1, gen));
    head = register_module("head", std::make_unique<Linear>(16, 4, true, gen));
  }
  Var* forward(Var* x) {
    Var* h = ops::transpose(ops::relu(bn->forward(conv->forward(x))), 1, 2);
    return head->forward(gru->forward(h).output);
  }
  Conv1d* conv;
  BatchNorm1d* bn;
  GRU* gru;
  Linear* head;
};

class OptimizerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(OptimizerParity, TenStepsMatchTorchOptim) {
  const ReferenceCase c(GetParam());
  const auto& cfg = c.config();
  Generator gen(0);
  SmallNet net(gen);
  net.load_state_dict(c.state());
  const std::vector<Parameter*> params = net.parameters();
  std::unique_ptr<Optimizer> opt;
  const std::string name = cfg["optimizer"];
  if (name == "sgd") {
    SgdOptions o;
    o.lr = cfg["lr"], o.momentum = cfg["momentum"], o.dampening = cfg["dampening"];
    o.weight_decay = cfg["weight_decay"], o.nesterov = cfg["nesterov"];
    opt = std::make_unique<Sgd>(params, o);
  } else {
    AdamOptions o;
    o.lr = cfg["lr"], o.beta1 = cfg["betas"][0], o.beta2 = cfg["betas"][1], o.eps = cfg["eps"];
    o.weight_decay = cfg["weight_decay"], o.amsgrad = cfg["amsgrad"];
    opt = std::make_unique<Adam>(params, o, /*decoupled=*/name == "adamw");
  }
  const Tensor x = c.tensor("in/x"), target = c.tensor("in/target");
  const H5Array losses = c.expected("loss");
  Tape tape;
  TapeScope scope(tape);
  for (int step = 0; step < cfg["steps"].get<int>(); ++step) {
    opt->zero_grad();
    tape.reset();
    Var* loss = ops::mse_loss(net.forward(tape.var(x)), target);
    tape.backward(loss);
    if (!cfg["clip"].is_null()) clip_grad_norm(params, cfg["clip"].get<double>());
    opt->step();
    const double ours = loss->value.to_vector()[0], theirs = losses.values[static_cast<size_t>(step)];
    EXPECT_NEAR(ours, theirs, 1e-4 * std::fabs(theirs)) << "loss at step " << step;
  }
  // Weights and running stats after 10 steps (measured: <= 5e-6).
  for (auto& [n, t] : net.state_dict()) expect_close(t, c.expected("final/" + n), 1e-4, c.name() + " final " + n);
}

INSTANTIATE_TEST_SUITE_P(Cases, OptimizerParity,
                         ::testing::Values("adamw_10steps", "adam_amsgrad_10steps", "sgd_nesterov_10steps"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(LrSchedule, WarmupCosineFollowsItsFormula) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::warmup_cosine;
  s.base_lr = 1e-3, s.warmup_steps = 10, s.total_steps = 110, s.min_lr = 1e-5;
  EXPECT_DOUBLE_EQ(s.at(0), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(9), 1e-3);
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);
  EXPECT_NEAR(s.at(60), 1e-5 + 0.5 * (1e-3 - 1e-5), 1e-15);  // halfway: cos = 0
  EXPECT_DOUBLE_EQ(s.at(110), 1e-5);
  EXPECT_DOUBLE_EQ(s.at(500), 1e-5);
}

TEST(LrSchedule, NoamMatchesTheSeedRepository) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::noam;
  s.model_dim = 512, s.warmup_steps = 4000;
  // n = 1: 512^-0.5 * min(1, 4000^-1.5); peak at n = warmup.
  EXPECT_NEAR(s.at(0), std::pow(512.0, -0.5) * std::pow(4000.0, -1.5), 1e-15);
  EXPECT_NEAR(s.at(3999), std::pow(512.0, -0.5) * std::pow(4000.0, -0.5), 1e-15);
  EXPECT_NEAR(s.at(15999), std::pow(512.0, -0.5) * std::pow(16000.0, -0.5), 1e-15);
  EXPECT_GT(s.at(3999), s.at(3998));
  EXPECT_GT(s.at(3999), s.at(4000));
}

TEST(LrSchedule, UnknownNameIsAClearError) {
  try {
    LrSchedule::parse("cosine_restarts");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected constant, warmup_cosine or noam"), std::string::npos);
  }
}

TEST(ClipGradNorm, ScalesToMaxNormAndReportsTheNormBefore) {
  Parameter a(Tensor::zeros({2})), b(Tensor::zeros({1}));
  a.grad = Tensor::from_vector({2}, {3.f, 0.f});
  b.grad = Tensor::from_vector({1}, {4.f});
  const double n = clip_grad_norm({&a, &b}, 1.0);
  EXPECT_DOUBLE_EQ(n, 5.0);
  EXPECT_NEAR(a.grad.to_vector()[0], 3.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(b.grad.to_vector()[0], 4.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(grad_norm({&a, &b}), 1.0, 1e-6);
  // Below the limit nothing changes.
  EXPECT_NEAR(clip_grad_norm({&a, &b}, 10.0), 1.0, 1e-6);
  EXPECT_NEAR(grad_norm({&a, &b}), 1.0, 1e-6);
}

TEST(OptimizerState, RoundTripsExactly) {
  Generator gen(3);
  Parameter p(gen.uniform_tensor({5}, -1, 1));
  AdamOptions o;
  o.amsgrad = true;
  Adam a(std::vector<Parameter*>{&p}, o, true), b(std::vector<Parameter*>{&p}, o, true);
  p.grad = gen.uniform_tensor({5}, -1, 1);
  a.step();
  a.step();
  b.load_state(a.state());
  EXPECT_EQ(b.steps(), 2);
  const Tensor before = p.value.clone();
  a.step();
  const std::vector<float> after_a = p.value.to_vector();
  p.value.copy_from(before);
  b.step();
  EXPECT_EQ(p.value.to_vector(), after_a);
}

// The step count survives a checkpoint exactly past 2^24 (where a float's integers end):
// Adam's bias correction depends on it.
TEST(OptimizerState, StepCountIsExactBeyondFloat) {
  Generator gen(4);
  Parameter p(gen.uniform_tensor({3}, -1, 1));
  Adam a(std::vector<Parameter*>{&p}, AdamOptions{}, true), b(std::vector<Parameter*>{&p}, AdamOptions{}, true);
  std::map<std::string, Tensor> s = a.state();
  const int64_t big = (int64_t{1} << 24) + 3;  // 16777219: a float rounds it to 16777220
  s["step_high"] = Tensor::from_vector({}, {1.f});
  s["step_low"] = Tensor::from_vector({}, {3.f});
  a.load_state(s);
  EXPECT_EQ(a.steps(), big);
  b.load_state(a.state());
  EXPECT_EQ(b.steps(), big);
  std::map<std::string, Tensor> old = a.state();  // a checkpoint from before the split: "step" alone
  old.erase("step_high"), old.erase("step_low");
  b.load_state(old);
  EXPECT_EQ(b.steps(), int64_t{16777220});  // what a float could hold
}

}  // namespace
}  // namespace cpc::test
