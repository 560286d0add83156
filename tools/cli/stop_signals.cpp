#include "tools/cli/stop_signals.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

namespace cpc::tools {

namespace {

constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
std::atomic<int> g_signal{0};

// Async-signal-safe: an atomic and, for a second signal, the default action.
void on_stop_signal(int sig) {
  if (g_signal.exchange(sig) != 0) {  // a second signal ends the process at once
    ::signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);  // the waiting thread has it blocked
    ::raise(sig);
  }
}

}  // namespace

void catch_stop_signals() {
  static std::once_flag once;
  std::call_once(once, [] {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : kStopSignals) {
      sigaddset(&set, sig);
      struct sigaction sa {};
      sa.sa_handler = on_stop_signal;
      sa.sa_flags = SA_RESTART;
      sigemptyset(&sa.sa_mask);
      sigaction(sig, &sa, nullptr);  // for threads that started before this call
    }
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by every thread started from here on
    std::thread([set] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) == 0) on_stop_signal(sig);
      }
    }).detach();
  });
}

int stop_signal_received() { return g_signal.load(); }

const char* stop_signal_name(int sig) {
  return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "a signal";
}

}  // namespace cpc::tools
