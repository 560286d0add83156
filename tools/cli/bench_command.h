#pragma once
// `cpc-engine bench`: milliseconds per training step and samples/s of a config, with
// GFLOP/s against the measured sgemm peak; with --torch, the same model and step in
// PyTorch (tools/python/torch_train_step.py) alternate with ours in the same command: on the
// CPU against the tuned and the untuned peer (tools/cli/torch_process.h), on CUDA against
// PyTorch on the same GPU with the same TF32 and precision settings.
#include <cstdint>
#include <string>
#include <vector>

namespace cpc::tools {

struct BenchArgs {
  std::string config;
  int64_t batch = 0;  // 0: the config's train.batch_size
  int threads = 2;
  int rounds = 5;  // alternating rounds; medians are reported
  int steps = 3;   // timed steps per round and variant
  bool torch = false;
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::string tf32 = "off";     // CUDA: TF32 for GEMMs and convolutions, set on both sides
  std::vector<std::string> overrides;
  bool profile = false;  // per-op table of our default variant's timed steps
  std::string trace;     // Chrome trace JSON of 5 of them (implies profile)
};

int run_bench(const BenchArgs& args);

}  // namespace cpc::tools
