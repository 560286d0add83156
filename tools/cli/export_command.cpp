#include "tools/cli/export_command.h"

#include <cstdio>

#include "engine/core/error.h"
#include "engine/data/safetensors_file.h"
#include "tools/training/checkpoint_model.h"
#include "tools/cli/output_path.h"

namespace cpc::tools {

int run_export(const ExportArgs& a) {
  CPC_CHECK(a.part == "encoder" || a.part == "model", "export: --part '", a.part, "': expected encoder or model");
  check_output_path(a.out);
  const CheckpointModel loaded = load_checkpoint_model(a.ckpt);
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : loaded.model->state_dict()) {
    if (a.part == "model") {
      out[name] = t;
    } else if (name.rfind("encoder.", 0) == 0) {
      out[name.substr(8)] = t;  // names of the encoder nn.Sequential itself: "0.weight", ...
    }
  }
  save_safetensors(a.out, out,
                   {{"format", "pt"},
                    {"part", a.part},
                    {"config", loaded.model->config().source.dump()},
                    {"producer", "cpc-engine"}});
  std::printf("wrote %s: %s, %zu tensors; load in PyTorch with tools/python/load_encoder.py %s\n", a.out.c_str(),
              a.part.c_str(), out.size(), a.out.c_str());
  return 0;
}

}  // namespace cpc::tools
