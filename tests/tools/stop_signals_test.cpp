// The stop signals reach the flag through the waiting thread, and threads started after
// catch_stop_signals() have them blocked: no signal handler ever runs on a compute
// thread (where Debian's oneDNN 2.6 JIT GEMM would let its frame overwrite the heap).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "tools/cli/stop_signals.h"

namespace cpc::tools {
namespace {

TEST(StopSignals, BlockedInLaterThreadsAndDeliveredToTheFlag) {
  catch_stop_signals();
  catch_stop_signals();  // idempotent: one waiting thread
  bool blocked[3] = {false, false, false};
  std::thread worker([&] {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    blocked[0] = sigismember(&mask, SIGINT) == 1;
    blocked[1] = sigismember(&mask, SIGTERM) == 1;
    blocked[2] = sigismember(&mask, SIGHUP) == 1;
  });
  worker.join();
  EXPECT_TRUE(blocked[0] && blocked[1] && blocked[2]) << "a worker thread could receive a stop signal";

  ASSERT_EQ(stop_signal_received(), 0);
  ASSERT_EQ(kill(getpid(), SIGHUP), 0);
  const auto t0 = std::chrono::steady_clock::now();
  while (stop_signal_received() == 0 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(stop_signal_received(), SIGHUP);
  EXPECT_STREQ(stop_signal_name(SIGHUP), "SIGHUP");
}

}  // namespace
}  // namespace cpc::tools
