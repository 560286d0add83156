#pragma once
// run/metrics.jsonl: one JSON record per training step, each written whole with one
// write() to the end of the file (so a kill -9 never leaves half a record behind a
// later one), and each reaching the OS before the next step starts. On resume the log
// is first cut back to the checkpoint's step (records after it, and a partial last
// line, are dropped), so a killed-and-resumed run's log equals the uninterrupted one.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace cpc::tools {

class MetricsLog {
 public:
  MetricsLog() = default;
  // resume_step < 0: a new log (truncated); else keep the records with step <= resume_step.
  MetricsLog(const std::string& path, int64_t resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void append(const nlohmann::json& record);
  bool open() const { return fd_ >= 0; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace cpc::tools
