#include "tools/training/checkpoint_model.h"

#include "engine/core/error.h"
#include "tools/training/checkpoint.h"

namespace cpc::tools {

CheckpointModel load_checkpoint_model(const std::string& ckpt, bool weights) {
  const Checkpoint c = read_checkpoint(ckpt, /*with_optimizer=*/false);
  CheckpointModel out;
  out.path = c.path;
  const CpcConfig cfg = CpcConfig::from_json(c.config, out.path + ": config:");
  Generator gen(static_cast<uint64_t>(cfg.train.seed));
  out.model = std::make_unique<CpcModel>(cfg, gen);
  if (weights) out.model->load_state_dict(c.model, /*strict=*/true);
  return out;
}

}  // namespace cpc::tools
