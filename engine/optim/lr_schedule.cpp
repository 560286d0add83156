#include "engine/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"

namespace cpc {

double LrSchedule::at(int64_t step) const {
  switch (kind) {
    case Kind::constant:
      return base_lr;
    case Kind::warmup_cosine: {
      if (step < warmup_steps) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
      const double span = std::max<int64_t>(total_steps - warmup_steps, 1);
      const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
      return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + std::cos(M_PI * progress));
    }
    case Kind::noam: {
      // The seed repository's ScheduledOptim (Vaswani et al.):
      //   lr = factor * d_model^-0.5 * min(n^-0.5, n * warmup^-1.5), n = step + 1.
      const double n = static_cast<double>(step + 1);
      const double w = static_cast<double>(std::max<int64_t>(warmup_steps, 1));
      return noam_factor * std::pow(static_cast<double>(model_dim), -0.5) *
             std::min(std::pow(n, -0.5), n * std::pow(w, -1.5));
    }
  }
  return base_lr;
}

LrSchedule::Kind LrSchedule::parse(const std::string& name) {
  if (name == "constant") return Kind::constant;
  if (name == "warmup_cosine") return Kind::warmup_cosine;
  if (name == "noam") return Kind::noam;
  fail("lr schedule '", name, "': expected constant, warmup_cosine or noam");
}

}  // namespace cpc
