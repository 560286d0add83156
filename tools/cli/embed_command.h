#pragma once
// `cpc-engine embed`: encoder features per window for downstream classifiers.
#include <cstdint>
#include <string>

namespace cpc::tools {

struct EmbedArgs {
  std::string ckpt;  // run directory or checkpoint file
  std::string data, out;
  std::string split = "all";  // all | train | test
  std::string device = "cpu";  // cpu | cuda | cuda:N
  int64_t windows_per_recording = 1;
  bool random_init = false;  // the untrained baseline of the same config
  int64_t batch = 32;
};

int run_embed(const EmbedArgs& args);

}  // namespace cpc::tools
