// cpc-engine: one executable, one subcommand per job.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>

#include "engine/distributed/communicator.h"
#include "engine/core/error.h"
#include "tools/cli/bench_command.h"
#include "tools/cli/embed_command.h"
#include "tools/cli/export_command.h"
#include "tools/cli/info_command.h"
#include "tools/prepare/prepare_audio.h"
#include "tools/prepare/prepare_csv.h"
#include "tools/prepare/prepare_wfdb.h"
#include "tools/prepare/synth_ecg.h"
#include "tools/cli/probe_command.h"
#include "tools/cli/report_command.h"
#include "tools/cli/train_command.h"

namespace {

// An integer option's lower bound, with a message that says what was expected.
CLI::Validator at_least(long long min) {
  return CLI::Validator(
      [min](std::string& s) -> std::string {
        long long v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size() || v < min)
          return "expected an integer >= " + std::to_string(min) + ", found '" + s + "'";
        return {};
      },
      "INT>=" + std::to_string(min));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cpc-engine: Contrastive Predictive Coding on ECG and audio"};
  app.require_subcommand(1);
  CLI::App* info = app.add_subcommand("info", "build options, library versions, threads and devices");

  cpc::tools::TrainArgs train_args;
  CLI::App* train = app.add_subcommand("train", "train a CPC model (AdamW, schedule, clipping, checkpoints)");
  train->add_option("--config", train_args.config, "model and training config (JSON)")->required();
  train->add_option("--data", train_args.data, "HDF5 data file")->required();
  train->add_option("--out", train_args.out, "run directory (checkpoint.h5, metrics.jsonl)")->required();
  train->add_option("--steps", train_args.steps, "training steps (default: train.steps)")
      ->check(at_least(1));
  train->add_option("--seed", train_args.seed, "seed of weights and sampling (default: train.seed)")
      ->check(at_least(0));
  train->add_option("--threads", train_args.threads, "CPU threads")->check(at_least(1));
  train->add_option("--device", train_args.device, "cpu (default), cuda or cuda:N");
  std::string resume_mode;
  train
      ->add_option("--resume", resume_mode,
                   "continue the run in --out exactly where it stopped; '--resume auto': continue it if --out has a "
                   "checkpoint, else start fresh (one job script for the first submission and every requeue)")
      ->expected(0, 1)
      ->default_str("always")
      ->check(CLI::IsMember({"always", "auto"}));
  train->add_option("--stop-after", train_args.stop_after,
                    "stop and checkpoint after this many steps of this invocation (the schedule keeps --steps)")
      ->check(at_least(1));
  train->add_option("--set", train_args.overrides, "override a config key: --set train.batch_size=8");
  train->add_flag("--profile", train_args.profile, "print a per-op time table after the run (steps after the first)");
  train->add_option("--trace", train_args.trace, "write a Chrome trace JSON (Perfetto) of 5 steps; implies --profile");

  cpc::tools::EmbedArgs embed_args;
  CLI::App* embed = app.add_subcommand("embed", "encoder features per window (context, z_mean, c_mean) to HDF5");
  embed->add_option("--ckpt", embed_args.ckpt, "run directory or checkpoint file")->required();
  embed->add_option("--data", embed_args.data, "HDF5 data file")->required();
  embed->add_option("--out", embed_args.out, "output HDF5 file")->required();
  embed->add_option("--split", embed_args.split, "all, train or test (by the 'split' dataset)");
  embed->add_option("--windows-per-recording", embed_args.windows_per_recording,
                    "evenly spaced windows (at most one per distinct position)")
      ->check(at_least(1));
  embed->add_flag("--random-init", embed_args.random_init, "use untrained weights of the same config (baseline)");
  embed->add_option("--device", embed_args.device, "cpu (default), cuda or cuda:N");

  cpc::tools::ExportArgs export_args;
  CLI::App* exp = app.add_subcommand("export", "trained weights as safetensors for PyTorch (tools/python/load_encoder.py)");
  exp->add_option("--ckpt", export_args.ckpt, "run directory or checkpoint file")->required();
  exp->add_option("--out", export_args.out, "output .safetensors file")->required();
  exp->add_option("--part", export_args.part, "encoder (default) or model");

  cpc::tools::ProbeArgs probe_args;
  CLI::App* probe = app.add_subcommand("probe", "linear probe (logistic regression) on embeddings");
  probe->add_option("--train", probe_args.train, "embeddings to fit on")->required();
  probe->add_option("--test", probe_args.test, "embeddings to evaluate on")->required();
  probe->add_option("--label", probe_args.label, "label dataset name")->required();
  probe->add_option("--feature", probe_args.feature, "context, z_mean or c_mean (or any (N, D) dataset of the files)");
  probe->add_option("--train-where", probe_args.train_where,
                    "fit only on windows whose label NAME is one of the values: NAME=V[,V...]");
  probe->add_option("--test-where", probe_args.test_where, "evaluate only on windows with NAME=V[,V...]");
  probe->add_option("--json", probe_args.json, "write the results as JSON");
  probe->add_option("--l2", probe_args.l2, "L2 penalty on the weights (standardised features)");

  cpc::tools::ReportArgs report_args;
  CLI::App* report = app.add_subcommand("report", "one self-contained HTML page of a run: curves, config, probes");
  report->add_option("run", report_args.run, "run directory (metrics.jsonl, checkpoint.h5)")->required();
  report->add_option("--out", report_args.out, "output HTML file (default RUN/report.html)");
  report->add_option("--probe", report_args.probes, "a probe --json file to include (repeatable)");

  cpc::tools::BenchArgs bench_args;
  CLI::App* bench = app.add_subcommand("bench", "ms per training step and samples/s; --torch: PyTorch alongside");
  bench->add_option("--config", bench_args.config, "model and training config (JSON)")->required();
  bench->add_option("--batch", bench_args.batch, "batch size (default: train.batch_size)");
  bench->add_option("--threads", bench_args.threads, "CPU threads, the same on both sides (default 2)")
      ->check(at_least(1));
  bench->add_option("--rounds", bench_args.rounds, "alternating rounds (medians are reported)")
      ->check(at_least(1));
  bench->add_option("--steps", bench_args.steps, "timed steps per round and variant")->check(at_least(1));
  bench->add_flag("--torch", bench_args.torch, "run the same model and step in PyTorch (python3-torch), alternating");
  bench->add_option("--set", bench_args.overrides, "override a config key: --set data.window=8192");
  bench->add_flag("--profile", bench_args.profile, "per-op time table of cpc-engine's timed steps");
  bench->add_option("--trace", bench_args.trace, "write a Chrome trace JSON (Perfetto) of 5 steps; implies --profile");
  bench->add_option("--device", bench_args.device, "cpu (default), cuda or cuda:N");
  bench->add_option("--tf32", bench_args.tf32, "CUDA: TF32 tensor cores for fp32 GEMMs and convolutions, on both sides")
      ->check(CLI::IsMember({"on", "off"}));

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

  cpc::tools::PrepareWavArgs wav_args;
  CLI::App* wav = prepare->add_subcommand(
      "wav", "a directory of WAV files -> ragged HDF5 (labels from sub-folders or a manifest, train/test split)");
  wav->add_option("--in", wav_args.in, "input directory, searched recursively for *.wav in sorted order")->required();
  wav->add_option("--out", wav_args.out, "output HDF5 file")->required();
  wav->add_option("--rate", wav_args.rate, "resample every file to this rate (Hz; band-limited, Kaiser sinc)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  wav->add_option("--manifest", wav_args.manifest,
                  "CSV of path,label[,split], or with a header path,<label columns>[,split] (e.g. "
                  "path,speaker,language,split: one label dataset per column); path relative to --in; split "
                  "0/1/train/test; instead of sub-folders");
  wav->add_option("--test-fraction", wav_args.test_fraction, "share of each label put in split 1 (test)")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  wav->add_option("--seed", wav_args.seed, "seed of the train/test split")->capture_default_str();
  bool wav_mono = true;  // the default; the flag only says so explicitly
  CLI::Option* wav_mono_flag = wav->add_flag("--mono", wav_mono, "average all channels to one (the default)");
  wav->add_flag("--keep-channels", wav_args.keep_channels,
                "keep every channel: signals (C, total); files with another channel count are skipped")
      ->excludes(wav_mono_flag);
  wav->footer(
      "Labels: the first-level sub-folder of each file ('.' for files directly in --in; none if all are). "
      "Samples are float32, PCM full scale = 1. Unreadable files (not RIFF, truncated, compressed formats, NaN/Inf "
      "float samples) are skipped and listed in the summary.");

  cpc::tools::PrepareWfdbArgs wfdb_args;
  CLI::App* wfdb = prepare->add_subcommand(
      "wfdb", "PhysioNet WFDB records (.hea + format 16/212 .dat) -> ragged HDF5 (C, total) in physical units");
  wfdb->add_option("--in", wfdb_args.in, "input directory, searched recursively for *.hea")->required();
  wfdb->add_option("--out", wfdb_args.out, "output HDF5 file")->required();
  wfdb->add_option("--labels", wfdb_args.labels,
                   "CSV of record,label[,split]; record = path relative to --in without .hea, or the record name");
  wfdb->add_option("--rate", wfdb_args.rate, "resample every record to this rate (Hz); without it all must agree")
      ->check(CLI::PositiveNumber);
  wfdb->add_option("--test-fraction", wfdb_args.test_fraction, "share of each label put in split 1 (test)")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  wfdb->add_option("--seed", wfdb_args.seed, "seed of the train/test split")->capture_default_str();
  wfdb->footer("Every record must have the same channel count. Records with WFDB's missing-sample value are errors.");

  cpc::tools::PrepareCsvArgs csv_args;
  CLI::App* csv = prepare->add_subcommand(
      "csv", "numeric CSV (header row, one column per channel; one file = one recording) -> ragged HDF5");
  csv->add_option("--in", csv_args.in, "a .csv file, or a directory searched recursively for *.csv")->required();
  csv->add_option("--out", csv_args.out, "output HDF5 file")->required();
  csv->add_option("--rate", csv_args.rate, "sampling rate of the rows (Hz), stored as rate_hz")
      ->check(CLI::PositiveNumber);
  csv->add_option("--label-column", csv_args.label_column, "column holding the recording's label (same on every row)");
  csv->add_option("--ignore-column", csv_args.ignore_columns, "column that is not a channel, e.g. time (repeatable)");
  csv->add_option("--test-fraction", csv_args.test_fraction, "share of each label put in split 1 (test)")
      ->check(CLI::Range(0.0, 0.999))
      ->capture_default_str();
  csv->add_option("--seed", csv_args.seed, "seed of the train/test split")->capture_default_str();
  csv->footer(
      "Non-numeric or empty cells are errors naming the file, line and column; NaN/Inf samples are errors naming "
      "the file, the sample index, line and column.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (info->parsed()) return cpc::tools::run_info();
    if (train->parsed()) {
      train_args.resume = resume_mode == "always";
      train_args.resume_auto = resume_mode == "auto";
      return cpc::tools::run_train(train_args);
    }
    if (embed->parsed()) return cpc::tools::run_embed(embed_args);
    if (exp->parsed()) return cpc::tools::run_export(export_args);
    if (probe->parsed()) return cpc::tools::run_probe(probe_args);
    if (report->parsed()) return cpc::tools::run_report(report_args);
    if (bench->parsed()) return cpc::tools::run_bench(bench_args);
    if (wav->parsed()) return cpc::tools::run_prepare_wav(wav_args);
    if (wfdb->parsed()) return cpc::tools::run_prepare_wfdb(wfdb_args);
    if (csv->parsed()) return cpc::tools::run_prepare_csv(csv_args);
    if (synth_ecg->parsed()) {
      cpc::tools::write_synthetic_ecg(synth_out, synth);
      std::printf("wrote %s: %lld recordings x 12 leads x %.1f s at %.0f Hz, labels 'rhythm' (5 classes), split\n",
                  synth_out.c_str(), static_cast<long long>(synth.recordings), synth.seconds, synth.rate);
      return 0;
    }
  } catch (const std::exception& e) {
    // In a multi-process job one rank's error ends every rank (MPI_Abort), naming the
    // rank, so no other rank waits forever in a collective.
    if (cpc::has_communicator() && cpc::communicator().world() > 1) {
      cpc::Communicator& comm = cpc::communicator();
      std::fprintf(stderr, "error on rank %d of %d: %s\n", comm.rank(), comm.world(), e.what());
      comm.abort(1);
    }
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
