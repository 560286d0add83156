#include "tools/checkpoint_model.h"

#include <filesystem>

#include "engine/error.h"
#include "engine/h5_file.h"

namespace cpc::tools {

CheckpointModel load_checkpoint_model(const std::string& ckpt, bool weights) {
  CheckpointModel out;
  out.path = std::filesystem::is_directory(ckpt) ? ckpt + "/checkpoint.h5" : ckpt;
  H5File f(out.path, H5File::Mode::read);
  const CpcConfig cfg = CpcConfig::from_json(nlohmann::json::parse(f.attribute("", "config")), out.path + ": config:");
  Generator gen(static_cast<uint64_t>(cfg.train.seed));
  out.model = std::make_unique<CpcModel>(cfg, gen);
  if (weights) {
    std::map<std::string, Tensor> m;
    for (const std::string& n : f.datasets("model")) m[n.substr(6)] = f.read_tensor(n);
    out.model->load_state_dict(m, /*strict=*/true);
  }
  return out;
}

}  // namespace cpc::tools
