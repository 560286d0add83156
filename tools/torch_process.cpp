#include "tools/torch_process.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "engine/error.h"

namespace cpc::tools {

namespace {
const char* kPython = "/usr/bin/python3";
const char* kJemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
}  // namespace

bool TorchProcess::jemalloc_available() { return access(kJemalloc, R_OK) == 0; }

TorchProcess::TorchProcess(const std::string& script, const std::vector<std::string>& args, bool jemalloc) {
  int in[2], out[2];
  // Close-on-exec: a second reference process must not inherit this one's pipe ends
  // (it would hold its stdin open and the script would never see EOF).
  CPC_CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0, "pytorch reference: cannot create pipes");
  pid_ = fork();
  CPC_CHECK(pid_ >= 0, "pytorch reference: cannot fork");
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    if (jemalloc)
      setenv("LD_PRELOAD", kJemalloc, 1);
    else
      unsetenv("LD_PRELOAD");
    std::vector<char*> argv{const_cast<char*>(kPython), const_cast<char*>(script.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kPython, argv.data());
    std::fprintf(stderr, "error: cannot run %s (install python3-torch)\n", kPython);
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
  CPC_CHECK(!line.empty() || c != EOF,
            "pytorch reference process ended early (is python3-torch installed? run "
            "/usr/bin/python3 -c 'import torch' to see)");
  return line;
}

std::string TorchProcess::request(const std::string& line) {
  std::fprintf(to_, "%s\n", line.c_str());
  std::fflush(to_);
  return read_line();
}

}  // namespace cpc::tools
