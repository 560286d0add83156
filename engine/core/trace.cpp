#include "engine/core/trace.h"

#include "engine/core/profiler.h"

namespace cpc {

namespace {
TraceHooks g_hooks;
}

void set_trace_hooks(TraceHooks hooks) { g_hooks = hooks; }

TraceRange::TraceRange(const char* name) : profiled_(profiler::enabled()) {
  if (g_hooks.push) g_hooks.push(name);
  if (profiled_) profiler::phase_begin(name);
}

TraceRange::~TraceRange() {
  if (profiled_) profiler::phase_end();
  if (g_hooks.pop) g_hooks.pop();
}

}  // namespace cpc
