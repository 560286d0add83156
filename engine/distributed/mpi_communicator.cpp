// The MPI communicator (Debian's OpenMPI): MPI_COMM_WORLD, CPU tensors, errors
// returned (not fatal) so each failure names its call. Built only with CPC_MPI.
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <exception>
#include <vector>

#include "engine/distributed/communicator.h"
#include "engine/core/error.h"

namespace cpc {

namespace {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail("MPI: ", call, " failed: ", std::string(msg, static_cast<size_t>(len)));
}

void check_cpu(const Tensor& t, const char* op) {
  CPC_CHECK(t.device().kind == DeviceKind::cpu, "MPI ", op, ": tensor on ", t.device().str(),
            "; the MPI communicator takes CPU tensors (GPU tensors go through NCCL)");
  CPC_CHECK(t.dtype() == DType::f32 && t.is_contiguous(), "MPI ", op, ": expected a contiguous f32 tensor, found ",
            t.shape());
  CPC_CHECK(t.numel() <= INT32_MAX, "MPI ", op, ": ", t.numel(), " elements exceed MPI's int count");
}

// Adds the lifetime of this object to a communicator's collective time.
class Timed {
 public:
  explicit Timed(double& total) : total_(total), t0_(std::chrono::steady_clock::now()) {}
  ~Timed() { total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  double& total_;
  std::chrono::steady_clock::time_point t0_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;  // only the training thread calls MPI; the loader thread reads HDF5
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      owns_ = true;
    }
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &world_), "MPI_Comm_size");
    MPI_Comm local;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type");
    check(MPI_Comm_rank(local, &local_rank_), "MPI_Comm_rank(node)");
    MPI_Comm_free(&local);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    // Not while an exception unwinds: MPI_Finalize would wait for ranks still inside
    // collectives; the error handler aborts the job instead.
    if (owns_ && !finalized && std::uncaught_exceptions() == 0) MPI_Finalize();
  }

  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int world() const override { return world_; }
  int local_rank() const override { return local_rank_; }

  void allreduce(const Tensor& x, ReduceOp op) override {
    Timed timed(seconds_);
    check_cpu(x, "allreduce");
    check(MPI_Allreduce(MPI_IN_PLACE, x.raw(), static_cast<int>(x.numel()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
    if (op == ReduceOp::mean) {
      float* p = x.f32();
      const float inv = 1.f / static_cast<float>(world_);
      for (int64_t i = 0; i < x.numel(); ++i) p[i] *= inv;
    }
  }
  void allgather(const Tensor& x, const Tensor& y) override {
    Timed timed(seconds_);
    check_cpu(x, "allgather"), check_cpu(y, "allgather");
    CPC_CHECK(y.numel() == x.numel() * world_, "allgather: output ", y.shape(), " must hold ", world_, " x ", x.shape());
    check(MPI_Allgather(x.raw(), static_cast<int>(x.numel()), MPI_FLOAT, y.raw(), static_cast<int>(x.numel()),
                        MPI_FLOAT, MPI_COMM_WORLD),
          "MPI_Allgather");
  }
  void reduce_scatter(const Tensor& x, const Tensor& y) override {
    Timed timed(seconds_);
    check_cpu(x, "reduce_scatter"), check_cpu(y, "reduce_scatter");
    CPC_CHECK(x.numel() == y.numel() * world_, "reduce_scatter: input ", x.shape(), " must hold ", world_, " x ",
              y.shape());
    check(MPI_Reduce_scatter_block(x.raw(), y.raw(), static_cast<int>(y.numel()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Reduce_scatter_block");
  }
  void broadcast(const Tensor& x, int root) override {
    Timed timed(seconds_);
    check_cpu(x, "broadcast");
    CPC_CHECK(root >= 0 && root < world_, "broadcast: root ", root, " out of range for world ", world_);
    check(MPI_Bcast(x.raw(), static_cast<int>(x.numel()), MPI_FLOAT, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  void broadcast_bytes(void* data, size_t bytes, int root) override {
    Timed timed(seconds_);
    CPC_CHECK(bytes <= INT32_MAX && root >= 0 && root < world_, "broadcast_bytes: ", bytes, " bytes from root ", root);
    check(MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast(bytes)");
  }
  void allreduce_host(double* v, int n) override {
    Timed timed(seconds_);
    check(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce(host)");
  }
  void barrier() override {
    Timed timed(seconds_);
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }
  [[noreturn]] void abort(int code) override {
    std::fflush(stdout), std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  int rank_ = 0, world_ = 1, local_rank_ = 0;
  bool owns_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }
bool built_with_mpi() { return true; }

std::string mpi_library_version() {
  char v[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(v, &len);  // allowed before MPI_Init
  std::string s(v, static_cast<size_t>(len));
  return s.substr(0, s.find_first_of(",\n"));
}

}  // namespace cpc
