#pragma once
// Learning-rate schedules as functions of the 0-based step.
#include <cstdint>
#include <string>

namespace cpc {

struct LrSchedule {
  enum class Kind { constant, warmup_cosine, noam };
  Kind kind = Kind::constant;
  double base_lr = 1e-3;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;  // warmup_cosine: the step where lr reaches min_lr
  double min_lr = 0.0;
  int64_t model_dim = 512;  // noam
  double noam_factor = 1.0;

  // The learning rate used for step `step` (0-based).
  double at(int64_t step) const;
  static Kind parse(const std::string& name);  // "constant" | "warmup_cosine" | "noam"
};

}  // namespace cpc
