#include "tools/cli/torch_process.h"

#include <pthread.h>
#include <signal.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "engine/core/error.h"

namespace cpc::tools {

namespace {
const char* kJemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
// PyTorch's CPU performance guide: jemalloc that keeps its pages (a first touch of a
// page costs ~20 us in these VMs) and transparent huge pages.
const char* kMallocConf = "thp:always,metadata_thp:auto,dirty_decay_ms:-1,muzzy_decay_ms:-1";
// Debian's libopenblas0-openmp: its libblas.so.3 replaces the system BLAS for one process.
const char* kOpenBlasOpenmp = "/usr/lib/x86_64-linux-gnu/openblas-openmp";
}  // namespace

std::string torch_python() {
  const char* env = std::getenv("CPC_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}

std::vector<TorchPeer> cpu_torch_peers() {
  TorchPeer tuned;
  tuned.tuned = true;
  tuned.name = "PyTorch tuned";
  std::string label = "PyTorch tuned (";
  if (access(kJemalloc, R_OK) == 0) {
    tuned.env = {{"LD_PRELOAD", kJemalloc}, {"MALLOC_CONF", kMallocConf}};
    label += "jemalloc, pages kept";
  } else {
    label += "NOTE jemalloc missing (apt libjemalloc2): glibc malloc";
  }
  if (access((std::string(kOpenBlasOpenmp) + "/libblas.so.3").c_str(), R_OK) == 0) {
    tuned.env.emplace_back("LD_LIBRARY_PATH", kOpenBlasOpenmp);
    label += ", OpenBLAS openmp";
  } else {
    label += ", NOTE libopenblas0-openmp missing: system BLAS";
  }
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    tuned.env.emplace_back("OPENBLAS_CORETYPE", "SkylakeX");
    label += ", OPENBLAS_CORETYPE=SkylakeX (AVX-512)";
  }
  tuned.label = label + ")";
  TorchPeer plain{"PyTorch untuned", "PyTorch untuned (glibc malloc, the machine's BLAS settings)",
                  {{"LD_PRELOAD", ""}, {"MALLOC_CONF", ""}}, false};
  return {tuned, plain};
}

TorchProcess::TorchProcess(const std::string& script, const std::vector<std::string>& args, const TorchPeer& peer)
    : python_(torch_python()) {
  int in[2], out[2];
  // Close-on-exec: a second reference process must not inherit this one's pipe ends
  // (it would hold its stdin open and the script would never see EOF).
  CPC_CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0, "pytorch reference: cannot create pipes");
  pid_ = fork();
  CPC_CHECK(pid_ >= 0, "pytorch reference: cannot fork");
  if (pid_ == 0) {
    sigset_t none;  // the signal mask survives exec: the reference process gets an empty one
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    for (const auto& [key, value] : peer.env) {
      if (value.empty())
        unsetenv(key.c_str());
      else
        setenv(key.c_str(), value.c_str(), 1);
    }
    std::vector<char*> argv{const_cast<char*>(python_.c_str()), const_cast<char*>(script.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(python_.c_str(), argv.data());
    std::fprintf(stderr, "error: cannot run %s (install python3-torch, or set CPC_PYTHON)\n", python_.c_str());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  to_ = fdopen(in[1], "w");
  from_ = fdopen(out[0], "r");
  header_ = read_line();
}

TorchProcess::~TorchProcess() {
  if (to_) fclose(to_);  // EOF ends the script's loop
  if (from_) fclose(from_);
  if (pid_ > 0) waitpid(pid_, nullptr, 0);
}

std::string TorchProcess::read_line() {
  std::string line;
  int c;
  while ((c = fgetc(from_)) != EOF && c != '\n') line.push_back(static_cast<char>(c));
  CPC_CHECK(!line.empty() || c != EOF, "pytorch reference process ended early (is torch importable? run ", python_,
            " -c 'import torch' to see)");
  return line;
}

std::string TorchProcess::request(const std::string& line) {
  std::fprintf(to_, "%s\n", line.c_str());
  std::fflush(to_);
  return read_line();
}

}  // namespace cpc::tools
