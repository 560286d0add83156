#include "tools/training/metrics_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/data/atomic_file.h"
#include "engine/core/error.h"

namespace cpc::tools {

MetricsLog::MetricsLog(const std::string& path, int64_t resume_step) : path_(path) {
  if (resume_step >= 0 && std::filesystem::exists(path)) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream all;
    all << in.rdbuf();
    const std::string text = all.str();
    std::string kept, line;
    size_t begin = 0;
    int64_t dropped = 0;
    for (size_t nl; (nl = text.find('\n', begin)) != std::string::npos; begin = nl + 1) {
      line = text.substr(begin, nl - begin);
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded() && j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
          j["step"].get<int64_t>() <= resume_step)
        kept += line + "\n";
      else
        ++dropped;
    }
    if (begin < text.size()) ++dropped;  // a partial last line (the process was killed mid-write)
    if (dropped > 0) write_file_atomically(path, kept);
  }
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (resume_step >= 0 ? O_APPEND : O_TRUNC | O_APPEND);
  fd_ = ::open(path.c_str(), flags, 0644);
  CPC_CHECK(fd_ >= 0, path, ": cannot open for writing (", std::strerror(errno), ")");
}

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::append(const nlohmann::json& record) {
  CPC_CHECK(fd_ >= 0, "metrics log: not open");
  const std::string line = record.dump() + "\n";
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n == static_cast<ssize_t>(line.size())) return;
  const int err = n < 0 ? errno : ENOSPC;
  if (n > 0) (void)::ftruncate(fd_, ::lseek(fd_, 0, SEEK_END) - n);  // no partial record left behind
  fail(path_, ": cannot append the record of step ", record.value("step", int64_t{-1}), " (", std::strerror(err), ")");
}

}  // namespace cpc::tools
