#pragma once
// SIGINT, SIGTERM and SIGHUP ask `train` to stop cleanly: checkpoint, then exit 75.
//
// The signals are taken by one thread that only waits for them (sigwait); every thread
// the process starts afterwards (OpenMP, the loader) has them blocked. A handler must
// never run on a compute thread: Debian's oneDNN 2.6 JIT GEMM kernels point rsp into
// the heap, so a signal frame pushed while one runs overwrites heap memory (oneDNN issue
// #4845, fixed in oneDNN 3.11; seen here as "malloc(): unaligned tcache chunk detected"
// after a SIGHUP). Threads that existed before (OpenBLAS's, started when it loads; they
// never run oneDNN code) keep an async-signal-safe handler that only sets the flag.
namespace cpc::tools {

// Idempotent; call before the process starts its worker threads.
void catch_stop_signals();
// The first stop signal received, or 0. A second one ends the process at once.
int stop_signal_received();
const char* stop_signal_name(int sig);

}  // namespace cpc::tools
