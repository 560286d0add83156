#include "tools/cli/train_command.h"

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
#include <optional>
#include <set>

#include "engine/core/backend.h"
#include "engine/distributed/communicator.h"
#include "engine/data/data_loader.h"
#include "engine/core/error.h"
#include "engine/data/h5_file.h"
#include "engine/core/profiler.h"
#include "engine/core/trace.h"
#include "tools/training/checkpoint.h"
#include "tools/cli/device_option.h"
#include "tools/training/metrics_log.h"
#include "tools/cli/output_path.h"
#include "tools/cli/progress_bar.h"
#include "tools/cli/stop_signals.h"
#include "tools/training/trainer.h"

namespace cpc::tools {

namespace {


void checkpoint_run(const std::string& dir, Trainer& trainer, int64_t step, const nlohmann::json& data_info) {
  save_checkpoint(dir + "/" + kCheckpointFile, trainer.model().state_dict(), trainer.optimizer_state(), step,
                  trainer.config().source, data_info);
}

// What identifies the training data: its recordings and, for files cpc-engine wrote, the
// checksum of their contents. A resume on other data would silently train another run.
nlohmann::json data_identity(const std::string& path, const WindowDataset& data) {
  int64_t samples = 0;
  for (int64_t r = 0; r < data.num_recordings(); ++r) samples += data.length(r);
  nlohmann::json j{{"path", path}, {"recordings", data.num_recordings()}, {"channels", data.channels()},
                   {"samples", samples}};
  H5File f(path, H5File::Mode::read);
  if (f.has_attribute("", "content_fnv1a64")) j["content_fnv1a64"] = f.attribute("", "content_fnv1a64");
  return j;
}

// The validation set: one centred window per split-1 recording (the first `max` of
// them), read once, so every validation scores the same windows. They are scored in
// batches of the global batch size, batch i by rank i % world: this rank's windows are
// its batches in order (undefined when it has none). The numbers are those of one
// process at the global batch, whatever the world size; the work is shared.
int64_t validation_count(const WindowDataset& data, int64_t max) {
  return std::min<int64_t>(static_cast<int64_t>(data.usable(1).size()), max);
}
Tensor validation_windows(const WindowDataset& data, int64_t max, int64_t batch, int rank, int world) {
  const std::vector<int64_t> recs = data.usable(1);
  const int64_t n = validation_count(data, max), cl = data.channels() * data.window();
  std::vector<int64_t> mine;  // indices into recs
  for (int64_t b = rank; b * batch < n; b += world)
    for (int64_t i = b * batch; i < std::min(n, (b + 1) * batch); ++i) mine.push_back(i);
  if (mine.empty()) return Tensor();
  Tensor xs = Tensor::empty({static_cast<int64_t>(mine.size()), data.channels(), data.window()});
  for (size_t j = 0; j < mine.size(); ++j) {
    const int64_t r = recs[static_cast<size_t>(mine[j])];
    data.read_window(r, (data.length(r) - data.window()) / 2, xs.f32() + static_cast<int64_t>(j) * cl);
  }
  return xs;
}

// Validation over the ranks' shares: window-weighted sums combined, then means.
EvalResult validate(Trainer& trainer, const Tensor& mine, int64_t batch, Communicator& comm, int64_t K) {
  EvalResult part;
  part.accuracy_per_k.assign(static_cast<size_t>(K), 0.0);
  if (mine.defined()) part = trainer.evaluate(mine, batch);
  const double w = static_cast<double>(part.windows);
  std::vector<double> s{part.loss * w, part.accuracy * w, w};
  for (double a : part.accuracy_per_k) s.push_back(a * w);
  comm.allreduce_host(s.data(), static_cast<int>(s.size()));
  EvalResult out;
  out.windows = static_cast<int64_t>(s[2]);
  out.loss = s[0] / s[2], out.accuracy = s[1] / s[2];
  for (size_t k = 3; k < s.size(); ++k) out.accuracy_per_k.push_back(s[k] / s[2]);
  return out;
}

// The sample rate the file records (prepare writes it as the root attribute rate_hz).
double data_rate_hz(const std::string& path) {
  H5File f(path, H5File::Mode::read);
  CPC_CHECK(f.has_attribute("", "rate_hz"), path, ": data.augment gives frequencies or durations, but the file has no ",
            "rate_hz attribute (write it with prepare, or drop bandpass / time_mask / baseline_wander / powerline)");
  const std::string v = f.attribute("", "rate_hz");
  char* end = nullptr;
  const double r = std::strtod(v.c_str(), &end);
  CPC_CHECK(end && *end == '\0' && r > 0, path, ": rate_hz '", v, "' is not a positive number");
  return r;
}

}  // namespace

int run_train(const TrainArgs& a) {
  catch_stop_signals();
  std::vector<std::string> overrides = a.overrides;
  if (a.steps >= 0) overrides.push_back("train.steps=" + std::to_string(a.steps));
  if (a.seed >= 0) overrides.push_back("train.seed=" + std::to_string(a.seed));
  const std::string ckpt_path = a.out + "/" + kCheckpointFile;
  const CpcConfig cfg = CpcConfig::load(a.config, overrides);
  if (a.threads > 0) backend(Device::cpu()).set_threads(a.threads);
  const Device device = select_device(a.device, communicator());
  if (device.kind == DeviceKind::cuda && communicator().world() > 1)  // GPU tensors over NCCL
    set_communicator(make_nccl_communicator(set_communicator(nullptr)));
  {
    std::error_code ec;
    std::filesystem::create_directories(a.out, ec);
    CPC_CHECK(!ec && access(a.out.c_str(), W_OK) == 0, a.out, ": cannot create or write the run directory (",
              ec ? ec.message() : std::string("not writable"), ")");
  }
  const bool resume = a.resume || (a.resume_auto && std::filesystem::exists(ckpt_path));
  if (!resume)
    CPC_CHECK(!std::filesystem::exists(ckpt_path), a.out,
              ": already holds a checkpoint; pass --resume to continue it "
              "or choose another --out (nothing was overwritten)");

  WindowDataset data(a.data, cfg.channels, cfg.window);
  const std::vector<int64_t> train_recs = data.usable(data.has_split() ? 0 : -1);
  CPC_CHECK(!train_recs.empty(), a.data, ": no training recordings", data.has_split() ? " (split 0)" : "",
            " at least ", cfg.window, " samples long (", data.skipped_short(), " shorter ones skipped)");
  std::vector<int64_t> lengths;
  for (int64_t r : train_recs) lengths.push_back(data.length(r));
  const TrainConfig& tc = cfg.train;
  Communicator& comm = communicator();
  const int rank = comm.rank(), world = comm.world();
  const bool lead = rank == 0;  // prints, writes metrics and checkpoints
  // The global batch of a step is drawn from the seed whatever the world size; rank r
  // trains on its rows [r * B, (r + 1) * B).
  // With gradient accumulation the step's global batch is k micro-batches of that.
  const int64_t k = tc.accumulate_steps;
  BatchSampler sampler(train_recs, lengths, cfg.window, tc.batch_size * world * k, static_cast<uint64_t>(tc.seed));
  if (!cfg.group_by.empty()) {  // every batch from one group: in-batch negatives share the label
    const std::vector<int64_t>& labels = data.labels(cfg.group_by);
    std::vector<int64_t> groups;
    std::set<int64_t> distinct;
    for (int64_t r : train_recs) groups.push_back(labels[static_cast<size_t>(r)]), distinct.insert(groups.back());
    distinct.erase(-1);
    sampler.set_groups(groups);
    if (lead)
      std::printf("batches grouped by '%s': %zu groups; each global batch of %lld comes from one\n",
                  cfg.group_by.c_str(), distinct.size(), static_cast<long long>(tc.batch_size * world * k));
  }
  const int64_t local_candidates = cfg.loss.negatives_from == InfoNceOptions::NegativesFrom::global
                                       ? tc.batch_size * world
                                       : tc.batch_size;
  CPC_CHECK(cfg.loss.negatives != InfoNceOptions::Negatives::batch || local_candidates >= 2, a.config,
            ": train.batch_size ", tc.batch_size, " with loss.negatives \"batch\" leaves each prediction without a "
            "negative (the loss would be 0 and the accuracy 1 at every step): use a batch of at least 2, "
            "loss.negatives_from \"global\" over several ranks, or loss.negatives \"batch_time\"");
  const nlohmann::json data_info = data_identity(a.data, data);
  const bool validating = data.has_split() && tc.validate_windows > 0 && validation_count(data, tc.validate_windows) > 0;
  const Tensor val_x =
      validating ? validation_windows(data, tc.validate_windows, tc.batch_size * world, rank, world) : Tensor();

  Trainer trainer(cfg, &comm, device);
  int64_t start = 0;
  if (resume) {
    CPC_CHECK(std::filesystem::exists(ckpt_path), ckpt_path, ": no checkpoint to resume from");
    const Checkpoint ck = read_checkpoint(ckpt_path);
    nlohmann::json now = cfg.source, then = ck.config;
    for (nlohmann::json* j : {&now, &then})  // a resume may extend the run
      if (j->contains("train") && (*j)["train"].is_object()) (*j)["train"].erase("steps");
    CPC_CHECK(now == then, ckpt_path, ": was trained with another config; resume needs the same one (except "
              "train.steps). Differences: ", nlohmann::json::diff(then, now).dump());
    if (!ck.data.is_null()) {  // checkpoints before data identities carry none
      nlohmann::json a_then = ck.data, a_now = data_info;
      a_then.erase("path"), a_now.erase("path");
      CPC_CHECK(a_then == a_now, a.data, ": is not the data ", ckpt_path, " was trained on (",
                ck.data.value("path", std::string("?")), "): ", a_then.dump(), " then, ", a_now.dump(),
                " now. Resume with the same --data, or start a new run");
      if (lead && ck.data.value("path", a.data) != a.data)
        std::printf("note: --data %s has the same contents as %s, which %s was trained on\n", a.data.c_str(),
                    ck.data.value("path", std::string()).c_str(), ckpt_path.c_str());
    }
    start = ck.step;
    CPC_CHECK(tc.steps >= start, ckpt_path, ": is at step ", start, ", beyond train.steps ", tc.steps,
              " (--steps): pass --steps ", start, " or more to continue it");
    trainer.load(ck.model, ck.optim);
  }
  if (lead && a.resume_auto)
    std::printf(resume ? "--resume auto: continuing %s from step %lld\n" : "--resume auto: no checkpoint in %s; starting a new run\n",
                resume ? ckpt_path.c_str() : a.out.c_str(), static_cast<long long>(start));
  if (world > 1) {  // every rank read its own copy: they must agree (a stale copy would drift silently)
    double s[2] = {static_cast<double>(start), static_cast<double>(start) * static_cast<double>(start)};
    comm.allreduce_host(s, 2);
    CPC_CHECK(s[0] == static_cast<double>(start) * world && s[1] == s[0] * static_cast<double>(start), "rank ", rank,
              ": the ranks resumed from checkpoints at different steps (this rank: ", start,
              "); every rank must see the same ", ckpt_path);
  }
  if (lead && world > 1)
    std::printf(
        "data parallel: %d ranks (%s) x batch %lld = global batch %lld; negatives from the %s batch; "
        "train.lr %g is used as configured (not scaled with the world size); BatchNorm %s\n",
        world, launch_from_environment().launcher.c_str(), static_cast<long long>(tc.batch_size),
        static_cast<long long>(tc.batch_size * world),
        cfg.loss.negatives_from == InfoNceOptions::NegativesFrom::global ? "global" : "local (per-rank)", tc.lr,
        tc.sync_batchnorm ? "synchronised" : "per rank");
  if (lead)
    std::printf(
      "train: %s on %s (%zu training recordings, %lld validation windows, %lld skipped as shorter than %lld "
      "samples), batch %lld, %lld parameters, steps %lld..%lld\n",
      a.config.c_str(), a.data.c_str(), train_recs.size(), static_cast<long long>(validating ? validation_count(data, tc.validate_windows) : 0),
      static_cast<long long>(data.skipped_short()), static_cast<long long>(cfg.window),
      static_cast<long long>(tc.batch_size), static_cast<long long>(trainer.num_parameters()),
      static_cast<long long>(start), static_cast<long long>(tc.steps));
  std::fflush(stdout);
  std::optional<MetricsLog> metrics;  // rank 0 writes it
  if (lead) metrics.emplace(a.out + "/metrics.jsonl", resume ? start : -1);
  LoaderAugment augment{cfg.augment, cfg.augment.needs_rate() ? data_rate_hz(a.data) : 0.0,
                        static_cast<uint64_t>(tc.seed)};
  if (lead && cfg.augment.any()) std::printf("augmentation: %s\n", cfg.augment.describe().c_str());
  DataLoader loader(data, sampler, start, rank, world, /*prefetch=*/2, device, static_cast<int>(k), augment);
  if (lead && k > 1)
    std::printf("gradient accumulation: %lld micro-batches of %lld per step (%lld windows per optimizer step); "
                "InfoNCE's negatives come from each micro-batch (%lld windows), not from the whole step\n",
                static_cast<long long>(k), static_cast<long long>(tc.batch_size * world),
                static_cast<long long>(tc.batch_size * world * k), static_cast<long long>(tc.batch_size * world));
  ProgressBar progress(start, tc.steps, isatty(fileno(stdout)) != 0, a.quiet || !lead);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t step = start;
  const int64_t last = a.stop_after >= 0 ? std::min(tc.steps, start + a.stop_after) : tc.steps;
  const bool profiling = a.profile || !a.trace.empty();
  if (!a.trace.empty()) check_output_path(a.trace);
  double comm_seconds = 0;
  int stop_signal = 0;
  int64_t last_checkpoint = start;
  for (; step < last; ++step) {
    double stop = stop_signal_received();
    if (world > 1) comm.allreduce_host(&stop, 1);  // every rank stops at the same step, whichever got the signal
    if (stop > 0) {
      stop_signal = stop_signal_received() ? stop_signal_received() : SIGTERM;
      break;
    }
    // The profile leaves out the first step (one-time set-up: kernels, arenas), unless
    // there is only one.
    if (profiling && (step == start + 1 || (step == start && last - start == 1)))
      profiler::start(a.trace.empty() ? 0 : 5);
    const StepResult r = trainer.step(
        [&](int) -> const Tensor& {
          TraceRange load("load batch");  // waiting for the prefetch thread shows up here
          return loader.next().input();
        },
        step);
    if (!r.finite) {  // the weights were not updated; nothing more is written
      progress.finish();
      const std::string last_good = std::filesystem::exists(ckpt_path)
                                        ? "the last good checkpoint is " + ckpt_path + " (step " +
                                              std::to_string(last_checkpoint) + ")"
                                        : "no checkpoint was written yet";
      fail("train: step ", step + 1, " diverged: ", r.nonfinite, "; stopping without updating the weights; ", last_good,
           ". Lower train.lr, lengthen train.warmup, or check the data for extreme values");
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double sps = static_cast<double>((step - start + 1) * tc.batch_size * world * k) / secs;
    comm_seconds += r.comm_seconds;
    nlohmann::json line{{"step", step + 1},   {"loss", r.loss},           {"accuracy", r.accuracy},
                        {"accuracy_per_k", r.accuracy_per_k}, {"lr", r.lr}, {"grad_norm", r.grad_norm},
                        {"samples_per_s", sps}};
    if (world > 1) line["comm_ms"] = r.comm_seconds * 1e3;
    progress.update(step + 1, r.loss, r.accuracy, sps, tc.batch_size * world * k);
    if (validating && ((step + 1) % tc.validate_every == 0 || step + 1 == tc.steps)) {
      const bool was_profiling = profiler::enabled();  // the profile is of training steps
      profiler::stop();
      const EvalResult v = validate(trainer, val_x, tc.batch_size * world, comm, cfg.K);
      if (was_profiling) profiler::resume();
      line["val_loss"] = v.loss, line["val_accuracy"] = v.accuracy, line["val_accuracy_per_k"] = v.accuracy_per_k;
      char buf[160];
      std::snprintf(buf, sizeof buf, "step %lld: validation loss %.4f, accuracy %.3f (%lld windows)",
                    static_cast<long long>(step + 1), v.loss, v.accuracy, static_cast<long long>(v.windows));
      progress.message(buf);
    }
    if (lead) metrics->append(line);
    if (lead && (step + 1) % tc.checkpoint_every == 0) {
      checkpoint_run(a.out, trainer, step + 1, data_info);
      last_checkpoint = step + 1;
    }
  }
  progress.finish();
  if (profiling) {
    profiler::stop();
    if (lead) std::printf("%s", profiler::table().c_str());
    if (lead && !a.trace.empty()) {
      profiler::write_chrome_trace(a.trace);
      std::printf("trace: %s (open in https://ui.perfetto.dev or chrome://tracing)\n", a.trace.c_str());
    }
  }
  if (lead) checkpoint_run(a.out, trainer, step, data_info);
  comm.barrier();  // the checkpoint exists before any rank reports success
  if (lead && world > 1 && step > start)
    std::printf("communication: %.1f ms per step on rank 0 (collectives, including waiting for other ranks)\n",
                comm_seconds * 1e3 / static_cast<double>(step - start));
  if (lead && stop_signal)
    std::printf("stopped by %s at step %lld of %lld; checkpoint %s (continue with --resume; exit status %d)\n",
                stop_signal_name(stop_signal), static_cast<long long>(step), static_cast<long long>(tc.steps),
                ckpt_path.c_str(), kExitStoppedBySignal);
  else if (lead)
    std::printf("%s at step %lld; checkpoint %s\n", step < tc.steps ? "stopped" : "done", static_cast<long long>(step),
                ckpt_path.c_str());
  std::fflush(stdout);
  return stop_signal ? kExitStoppedBySignal : 0;
}

}  // namespace cpc::tools
