// CPC models from the shipped JSON configs: shapes, PyTorch names (the audio config
// loads seed 004's PyTorch state dict strictly and reproduces its z and c), config
// validation messages, and a few AdamW steps that lower the InfoNCE loss.
#include "models/cpc_model.h"

#include <gtest/gtest.h>

#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "tests/support/reference_case.h"

namespace cpc::test {
namespace {

const std::string kConfigs = CPC_SOURCE_DIR "/models/configs/";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(CpcConfig, ShippedConfigsLoad) {
  const CpcConfig audio = CpcConfig::load(kConfigs + "audio_cdck2.json");
  EXPECT_EQ(audio.encoder.downsampling(), 160);
  EXPECT_EQ(audio.encoder.out_length(audio.window), 128);
  EXPECT_EQ(audio.encoder.out_channels(), 512);
  EXPECT_EQ(audio.K, 12);
  const CpcConfig ecg = CpcConfig::load(kConfigs + "ecg12.json");
  EXPECT_EQ(ecg.channels, 12);
  EXPECT_EQ(ecg.encoder.out_channels(), 128);
  EXPECT_EQ(ecg.context, 256);
  EXPECT_GE(ecg.encoder.out_length(ecg.window), ecg.K + 1);
}

TEST(CpcConfig, ErrorsNameTheKeyAndWhatWasExpected) {
  const std::string path = kConfigs + "ecg12.json";
  EXPECT_NE(error_of([&] {
              CpcConfig::load(path, {"train.batch_sise=4"});
            }).find("configs/ecg12.json: train: unknown key 'batch_sise' (expected batch_size,"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              CpcConfig::load(path, {"train.batch_size=\"eight\""});
            }).find("ecg12.json: train.batch_size: expected an integer >= 1, found \"eight\""),
            std::string::npos);
  EXPECT_NE(
      error_of([&] {
        CpcConfig::load(path, {"data.window=500"});
      }).find("ecg12.json: data.window: 500 samples encode to 8 steps (downsampling 64), too few for loss.K = 12"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              CpcConfig::load(path, {"train.batch_size=-4"});
            }).find("ecg12.json: train.batch_size: expected an integer >= 1, found -4"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              CpcConfig::load(path, {"loss.score=cos"});
            }).find("ecg12.json: loss.score: 'cos' is not one of dot, scaled_dot, cosine"),
            std::string::npos);
  EXPECT_NE(error_of([&] { CpcConfig::load(path, {"model.size=3"}); }).find("--set model.size: no key 'model'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { CpcConfig::load(path, {"nokey"}); }).find("expected key.path=value"), std::string::npos);
  EXPECT_NE(error_of([&] { CpcConfig::load("/nonexistent.json"); }).find("cannot open the config file"),
            std::string::npos);
}

TEST(CpcConfig, OverridesApply) {
  const CpcConfig c = CpcConfig::load(kConfigs + "ecg12.json", {"train.batch_size=8", "loss.t_mode=last"});
  EXPECT_EQ(c.train.batch_size, 8);
  EXPECT_EQ(c.loss.t_mode, InfoNceOptions::TMode::last);
}

TEST(CpcModel, AudioConfigIsSeed004WithPyTorchNames) {
  const ReferenceCase ref("seed004_network");
  Generator gen(0);
  CpcModel model(CpcConfig::load(kConfigs + "audio_cdck2.json"), gen);
  model.load_state_dict(ref.state(), /*strict=*/true);  // every name and shape matches PyTorch's
  Tape tape;
  TapeScope scope(tape);
  NoGradGuard no_grad;  // train-mode BatchNorm, as the reference
  const CpcModel::Encoded e = model.encode(tape.var(ref.tensor("in/x")));
  expect_close(e.z->value, ref.expected("out/z"), 1e-4, "z");
  const int64_t t = ref.config()["t"];
  // The reference ran the GRU on z[:, :t+1]; a causal GRU's prefix is the same.
  Var* c_prefix = ops::narrow(e.c, 1, 0, t + 1);
  expect_close(c_prefix->value, ref.expected("out/c"), 1e-4, "c");
}

TEST(CpcModel, Ecg12TrainsOnAFixedBatch) {
  Generator gen(1);
  CpcModel model(CpcConfig::load(kConfigs + "ecg12.json", {"data.window=1024"}), gen);
  EXPECT_NE(model.state_dict().count("encoder.3.conv1.weight"), 0u);  // first residual block
  EXPECT_NE(model.state_dict().count("Wk.11.weight"), 0u);
  const Tensor x = gen.normal_tensor({4, 12, 1024}, 0, 1);
  AdamOptions o;
  o.lr = 1e-3f;
  Adam opt(model.parameters(), o, /*decoupled=*/true);
  Tape tape;
  TapeScope scope(tape);
  double first = 0, last = 0;
  for (int step = 0; step < 6; ++step) {
    tape.reset();
    opt.zero_grad();
    const InfoNceResult& r = model.loss(tape.var(x), &gen);
    const double l = r.loss->value.to_vector()[0];
    ASSERT_TRUE(std::isfinite(l));
    if (step == 0) first = l;
    last = l;
    tape.backward(r.loss);
    opt.step();
  }
  EXPECT_LT(last, first - 0.1);
}

}  // namespace
}  // namespace cpc::test
