// A whole CPC training step on CUDA against the CPU: the ecg12 model (1-D ResNet
// encoder, GRU 256, K = 12 InfoNCE over all t) at window 1024 and batch 4, with the
// config's channel LayerNorm and with BatchNorm, the same weights and batch on both
// devices. Compared: the loss, the accuracy per k, every parameter gradient, the
// BatchNorm running statistics, the global gradient norm, and the loss of a second
// step after one AdamW update (which checks the optimizer and the updated weights).
//
// Tolerances: loss 1e-4 relative; gradients 1e-3 of each tensor's largest magnitude
// (fp32 differences of ~1e-6 per op compound through ~30 layers and 16 GRU steps);
// accuracy per k within one row (a near-tie may flip on a 1e-6 score difference).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "models/cpc_model.h"
#include "tests/gpu/cuda_test_util.h"
#include "tools/cli/source_dir.h"

namespace cpc {
namespace {

using namespace gpu_test;

struct StepResult {
  double loss = 0, loss_after_update = 0, grad_norm = 0;
  std::vector<double> accuracy_per_k;
  int64_t rows = 0;
  std::map<std::string, std::vector<float>> grads, buffers;
};

StepResult run_step(CpcModel& model, const Tensor& x) {
  StepResult out;
  AdamOptions o;
  o.lr = 1e-3f;
  o.weight_decay = 0.01f;
  Adam opt(model.parameters(), o, /*decoupled=*/true);
  Tape tape;
  TapeScope scope(tape);
  Generator rng(11);
  model.train(true);
  opt.zero_grad();
  const InfoNceResult& r = model.loss(tape.var(x), &rng);
  out.loss = r.loss->value.to_vector()[0];
  out.accuracy_per_k = r.accuracy_per_k;
  out.rows = r.num_t * x.size(0);
  tape.backward(r.loss);
  for (const auto& [name, p] : model.named_parameters()) out.grads[name] = p->grad.to_vector();
  for (const auto& [name, b] : model.named_buffers()) out.buffers[name] = b->to_vector();
  out.grad_norm = grad_norm(model.parameters());
  opt.step();
  tape.reset();
  opt.zero_grad();
  out.loss_after_update = model.loss(tape.var(x), &rng).loss->value.to_vector()[0];
  return out;
}

class CudaCpcStep : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaCpcStep, Ecg12StepMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  const std::string norm = GetParam();
  const CpcConfig cfg = CpcConfig::load(tools::source_path("models/configs/ecg12.json"),
                                        {"data.window=1024", "train.batch_size=4", "encoder.norm=" + norm});
  Generator init(7);
  CpcModel cpu_model(cfg, init);
  Generator init2(8);  // different weights on purpose: the load below must make them equal
  CpcModel gpu_model(cfg, init2);
  gpu_model.to(Device::cuda());
  gpu_model.load_state_dict(cpu_model.state_dict(), /*strict=*/true);

  Generator data(3);
  const Tensor x = data.normal_tensor({cfg.train.batch_size, cfg.channels, cfg.window}, 0, 1);
  const StepResult want = run_step(cpu_model, x);
  const StepResult got = run_step(gpu_model, x.to(Device::cuda()));

  EXPECT_TRUE(close(got.loss, want.loss, "loss", 1e-4));
  ASSERT_EQ(got.accuracy_per_k.size(), want.accuracy_per_k.size());
  for (size_t k = 0; k < want.accuracy_per_k.size(); ++k)
    EXPECT_NEAR(got.accuracy_per_k[k], want.accuracy_per_k[k], 1.0 / static_cast<double>(want.rows) + 1e-12)
        << "k = " << k + 1;
  ASSERT_EQ(got.grads.size(), want.grads.size());
  for (const auto& [name, g] : want.grads) {
    ASSERT_EQ(got.grads.count(name), 1u) << name;
    EXPECT_TRUE(close_scaled(got.grads.at(name), g, "grad " + name, 1e-3));
  }
  for (const auto& [name, b] : want.buffers) EXPECT_TRUE(close_scaled(got.buffers.at(name), b, "buffer " + name, 1e-4));
  EXPECT_TRUE(close(got.grad_norm, want.grad_norm, "grad norm", 1e-3));
  EXPECT_TRUE(close(got.loss_after_update, want.loss_after_update, "loss after one AdamW step", 1e-3));
}

INSTANTIATE_TEST_SUITE_P(Norms, CudaCpcStep, ::testing::Values("channel", "batch"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace cpc
