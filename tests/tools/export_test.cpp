// export -> safetensors -> tools/python/load_encoder.py builds the PyTorch module, loads it
// with load_state_dict(strict=True) and reproduces our encoder's output (real PyTorch,
// Debian's /usr/bin/python3).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "engine/data/h5_file.h"
#include "engine/data/safetensors_file.h"
#include "tools/training/checkpoint_model.h"
#include "tools/cli/export_command.h"
#include "tools/prepare/synth_ecg.h"
#include "tools/cli/train_command.h"

namespace cpc::tools {
namespace {

const std::string kDir = "/tmp/cpc_export_test_" + std::to_string(getpid());

TEST(Safetensors, RoundTrip) {
  std::filesystem::create_directories(kDir);
  Generator gen(1);
  std::map<std::string, Tensor> t{{"a.weight", gen.normal_tensor({3, 4}, 0, 1)}, {"b", gen.normal_tensor({5}, 0, 1)}};
  save_safetensors(kDir + "/t.safetensors", t, {{"k", "v"}});
  std::map<std::string, std::string> meta;
  const auto back = load_safetensors(kDir + "/t.safetensors", &meta);
  EXPECT_EQ(meta.at("k"), "v");
  EXPECT_EQ(back.at("a.weight").to_vector(), t.at("a.weight").to_vector());
  EXPECT_EQ(back.at("b").shape(), Shape({5}));
}

class ExportTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ExportTest, PyTorchLoadsStrictlyAndReproducesZ) {
  const std::string part = GetParam(), dir = kDir + "/" + part;
  std::filesystem::create_directories(dir);
  SynthEcgOptions o;
  o.recordings = 8, o.seconds = 3;
  write_synthetic_ecg(dir + "/ecg.h5", o);
  TrainArgs t;
  t.config = CPC_SOURCE_DIR "/models/configs/ecg12.json";
  t.data = dir + "/ecg.h5", t.out = dir + "/run", t.steps = 2, t.quiet = true;
  t.overrides = {"data.window=1024", "train.batch_size=4"};
  ASSERT_EQ(run_train(t), 0);
  ExportArgs e{dir + "/run", dir + "/enc.safetensors", part};
  ASSERT_EQ(run_export(e), 0);

  // Our encoder's z in eval mode on a fixed input.
  CheckpointModel m = load_checkpoint_model(dir + "/run");
  m.model->eval();
  Generator gen(3);
  const Tensor x = gen.normal_tensor({2, 12, 1024}, 0, 1);
  Tape tape;
  TapeScope scope(tape);
  NoGradGuard ng;
  const Tensor z = m.model->encode(tape.var(x)).z->value;
  {
    H5File f(dir + "/check.h5", H5File::Mode::create);
    f.write("x", x);
    f.write("z", z);
    f.commit();
  }
  const std::string cmd = "/usr/bin/python3 " CPC_SOURCE_DIR "/tools/python/load_encoder.py " + dir +
                          "/enc.safetensors --check " + dir + "/check.h5";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Parts, ExportTest, ::testing::Values("encoder", "model"));

}  // namespace
}  // namespace cpc::tools
