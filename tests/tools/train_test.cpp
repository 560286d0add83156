// `cpc-engine train` on synthetic ECG: metrics and checkpoints are written, the loss
// falls, a run stopped and resumed equals the uninterrupted run exactly, and an
// existing run is never overwritten.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "tools/prepare/synth_ecg.h"
#include "tools/cli/train_command.h"
#include "tools/training/trainer.h"

namespace cpc::tools {
namespace {

const std::string kDir = "/tmp/cpc_train_test_" + std::to_string(getpid());

std::vector<double> losses(const std::string& run) {
  std::vector<double> out;
  std::ifstream f(run + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) out.push_back(nlohmann::json::parse(line)["loss"]);
  return out;
}

class TrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::filesystem::create_directories(kDir);
    SynthEcgOptions o;
    o.recordings = 40;
    o.seconds = 4;
    write_synthetic_ecg(kDir + "/ecg.h5", o);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(kDir); }
  TrainArgs args(const std::string& run, int64_t steps) {
    TrainArgs a;
    a.config = CPC_SOURCE_DIR "/models/configs/ecg12.json";
    a.data = kDir + "/ecg.h5";
    a.out = kDir + "/" + run;
    a.steps = steps;
    a.seed = 7;
    a.quiet = true;
    a.overrides = {"data.window=1024", "train.batch_size=8", "train.warmup=2", "train.lr=0.002"};
    return a;
  }
  // Runs `a` stopped after `stop` steps, then continues it to the end with --resume (or
  // --resume auto, which must also start the first part fresh).
  static void stop_and_resume(const TrainArgs& a, int64_t stop, bool resume_auto = false) {
    TrainArgs first = a;
    first.stop_after = stop;
    first.resume_auto = resume_auto;
    ASSERT_EQ(run_train(first), 0);
    ASSERT_EQ(losses(a.out).size(), static_cast<size_t>(stop));
    TrainArgs second = a;
    second.resume = !resume_auto;
    second.resume_auto = resume_auto;
    ASSERT_EQ(run_train(second), 0);
  }
  // The two runs' losses are the same at every step (bit for bit).
  static void expect_same_losses(const std::string& run, const std::string& reference, size_t steps) {
    const std::vector<double> a = losses(run), b = losses(reference);
    ASSERT_EQ(a.size(), steps);
    ASSERT_EQ(b.size(), steps);
    for (size_t i = 0; i < steps; ++i) EXPECT_EQ(a[i], b[i]) << "step " << i + 1;
  }
};

TEST_F(TrainTest, ResumedRunEqualsTheUninterruptedOne) {
  ASSERT_EQ(run_train(args("full", 8)), 0);
  const std::vector<double> full = losses(kDir + "/full");
  ASSERT_EQ(full.size(), 8u);
  EXPECT_LT(full.back(), full.front());
  EXPECT_TRUE(std::filesystem::exists(kDir + "/full/checkpoint.h5"));

  // The same 8-step run, stopped after 4 steps (as Ctrl-C would) and resumed.
  stop_and_resume(args("resumed", 8), 4);
  expect_same_losses(kDir + "/resumed", kDir + "/full", 8);
}

// --resume auto: a fresh run where there is no checkpoint, a resume where there is one
// (the one job script for a first submission and every requeue).
TEST_F(TrainTest, ResumeAutoStartsFreshThenContinues) {
  stop_and_resume(args("auto", 6), 3, /*resume_auto=*/true);
  ASSERT_EQ(run_train(args("auto_full", 6)), 0);
  expect_same_losses(kDir + "/auto", kDir + "/auto_full", 6);
}

// Gradient accumulation stays bit-exact across a stop and resume.
TEST_F(TrainTest, AccumulationResumesExactly) {
  auto acc = [&](const std::string& run) {
    TrainArgs a = args(run, 6);
    a.overrides.push_back("train.accumulate_steps=3");
    a.overrides.push_back("train.batch_size=4");
    return a;
  };
  ASSERT_EQ(run_train(acc("acc_full")), 0);
  stop_and_resume(acc("acc_resumed"), 2);
  expect_same_losses(kDir + "/acc_resumed", kDir + "/acc_full", 6);
}

// Augmentation draws from (seed, step, micro-batch, rank, row) only: a stopped and resumed
// run augments exactly as the uninterrupted one, and augmentation changes the losses.
TEST_F(TrainTest, AugmentationResumesExactly) {
  auto aug = [&](const std::string& run) {
    TrainArgs a = args(run, 6);
    a.overrides.push_back(R"(data.augment={"noise_snr_db": [10, 30], "amplitude_scale": [0.8, 1.2],
        "baseline_wander": {"amplitude": [0, 0.2]}, "powerline": {"amplitude": [0, 0.05], "hz": 50},
        "time_mask": {"count": 2, "max_s": 0.1}, "lead_dropout": 0.1})");
    return a;
  };
  ASSERT_EQ(run_train(aug("aug_full")), 0);
  stop_and_resume(aug("aug_resumed"), 3);
  expect_same_losses(kDir + "/aug_resumed", kDir + "/aug_full", 6);
  ASSERT_EQ(run_train(args("aug_off", 6)), 0);
  EXPECT_NE(losses(kDir + "/aug_full")[0], losses(kDir + "/aug_off")[0]) << "augmentation changed nothing";
}

// Sampled negatives (with augmentation on): the draws are keyed by the step, so a
// stopped and resumed run equals the uninterrupted one bit for bit.
TEST_F(TrainTest, SampledNegativesResumeExactly) {
  auto sampled = [&](const std::string& run, int64_t count) {
    TrainArgs a = args(run, 6);
    a.overrides.push_back("loss.negatives_count=" + std::to_string(count));
    a.overrides.push_back("loss.negatives=batch_time");
    a.overrides.push_back(R"(data.augment={"noise_snr_db": [10, 30], "lead_dropout": 0.1})");
    return a;
  };
  ASSERT_EQ(run_train(sampled("neg_full", 5)), 0);
  stop_and_resume(sampled("neg_resumed", 5), 3);
  expect_same_losses(kDir + "/neg_resumed", kDir + "/neg_full", 6);
  ASSERT_EQ(run_train(sampled("neg_all", 0)), 0);
  EXPECT_NE(losses(kDir + "/neg_full")[0], losses(kDir + "/neg_all")[0]) << "sampling changed nothing";
}

// data.group_by through the command: batches from one rhythm each, resume bit-exact, and a
// label the file lacks is an error naming the labels it has.
TEST_F(TrainTest, GroupedBatchesResumeExactlyAndNameMissingLabels) {
  auto grouped = [&](const std::string& run, const std::string& label) {
    TrainArgs a = args(run, 6);
    a.overrides.push_back("data.group_by=" + label);
    return a;
  };
  ASSERT_EQ(run_train(grouped("group_full", "rhythm")), 0);
  stop_and_resume(grouped("group_resumed", "rhythm"), 3);
  expect_same_losses(kDir + "/group_resumed", kDir + "/group_full", 6);
  try {
    run_train(grouped("group_bad", "speaker"));
    ADD_FAILURE() << "an unknown label was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no label 'speaker' (the file has: rhythm)"), std::string::npos) << e.what();
  }
}

// An error in the middle of validation leaves the model in training mode with its
// communicator (the next training step must not run BatchNorm in eval mode).
TEST_F(TrainTest, EvaluateRestoresTrainingModeAfterAnError) {
  const CpcConfig cfg = CpcConfig::load(CPC_SOURCE_DIR "/models/configs/ecg12.json",
                                        {"data.window=1024", "encoder.norm=batch"});
  Trainer t(cfg);
  const Tensor wrong = Tensor::zeros({2, 5, 1024});  // 5 channels for a 12-lead model
  EXPECT_THROW(t.evaluate(wrong, 2), Error);
  EXPECT_TRUE(t.model().is_training());
  const EvalResult ok = t.evaluate(Tensor::zeros({2, 12, 1024}), 2);
  EXPECT_EQ(ok.windows, 2);
  EXPECT_TRUE(t.model().is_training());
}

TEST_F(TrainTest, NeverOverwritesAnExistingRun) {
  ASSERT_EQ(run_train(args("keep", 2)), 0);
  const auto before = std::filesystem::last_write_time(kDir + "/keep/checkpoint.h5");
  try {
    run_train(args("keep", 2));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already holds a checkpoint; pass --resume"), std::string::npos);
  }
  EXPECT_EQ(std::filesystem::last_write_time(kDir + "/keep/checkpoint.h5"), before);
}

TEST_F(TrainTest, ValidatesOnSplitOneEveryNStepsAndAtTheEnd) {
  TrainArgs a = args("val", 5);
  a.overrides.push_back("train.validate_every=2");
  ASSERT_EQ(run_train(a), 0);
  std::ifstream f(kDir + "/val/metrics.jsonl");
  std::string line;
  std::vector<int64_t> validated;
  while (std::getline(f, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (!j.contains("val_loss")) continue;
    validated.push_back(j["step"]);
    const double v = j["val_loss"], acc = j["val_accuracy"];
    EXPECT_GT(v, 0.0);
    EXPECT_LT(v, 10.0);  // about ln(batch 8) = 2.08 at the start
    EXPECT_GE(acc, 0.0);
    EXPECT_LE(acc, 1.0);
    EXPECT_EQ(j["val_accuracy_per_k"].size(), 12u);
  }
  EXPECT_EQ(validated, (std::vector<int64_t>{2, 4, 5}));
}

TEST_F(TrainTest, ResumeWithAnotherConfigIsAClearError) {
  ASSERT_EQ(run_train(args("other", 2)), 0);
  TrainArgs a = args("other", 4);
  a.resume = true;
  a.overrides.push_back("train.lr=0.01");
  try {
    run_train(a);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("was trained with another config"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/train/lr"), std::string::npos) << e.what();
  }
}

TEST_F(TrainTest, BadDataIsAClearError) {
  auto error_of = [&](TrainArgs a) {
    try {
      run_train(a);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  TrainArgs a = args("bad", 2);
  a.overrides.push_back("data.channels=3");
  EXPECT_NE(error_of(a).find("'signals' has 12 channels, the model expects 3"), std::string::npos) << error_of(a);
  // Recordings are 4 s at 500 Hz = 2000 samples: a 4096-sample window fits none.
  a = args("bad2", 2);
  a.overrides.push_back("data.window=4096");
  EXPECT_NE(error_of(a).find("no training recordings (split 0) at least 4096 samples long (40 shorter ones skipped)"),
            std::string::npos)
      << error_of(a);
  a = args("bad_device", 2);
  a.device = "cuda";  // no GPU here: built without CUDA, or no device present
  const std::string device_error = error_of(a);
  EXPECT_EQ(device_error.rfind("--device cuda: ", 0), 0u) << device_error;
  EXPECT_TRUE(device_error.find("without the CUDA backend") != std::string::npos ||
              device_error.find("no CUDA device present") != std::string::npos)
      << device_error;
  a = args("bad3", 2);
  a.out = "/proc/cpc_cannot_write_here/run";
  EXPECT_NE(error_of(a).find("/proc/cpc_cannot_write_here/run: cannot create or write the run directory"),
            std::string::npos)
      << error_of(a);
}

}  // namespace
}  // namespace cpc::tools
