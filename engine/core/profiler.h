#pragma once
// The per-op profile behind `train --profile` and `bench --profile`, and the Chrome trace
// of `--trace FILE` (opens in Perfetto or chrome://tracing). Every op of engine/ops/ops.h
// opens a ProfileScope in its forward, the tape one around each backward node, the
// optimizer around its update and gradient norm, and TraceRange (engine/core/trace.h) marks
// the step phases. Off by default: a scope then costs one load of a global flag.
//
// Times are self times (a scope's time minus its nested scopes'), so the table's rows
// add up to the time spent inside ops. On a device other than the CPU a scope
// synchronises the device at both ends so that its time is the device's (the
// profile then serialises host and device: compare steps with and without --profile,
// and use Nsight Systems for overlap).
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/device.h"

namespace cpc::profiler {

extern bool g_enabled;
inline bool enabled() { return g_enabled; }

// Starts collecting (clearing what was collected); trace_steps > 0 also records the
// events of that many steps for write_chrome_trace (counted by the "step" phase).
void start(int64_t trace_steps = 0);
void stop();    // pauses collection (what was collected stays)
void resume();  // continues after stop()

struct OpRow {
  std::string op;
  bool backward = false;
  int64_t calls = 0;
  double seconds = 0;  // self time
  double flops = 0;    // 0: not defined for this op
  double bytes = 0;    // bytes read and written, where the op declares them (memory-bound ops)
};
struct PhaseRow {
  std::string phase;
  int64_t calls = 0;
  double seconds = 0;
};
std::vector<OpRow> op_rows();        // sorted by time, descending
std::vector<PhaseRow> phase_rows();  // in first-seen order
// The table printed after a run: one row per (op, pass) with calls, total ms, % of the
// steps' time, GFLOP/s and GB/s where defined, then the phases and the coverage line.
std::string table();
// Chrome trace event format (JSON): complete events ("ph":"X") for phases and ops.
void write_chrome_trace(const std::string& path);

// Called by the ops (FlopCount::add forwards here) and by scopes.
void add_flops(double flops);

class ProfileScope {
 public:
  explicit ProfileScope(const char* op, bool backward = false, Device device = Device::cpu(), double bytes = 0)
      : active_(g_enabled) {
    if (active_) begin(op, backward, device, bytes);
  }
  ~ProfileScope() {
    if (active_) end();
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  bool active_;
  void begin(const char* op, bool backward, Device device, double bytes);
  void end();
};

// Step phases (TraceRange calls these while profiling).
void phase_begin(const char* name);
void phase_end();

}  // namespace cpc::profiler
