#pragma once
// `cpc-engine export`: a trained encoder (or whole model) as safetensors with
// PyTorch's names and layouts; tools/python/load_encoder.py builds the matching nn.Module.
#include <string>

namespace cpc::tools {

struct ExportArgs {
  std::string ckpt, out;
  std::string part = "encoder";  // encoder | model
};

int run_export(const ExportArgs& args);

}  // namespace cpc::tools
