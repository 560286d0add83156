#pragma once
// A PyTorch reference process driven line by line over pipes, so benchmarks can
// alternate rounds between our engine and PyTorch in one command. It runs Debian's
// /usr/bin/python3, optionally with jemalloc preloaded: TOOLCHAIN.md found PyTorch
// ~3x faster with it, but on some machines it is slower (measured here: the seed-004
// conv stack 2.0 s with glibc malloc, 3.3 s with jemalloc), so benchmarks run both
// and compare against the faster.
#include <cstdio>
#include <string>
#include <vector>

namespace cpc::tools {

class TorchProcess {
 public:
  TorchProcess(const std::string& script, const std::vector<std::string>& args, bool jemalloc);
  static bool jemalloc_available();
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
