#include "tools/cli/embed_command.h"

#include <cstdio>

#include "engine/data/batch_sampler.h"
#include "engine/core/error.h"
#include "engine/data/h5_file.h"
#include "engine/ops/ops.h"
#include "engine/data/window_dataset.h"
#include "tools/training/checkpoint_model.h"
#include "tools/cli/output_path.h"
#include "tools/cli/device_option.h"

namespace cpc::tools {

int run_embed(const EmbedArgs& a) {
  check_output_path(a.out);
  const Device device = select_device(a.device, communicator());
  CheckpointModel loaded = load_checkpoint_model(a.ckpt, !a.random_init);
  CpcModel& model = *loaded.model;
  if (device != Device::cpu()) model.to(device);
  const std::string& ckpt = loaded.path;
  const CpcConfig& cfg = model.config();
  model.eval();
  CPC_CHECK(a.split == "all" || a.split == "train" || a.split == "test", "embed: --split '", a.split,
            "': expected all, train or test");
  CPC_CHECK(a.windows_per_recording >= 1, "embed: --windows-per-recording must be >= 1");
  WindowDataset data(a.data, cfg.channels, cfg.window);
  if (a.split != "all")
    CPC_CHECK(data.has_split(), a.data, ": --split ", a.split, " needs a 'split' dataset, the file has none");
  const std::vector<int64_t> recs = data.usable(a.split == "all" ? -1 : a.split == "train" ? 0 : 1);
  CPC_CHECK(!recs.empty(), a.data, ": no recording of split '", a.split, "' is at least ", cfg.window, " samples long");

  // Evenly spaced windows per recording (deterministic), never two at one position: a
  // recording with fewer distinct positions than asked gives each of them once.
  std::vector<WindowRef> windows;
  int64_t capped = 0;
  for (int64_t r : recs) {
    const int64_t span = data.length(r) - cfg.window, n = std::min(a.windows_per_recording, span + 1);
    capped += n < a.windows_per_recording;
    for (int64_t k = 0; k < n; ++k) windows.push_back({r, n == 1 ? span / 2 : span * k / (n - 1)});
  }
  if (capped > 0)
    std::printf("note: %lld of %zu recordings have fewer than %lld distinct window positions; each gives all of "
                "its positions once\n",
                static_cast<long long>(capped), recs.size(), static_cast<long long>(a.windows_per_recording));
  const int64_t N = static_cast<int64_t>(windows.size()), Dz = cfg.encoder.out_channels(), Dc = cfg.context;
  std::vector<float> context(N * Dc), z_mean(N * Dz), c_mean(N * Dc);
  const int64_t per = cfg.channels * cfg.window;
  Tape tape;
  TapeScope scope(tape);
  NoGradGuard no_grad;
  for (int64_t b0 = 0; b0 < N; b0 += a.batch) {
    const int64_t B = std::min(a.batch, N - b0);
    Tensor x = Tensor::empty({B, cfg.channels, cfg.window});
    for (int64_t i = 0; i < B; ++i)
      data.read_window(windows[b0 + i].recording, windows[b0 + i].start, x.f32() + i * per);
    tape.reset();
    const CpcModel::Encoded e = model.encode(tape.var(device == Device::cpu() ? x : x.to(device)));
    const int64_t T = e.c->value.size(1);
    const std::vector<float> last = ops::select(e.c, 1, T - 1)->value.to_vector();
    const std::vector<float> zm = ops::mean_pool(e.z, 1)->value.to_vector();
    const std::vector<float> cm = ops::mean_pool(e.c, 1)->value.to_vector();
    std::copy(last.begin(), last.end(), context.begin() + b0 * Dc);
    std::copy(zm.begin(), zm.end(), z_mean.begin() + b0 * Dz);
    std::copy(cm.begin(), cm.end(), c_mean.begin() + b0 * Dc);
  }
  {
    H5File out(a.out, H5File::Mode::create);
    out.write_floats("context", {N, Dc}, context.data());
    out.write_floats("z_mean", {N, Dz}, z_mean.data());
    out.write_floats("c_mean", {N, Dc}, c_mean.data());
    std::vector<int64_t> rec_index, start;  // where each window is: for baselines on the same samples
    for (const WindowRef& w : windows) rec_index.push_back(w.recording), start.push_back(w.start);
    out.write_ints("recording", rec_index);
    out.write_ints("start", start);
    std::string names;
    for (const std::string& name : data.label_names()) {
      std::vector<int64_t> v;
      for (const WindowRef& w : windows) v.push_back(data.labels(name)[static_cast<size_t>(w.recording)]);
      out.write_ints(name, v);
      names += (names.empty() ? "" : ",") + name;
    }
    out.set_attribute("", "labels", names);
    out.set_attribute("", "source", a.data);
    out.set_attribute("", "checkpoint", a.random_init ? "random init" : ckpt);
    out.commit();
  }
  std::printf(
      "wrote %s: %lld windows from %zu recordings (split %s), features context (%lld), z_mean (%lld), c_mean "
      "(%lld)%s\n",
      a.out.c_str(), static_cast<long long>(N), recs.size(), a.split.c_str(), static_cast<long long>(Dc),
      static_cast<long long>(Dz), static_cast<long long>(Dc), a.random_init ? ", random-init weights" : "");
  return 0;
}

}  // namespace cpc::tools
