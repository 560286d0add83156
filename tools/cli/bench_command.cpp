#include "tools/cli/bench_command.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/core/random.h"
#include "engine/data/safetensors_file.h"
#include "tools/cli/device_option.h"
#include "tools/cli/output_path.h"
#include "tools/cli/source_dir.h"
#include "tools/cli/torch_process.h"
#include "tools/training/trainer.h"

namespace cpc::tools {

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

// The best of 3 runs of an n^3 GEMM on the device's backend, as configured (the CPU's
// current GEMM library; on CUDA cuBLAS with the TF32 and precision options in force).
double gemm_peak_gflops(Device device, int64_t n) {
  Tensor a = Tensor::empty({n, n}, device), b = Tensor::empty({n, n}, device), c = Tensor::empty({n, n}, device);
  Backend& be = backend(device);
  be.fill(a, 1.f), be.fill(b, 1.f);
  GemmArgs g;
  g.m = g.n = g.k = n, g.a = a.f32(), g.b = b.f32(), g.c = c.f32(), g.lda = g.ldb = g.ldc = n;
  be.gemm(g);
  be.synchronize();
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = Clock::now();
    be.gemm(g);
    be.synchronize();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return 2.0 * n * n * n / best / 1e9;
}

struct Variant {
  std::string name;
  std::vector<double> ms;
  std::function<void(int)> run;  // runs and times `steps` steps, appending to ms
};

}  // namespace

int run_bench(const BenchArgs& a) {
  std::vector<std::string> overrides = a.overrides;
  if (a.batch > 0) overrides.push_back("train.batch_size=" + std::to_string(a.batch));
  const CpcConfig cfg = CpcConfig::load(a.config, overrides);
  CPC_CHECK(a.threads >= 1 && a.rounds >= 1 && a.steps >= 1, "bench: --threads ", a.threads, ", --rounds ", a.rounds,
            " and --steps ", a.steps, " must be >= 1");
  Backend& be = backend(Device::cpu());
  be.set_threads(a.threads);
  const int64_t B = cfg.train.batch_size;
  const Device device = select_device(a.device, communicator());
  const bool cuda = device.kind != DeviceKind::cpu;
  CPC_CHECK(a.tf32 == "off" || cuda, "bench: --tf32 ", a.tf32, " applies to CUDA only (--device cuda)");
  if (cuda) backend(device).set_option("tf32", a.tf32);
  Trainer trainer(cfg, nullptr, device);
  Generator gen(1234);
  const Tensor x = gen.normal_tensor({B, cfg.channels, cfg.window}, 0.f, 1.f);

  // The PyTorch reference loads our initial weights (so both train the same model)
  // and first checks that it computes our loss on the same batch.
  const std::string tmp = std::filesystem::temp_directory_path() / ("cpc_bench_" + std::to_string(getpid()));
  std::vector<std::unique_ptr<TorchProcess>> torch;
  std::vector<std::string> torch_names, torch_labels;
  if (a.torch) {
    std::filesystem::create_directories(tmp);
    save_safetensors(tmp + "/model.safetensors", trainer.model().state_dict(),
                     {{"format", "pt"}, {"part", "model"}, {"config", cfg.source.dump()}});
    save_safetensors(tmp + "/x.safetensors", {{"x", x}}, {{"format", "pt"}});
    const std::vector<std::string> args{"--weights", tmp + "/model.safetensors", "--threads", std::to_string(a.threads),
                                        "--batch",   std::to_string(B), "--device", cuda ? "cuda" : "cpu",
                                        "--tf32",    a.tf32};
    const std::string script = source_path("tools/python/torch_train_step.py");
    // On the CPU the tuned peer comes first (it is the one `vs torch` divides by).
    const std::vector<TorchPeer> peers =
        cuda ? std::vector<TorchPeer>{{"PyTorch CUDA", "PyTorch CUDA (same GPU, cudnn.benchmark, fused AdamW)", {}, true}}
             : cpu_torch_peers();
    for (const TorchPeer& peer : peers) {
      torch.push_back(std::make_unique<TorchProcess>(script, args, peer));
      torch_names.push_back(peer.name);
      torch_labels.push_back(peer.label);
    }
  }
  std::printf("bench: %s, batch %lld x %lld x %lld, %lld parameters, %d threads\n", a.config.c_str(),
              static_cast<long long>(B), static_cast<long long>(cfg.channels), static_cast<long long>(cfg.window),
              static_cast<long long>(trainer.num_parameters()), a.threads);
  std::printf("cpc-engine: %s\n", backend(device).describe().c_str());
  for (size_t i = 0; i < torch.size(); ++i)
    std::printf("pytorch:    %s: %s\n", torch_labels[i].c_str(), torch[i]->header().c_str());

  // Step 0 at a fixed t: the loss check and the FLOP count (3 x the forward GEMM/conv
  // FLOPs: forward, backward-data and backward-weights).
  const int64_t T = cfg.encoder.out_length(cfg.window);
  const int64_t t_check = cfg.loss.t_mode == InfoNceOptions::TMode::random ? (T - cfg.K) / 2 : -1;
  double step_flops = 0;
  {
    FlopCount count;
    const StepResult r = trainer.step(x, 0, t_check);
    step_flops = 3 * count.forward();
    for (size_t i = 0; i < torch.size(); ++i) {
      const nlohmann::json j = nlohmann::json::parse(
          torch[i]->request("check " + tmp + "/x.safetensors " + std::to_string(std::max<int64_t>(t_check, 0))));
      const double theirs = j.at("loss");
      const double rel = std::abs(r.loss - theirs) / std::max(std::abs(theirs), 1e-12);
      std::printf("loss check, same weights and batch: cpc-engine %.6f, %s %.6f (relative difference %.1e)\n",
                  r.loss, torch_names[i].c_str(), theirs, rel);
      // Timing two different computations would mean nothing. bf16 rounds in different
      // places on the two sides (PyTorch's autocast also rounds conv outputs).
      // TF32 rounds every GEMM's inputs to 10 mantissa bits, differently on each side.
      const double tol = cfg.train.precision == "bf16" || a.tf32 == "on" ? 1e-2 : 1e-4;
      CPC_CHECK(rel <= tol, "bench: PyTorch's loss ", theirs, " differs from ours ", r.loss, " by ", rel,
                " (relative; expected <= ", tol, "): the reference does not compute the same model");
    }
  }
  const bool bf16 = cfg.train.precision == "bf16";
  double peak = 0;
  if (cuda) {
    peak = gemm_peak_gflops(device, 8192);
    std::printf("cuBLAS GEMM 8192^3 peak (%s, TF32 %s): %.0f GFLOP/s; a step is %.1f GFLOP\n",
                bf16 ? "bf16 inputs" : "fp32", a.tf32.c_str(), peak, step_flops / 1e9);
  } else {
    be.set_option("gemm", "openblas");
    const double peak_openblas = gemm_peak_gflops(device, 2048);
    be.set_option("gemm", "onednn");
    const double peak_onednn = gemm_peak_gflops(device, 2048);
    peak = std::max(peak_onednn, peak_openblas);
    if (bf16)  // both library choices run the bf16 matmul
      std::printf("GEMM 2048^3 peak with bf16 inputs (%d threads): %.0f GFLOP/s; a step is %.1f GFLOP\n", a.threads,
                  peak, step_flops / 1e9);
    else
      std::printf("sgemm 2048^3 peak (%d threads): oneDNN %.0f GFLOP/s, OpenBLAS %.0f GFLOP/s; a step is %.1f GFLOP\n",
                  a.threads, peak_onednn, peak_openblas, step_flops / 1e9);
  }

  std::vector<Variant> variants;
  int64_t step = 1;
  const bool profiling = a.profile || !a.trace.empty();
  if (!a.trace.empty()) check_output_path(a.trace);
  bool warm = false;  // the warm-up round is not profiled
  auto ours = [&](std::string gemm, size_t v) {
    return [&, gemm, v](int n) {
      if (profiling && v == 0 && warm) profiler::resume();
      if (!cuda) be.set_option("gemm", gemm);
      for (int i = 0; i < n; ++i) {
        const auto t0 = Clock::now();
        trainer.step(x, step++);
        backend(device).synchronize();  // the step's last kernels
        variants[v].ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      if (!cuda) be.set_option("gemm", "onednn");
      if (profiling) profiler::stop();
    };
  };
  size_t first_torch = 2;
  if (cuda) {
    variants.push_back({std::string("cpc-engine CUDA (") + (bf16 ? "bf16" : a.tf32 == "on" ? "TF32" : "fp32") + ")",
                        {},
                        ours("", 0)});
    first_torch = 1;
  } else if (bf16) {
    variants.push_back({"cpc-engine (bf16 inputs: oneDNN conv + matmul)", {}, ours("onednn", 0)});
    first_torch = 1;
  } else {
    variants.push_back({"cpc-engine (oneDNN conv + oneDNN sgemm, default)", {}, ours("onednn", 0)});
    variants.push_back({"cpc-engine (oneDNN conv + OpenBLAS sgemm, PyTorch's kernels)", {}, ours("openblas", 1)});
  }
  for (size_t i = 0; i < torch.size(); ++i) {
    const size_t v = variants.size();
    variants.push_back({torch_names[i] + (bf16 ? ", autocast bf16" : ""), {}, [&, i, v](int n) {
                          const nlohmann::json j = nlohmann::json::parse(torch[i]->request("steps " + std::to_string(n)));
                          for (double ms : j.at("ms")) variants[v].ms.push_back(ms);
                        }});
  }
  for (Variant& v : variants) {  // warm-up: primitives, caches, allocator pools
    v.run(1);
    v.ms.clear();
  }
  if (profiling) {  // collected during variant 0's timed steps only
    profiler::start(a.trace.empty() ? 0 : 5);
    profiler::stop();
    warm = true;
  }
  for (int r = 0; r < a.rounds; ++r) {
    for (Variant& v : variants) v.run(a.steps);
    std::printf("round %d/%d done\n", r + 1, a.rounds);
    std::fflush(stdout);
  }

  // `vs torch` divides by the tuned peer's median (the first PyTorch variant).
  const double torch_ref = variants.size() > first_torch ? median(variants[first_torch].ms) : NAN;
  std::printf("\n%-64s %10s %10s %9s %7s %9s\n", "", "ms/step", "samples/s", "GFLOP/s", "%peak", "vs torch");
  for (const Variant& v : variants) {
    const double ms = median(v.ms), gflops = step_flops / (ms / 1e3) / 1e9;
    std::printf("%-64s %10.1f %10.1f %9.1f %6.0f%% ", v.name.c_str(), ms, static_cast<double>(B) / (ms / 1e3), gflops,
                100 * gflops / peak);
    if (std::isfinite(torch_ref))
      std::printf("%8.2fx\n", torch_ref / ms);
    else
      std::printf("%9s\n", "-");
  }
  std::printf("(medians of %d rounds x %d steps; 'vs torch' = %s PyTorch's ms / this row's ms; %%peak against %s)\n",
              a.rounds, a.steps, cuda ? "the" : "the tuned", cuda ? "cuBLAS's GEMM" : "the faster GEMM");
  if (profiling) {
    std::printf("\nprofile of '%s':%s", variants.front().name.c_str(), profiler::table().c_str());
    if (!a.trace.empty()) {
      profiler::write_chrome_trace(a.trace);
      std::printf("trace: %s (open in https://ui.perfetto.dev or chrome://tracing)\n", a.trace.c_str());
    }
  }
  torch.clear();
  std::filesystem::remove_all(tmp);
  return 0;
}

}  // namespace cpc::tools
