#pragma once
// Loops over the CPU's OpenMP threads. A team is entered only when it pays (>= 2
// threads, enough work): libgomp allocates a fresh team for every serial region
// (an `if(false)` clause or one thread), which would break the allocation-free
// training step. Teams of the same size are reused without allocating.
#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace cpc::cpu {

template <class F>
void parallel_for(int64_t n, bool worth_it, F&& f) {
  if (!worth_it || n < 2 || omp_get_max_threads() < 2) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// Sum of f(i) over [0, n) in double; deterministic for a given thread count.
template <class F>
double parallel_sum(int64_t n, bool worth_it, F&& f) {
  constexpr int kMaxThreads = 64;
  const int threads = std::min(omp_get_max_threads(), kMaxThreads);
  if (!worth_it || n < 2 || threads < 2) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += f(i);
    return s;
  }
  double partial[kMaxThreads] = {};
#pragma omp parallel num_threads(threads)
  {
    double s = 0;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) s += f(i);
    partial[omp_get_thread_num()] = s;
  }
  double s = 0;
  for (int t = 0; t < threads; ++t) s += partial[t];
  return s;
}

}  // namespace cpc::cpu
