#include "tools/cli/progress_bar.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace cpc::tools {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = std::lround(s);
  char buf[32];
  if (t < 60)
    std::snprintf(buf, sizeof buf, "%lds", t);
  else if (t < 3600)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  return buf;
}

ProgressBar::ProgressBar(int64_t first, int64_t total, bool tty, bool quiet)
    : first_(first), total_(total), every_(std::max<int64_t>(1, (total - first) / 50)), tty_(tty), quiet_(quiet) {}

void ProgressBar::update(int64_t step, double loss, double accuracy, double sps, int64_t batch) {
  if (quiet_) return;
  const double eta = sps > 0 ? static_cast<double>((total_ - step) * batch) / sps : 0;
  if (tty_) {
    constexpr int kWidth = 24;
    const double frac = total_ > 0 ? static_cast<double>(step) / static_cast<double>(total_) : 1;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(kWidth), ' ');
    for (int i = 0; i < filled; ++i) bar[static_cast<size_t>(i)] = '=';
    if (filled < kWidth) bar[static_cast<size_t>(filled)] = '>';
    std::printf("\r[%s] %lld/%lld  loss %.4f  acc %.3f  %.1f samples/s  ETA %s   ", bar.c_str(),
                static_cast<long long>(step), static_cast<long long>(total_), loss, accuracy, sps,
                format_duration(eta).c_str());
    drawn_ = true;
  } else if ((step - first_) % every_ == 0 || step == total_ || step == first_ + 1) {
    std::printf("step %lld/%lld  loss %.4f  acc %.3f  %.1f samples/s  ETA %s\n", static_cast<long long>(step),
                static_cast<long long>(total_), loss, accuracy, sps, format_duration(eta).c_str());
  }
  std::fflush(stdout);
}

void ProgressBar::message(const std::string& line) {
  if (quiet_) return;
  if (drawn_) std::printf("\r\033[K");  // clear the bar; the next update redraws it
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

void ProgressBar::finish() {
  if (!quiet_ && drawn_) std::printf("\n");
  drawn_ = false;
}

}  // namespace cpc::tools
