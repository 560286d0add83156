// The product works end to end: 200 training steps of ecg12 on synthetic 12-lead ECG
// lower the InfoNCE loss below a stated bound, and a linear probe of the rhythm class
// on the trained encoder's features beats the same probe on the untrained encoder.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tools/cli/embed_command.h"
#include "tools/prepare/synth_ecg.h"
#include "tools/cli/probe_command.h"
#include "tools/cli/train_command.h"

namespace cpc::tools {
namespace {

const std::string kDir = "/tmp/cpc_learns_test_" + std::to_string(getpid());

TEST(CpcLearns, TwoHundredStepsOnSyntheticEcgBeatRandomInit) {
  std::filesystem::create_directories(kDir);
  SynthEcgOptions o;
  o.recordings = 250;
  o.seconds = 10;
  write_synthetic_ecg(kDir + "/ecg.h5", o);

  TrainArgs t;
  t.config = CPC_SOURCE_DIR "/models/configs/ecg12.json";
  t.data = kDir + "/ecg.h5";
  t.out = kDir + "/run";
  t.steps = 200;
  t.seed = 0;
  t.quiet = true;
  // Batch negatives: the thresholds below are against their chance level, ln 16.
  t.overrides = {"loss.negatives=batch", "train.validate_every=100"};
  ASSERT_EQ(run_train(t), 0);

  std::vector<double> loss, val_loss;
  std::ifstream f(kDir + "/run/metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    loss.push_back(j["loss"]);
    if (j.contains("val_loss")) val_loss.push_back(j["val_loss"]);
  }
  ASSERT_EQ(loss.size(), 200u);
  ASSERT_EQ(val_loss.size(), 2u);
  double first = 0, last = 0;
  for (int i = 0; i < 20; ++i) first += loss[static_cast<size_t>(i)] / 20, last += loss[loss.size() - 1 - i] / 20;
  std::printf("InfoNCE loss: first 20 steps %.3f, last 20 steps %.3f (ln 16 = 2.773); validation %.3f -> %.3f\n",
              first, last, val_loss[0], val_loss[1]);
  EXPECT_LT(last, 1.0);  // chance is ln(batch 16) = 2.77
  EXPECT_LT(val_loss[1], 1.5);

  auto probe = [&](bool random_init, const std::string& feature) {
    for (const char* split : {"train", "test"}) {
      EmbedArgs e;
      e.ckpt = kDir + "/run";
      e.data = kDir + "/ecg.h5";
      e.out = kDir + "/" + (random_init ? "rnd_" : "emb_") + split + ".h5";
      e.split = split;
      e.random_init = random_init;
      if (!std::filesystem::exists(e.out)) {
        EXPECT_EQ(run_embed(e), 0);
      }
    }
    ProbeArgs p;
    const std::string prefix = kDir + "/" + (random_init ? "rnd_" : "emb_");
    p.train = prefix + "train.h5", p.test = prefix + "test.h5", p.label = "rhythm", p.feature = feature;
    return fit_probe(p).accuracy;
  };
  const double trained = probe(false, "context"), random = probe(true, "context");
  std::printf("rhythm probe on the last context: CPC-trained %.3f, random-init %.3f\n", trained, random);
  EXPECT_GT(trained, random + 0.1);
  // Chance is 0.2. The synthetic set's classes overlap in heart rate and its recording
  // conditions vary widely, so 200 steps on 250 recordings reach ~0.5 (0.51 measured).
  EXPECT_GT(trained, 0.4);
  std::filesystem::remove_all(kDir);
}

}  // namespace
}  // namespace cpc::tools
