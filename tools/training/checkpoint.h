#pragma once
// A training checkpoint (run/checkpoint.h5): model and optimizer state, the step and
// the config, in one HDF5 file written atomically (H5File::commit: temporary file,
// checked writes, fsync, rename). Reading verifies it: an HDF5 file written by
// `cpc-engine train`, every tensor's checksum and the file's, every value finite.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/core/tensor.h"

namespace cpc::tools {

inline constexpr const char* kCheckpointFile = "checkpoint.h5";

struct Checkpoint {
  std::string path;
  nlohmann::json config;
  std::map<std::string, Tensor> model, optim;  // names without the "model/" / "optim/" prefix
  int64_t step = 0;
  nlohmann::json data;  // the training data's identity (path, recordings, samples, checksum); null if not stored
};

// Refuses (naming the tensor) model or optimizer state that holds NaN/Inf: a diverged
// run never overwrites its last good checkpoint.
void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& model,
                     const std::map<std::string, Tensor>& optim, int64_t step, const nlohmann::json& config,
                     const nlohmann::json& data = nullptr);
// path: a checkpoint file or a run directory (its checkpoint.h5).
Checkpoint read_checkpoint(const std::string& path, bool with_optimizer = true);
// Throws naming `what` and the first non-finite element of any tensor.
void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& what);

}  // namespace cpc::tools
