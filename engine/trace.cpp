#include "engine/trace.h"

namespace cpc {

namespace {
TraceHooks g_hooks;
}

void set_trace_hooks(TraceHooks hooks) { g_hooks = hooks; }

TraceRange::TraceRange(const char* name) {
  if (g_hooks.push) g_hooks.push(name);
}

TraceRange::~TraceRange() {
  if (g_hooks.pop) g_hooks.pop();
}

}  // namespace cpc
