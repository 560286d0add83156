// Seed-004 conv stack and GRU, forward + backward, next to PyTorch in the same
// command: rounds alternate between our engine and two PyTorch processes (same
// threads; the tuned peer of tools/cli/torch_process.h and the untuned default) and the
// medians are compared, the speedup against the tuned PyTorch.
//   cpc-core-bench [--threads 2] [--batch 8] [--length 20480] [--rounds 5] [--reps 3] [--no-torch]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "engine/ops/ops.h"
#include "engine/core/random.h"
#include "layers/activations.h"
#include "layers/batch_norm1d.h"
#include "layers/channels_last.h"
#include "layers/conv1d.h"
#include "layers/gru.h"
#include "layers/sequential.h"
#include "models/conv_encoder.h"
#include "tools/cli/source_dir.h"
#include "tools/cli/torch_process.h"

namespace {

using namespace cpc;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, batch = 8, length = 20480, rounds = 5, reps = 3;
  bool torch = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (a == "--threads")
      threads = next();
    else if (a == "--batch")
      batch = next();
    else if (a == "--length")
      length = next();
    else if (a == "--rounds")
      rounds = next();
    else if (a == "--reps")
      reps = next();
    else if (a == "--no-torch")
      torch = false;
    else {
      std::fprintf(stderr, "error: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  try {
    backend(Device::cpu()).set_threads(threads);
    Generator gen(0);
    auto enc = make_conv_encoder(1, cdck2_encoder_layers(), NormKind::batch, gen);
    // The layout the CPC model runs on this backend (channels-last on the CPU), with the
    // model's transposes around the encoder.
    const bool cl = backend(Device::cpu()).conv1d_prefers_channels_last();
    set_channels_last(*enc, cl);
    GRU gru(512, 256, 1, gen);
    const int64_t T = length / 160;
    const Tensor x = gen.normal_tensor({batch, 1, length}, 0, 1);
    const Tensor z = gen.normal_tensor({batch, T, 512}, 0, 1);
    const Tensor dz = gen.normal_tensor({batch, 512, T}, 0, 1), dc = gen.normal_tensor({batch, T, 256}, 0, 1);
    Tape tape;
    TapeScope scope(tape);
    auto conv_step = [&] {
      tape.reset();
      enc->zero_grad();
      Var* y = cl ? ops::transpose(enc->forward(ops::transpose(tape.var(x), 1, 2)), 1, 2) : enc->forward(tape.var(x));
      tape.backward({{y, dz}});
    };
    auto gru_step = [&] {
      tape.reset();
      gru.zero_grad();
      Var* zv = tape.var(z, true);
      tape.backward({{gru.forward(zv).output, dc}});
    };
    auto time_ms = [&](auto&& fn) {
      std::vector<double> ts;
      for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        fn();
        ts.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
      return ts;
    };
    conv_step(), gru_step();  // warm-up: arenas and workspaces reach their size

    struct Torch {
      std::string name;
      std::unique_ptr<tools::TorchProcess> proc;
      std::vector<double> conv, gru;
    };
    std::vector<Torch> pys;
    if (torch) {
      const std::vector<std::string> args{"--threads", std::to_string(threads), "--batch", std::to_string(batch),
                                          "--length",  std::to_string(length),  "--reps",  std::to_string(reps)};
      const std::string script = tools::source_path("bench/torch_core_bench.py");
      for (const tools::TorchPeer& peer : tools::cpu_torch_peers()) {  // the tuned peer first
        pys.push_back({peer.name, std::make_unique<tools::TorchProcess>(script, args, peer), {}, {}});
        std::printf("%-17s %s: %s\n", (pys.back().name + ":").c_str(), peer.label.c_str(),
                    pys.back().proc->header().c_str());
      }
    }
    std::printf("%-17s %s\n", "cpc-engine:", backend(Device::cpu()).describe().c_str());
    std::printf("shapes:  conv stack (%d, 1, %d) -> (%d, 512, %lld); GRU 512->256 on (%d, %lld, 512)\n", batch, length,
                batch, static_cast<long long>(T), batch, static_cast<long long>(T));
    std::vector<double> our_conv, our_gru;
    for (int r = 0; r < rounds; ++r) {
      for (double t : time_ms(conv_step)) our_conv.push_back(t);
      for (double t : time_ms(gru_step)) our_gru.push_back(t);
      for (Torch& p : pys) {
        const nlohmann::json j = nlohmann::json::parse(p.proc->request("round"));
        for (double t : j["conv_ms"]) p.conv.push_back(t);
        for (double t : j["gru_ms"]) p.gru.push_back(t);
      }
    }
    std::printf("\n%-38s %11s", "fwd+bwd, median ms", "cpc-engine");
    for (const Torch& p : pys) std::printf(" %17s", p.name.c_str());
    std::printf(" %9s\n", pys.empty() ? "" : "speedup");
    auto row = [&](const char* name, const std::vector<double>& ours, std::vector<double> Torch::*theirs) {
      std::printf("%-38s %11.1f", name, median(ours));
      for (const Torch& p : pys) std::printf(" %17.1f", median(p.*theirs));
      if (!pys.empty()) std::printf(" %8.2fx", median(pys.front().*theirs) / median(ours));
      std::printf("\n");
    };
    row("seed-004 conv stack (5x conv+BN+ReLU)", our_conv, &Torch::conv);
    row("GRU 512->256, T = length/160", our_gru, &Torch::gru);
    std::printf("(speedup = the tuned PyTorch's median / ours; %d rounds x %d reps, alternating, %d threads each)\n",
                rounds, reps, threads);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
