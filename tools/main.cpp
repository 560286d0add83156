// cpc-engine: one executable, one subcommand per job.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "engine/error.h"
#include "tools/embed_command.h"
#include "tools/export_command.h"
#include "tools/info_command.h"
#include "tools/prepare/synth_ecg.h"
#include "tools/probe_command.h"
#include "tools/train_command.h"

int main(int argc, char** argv) {
  CLI::App app{"cpc-engine: Contrastive Predictive Coding on ECG and audio"};
  app.require_subcommand(1);
  CLI::App* info = app.add_subcommand("info", "build options, library versions, threads and devices");

  cpc::tools::TrainArgs train_args;
  CLI::App* train = app.add_subcommand("train", "train a CPC model (AdamW, schedule, clipping, checkpoints)");
  train->add_option("--config", train_args.config, "model and training config (JSON)")->required();
  train->add_option("--data", train_args.data, "HDF5 data file")->required();
  train->add_option("--out", train_args.out, "run directory (checkpoint.h5, metrics.jsonl)")->required();
  train->add_option("--steps", train_args.steps, "training steps (default: train.steps)");
  train->add_option("--seed", train_args.seed, "seed of weights and sampling (default: train.seed)");
  train->add_option("--threads", train_args.threads, "CPU threads");
  train->add_flag("--resume", train_args.resume, "continue the run in --out exactly where it stopped");
  train->add_option("--stop-after", train_args.stop_after,
                    "stop and checkpoint after this many steps of this invocation (the schedule keeps --steps)");
  train->add_option("--set", train_args.overrides, "override a config key: --set train.batch_size=8");

  cpc::tools::EmbedArgs embed_args;
  CLI::App* embed = app.add_subcommand("embed", "encoder features per window (context, z_mean, c_mean) to HDF5");
  embed->add_option("--ckpt", embed_args.ckpt, "run directory or checkpoint file")->required();
  embed->add_option("--data", embed_args.data, "HDF5 data file")->required();
  embed->add_option("--out", embed_args.out, "output HDF5 file")->required();
  embed->add_option("--split", embed_args.split, "all, train or test (by the 'split' dataset)");
  embed->add_option("--windows-per-recording", embed_args.windows_per_recording, "evenly spaced windows");
  embed->add_flag("--random-init", embed_args.random_init, "use untrained weights of the same config (baseline)");

  cpc::tools::ExportArgs export_args;
  CLI::App* exp = app.add_subcommand("export", "trained weights as safetensors for PyTorch (tools/load_encoder.py)");
  exp->add_option("--ckpt", export_args.ckpt, "run directory or checkpoint file")->required();
  exp->add_option("--out", export_args.out, "output .safetensors file")->required();
  exp->add_option("--part", export_args.part, "encoder (default) or model");

  cpc::tools::ProbeArgs probe_args;
  CLI::App* probe = app.add_subcommand("probe", "linear probe (logistic regression) on embeddings");
  probe->add_option("--train", probe_args.train, "embeddings to fit on")->required();
  probe->add_option("--test", probe_args.test, "embeddings to evaluate on")->required();
  probe->add_option("--label", probe_args.label, "label dataset name")->required();
  probe->add_option("--feature", probe_args.feature, "context, z_mean or c_mean");
  probe->add_option("--json", probe_args.json, "write the results as JSON");
  probe->add_option("--l2", probe_args.l2, "L2 penalty on the weights (standardised features)");

  CLI::App* prepare = app.add_subcommand("prepare", "convert or generate data into cpc-engine's HDF5 layout");
  prepare->require_subcommand(1);
  cpc::tools::SynthEcgOptions synth;
  std::string synth_out;
  CLI::App* synth_ecg = prepare->add_subcommand(
      "synth-ecg", "synthetic 12-lead ECG with rhythm classes (normal, tachycardia, bradycardia, irregular, ectopic)");
  synth_ecg->add_option("--out", synth_out, "output HDF5 file")->required();
  synth_ecg->add_option("--n", synth.recordings, "number of recordings")->check(CLI::PositiveNumber);
  synth_ecg->add_option("--seconds", synth.seconds, "length of each recording (s)")->check(CLI::PositiveNumber);
  synth_ecg->add_option("--rate", synth.rate, "sampling rate (Hz)")->check(CLI::Range(50.0, 10000.0));
  synth_ecg->add_option("--seed", synth.seed, "random seed");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (info->parsed()) return cpc::tools::run_info();
    if (train->parsed()) return cpc::tools::run_train(train_args);
    if (embed->parsed()) return cpc::tools::run_embed(embed_args);
    if (exp->parsed()) return cpc::tools::run_export(export_args);
    if (probe->parsed()) return cpc::tools::run_probe(probe_args);
    if (synth_ecg->parsed()) {
      cpc::tools::write_synthetic_ecg(synth_out, synth);
      std::printf("wrote %s: %lld recordings x 12 leads x %.1f s at %.0f Hz, labels 'rhythm' (5 classes), split\n",
                  synth_out.c_str(), static_cast<long long>(synth.recordings), synth.seconds, synth.rate);
      return 0;
    }
  } catch (const cpc::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
