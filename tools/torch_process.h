#pragma once
// A PyTorch reference process driven line by line over pipes, so benchmarks can
// alternate rounds between our engine and PyTorch in one command. It runs Debian's
// /usr/bin/python3 with jemalloc preloaded when present (PyTorch is ~3x slower with
// glibc malloc on these machines; see TOOLCHAIN.md).
#include <cstdio>
#include <string>
#include <vector>

namespace cpc::tools {

class TorchProcess {
 public:
  TorchProcess(const std::string& script, const std::vector<std::string>& args);
  ~TorchProcess();
  TorchProcess(const TorchProcess&) = delete;
  TorchProcess& operator=(const TorchProcess&) = delete;

  const std::string& header() const { return header_; }  // the script's first line
  std::string request(const std::string& line);          // sends a line, returns the reply line

 private:
  int pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  std::string header_;
  std::string read_line();
};

}  // namespace cpc::tools
