#include "tools/train_command.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/data_loader.h"
#include "engine/error.h"
#include "engine/h5_file.h"
#include "engine/lr_schedule.h"
#include "engine/optimizer.h"
#include "models/cpc_model.h"

namespace cpc::tools {

namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

const char* kCheckpoint = "checkpoint.h5";

// Model and optimizer state, the step and the config, in one HDF5 file written to a
// temporary name, fsynced and renamed: an existing checkpoint is never half-written.
void save_checkpoint(const std::string& dir, const CpcModel& model, const Optimizer& opt, int64_t step) {
  std::map<std::string, Tensor> all;
  for (const auto& [n, t] : model.state_dict()) all["model/" + n] = t;
  for (const auto& [n, t] : opt.state()) all["optim/" + n] = t;
  all["step"] = Tensor::from_vector({}, {static_cast<float>(step)});
  const std::string path = dir + "/" + kCheckpoint, tmp = path + ".tmp";
  {
    H5File f(tmp, H5File::Mode::create);
    for (const auto& [n, t] : all) f.write(n, t);
    f.write_ints("step_exact", {step});
    f.set_attribute("", "config", model.config().source.dump());
  }
  save_tensors_finish(tmp, path);
}

}  // namespace

int run_train(const TrainArgs& a) {
  std::vector<std::string> overrides = a.overrides;
  if (a.steps >= 0) overrides.push_back("train.steps=" + std::to_string(a.steps));
  if (a.seed >= 0) overrides.push_back("train.seed=" + std::to_string(a.seed));
  const std::string ckpt_path = a.out + "/" + kCheckpoint;
  CpcConfig cfg = CpcConfig::load(a.config, overrides);
  if (a.threads > 0) backend(Device::cpu()).set_threads(a.threads);
  std::filesystem::create_directories(a.out);
  if (!a.resume)
    CPC_CHECK(!std::filesystem::exists(ckpt_path), a.out,
              ": already holds a checkpoint; pass --resume to continue it "
              "or choose another --out (nothing was overwritten)");

  WindowDataset data(a.data, cfg.channels, cfg.window);
  const std::vector<int64_t> train_recs = data.usable(data.has_split() ? 0 : -1);
  std::vector<int64_t> lengths;
  for (int64_t r : train_recs) lengths.push_back(data.length(r));
  const TrainConfig& tc = cfg.train;
  BatchSampler sampler(train_recs, lengths, cfg.window, tc.batch_size, static_cast<uint64_t>(tc.seed));

  Generator init(static_cast<uint64_t>(tc.seed));
  CpcModel model(cfg, init);
  AdamOptions ao;
  ao.lr = static_cast<float>(tc.lr), ao.weight_decay = static_cast<float>(tc.weight_decay);
  const std::vector<Parameter*> params = model.parameters();
  Adam opt(params, ao, /*decoupled=*/true);
  LrSchedule sched;
  sched.kind = LrSchedule::parse(tc.schedule);
  sched.base_lr = tc.lr, sched.warmup_steps = tc.warmup, sched.total_steps = tc.steps, sched.min_lr = tc.min_lr;
  sched.model_dim = cfg.encoder.out_channels();

  int64_t start = 0;
  if (a.resume) {
    CPC_CHECK(std::filesystem::exists(ckpt_path), ckpt_path, ": no checkpoint to resume from");
    H5File f(ckpt_path, H5File::Mode::read);
    std::map<std::string, Tensor> m, o;
    for (const std::string& n : f.datasets("model")) m[n.substr(6)] = f.read_tensor(n);
    for (const std::string& n : f.datasets("optim")) o[n.substr(6)] = f.read_tensor(n);
    model.load_state_dict(m, /*strict=*/true);
    opt.load_state(o);
    start = f.read_ints("step_exact").at(0);
  }
  std::printf(
      "train: %s on %s (%zu training recordings, %lld skipped as shorter than %lld samples), batch %lld, "
      "%lld parameters, steps %lld..%lld\n",
      a.config.c_str(), a.data.c_str(), train_recs.size(), static_cast<long long>(data.skipped_short()),
      static_cast<long long>(cfg.window), static_cast<long long>(tc.batch_size),
      static_cast<long long>(model.num_parameters()), static_cast<long long>(start), static_cast<long long>(tc.steps));
  std::ofstream metrics(a.out + "/metrics.jsonl", a.resume ? std::ios::app : std::ios::trunc);
  g_interrupted = false;
  auto old_handler = std::signal(SIGINT, on_sigint);
  DataLoader loader(data, sampler, start);
  Tape tape;
  TapeScope scope(tape);
  const bool tty = isatty(fileno(stdout)) && !a.quiet;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t step = start;
  const int64_t last = a.stop_after >= 0 ? std::min(tc.steps, start + a.stop_after) : tc.steps;
  for (; step < last && !g_interrupted; ++step) {
    const Batch& batch = loader.next();
    tape.reset();
    opt.zero_grad();
    opt.set_lr(static_cast<float>(sched.at(step)));
    Generator step_rng(static_cast<uint64_t>(tc.seed) * 1000003ULL + static_cast<uint64_t>(step));  // random t
    const InfoNceResult& r = model.loss(tape.var(batch.x), &step_rng);
    const double loss = r.loss->value.to_vector()[0];
    if (!std::isfinite(loss)) {
      std::signal(SIGINT, old_handler);
      fail("train: the loss is ", loss, " at step ", step, "; stopping. The last good checkpoint is ",
           std::filesystem::exists(ckpt_path) ? ckpt_path : std::string("(none yet)"),
           " (lower train.lr or raise the temperature)");
    }
    tape.backward(r.loss);
    const double gnorm = tc.clip > 0 ? clip_grad_norm(params, tc.clip) : grad_norm(params);
    opt.step();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double sps = static_cast<double>((step - start + 1) * tc.batch_size) / secs;
    nlohmann::json line{
        {"step", step + 1}, {"loss", loss},       {"accuracy", r.accuracy}, {"accuracy_per_k", r.accuracy_per_k},
        {"lr", opt.lr()},   {"grad_norm", gnorm}, {"samples_per_s", sps}};
    metrics << line.dump() << "\n";
    if (!a.quiet) {
      const double eta = static_cast<double>(tc.steps - step - 1) * tc.batch_size / sps;
      std::printf(tty ? "\rstep %lld/%lld  loss %.4f  acc %.3f  %.1f samples/s  ETA %.0fs   "
                      : "step %lld/%lld  loss %.4f  acc %.3f  %.1f samples/s  ETA %.0fs\n",
                  static_cast<long long>(step + 1), static_cast<long long>(tc.steps), loss, r.accuracy, sps, eta);
      std::fflush(stdout);
    }
    if ((step + 1) % tc.checkpoint_every == 0) save_checkpoint(a.out, model, opt, step + 1);
  }
  metrics.flush();
  save_checkpoint(a.out, model, opt, step);
  std::signal(SIGINT, old_handler);
  if (tty) std::printf("\n");
  std::printf("%s at step %lld; checkpoint %s\n",
              g_interrupted     ? "interrupted"
              : step < tc.steps ? "stopped"
                                : "done",
              static_cast<long long>(step), ckpt_path.c_str());
  return g_interrupted ? 130 : 0;
}

}  // namespace cpc::tools
