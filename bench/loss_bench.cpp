// Fused InfoNCE and NT-Xent, forward + backward, next to PyTorch in one command:
// time, extra memory, GFLOP/s against the measured sgemm peak.
// Memory: ours is what the step holds beyond its inputs (the tape arena's peak plus
// the backend's kernel workspace), counted exactly; PyTorch's is its RSS high-water
// mark during the step above the RSS before it (allocations are freed between steps).
//   cpc-loss-bench [--threads 2] [--reps 3] [--sizes 64,256,1024,4096] [--nt-sizes 512,4096] [--no-torch]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "engine/ops/ops.h"
#include "engine/core/random.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_options.h"
#include "losses/info_nce_loss.h"
#include "losses/nt_xent_loss.h"
#include "tools/cli/source_dir.h"
#include "tools/cli/torch_process.h"

namespace {

using namespace cpc;
using Clock = std::chrono::steady_clock;

// Median ms of `reps` calls, and the MiB the step holds: the tape arena's peak plus
// the CPU backend's workspace.
template <class F>
std::pair<double, double> measure(F&& fn, int reps, const Tape& tape) {
  fn();  // warm-up: arenas and workspaces reach their size; the second call runs
  fn();  // on the merged arena block (its first touch would count as page faults)
  std::vector<double> ts;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    fn();
    ts.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ts.begin(), ts.end());
  const double bytes = static_cast<double>(const_cast<Tape&>(tape).arena(Device::cpu()).peak()) +
                       static_cast<double>(backend(Device::cpu()).workspace_bytes());
  return {ts[ts.size() / 2], bytes / (1 << 20)};
}

double sgemm_peak_gflops(int n) {
  std::vector<float> a(static_cast<size_t>(n) * n, 1.f), b(a), c(a);
  auto run = [&] { cpu::gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); };
  run();
  double best = 1e30;
  for (int r = 0; r < 3; ++r) {
    const auto t0 = Clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return 2.0 * n * n * n / best / 1e9;
}

std::vector<int> parse_sizes(const char* s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::atoi(item.c_str()));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, reps = 3;
  const int K = 12, D = 512;
  std::vector<int> sizes{64, 256, 1024, 4096}, nt_sizes{512, 4096};
  bool torch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "--threads" && has) threads = std::atoi(argv[++i]);
    else if (a == "--reps" && has) reps = std::atoi(argv[++i]);
    else if (a == "--sizes" && has) sizes = parse_sizes(argv[++i]);
    else if (a == "--nt-sizes" && has) nt_sizes = parse_sizes(argv[++i]);
    else if (a == "--no-torch") torch = false;
    else {
      std::fprintf(stderr, "error: unknown or incomplete option %s\n", a.c_str());
      return 2;
    }
  }
  try {
    backend(Device::cpu()).set_threads(threads);
    std::unique_ptr<tools::TorchProcess> py;
    if (torch) {
      const tools::TorchPeer peer = tools::cpu_torch_peers().front();
      py = std::make_unique<tools::TorchProcess>(
          tools::source_path("bench/torch_loss_bench.py"),
          std::vector<std::string>{"--threads", std::to_string(threads), "--reps", std::to_string(reps)}, peer);
      std::printf("pytorch:    %s: %s\n", peer.label.c_str(), py->header().c_str());
    }
    std::printf("cpc-engine: %s\n", backend(Device::cpu()).describe().c_str());
    const cpu::CpuOptions saved = cpu::cpu_options();
    cpu::cpu_options().gemm = cpu::GemmLibrary::openblas;
    const double peak_openblas = sgemm_peak_gflops(2048);
    cpu::cpu_options().gemm = cpu::GemmLibrary::onednn;
    const double peak_onednn = sgemm_peak_gflops(2048);
    cpu::cpu_options() = saved;
    std::printf("sgemm 2048^3 peak: oneDNN %.0f GFLOP/s, OpenBLAS %.0f GFLOP/s (%d threads)\n\n", peak_onednn,
                peak_openblas, threads);

    Generator gen(0);
    std::printf("InfoNCE fwd+bwd, K = %d, D = %d (FLOPs counted as 6 K B^2 D)\n", K, D);
    std::printf("%6s | %21s | %21s | %13s | %13s | %9s %9s | %8s %8s\n", "B", "ours oneDNN ms / MiB",
                "ours OpenBLAS ms/MiB", "torch loop", "torch bmm", "vs loop", "vs bmm", "%peak", "%peak OB");
    for (int B : sizes) {
      // The loss's inputs: the K predictions and K target latents, (K, B, D) each.
      Parameter pred(gen.normal_tensor({K, B, D}, 0, 0.05f)), z(gen.normal_tensor({K, B, D}, 0, 0.05f));
      std::vector<int32_t> labels(B);
      for (int i = 0; i < B; ++i) labels[i] = i;
      ContrastiveSpec spec;
      spec.row_label = spec.col_label = labels.data();
      Tape tape;
      TapeScope scope(tape);
      auto step = [&] {
        tape.reset();
        pred.zero_grad(), z.zero_grad();
        Var* total = nullptr;
        for (int k = 0; k < K; ++k) {
          Var* lk = ops::contrastive_loss(ops::select(&z, 0, k), ops::select(&pred, 0, k), spec);
          total = total ? ops::add(total, lk) : lk;
        }
        tape.backward(ops::scale(total, 1.f / K));
      };
      cpu::cpu_options().gemm = cpu::GemmLibrary::onednn;
      const auto [ms, mib] = measure(step, reps, tape);
      cpu::cpu_options().gemm = cpu::GemmLibrary::openblas;
      const auto [ms_ob, mib_ob] = measure(step, reps, tape);
      cpu::cpu_options() = saved;
      double loop_ms = 0, loop_mib = 0, bmm_ms = 0, bmm_mib = 0;
      if (py) {
        const auto j = nlohmann::json::parse(py->request("infonce " + std::to_string(B)));
        loop_ms = j["loop_ms"], loop_mib = j["loop_mib"], bmm_ms = j["batched_ms"], bmm_mib = j["batched_mib"];
      }
      const double gflop = 6.0 * K * B * B * D / 1e9;
      std::printf("%6d | %9.1f ms %6.1f MiB | %9.1f ms %6.1f MiB | %6.1f %6.1f | %6.1f %6.1f | %8.2fx %8.2fx | %7.0f%% %7.0f%%\n",
                  B, ms, mib, ms_ob, mib_ob, loop_ms, loop_mib, bmm_ms, bmm_mib, py ? loop_ms / ms : 0.0,
                  py ? bmm_ms / ms : 0.0, 100.0 * gflop / (ms / 1e3) / peak_onednn,
                  100.0 * gflop / (ms_ob / 1e3) / peak_openblas);
    }
    std::printf("(torch columns: ms MiB; 'vs' = torch time / ours (oneDNN); %%peak = achieved / sgemm peak of the same "
                "library)\n\n");

    std::printf("NT-Xent fwd+bwd (cosine, SimCLR views), D = %d\n", D);
    std::printf("%6s | %21s | %13s | %9s\n", "N", "ours ms / MiB", "torch", "speedup");
    for (int N : nt_sizes) {
      Parameter e(gen.normal_tensor({N, D}, 0, 1));
      Tape tape;
      TapeScope scope(tape);
      NtXentLoss loss({});
      auto step = [&] {
        tape.reset();
        e.zero_grad();
        tape.backward(loss.forward_views(&e).loss);
      };
      const auto [ms, mib] = measure(step, reps, tape);
      double t_ms = 0, t_mib = 0;
      if (py) {
        const auto j = nlohmann::json::parse(py->request("ntxent " + std::to_string(N)));
        t_ms = j["ntxent_ms"], t_mib = j["ntxent_mib"];
      }
      std::printf("%6d | %9.1f ms %6.1f MiB | %6.1f %6.1f | %8.2fx\n", N, ms, mib, t_ms, t_mib, py ? t_ms / ms : 0.0);
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
