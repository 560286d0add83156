#pragma once
// Counts the multiply-add FLOPs of the GEMM-like ops (conv1d, linear, gru, the
// contrastive scores) as they run forward, so benchmarks can report GFLOP/s against
// the sgemm peak. Off unless a FlopCount is alive; one thread (the training loop).
#include <cstdint>

namespace cpc {

class FlopCount {
 public:
  FlopCount();
  ~FlopCount();
  FlopCount(const FlopCount&) = delete;
  FlopCount& operator=(const FlopCount&) = delete;
  double forward() const { return flops_; }  // FLOPs of the forward ops run so far

  static void add(double flops);  // called by the ops; a no-op when nothing counts

 private:
  double flops_ = 0;
  FlopCount* prev_;
};

}  // namespace cpc
