#pragma once
// Named ranges around the phases of a training step (step, load, forward, backward,
// allreduce, optimizer) for profilers. The CUDA backend registers NVTX push/pop, so
// `nsys profile cpc-engine train ...` shows the step structure above the per-op ranges;
// without hooks a range costs a null check. While --profile runs, the ranges are the
// phases of the profile and of its Chrome trace.
namespace cpc {

struct TraceHooks {
  void (*push)(const char* name) = nullptr;
  void (*pop)() = nullptr;
};
void set_trace_hooks(TraceHooks hooks);

class TraceRange {
 public:
  explicit TraceRange(const char* name);
  ~TraceRange();
  TraceRange(const TraceRange&) = delete;
  TraceRange& operator=(const TraceRange&) = delete;

 private:
  bool profiled_;  // also a phase of the profile (engine/core/profiler.h)
};

}  // namespace cpc
