#pragma once
// A PyTorch reference process driven line by line over pipes, so benchmarks can
// alternate rounds between our engine and PyTorch in one command. It runs
// /usr/bin/python3 (Debian's, with python3-torch), or $CPC_PYTHON (the GPU machine's
// interpreter with CUDA PyTorch), in the environment its TorchPeer gives.
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace cpc::tools {

// How a PyTorch peer runs: the allocator and BLAS its process loads.
struct TorchPeer {
  std::string name;                                       // the row in timing tables
  std::string label;                                      // what it runs, printed once
  std::vector<std::pair<std::string, std::string>> env;  // set in the child ("" value: unset)
  bool tuned = false;  // configured as PyTorch's CPU performance guide says: the one to compare with
};

// The CPU peers: PyTorch as its performance guide configures it (jemalloc with
// MALLOC_CONF that keeps pages, OpenBLAS's OpenMP build with its AVX-512 kernels where the
// CPU has AVX-512; a missing piece is named in the label), then the untuned default
// (glibc malloc, the machine's BLAS settings), labelled as such. The tuned peer is first.
std::vector<TorchPeer> cpu_torch_peers();
// The interpreter: $CPC_PYTHON, else /usr/bin/python3.
std::string torch_python();

class TorchProcess {
 public:
  TorchProcess(const std::string& script, const std::vector<std::string>& args, const TorchPeer& peer);
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
  std::string python_;
  std::string read_line();
};

}  // namespace cpc::tools
