#pragma once
// Rebuilds the CPC model a `train` checkpoint was made with (config stored inside).
#include <memory>
#include <string>

#include "models/cpc_model.h"

namespace cpc::tools {

struct CheckpointModel {
  std::string path;  // the checkpoint file
  std::unique_ptr<CpcModel> model;
};

// ckpt: a run directory or a checkpoint file. weights = false keeps the seeded
// initial weights of the same config (the untrained baseline).
CheckpointModel load_checkpoint_model(const std::string& ckpt, bool weights = true);

}  // namespace cpc::tools
