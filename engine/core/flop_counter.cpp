#include "engine/core/flop_counter.h"

#include "engine/core/profiler.h"

namespace cpc {

namespace {
thread_local FlopCount* g_current = nullptr;
}

FlopCount::FlopCount() : prev_(g_current) { g_current = this; }
FlopCount::~FlopCount() { g_current = prev_; }

void FlopCount::add(double flops) {
  if (g_current) g_current->flops_ += flops;
  profiler::add_flops(flops);
}

}  // namespace cpc
