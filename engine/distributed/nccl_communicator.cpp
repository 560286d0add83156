// The NCCL communicator: collectives on GPU tensors between the ranks of an MPI (or
// srun) job. Rank 0 creates the NCCL unique id and broadcasts it over the host
// communicator; each rank drives the GPU given by its node-local rank. CPU tensors and
// host values are delegated to the host communicator. Collectives run on their own
// stream after the compute work so far has finished (the backend is synchronised
// first), and are waited for: simple ordering, no overlap yet.
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <exception>

#include "engine/core/backend.h"
#include "engine/distributed/communicator.h"
#include "engine/core/error.h"

namespace cpc {

namespace {

void check_nccl(ncclResult_t r, const char* call) {
  if (r == ncclSuccess) return;
  fail("NCCL: ", call, " failed: ", ncclGetErrorString(r), " (", ncclGetLastError(nullptr), ")");
}
#define CPC_NCCL_CHECK(expr) check_nccl((expr), #expr)

void check_cuda(cudaError_t e, const char* call) {
  if (e == cudaSuccess) return;
  fail("CUDA: ", call, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}
#define CPC_CUDA_CHECK(expr) check_cuda((expr), #expr)

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<Communicator> host) : host_(std::move(host)) {
    try {
      init();
    } catch (const std::exception& e) {  // the other ranks wait in the id broadcast or init: end them all
      std::fprintf(stderr, "error on rank %d of %d: %s\n", host_->rank(), host_->world(), e.what());
      host_->abort(1);
    }
  }
  void init() {
    int devices = 0;
    CPC_CUDA_CHECK(cudaGetDeviceCount(&devices));
    CPC_CHECK(devices > 0, "NCCL: rank ", host_->rank(), " sees no CUDA device");
    device_ = host_->local_rank() % devices;
    CPC_CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id;
    if (host_->rank() == 0) CPC_NCCL_CHECK(ncclGetUniqueId(&id));
    host_->broadcast_bytes(&id, sizeof id, 0);
    CPC_NCCL_CHECK(ncclCommInitRank(&comm_, host_->world(), id, host_->rank()));
    CPC_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  std::string name() const override { return cat("nccl (GPU ", device_, ") + ", host_->name()); }
  int rank() const override { return host_->rank(); }
  int world() const override { return host_->world(); }
  int local_rank() const override { return host_->local_rank(); }
  double seconds() const override { return seconds_ + host_->seconds(); }  // NCCL + host collectives

  void allreduce(const Tensor& x, ReduceOp op) override {
    if (on_host(x)) return host_->allreduce(x, op);
    Timed t(this);
    CPC_NCCL_CHECK(ncclAllReduce(x.raw(), x.raw(), count(x, "allreduce"), ncclFloat32,
                                 op == ReduceOp::mean ? ncclAvg : ncclSum, comm_, stream_));
  }
  void allgather(const Tensor& x, const Tensor& y) override {
    if (on_host(x)) return host_->allgather(x, y);
    CPC_CHECK(y.numel() == x.numel() * world(), "allgather: output ", y.shape(), " must hold ", world(), " x ",
              x.shape());
    Timed t(this);
    CPC_NCCL_CHECK(ncclAllGather(x.raw(), y.raw(), count(x, "allgather"), ncclFloat32, comm_, stream_));
  }
  void reduce_scatter(const Tensor& x, const Tensor& y) override {
    if (on_host(x)) return host_->reduce_scatter(x, y);
    CPC_CHECK(x.numel() == y.numel() * world(), "reduce_scatter: input ", x.shape(), " must hold ", world(), " x ",
              y.shape());
    Timed t(this);
    CPC_NCCL_CHECK(ncclReduceScatter(x.raw(), y.raw(), count(y, "reduce_scatter"), ncclFloat32, ncclSum, comm_,
                                     stream_));
  }
  void broadcast(const Tensor& x, int root) override {
    if (on_host(x)) return host_->broadcast(x, root);
    Timed t(this);
    CPC_NCCL_CHECK(ncclBroadcast(x.raw(), x.raw(), count(x, "broadcast"), ncclFloat32, root, comm_, stream_));
  }
  void broadcast_bytes(void* data, size_t bytes, int root) override { host_->broadcast_bytes(data, bytes, root); }
  void allreduce_host(double* v, int n) override { host_->allreduce_host(v, n); }
  void barrier() override { host_->barrier(); }
  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_), comm_ = nullptr;  // do not wait for peers that are gone
    host_->abort(code);
    std::_Exit(code);  // not reached: the host's abort ends the process
  }

 private:
  std::unique_ptr<Communicator> host_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int device_ = 0;

  // Orders the collective after the backend's queued work and waits for it, timing both.
  class Timed {
   public:
    explicit Timed(NcclCommunicator* c) : c_(c), t0_(std::chrono::steady_clock::now()) {
      backend(Device::cuda(c->device_)).synchronize();
    }
    ~Timed() noexcept(false) {
      if (std::uncaught_exceptions() > 0) return;  // the collective's own error is on its way
      CPC_CUDA_CHECK(cudaStreamSynchronize(c_->stream_));
      c_->seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    }

   private:
    NcclCommunicator* c_;
    std::chrono::steady_clock::time_point t0_;
  };

  static bool on_host(const Tensor& x) { return x.device().kind == DeviceKind::cpu; }
  static size_t count(const Tensor& x, const char* op) {
    CPC_CHECK(x.dtype() == DType::f32 && x.is_contiguous(), "NCCL ", op, ": expected a contiguous f32 tensor, found ",
              x.shape());
    return static_cast<size_t>(x.numel());
  }
};

std::unique_ptr<Communicator> make(std::unique_ptr<Communicator> host) {
  return std::make_unique<NcclCommunicator>(std::move(host));
}

// Registered at start-up, as the backends are (cpc_runtime links this library whole).
std::string version() {
  int v = 0;  // a library constant: no GPU needed
  if (ncclGetVersion(&v) != ncclSuccess) return "unknown";
  return cat(v / 10000, ".", (v / 100) % 100, ".", v % 100);
}

const bool registered = (register_nccl_factory(&make, version()), true);

}  // namespace

}  // namespace cpc
