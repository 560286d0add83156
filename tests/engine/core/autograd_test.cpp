// Tape mechanics: accumulation, no_grad, eval mode, errors, and float32 finite
// differences through the op layer (catches wiring mistakes in engine/ops/ops.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>

#include "engine/core/error.h"
#include "engine/ops/ops.h"
#include "engine/core/random.h"
#include "layers/activations.h"
#include "layers/batch_norm1d.h"
#include "layers/linear.h"
#include "layers/residual_block1d.h"

namespace cpc {
namespace {

TEST(Autograd, GradientsAccumulateOverUsesAndCalls) {
  Tape tape;
  TapeScope s(tape);
  Parameter p(Tensor::from_vector({3}, {1.f, 2.f, 3.f}));
  Var* y = ops::sum(ops::add(&p, &p));  // d/dp = 2
  tape.backward(y);
  EXPECT_EQ(p.grad.to_vector(), std::vector<float>({2.f, 2.f, 2.f}));
  tape.reset();
  tape.backward(ops::sum(&p));  // parameters accumulate until zero_grad
  EXPECT_EQ(p.grad.to_vector(), std::vector<float>({3.f, 3.f, 3.f}));
  p.zero_grad();
  EXPECT_EQ(p.grad.to_vector(), std::vector<float>({0.f, 0.f, 0.f}));
}

TEST(Autograd, NoGradRecordsNothing) {
  Tape tape;
  TapeScope s(tape);
  Parameter p(Tensor::from_vector({2}, {1.f, 2.f}));
  {
    NoGradGuard g;
    Var* y = ops::relu(&p);
    EXPECT_FALSE(y->requires_grad);
    EXPECT_EQ(tape.num_nodes(), 0u);
    EXPECT_THROW(tape.backward(ops::sum(y)), Error);
  }
  EXPECT_TRUE(ops::relu(&p)->requires_grad);
  EXPECT_EQ(tape.num_nodes(), 1u);
}

TEST(Autograd, ConstantsGetNoGradient) {
  Tape tape;
  TapeScope s(tape);
  Parameter w(Tensor::from_vector({1, 2}, {1.f, -1.f}));
  Var* x = tape.var(Tensor::from_vector({1, 2}, {3.f, 4.f}));
  tape.backward(ops::sum(ops::linear(x, &w, nullptr)));
  EXPECT_FALSE(x->grad.defined());
  EXPECT_EQ(w.grad.to_vector(), std::vector<float>({3.f, 4.f}));
}

TEST(Autograd, BatchNormEvalUsesAndKeepsRunningStats) {
  Tape tape;
  TapeScope s(tape);
  BatchNorm1d bn(2);
  bn.running_mean->f32()[0] = 1.f;
  bn.running_var->f32()[0] = 4.f;
  bn.eval();
  Var* y = bn.forward(tape.var(Tensor::from_vector({1, 2, 1}, {3.f, 5.f})));
  EXPECT_NEAR(y->value.to_vector()[0], (3.f - 1.f) / std::sqrt(4.f + 1e-5f), 1e-6);
  EXPECT_EQ(bn.running_mean->to_vector()[0], 1.f);
  EXPECT_EQ(bn.num_batches_tracked->to_vector()[0], 0.f);
  bn.train();
  bn.forward(tape.var(Tensor::from_vector({2, 2, 1}, {3.f, 5.f, 5.f, 7.f})));
  EXPECT_NEAR(bn.running_mean->to_vector()[0], 0.9f * 1.f + 0.1f * 4.f, 1e-6);
  EXPECT_NEAR(bn.running_var->to_vector()[0], 0.9f * 4.f + 0.1f * 2.f, 1e-6);  // unbiased var of {3, 5}
}

// BatchNorm1d::forward_relu (one op: batch_norm with relu) computes what relu(forward)
// computes, bit for bit: values, the input's and the parameters' gradients, in both
// layouts, in training and eval. Sequential and the residual block use it.
TEST(Autograd, FusedBatchNormReluEqualsBatchNormThenRelu) {
  for (const bool channels_last : {false, true})
    for (const bool training : {true, false}) {
      SCOPED_TRACE(std::string(channels_last ? "channels-last" : "(B, C, L)") + (training ? ", training" : ", eval"));
      Generator gen(9);
      const Shape s = channels_last ? Shape{3, 11, 5} : Shape{3, 5, 11};
      const Tensor x0 = gen.normal_tensor(s, 0, 1), dy = gen.normal_tensor(s, 0, 1);
      const Tensor g0 = gen.normal_tensor({5}, 1, 0.5), b0 = gen.normal_tensor({5}, 0, 0.5),
                   v0 = gen.uniform_tensor({5}, 0.5f, 1.5f);
      auto run = [&](bool fused) {
        BatchNorm1d bn(5);
        bn.channels_last = channels_last;
        bn.weight->value.copy_from(g0), bn.bias->value.copy_from(b0);
        bn.running_mean->copy_from(b0), bn.running_var->copy_from(v0);
        bn.train(training);
        Parameter x(x0.clone());
        Tape tape;
        TapeScope scope(tape);
        Var* y = fused ? bn.forward_relu(&x) : ops::relu(bn.forward(&x));
        tape.backward({{y, dy}});
        return std::vector<std::vector<float>>{y->value.to_vector(), x.grad.to_vector(), bn.weight->grad.to_vector(),
                                               bn.bias->grad.to_vector()};
      };
      const auto fused = run(true), apart = run(false);
      const char* what[] = {"y", "dx", "dweight", "dbias"};
      for (size_t i = 0; i < fused.size(); ++i) EXPECT_EQ(fused[i], apart[i]) << what[i];
    }
}

TEST(Autograd, DropoutKeepsAboutOneMinusPAndScales) {
  Tape tape;
  TapeScope s(tape);
  Var* x = tape.var(Tensor::from_vector({100000}, std::vector<float>(100000, 1.f)));
  const std::vector<float> y = ops::dropout(x, 0.25f, 7)->value.to_vector();
  int kept = 0;
  for (float v : y) {
    if (v != 0.f) {
      ++kept;
      EXPECT_FLOAT_EQ(v, 1.f / 0.75f);
    }
  }
  EXPECT_NEAR(kept / 100000.0, 0.75, 0.01);
  EXPECT_EQ(ops::dropout(x, 0.25f, 7)->value.to_vector(), y);  // same seed, same mask
  EXPECT_NE(ops::dropout(x, 0.25f, 8)->value.to_vector(), y);
  EXPECT_EQ(ops::dropout(x, 0.f, 7), x);
}

// A resumed run draws the dropout masks of the uninterrupted one: they are a function of
// (seed, step, call within the step), not of a counter that a checkpoint would lose.
TEST(Autograd, DropoutMasksDependOnTheStepNotOnHistory) {
  Tape tape;
  TapeScope s(tape);
  Var* x = tape.var(Tensor::from_vector({64}, std::vector<float>(64, 1.f)));
  auto masks = [&](Dropout& d, int64_t first, int64_t last) {
    std::vector<std::vector<float>> out;
    for (int64_t step = first; step < last; ++step) {
      d.set_step(step);
      for (int call = 0; call < 2; ++call) out.push_back(d.forward(x)->value.to_vector());
    }
    return out;
  };
  Dropout full(0.5f, 9), resumed(0.5f, 9);
  const auto a = masks(full, 0, 4), b = masks(resumed, 2, 4);
  ASSERT_EQ(b.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(b[i], a[4 + i]) << "mask " << i;
  EXPECT_NE(a[0], a[1]);  // two calls in a step differ
  EXPECT_NE(a[0], a[2]);  // and steps differ
}

TEST(OpErrors, ConvChannelMismatchSaysExpectedAndFound) {
  Tape tape;
  TapeScope s(tape);
  Parameter w(Tensor::zeros({4, 3, 5}));
  Var* x = tape.var(Tensor::zeros({2, 2, 30}));
  try {
    ops::conv1d(x, &w, nullptr, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "conv1d_forward on cpu: x (2, 2, 30) has 2 channels, the weight (4, 3, 5) expects 3");
  }
  Var* short_x = tape.var(Tensor::zeros({2, 3, 4}));
  EXPECT_THROW(ops::conv1d(short_x, &w, nullptr, {}), Error);
  Var* flat = tape.var(Tensor::zeros({2, 30}));
  try {
    ops::conv1d(flat, &w, nullptr, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "conv1d input: expected a 3-D tensor (B, Cin, L), found shape (2, 30)");
  }
}

TEST(OpErrors, LinearAndGruShapes) {
  Tape tape;
  TapeScope s(tape);
  Generator gen(1);
  Linear lin(8, 4, true, gen);
  try {
    lin.forward(tape.var(Tensor::zeros({3, 7})));
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "linear: input (3, 7) must end in Din = 8 (weight (4, 8))");
  }
}

// --- float32 finite differences through the tape ---------------------------------

// loss = sum(f(inputs) * dy) evaluated in double on the host.
double eval_loss(const std::function<Var*()>& f, const std::vector<float>& dy) {
  Tape tape;
  TapeScope s(tape);
  NoGradGuard g;
  const std::vector<float> y = f()->value.to_vector();
  double l = 0;
  for (size_t i = 0; i < y.size(); ++i) l += static_cast<double>(y[i]) * dy[i];
  return l;
}

// Checks the gradient of every parameter in ps by central differences (h = 1e-2,
// tolerance 2e-2 of the largest gradient: fp32 forward passes).
void fd_check_tape(const std::string& what, const std::function<Var*()>& f, const std::vector<Parameter*>& ps) {
  std::vector<float> dy;
  {
    Tape tape;
    TapeScope s(tape);
    Var* y = f();
    Generator gen(11);
    Tensor seed = gen.normal_tensor(y->value.shape(), 0.f, 1.f);
    dy = seed.to_vector();
    for (Parameter* p : ps) p->zero_grad();
    tape.backward({{y, seed}});
  }
  for (size_t k = 0; k < ps.size(); ++k) {
    Parameter* p = ps[k];
    const std::vector<float> g = p->grad.to_vector();
    double scale = 1e-2;
    for (float v : g) scale = std::max(scale, static_cast<double>(std::fabs(v)));
    float* v = p->value.f32();
    const int64_t n = p->value.numel();
    for (int64_t s = 0; s < std::min<int64_t>(n, 12); ++s) {
      const int64_t i = (s * 7919) % n;
      const float keep = v[i];
      v[i] = keep + 1e-2f;
      const double lp = eval_loss(f, dy);
      v[i] = keep - 1e-2f;
      const double lm = eval_loss(f, dy);
      v[i] = keep;
      EXPECT_NEAR(g[i], (lp - lm) / 2e-2, 2e-2 * scale) << what << " param " << k << " index " << i;
    }
  }
}

TEST(TapeGradcheck, LinearSelectReshapeMse) {
  Generator gen(5);
  Linear lin(6, 5, true, gen);
  Parameter x(gen.normal_tensor({2, 4, 6}, 0, 1));
  const Tensor target = gen.normal_tensor({2, 5}, 0, 1);
  auto f = [&] {
    Var* y = ops::select(lin.forward(&x), 1, 2);  // (2, 5)
    Var* r = ops::reshape(ops::mean_pool(ops::reshape(y, {2, 5, 1}), 2), {2, 5});
    return ops::reshape(ops::mse_loss(ops::gelu(r), target), {1});
  };
  fd_check_tape("linear/select/mse", f, {&x, lin.weight, lin.bias});
}

// add's backward hands its gradient to the first input without one (shared storage) and
// copies it for a second; relu and transpose overwrite a first gradient instead of adding
// into zeros. Here u reaches add twice and as a first and a later gradient, and t = s + s.
TEST(TapeGradcheck, SharedAndOverwrittenFirstGradients) {
  Generator gen(7);
  Parameter x(gen.normal_tensor({2, 3, 5}, 0, 1));
  auto f = [&] {
    Var* u = ops::relu(&x);
    Var* v = ops::gelu(ops::transpose(&x, 1, 2));  // (2, 5, 3)
    Var* s = ops::add(u, ops::transpose(v, 1, 2));
    Var* t = ops::add(s, u);
    return ops::gelu(ops::add(t, t));
  };
  fd_check_tape("add/relu/transpose", f, {&x});
}

TEST(TapeGradcheck, ResidualBlockWithDownsample) {
  Generator gen(6);
  ResidualBlock1d blk(3, 4, 3, 2, NormKind::channel, gen);
  Parameter x(gen.normal_tensor({2, 3, 13}, 0, 1));
  auto f = [&] { return ops::max_pool(blk.forward(&x), 2); };
  std::vector<Parameter*> ps{&x};
  for (Parameter* p : blk.parameters()) ps.push_back(p);
  fd_check_tape("resblock", f, ps);
}

}  // namespace
}  // namespace cpc

// Threads with their own tapes may run CPU ops at the same time: scratch memory and the
// oneDNN primitive cache are per thread (they were shared: a second thread's larger
// request reallocated the first one's workspace mid-op).
#include <thread>

#include "layers/conv1d.h"
#include "layers/gru.h"

namespace cpc {
namespace {

std::vector<float> conv_gru_grads(int64_t B, int64_t L, uint64_t seed) {
  Generator gen(seed);
  Conv1d conv(8, 16, 5, Conv1dGeometry{1, 2, 1}, false, gen);
  GRU gru(16, 12, 1, gen);
  Tape tape;
  TapeScope scope(tape);
  Var* x = tape.var(gen.normal_tensor({B, 8, L}, 0, 1), true);
  Var* y = ops::transpose(conv.forward(x), 1, 2);  // (B, L, 16)
  Var* loss = ops::sum(ops::scale(gru.forward(y).output, 0.5f));
  tape.backward(loss);
  std::vector<float> out = x->grad.to_vector();
  const std::vector<float> w = conv.weight->grad.to_vector();
  out.insert(out.end(), w.begin(), w.end());
  return out;
}

TEST(Threads, TapesOnSeveralThreadsComputeWhatOneThreadComputes) {
  const std::vector<float> a = conv_gru_grads(2, 300, 1), b = conv_gru_grads(6, 900, 2);
  for (int round = 0; round < 3; ++round) {
    std::vector<float> ta, tb;
    std::thread t1([&] { ta = conv_gru_grads(2, 300, 1); });
    std::thread t2([&] { tb = conv_gru_grads(6, 900, 2); });
    t1.join();
    t2.join();
    EXPECT_EQ(ta, a) << "round " << round;
    EXPECT_EQ(tb, b) << "round " << round;
  }
}

}  // namespace
}  // namespace cpc
