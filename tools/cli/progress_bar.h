#pragma once
// Training progress for people: on a terminal one redrawn line with a bar (step, loss,
// accuracy, samples/s, ETA); otherwise (logs, pipes) plain lines at a steady pace.
#include <chrono>
#include <cstdint>
#include <string>

namespace cpc::tools {

class ProgressBar {
 public:
  // total: last step number; tty: redraw in place; quiet: print nothing.
  ProgressBar(int64_t first, int64_t total, bool tty, bool quiet);
  // After step `step` (1-based) finished; samples_per_s over this invocation.
  void update(int64_t step, double loss, double accuracy, double samples_per_s, int64_t batch);
  // A line that must stay visible (validation): printed above the bar.
  void message(const std::string& line);
  void finish();

 private:
  int64_t first_, total_, every_;
  bool tty_, quiet_, drawn_ = false;
};

std::string format_duration(double seconds);  // "42s", "3m05s", "1h02m"

}  // namespace cpc::tools
