#pragma once
// `cpc-engine train`: AdamW + LR schedule + gradient clipping on a CPC model from a
// JSON config, checkpoints written atomically, exact resume, metrics as JSONL.
#include <cstdint>
#include <string>
#include <vector>

namespace cpc::tools {

struct TrainArgs {
  std::string config, data, out;
  int64_t steps = -1;  // -1: the config's train.steps
  int64_t seed = -1;   // -1: the config's train.seed
  int threads = 0;     // 0: leave as is
  std::string device = "cpu";  // cpu | cuda | cuda:N
  bool resume = false;       // --resume: continue the checkpoint in --out (it must exist)
  bool resume_auto = false;  // --resume auto: continue it if there is one, else start fresh (job requeues)
  int64_t stop_after = -1;  // stop (and checkpoint) after this many steps of this invocation, as Ctrl-C would

  std::vector<std::string> overrides;  // "key.path=value"
  bool quiet = false;                  // no progress lines (tests)
  bool profile = false;                // per-op table after the run (steps after the first)
  std::string trace;                   // Chrome trace JSON of 5 steps (implies profile)
};

// Exit status of a run stopped by SIGINT, SIGTERM or SIGHUP after writing its checkpoint
// (EX_TEMPFAIL: not a failure; `--resume` continues it). Done or --stop-after: 0; errors
// (divergence included): 1.
inline constexpr int kExitStoppedBySignal = 75;

// Returns the process exit code; failures throw cpc::Error.
int run_train(const TrainArgs& args);

// SIGINT, SIGTERM (kill, timeout, SLURM's time limit and preemption) and SIGHUP stop a
// run at the next step boundary with a checkpoint (exit kExitStoppedBySignal); a second
// signal ends the process at once. run_train starts catching them (stop_signals.h)
// before anything else (MPI, data loading, worker threads) and leaves it so, so a signal
// during start-up or teardown is caught too (one before the first step stops the run there).

}  // namespace cpc::tools
