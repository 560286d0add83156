#include "tools/training/checkpoint.h"

#include <cmath>
#include <filesystem>
#include <system_error>

#include "engine/core/error.h"
#include "engine/data/h5_file.h"

namespace cpc::tools {

void check_finite(const std::map<std::string, Tensor>& tensors, const std::string& what) {
  for (const auto& [name, t] : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    const std::vector<float> v = t.to_vector();
    for (size_t i = 0; i < v.size(); ++i)
      CPC_CHECK(std::isfinite(v[i]), what, ": tensor '", name, "' ", t.shape(), " holds a non-finite value (", v[i],
                ") at element ", i);
  }
}

void save_checkpoint(const std::string& path, const std::map<std::string, Tensor>& model,
                     const std::map<std::string, Tensor>& optim, int64_t step, const nlohmann::json& config,
                     const nlohmann::json& data) {
  check_finite(model, path + ": not written: the model");
  check_finite(optim, path + ": not written: the optimizer state");
  H5File f(path, H5File::Mode::create);
  for (const auto& [n, t] : model) f.write("model/" + n, t);
  for (const auto& [n, t] : optim) f.write("optim/" + n, t);
  f.write("step", Tensor::from_vector({}, {static_cast<float>(step)}));
  f.write_ints("step_exact", {step});
  f.set_attribute("", "config", config.dump());
  if (!data.is_null()) f.set_attribute("", "data", data.dump());
  f.commit();
}

Checkpoint read_checkpoint(const std::string& path, bool with_optimizer) {
  Checkpoint c;
  std::error_code fs_ec;  // a path that cannot even be stat'ed (too long, no access) is not a file
  c.path = std::filesystem::is_directory(path, fs_ec) ? path + "/" + kCheckpointFile : path;
  const std::string kind = "a checkpoint written by cpc-engine train";
  H5File f(c.path, H5File::Mode::read, kind);
  try {
    CPC_CHECK(f.has("step_exact") && !f.groups().empty(), c.path, ": not a checkpoint (expected ", kind,
              ": datasets model/..., optim/..., step_exact; is it a data or embeddings file?)");
    std::string config;
    try {
      config = f.attribute("", "config");
      c.config = nlohmann::json::parse(config);
    } catch (const std::exception& e) {
      fail(c.path, ": not a checkpoint: its 'config' attribute is missing or not JSON (", e.what(), ")");
    }
    f.verify();
    for (const std::string& n : f.datasets("model")) c.model[n.substr(6)] = f.read_tensor(n);
    if (with_optimizer)
      for (const std::string& n : f.datasets("optim")) c.optim[n.substr(6)] = f.read_tensor(n);
    c.step = f.read_ints("step_exact").at(0);
  } catch (const Error& e) {
    const std::string what = e.what();
    // Our own verdicts pass through; an HDF5 failure on a file that opened means damage.
    if (what.find(" is damaged") != std::string::npos || what.find(": not a checkpoint") != std::string::npos) throw;
    fail(c.path, ": the checkpoint is damaged or truncated (", what, ")");
  }
  CPC_CHECK(!c.model.empty(), c.path, ": not a checkpoint: no model/ tensors");
  check_finite(c.model, c.path + ": refused: the model");
  check_finite(c.optim, c.path + ": refused: the optimizer state");
  if (f.has_attribute("", "data")) c.data = nlohmann::json::parse(f.attribute("", "data"), nullptr, false);
  return c;
}

}  // namespace cpc::tools
