#include "engine/core/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

#include "engine/data/atomic_file.h"
#include "engine/core/backend.h"

namespace cpc::profiler {

bool g_enabled = false;

namespace {

using Clock = std::chrono::steady_clock;

struct Frame {
  size_t row;
  int64_t start_ns, child_ns = 0;
  Device device;
};
struct Event {
  std::string name, cat;
  int64_t ts_ns, dur_ns;
  bool backward;
};
struct State {
  Clock::time_point t0;
  std::thread::id thread;
  std::vector<OpRow> rows;
  std::map<std::pair<std::string, bool>, size_t> index;
  std::vector<Frame> stack;
  std::vector<PhaseRow> phases;
  std::vector<std::pair<size_t, int64_t>> phase_stack;  // (phase row, start)
  std::vector<Event> events;
  int64_t trace_steps_left = 0;
};
State g;

int64_t now_ns() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - g.t0).count(); }
bool on_profiled_thread() { return std::this_thread::get_id() == g.thread; }

size_t phase_row(const char* name) {
  for (size_t i = 0; i < g.phases.size(); ++i)
    if (g.phases[i].phase == name) return i;
  g.phases.push_back({name, 0, 0});
  return g.phases.size() - 1;
}

// FLOPs the counters do not see: backward of the GEMM-like ops is two GEMMs of the
// forward's size (data and weights); the fused contrastive forward also computes both
// gradients (three GEMMs where the counter counts the scores).
double flops_of(const OpRow& r, const std::map<std::string, std::pair<double, int64_t>>& forward) {
  if (!r.backward) return r.op == "contrastive_loss" ? 3 * r.flops : r.flops;
  if (r.flops > 0) return r.flops;
  if (r.op != "conv1d" && r.op != "linear" && r.op != "gru") return 0;
  const auto it = forward.find(r.op);
  if (it == forward.end() || it->second.second == 0) return 0;
  return 2 * it->second.first / static_cast<double>(it->second.second) * static_cast<double>(r.calls);
}

}  // namespace

void start(int64_t trace_steps) {
  g = State{};
  g.t0 = Clock::now();
  g.thread = std::this_thread::get_id();
  g.trace_steps_left = trace_steps;
  g_enabled = true;
}

void stop() { g_enabled = false; }
void resume() { g_enabled = true; }

void ProfileScope::begin(const char* op, bool backward, Device device, double bytes) {
  if (!on_profiled_thread()) {
    active_ = false;
    return;
  }
  if (device != Device::cpu()) backend(device).synchronize();  // earlier work is not this op's
  const auto key = std::make_pair(std::string(op), backward);
  auto it = g.index.find(key);
  if (it == g.index.end()) {
    it = g.index.emplace(key, g.rows.size()).first;
    g.rows.push_back({op, backward, 0, 0, 0, 0});
  }
  OpRow& r = g.rows[it->second];
  ++r.calls;
  r.bytes += bytes;
  g.stack.push_back({it->second, now_ns(), 0, device});
}

void ProfileScope::end() {
  Frame f = g.stack.back();
  g.stack.pop_back();
  if (f.device != Device::cpu()) backend(f.device).synchronize();
  const int64_t t = now_ns(), dur = t - f.start_ns;
  g.rows[f.row].seconds += static_cast<double>(dur - f.child_ns) * 1e-9;
  if (!g.stack.empty()) g.stack.back().child_ns += dur;
  if (g.trace_steps_left > 0)
    g.events.push_back({g.rows[f.row].op, "op", f.start_ns, dur, g.rows[f.row].backward});
}

void add_flops(double flops) {
  if (g_enabled && !g.stack.empty() && on_profiled_thread()) g.rows[g.stack.back().row].flops += flops;
}

void phase_begin(const char* name) {
  if (!on_profiled_thread()) return;
  g.phase_stack.emplace_back(phase_row(name), now_ns());
}

void phase_end() {
  if (!on_profiled_thread() || g.phase_stack.empty()) return;
  const auto [row, start] = g.phase_stack.back();
  g.phase_stack.pop_back();
  const int64_t dur = now_ns() - start;
  PhaseRow& p = g.phases[row];
  ++p.calls;
  p.seconds += static_cast<double>(dur) * 1e-9;
  if (g.trace_steps_left > 0) {
    g.events.push_back({p.phase, "phase", start, dur, false});
    if (p.phase == "step") --g.trace_steps_left;
  }
}

std::vector<OpRow> op_rows() {
  std::map<std::string, std::pair<double, int64_t>> forward;
  for (const OpRow& r : g.rows)
    if (!r.backward) forward[r.op] = {r.flops, r.calls};
  std::vector<OpRow> out = g.rows;
  for (OpRow& r : out) r.flops = flops_of(r, forward);
  std::sort(out.begin(), out.end(), [](const OpRow& a, const OpRow& b) { return a.seconds > b.seconds; });
  return out;
}

std::vector<PhaseRow> phase_rows() { return g.phases; }

std::string table() {
  double step_s = 0;
  int64_t steps = 0;
  for (const PhaseRow& p : g.phases)
    if (p.phase == "step") step_s = p.seconds, steps = p.calls;
  const std::vector<OpRow> rows = op_rows();
  double ops_s = 0;
  for (const OpRow& r : rows) ops_s += r.seconds;
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "\nprofile: %lld steps, %.1f ms per step\n%-28s %4s %8s %10s %8s %7s %9s %8s\n",
                static_cast<long long>(steps), steps ? step_s * 1e3 / static_cast<double>(steps) : 0.0, "op", "pass",
                "calls", "total ms", "ms/step", "% step", "GFLOP/s", "GB/s");
  out += line;
  for (const OpRow& r : rows) {
    std::string gf = "-", gb = "-";
    char b1[32], b2[32];
    if (r.flops > 0 && r.seconds > 0) std::snprintf(b1, sizeof b1, "%.1f", r.flops / r.seconds / 1e9), gf = b1;
    if (r.bytes > 0 && r.seconds > 0) std::snprintf(b2, sizeof b2, "%.1f", r.bytes / r.seconds / 1e9), gb = b2;
    std::snprintf(line, sizeof line, "%-28s %4s %8lld %10.1f %8.2f %6.1f%% %9s %8s\n", r.op.c_str(),
                  r.backward ? "bwd" : "fwd", static_cast<long long>(r.calls), r.seconds * 1e3,
                  steps ? r.seconds * 1e3 / static_cast<double>(steps) : 0.0, step_s > 0 ? 100 * r.seconds / step_s : 0.0,
                  gf.c_str(), gb.c_str());
    out += line;
  }
  out += "phases:";
  for (const PhaseRow& p : g.phases) {
    std::snprintf(line, sizeof line, "  %s %.1f ms", p.phase.c_str(), p.seconds * 1e3);
    out += line;
  }
  std::snprintf(line, sizeof line,
                "\nprofile coverage: steps %.1f ms, inside ops %.1f ms (%.1f%%), outside ops %.1f ms\n", step_s * 1e3,
                ops_s * 1e3, step_s > 0 ? 100 * ops_s / step_s : 0.0, (step_s - ops_s) * 1e3);
  out += line;
  return out;
}

void write_chrome_trace(const std::string& path) {
  std::string s = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": 1, \"tid\": 1, \"args\": {\"name\": "
                "\"cpc-engine\"}}");
  s += buf;
  for (const Event& e : g.events) {
    std::snprintf(buf, sizeof buf,
                  ",\n{\"name\": \"%s%s\", \"cat\": \"%s\", \"ph\": \"X\", \"pid\": 1, \"tid\": 1, \"ts\": %.3f, "
                  "\"dur\": %.3f}",
                  e.name.c_str(), e.backward ? " (backward)" : "", e.cat.c_str(), static_cast<double>(e.ts_ns) * 1e-3,
                  static_cast<double>(e.dur_ns) * 1e-3);
    s += buf;
  }
  s += "\n]}\n";
  write_file_atomically(path, s);
}

}  // namespace cpc::profiler
