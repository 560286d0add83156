// The CUDA backend: every op of cpc::Backend on one compute stream. cuBLAS for GEMMs
// (and the GEMM parts of the GRU and the fused contrastive loss), cuDNN for Conv1d and
// BatchNorm, our kernels for the rest, with the per-element math of kernels/common
// shared with the CPU backend. Device memory comes from a caching allocator, host ->
// device copies stage through pinned buffers, and every op is an NVTX range (domain
// "cpc") so Nsight Systems shows the op structure. Registered for DeviceKind::cuda.
//
// The backend serves the CUDA device that is current when it is first used (one
// device per process, e.g. one MPI rank per GPU); tensors on another index are
// rejected rather than silently read across devices.
//
// Every op validates its shapes before it touches the device, so a wrong call fails
// with a message naming the op, the argument and the shapes even without a GPU.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <library_types.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/error.h"
#include "kernels/common/optimizer_math.h"
#include "kernels/cuda/batchnorm_cudnn.h"
#include "kernels/cuda/caching_allocator.h"
#include "kernels/cuda/contrastive.h"
#include "kernels/cuda/conv1d_cudnn.h"
#include "kernels/cuda/cublas_gemm.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/device_table.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gru.h"
#include "kernels/cuda/gru_cudnn.h"
#include "kernels/cuda/host_staging.h"
#include "kernels/cuda/layout.h"
#include "kernels/cuda/norms.h"
#include "kernels/cuda/nvtx.h"

static_assert(CUDNN_MAJOR >= 9, "describe() decodes cudnnGetVersion() as cuDNN 9 (major*10000 + minor*100 + patch)");

namespace cpc {
namespace {

// cudaGetDeviceCount, asked once. Without a driver it fails (cudaErrorInsufficientDriver)
// and leaves the count unwritten, hence the 0 default.
struct DeviceProbe {
  int count = 0;
  cudaError_t status = cudaSuccess;
};

const DeviceProbe& probe() {
  static const DeviceProbe p = [] {
    DeviceProbe r;
    r.status = cudaGetDeviceCount(&r.count);
    if (r.status != cudaSuccess) {
      r.count = 0;
      cudaGetLastError();  // do not let the probe's failure surface at the next launch check
    }
    return r;
  }();
  return p;
}

std::string no_device_reason() {
  const DeviceProbe& p = probe();
  if (p.status != cudaSuccess)
    return cat("no CUDA device present (cudaGetDeviceCount: ", cudaGetErrorName(p.status), ", ",
               cudaGetErrorString(p.status), ")");
  return "no CUDA device present (cudaGetDeviceCount found 0 devices)";
}

std::string cuda_version(int v) { return v <= 0 ? std::string("none") : cat(v / 1000, ".", (v % 1000) / 10); }

std::string cublas_version() {
  int major = 0, minor = 0, patch = 0;
  // Library constants: no handle and no GPU needed.
  if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS ||
      cublasGetProperty(MINOR_VERSION, &minor) != CUBLAS_STATUS_SUCCESS ||
      cublasGetProperty(PATCH_LEVEL, &patch) != CUBLAS_STATUS_SUCCESS)
    return "unknown";
  return cat(major, ".", minor, ".", patch);
}

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v && (std::strcmp(v, "1") == 0 || std::strcmp(v, "on") == 0 || std::strcmp(v, "true") == 0);
}

// Shape checks, before any device work.
void expect_shape(const Tensor& t, const Shape& s, const char* op, const char* role) {
  CPC_CHECK(t.defined(), op, " on cuda: ", role, " is undefined, expected ", s);
  CPC_CHECK(t.shape() == s, op, " on cuda: ", role, " is ", t.shape(), ", expected ", s);
}
void expect_numel(const Tensor& t, int64_t n, const char* op, const char* role) {
  CPC_CHECK(t.defined(), op, " on cuda: ", role, " is undefined, expected ", n, " elements");
  CPC_CHECK(t.numel() == n, op, " on cuda: ", role, " ", t.shape(), " has ", t.numel(), " elements, expected ", n);
}
void expect_rank(const Tensor& t, int rank, const char* op, const char* role, const char* layout) {
  CPC_CHECK(t.defined(), op, " on cuda: ", role, " is undefined, expected ", layout);
  CPC_CHECK(t.rank() == rank, op, " on cuda: ", role, " is ", t.shape(), ", expected ", rank, "-D ", layout);
}

cuda::NormShape norm_shape(const Tensor& x, const char* op) {
  expect_rank(x, 3, op, "x", "(B, C, L)");
  return {x.size(0), x.size(1), x.size(2)};
}

class CudaBackend final : public Backend {
 public:
  // The stream and library handles are deliberately never destroyed: this object
  // dies during static destruction, when the CUDA runtime may already be torn down.
  // The driver reclaims them at process exit.
  CudaBackend() : tf32_(env_on("CPC_CUDA_TF32")) {}

  std::string name() const override { return "cuda"; }

  bool available() const override { return probe().count > 0; }

  std::string describe() const override {
    int runtime = 0, driver = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);  // 0 when no driver is installed
    const size_t dnn = cudnnGetVersion();
    std::string s = cat("cuda: CUDA runtime ", cuda_version(runtime), " (driver ", cuda_version(driver), "), cuDNN ",
                        dnn / 10000, ".", (dnn % 10000) / 100, ".", dnn % 100, ", cuBLAS ", cublas_version(),
                        ", fp32 GEMM/conv ", tf32_ ? "with TF32 (CPC_CUDA_TF32)" : "without TF32",
                        bf16_ ? ", precision bf16 (conv and GEMM inputs)" : "", ", ",
                        conv_.describe(), ", GRU ", gru_cudnn_ ? gru_.describe() : "cells (cuBLAS GEMMs + fused cell)",
                        ", caching allocator ", alloc_.caching() ? "on" : "off (CPC_CUDA_CACHE=0)",
                        ", pinned staging ", staging_.enabled() ? "on" : "off", "; ");
    const DeviceProbe& p = probe();
    if (p.count == 0) return s + no_device_reason();
    s += cat(p.count, p.count == 1 ? " device:" : " devices:");
    for (int i = 0; i < p.count; ++i) {
      cudaDeviceProp prop{};
      if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
        cudaGetLastError();
        s += cat(" [", i, "] (properties unavailable)");
        continue;
      }
      s += cat(" [", i, "] ", prop.name, " (sm_", prop.major, prop.minor, ", ", prop.multiProcessorCount, " SMs, ",
               prop.totalGlobalMem >> 20, " MiB)");
    }
    return s;
  }

  // tf32 = on|off (cuBLAS and cuDNN math mode), contrastive_tile = N (score-tile budget
  // in elements; tests force small tiles with it), gru = cells|cudnn (the GRU
  // implementation; default cells or CPC_CUDA_GRU). The gru option must not change
  // between a GRU forward and its backward: the reserve layouts differ (a mismatch is
  // rejected by the backward's reserve-size check).
  void set_option(const std::string& key, const std::string& value) override {
    if (key == "tf32") {
      CPC_CHECK(value == "on" || value == "off", "cuda option tf32: expected on or off, found '", value, "'");
      tf32_ = value == "on";
      if (blas_) CPC_CUBLAS_CHECK(cublasSetMathMode(blas_, tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
      return;
    }
    if (key == "contrastive_tile") {
      char* end = nullptr;
      const long long v = std::strtoll(value.c_str(), &end, 10);
      CPC_CHECK(end && *end == '\0' && v >= 1, "cuda option contrastive_tile: expected an integer >= 1, found '", value,
                "'");
      contrastive_tile_ = v;
      return;
    }
    if (key == "precision") {
      CPC_CHECK(value == "fp32" || value == "bf16", "cuda option precision: expected fp32 or bf16, found '", value, "'");
      if (value == "bf16") {  // bf16 tensor cores (and cuDNN's bf16 convolutions) need sm_80+
        CPC_CHECK(available(), "cuda option precision bf16: ", no_device_reason());
        stream();
        int major = 0, minor = 0;
        CPC_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_));
        CPC_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device_));
        CPC_CHECK(major >= 8, "cuda option precision bf16 needs compute capability 8.0 or newer (bf16 tensor cores); "
                  "cuda:", device_, " is ", major, ".", minor, ": use train.precision=fp32");
      }
      bf16_ = value == "bf16";
      return;
    }
    if (key == "gru") {
      CPC_CHECK(value == "cells" || value == "cudnn", "cuda option gru: expected cells or cudnn, found '", value, "'");
      gru_cudnn_ = value == "cudnn";
      return;
    }
    Backend::set_option(key, value);
  }

  size_t workspace_bytes() const override { return alloc_.stats().cached + conv_.peak_workspace(); }

  void* allocate(size_t bytes) override {
    CPC_CHECK(available(), "cuda: cannot allocate ", bytes, " bytes: ", no_device_reason());
    if (bytes == 0) return nullptr;
    return alloc_.allocate(bytes, stream());
  }

  void deallocate(void* p) override {
    if (p == nullptr) return;
    // Reached from Buffer's destructor: must not throw (the allocator does not).
    alloc_.deallocate(p, stream_);
  }

  void copy(void* dst, Device dd, const void* src, Device sd, size_t bytes) override {
    if (bytes == 0) return;
    const bool dst_host = dd.kind == DeviceKind::cpu, src_host = sd.kind == DeviceKind::cpu;
    if (dst_host && src_host) {
      std::memcpy(dst, src, bytes);
      return;
    }
    CPC_NVTX_RANGE("copy");
    CPC_CHECK(dst != nullptr && src != nullptr, "cuda: copy of ", bytes, " bytes ", sd.str(), " -> ", dd.str(),
              " with a null pointer");
    cudaStream_t s = stream();
    if (!dst_host && !src_host && dd.index != sd.index) {
      CPC_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dd.index, src, sd.index, bytes, s));
    } else if (src_host) {
      // Staged through pinned memory and queued: the caller may reuse src at once.
      staging_.copy_to_device(dst, src, bytes, s);
    } else {
      CPC_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, dst_host ? cudaMemcpyDeviceToHost : cudaMemcpyDeviceToDevice, s));
    }
    if (dst_host) CPC_CUDA_CHECK(cudaStreamSynchronize(s));
  }

  // The loader's batches: a second stream (copy_stream_) with its own pinned staging
  // ring, so the transfer overlaps the step queued on the compute stream. Before it
  // writes, the copy stream waits for everything queued on the compute stream so far
  // (the buffer's previous batch was read by that work); the compute stream waits for
  // the copy's event in wait_copy. Events are kept in a ring: waiting on a later copy's
  // event is conservative (the copy stream runs in order). Called from the loader
  // thread. Two locks: copy_issue_mu_ serialises whole copies (the staging ring may
  // block this thread until an earlier chunk's transfer is done), copy_event_mu_ only
  // guards the tickets and events, so wait_copy on the main thread never waits for a
  // transfer on the host.
  uint64_t copy_async(const Tensor& dst, const Tensor& src) override {
    CPC_NVTX_RANGE("copy_async");
    const char* op = "copy_async";
    float* d = arg(dst, op, "dst");
    CPC_CHECK(src.defined() && src.device().kind == DeviceKind::cpu && src.is_contiguous(), op,
              " on cuda: src must be a contiguous host tensor, found ", src.defined() ? src.device().str() : "none");
    CPC_CHECK(src.dtype() == DType::f32 && src.numel() == dst.numel(), op, " on cuda: src ", src.shape(), " vs dst ",
              dst.shape());
    cudaStream_t compute = stream();
    CPC_CUDA_CHECK(cudaSetDevice(device_));  // this thread's current device: the events and stream live there
    std::lock_guard<std::mutex> issue(copy_issue_mu_);
    {
      std::lock_guard<std::mutex> ev(copy_event_mu_);
      if (!copy_stream_) {
        CPC_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking));
        CPC_CUDA_CHECK(cudaEventCreateWithFlags(&compute_mark_, cudaEventDisableTiming));
        for (cudaEvent_t& e : copy_done_) CPC_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      }
    }
    CPC_CUDA_CHECK(cudaEventRecord(compute_mark_, compute));
    CPC_CUDA_CHECK(cudaStreamWaitEvent(copy_stream_, compute_mark_, 0));
    try {
      copy_staging_.copy_to_device(d, src.f32(), sizeof(float) * static_cast<size_t>(src.numel()), copy_stream_);
    } catch (...) {  // no ticket for a failed copy: let no piece of it stay in flight into a buffer about to be freed
      cudaStreamSynchronize(copy_stream_);
      throw;
    }
    std::lock_guard<std::mutex> ev(copy_event_mu_);
    const uint64_t ticket = ++copy_tickets_;
    CPC_CUDA_CHECK(cudaEventRecord(copy_done_[ticket % kCopyEvents], copy_stream_));
    return ticket;
  }

  void wait_copy(uint64_t ticket) override {
    if (ticket == 0) return;
    std::lock_guard<std::mutex> ev(copy_event_mu_);
    CPC_CHECK(ticket <= copy_tickets_, "wait_copy on cuda: ticket ", ticket, " was never issued (last ", copy_tickets_,
              ")");
    CPC_CUDA_CHECK(cudaSetDevice(device_));
    CPC_CUDA_CHECK(cudaStreamWaitEvent(stream(), copy_done_[ticket % kCopyEvents], 0));
  }

  void synchronize() override {
    if (stream_ != nullptr) CPC_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void gemm(const GemmArgs& g) override {
    CPC_NVTX_RANGE("gemm");
    CPC_CHECK(fits_int(g.m) && fits_int(g.n) && fits_int(g.k), "gemm on cuda: m, n, k = ", g.m, ", ", g.n, ", ", g.k,
              " must lie in [0, ", INT_MAX, "]");
    CPC_CHECK(fits_int(g.lda) && fits_int(g.ldb) && fits_int(g.ldc), "gemm on cuda: lda, ldb, ldc = ", g.lda, ", ",
              g.ldb, ", ", g.ldc, " must lie in [0, ", INT_MAX, "]");
    const int64_t a_cols = g.trans_a ? g.m : g.k, b_cols = g.trans_b ? g.k : g.n;
    CPC_CHECK(g.lda >= std::max<int64_t>(1, a_cols), "gemm on cuda: lda ", g.lda, " < ", a_cols, ", the row width of A",
              g.trans_a ? "^T" : "");
    CPC_CHECK(g.ldb >= std::max<int64_t>(1, b_cols), "gemm on cuda: ldb ", g.ldb, " < ", b_cols, ", the row width of B",
              g.trans_b ? "^T" : "");
    CPC_CHECK(g.ldc >= std::max<int64_t>(1, g.n), "gemm on cuda: ldc ", g.ldc, " < n = ", g.n);
    if (g.m == 0 || g.n == 0) return;
    check_device_pointer(g.c, "C");
    if (g.k > 0) {
      check_device_pointer(g.a, "A");
      check_device_pointer(g.b, "B");
    }
    cuda::RowMajorGemm r;
    r.trans_a = g.trans_a, r.trans_b = g.trans_b, r.m = g.m, r.n = g.n, r.k = g.k, r.alpha = g.alpha, r.beta = g.beta;
    r.a = g.a, r.lda = g.lda, r.b = g.b, r.ldb = g.ldb, r.c = g.c, r.ldc = g.ldc;
    r.bf16 = bf16_;  // as the CPU backend: Backend::gemm follows the precision option
    cuda::gemm(ctx(false), r, "gemm on cuda");
  }

  // ---------------------------------------------------------------- elementwise
  void fill(const Tensor& y, float value) override {
    CPC_NVTX_RANGE("fill");
    float* yp = arg(y, "fill", "y");
    CPC_CUDA_CHECK(cuda::launch_fill(yp, y.numel(), value, stream()));
  }

  void axpy(float alpha, const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("axpy");
    check_same_shape(x, y, "axpy");
    const float* xp = arg(x, "axpy", "x");
    float* yp = arg(y, "axpy", "y");
    CPC_CUDA_CHECK(cuda::launch_axpy(alpha, xp, yp, y.numel(), stream()));
  }

  void axpy_scaled(float alpha, const Tensor& s, const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("axpy_scaled");
    check_same_shape(x, y, "axpy_scaled");
    const float* sp = arg(s, "axpy_scaled", "s");
    CPC_CHECK(s.numel() == 1, "axpy_scaled on cuda: the scale must be one element, found ", s.shape());
    const float* xp = arg(x, "axpy_scaled", "x");
    float* yp = arg(y, "axpy_scaled", "y");
    CPC_CUDA_CHECK(cuda::launch_axpy_scaled(alpha, sp, xp, yp, y.numel(), stream()));
  }

  void add(const Tensor& a, const Tensor& b, const Tensor& y) override {
    CPC_NVTX_RANGE("add");
    check_same_shape(a, y, "add");
    check_same_shape(b, y, "add");
    const float *ap = arg(a, "add", "a"), *bp = arg(b, "add", "b");
    float* yp = arg(y, "add", "y");
    CPC_CUDA_CHECK(cuda::launch_add(ap, bp, yp, y.numel(), stream()));
  }

  void add_bias(const Tensor& y, const Tensor& bias, int64_t inner) override {
    CPC_NVTX_RANGE("add_bias");
    const int64_t C = bias_channels(y, bias, inner, "add_bias", "y");
    float* yp = arg(y, "add_bias", "y");
    const float* bp = arg(bias, "add_bias", "bias");
    CPC_CUDA_CHECK(cuda::launch_add_bias(yp, bp, C ? y.numel() / (C * inner) : 0, C, inner, stream()));
  }

  void bias_grad(const Tensor& dy, const Tensor& dbias, int64_t inner) override {
    CPC_NVTX_RANGE("bias_grad");
    const int64_t C = bias_channels(dy, dbias, inner, "bias_grad", "dy");
    const float* dyp = arg(dy, "bias_grad", "dy");
    float* bp = arg(dbias, "bias_grad", "dbias");
    CPC_CUDA_CHECK(cuda::launch_bias_grad(dyp, bp, C ? dy.numel() / (C * inner) : 0, C, inner, stream()));
  }

  void relu_forward(const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("relu_forward");
    check_same_shape(x, y, "relu");
    const float* xp = arg(x, "relu", "x");
    float* yp = arg(y, "relu", "y");
    CPC_CUDA_CHECK(cuda::launch_relu_forward(xp, yp, x.numel(), stream()));
  }

  void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) override {
    CPC_NVTX_RANGE("relu_backward");
    check_same_shape(y, dy, "relu_backward");
    check_same_shape(y, dx, "relu_backward");
    const float *yp = arg(y, "relu_backward", "y"), *dyp = arg(dy, "relu_backward", "dy");
    float* dxp = arg(dx, "relu_backward", "dx");
    CPC_CUDA_CHECK(cuda::launch_relu_backward(yp, dyp, dxp, y.numel(), stream()));
  }

  void gelu_forward(const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("gelu_forward");
    check_same_shape(x, y, "gelu");
    const float* xp = arg(x, "gelu", "x");
    float* yp = arg(y, "gelu", "y");
    CPC_CUDA_CHECK(cuda::launch_gelu_forward(xp, yp, x.numel(), stream()));
  }

  void gelu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) override {
    CPC_NVTX_RANGE("gelu_backward");
    check_same_shape(x, dy, "gelu_backward");
    check_same_shape(x, dx, "gelu_backward");
    const float *xp = arg(x, "gelu_backward", "x"), *dyp = arg(dy, "gelu_backward", "dy");
    float* dxp = arg(dx, "gelu_backward", "dx");
    CPC_CUDA_CHECK(cuda::launch_gelu_backward(xp, dyp, dxp, x.numel(), stream()));
  }

  void dropout_forward(const Tensor& x, float p, uint64_t seed, const Tensor& y) override {
    CPC_NVTX_RANGE("dropout_forward");
    dropout(x, p, seed, y, false, "dropout");
  }

  void dropout_backward(const Tensor& dy, float p, uint64_t seed, const Tensor& dx) override {
    CPC_NVTX_RANGE("dropout_backward");
    dropout(dy, p, seed, dx, true, "dropout_backward");
  }

  double sum_squares(const Tensor& x) override {
    CPC_NVTX_RANGE("sum_squares");
    return reduce(x, true, "sum_squares");
  }
  double sum(const Tensor& x) override {
    CPC_NVTX_RANGE("sum");
    return reduce(x, false, "sum");
  }

  // ---------------------------------------------------------------- layout
  void transpose_last2(const Tensor& x, const Tensor& y, float beta) override {
    CPC_NVTX_RANGE("transpose_last2");
    const char* op = "transpose_last2";
    expect_rank(x, 3, op, "x", "(O, M, N)");
    expect_shape(y, {x.size(0), x.size(2), x.size(1)}, op, "y");
    const float* xp = arg(x, op, "x");
    float* yp = arg(y, op, "y");
    CPC_CUDA_CHECK(cuda::launch_transpose_last2(xp, yp, x.size(0), x.size(1), x.size(2), beta, stream()));
  }

  void narrow_forward(const Tensor& x, int64_t start, const Tensor& y) override {
    CPC_NVTX_RANGE("narrow_forward");
    const char* op = "narrow";
    expect_rank(x, 3, op, "x", "(O, N, I)");
    expect_rank(y, 3, op, "y", "(O, len, I)");
    check_narrow(x.shape(), y.shape(), start, op);
    const float* xp = arg(x, op, "x");
    float* yp = arg(y, op, "y");
    CPC_CUDA_CHECK(cuda::launch_narrow_copy(xp, yp, x.size(0), x.size(1), x.size(2), start, y.size(1), stream()));
  }

  void narrow_backward(const Tensor& dy, int64_t start, const Tensor& dx) override {
    CPC_NVTX_RANGE("narrow_backward");
    const char* op = "narrow_backward";
    expect_rank(dx, 3, op, "dx", "(O, N, I)");
    expect_rank(dy, 3, op, "dy", "(O, len, I)");
    check_narrow(dx.shape(), dy.shape(), start, op);
    const float* dyp = arg(dy, op, "dy");
    float* dxp = arg(dx, op, "dx");
    CPC_CUDA_CHECK(cuda::launch_narrow_add(dyp, dxp, dx.size(0), dx.size(1), dx.size(2), start, dy.size(1), stream()));
  }

  void mean_axis_forward(const Tensor& x, const Tensor& y) override {
    CPC_NVTX_RANGE("mean_axis_forward");
    const char* op = "mean_axis";
    expect_rank(x, 3, op, "x", "(O, N, I)");
    expect_numel(y, x.size(0) * x.size(2), op, "y (O, I)");
    CPC_CHECK(x.size(1) >= 1, op, " on cuda: x ", x.shape(), " has an empty axis");
    const float* xp = arg(x, op, "x");
    float* yp = arg(y, op, "y");
    CPC_CUDA_CHECK(cuda::launch_mean_axis_forward(xp, yp, x.size(0), x.size(1), x.size(2), stream()));
  }

  void mean_axis_backward(const Tensor& dy, const Tensor& dx) override {
    CPC_NVTX_RANGE("mean_axis_backward");
    const char* op = "mean_axis_backward";
    expect_rank(dx, 3, op, "dx", "(O, N, I)");
    expect_numel(dy, dx.size(0) * dx.size(2), op, "dy (O, I)");
    const float* dyp = arg(dy, op, "dy");
    float* dxp = arg(dx, op, "dx");
    CPC_CUDA_CHECK(cuda::launch_mean_axis_backward(dyp, dxp, dx.size(0), dx.size(1), dx.size(2), stream()));
  }

  void max_axis_forward(const Tensor& x, const Tensor& y, const Tensor& argmax) override {
    CPC_NVTX_RANGE("max_axis_forward");
    const char* op = "max_axis";
    expect_rank(x, 3, op, "x", "(O, N, I)");
    expect_numel(y, x.size(0) * x.size(2), op, "y (O, I)");
    expect_numel(argmax, x.size(0) * x.size(2), op, "argmax (O, I)");
    CPC_CHECK(x.size(1) >= 1, op, " on cuda: x ", x.shape(), " has an empty axis");
    const float* xp = arg(x, op, "x");
    float *yp = arg(y, op, "y"), *ap = arg(argmax, op, "argmax");
    CPC_CUDA_CHECK(cuda::launch_max_axis_forward(xp, yp, ap, x.size(0), x.size(1), x.size(2), stream()));
  }

  void max_axis_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx) override {
    CPC_NVTX_RANGE("max_axis_backward");
    const char* op = "max_axis_backward";
    expect_rank(dx, 3, op, "dx", "(O, N, I)");
    expect_numel(dy, dx.size(0) * dx.size(2), op, "dy (O, I)");
    expect_numel(argmax, dx.size(0) * dx.size(2), op, "argmax (O, I)");
    const float *dyp = arg(dy, op, "dy"), *ap = arg(argmax, op, "argmax");
    float* dxp = arg(dx, op, "dx");
    CPC_CUDA_CHECK(cuda::launch_max_axis_backward(dyp, ap, dxp, dx.size(0), dx.size(1), dx.size(2), stream()));
  }

  void swap_axes(const Tensor& x, int64_t O, int64_t M, int64_t N, int64_t I, const Tensor& y, float beta) override {
    CPC_NVTX_RANGE("swap_axes");
    const char* op = "swap_axes";
    CPC_CHECK(O >= 0 && M >= 0 && N >= 0 && I >= 0, op, " on cuda: negative extent in (", O, ", ", M, ", ", N, ", ", I,
              ")");
    expect_numel(x, O * M * N * I, op, "x (O, M, N, I)");
    expect_numel(y, O * M * N * I, op, "y (O, N, M, I)");
    const float* xp = arg(x, op, "x");
    float* yp = arg(y, op, "y");
    CPC_CUDA_CHECK(cuda::launch_swap_axes(xp, yp, O, M, N, I, beta, stream()));
  }

  void l2_normalize_forward(const Tensor& x, float eps, const Tensor& y) override {
    CPC_NVTX_RANGE("l2_normalize_forward");
    const char* op = "l2_normalize";
    expect_rank(x, 2, op, "x", "(N, D)");
    expect_shape(y, x.shape(), op, "y");
    const float* xp = arg(x, op, "x");
    float* yp = arg(y, op, "y");
    CPC_CUDA_CHECK(cuda::launch_l2_normalize_forward(xp, yp, x.size(0), x.size(1), eps, stream()));
  }

  void l2_normalize_backward(const Tensor& x, const Tensor& dy, float eps, const Tensor& dx) override {
    CPC_NVTX_RANGE("l2_normalize_backward");
    const char* op = "l2_normalize_backward";
    expect_rank(x, 2, op, "x", "(N, D)");
    expect_shape(dy, x.shape(), op, "dy");
    expect_shape(dx, x.shape(), op, "dx");
    const float *xp = arg(x, op, "x"), *dyp = arg(dy, op, "dy");
    float* dxp = arg(dx, op, "dx");
    CPC_CUDA_CHECK(cuda::launch_l2_normalize_backward(xp, dyp, dxp, x.size(0), x.size(1), eps, stream()));
  }

  // ---------------------------------------------------------------- conv1d (cuDNN)
  void conv1d_forward(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv1dGeometry& g,
                      const Tensor& y) override {
    CPC_NVTX_RANGE("conv1d_forward");
    const char* op = "conv1d";
    const cuda::ConvShape d = conv_shape(x, w, g, y, op, "x", "y");
    if (bias) expect_numel(*bias, d.Cout, op, "bias");
    const float *xp = arg(x, op, "x"), *wp = arg(w, op, "weight");
    const float* bp = bias ? arg(*bias, op, "bias") : nullptr;
    float* yp = arg(y, op, "y");
    conv_.forward(ctx(true), xp, wp, bp, d, yp);
  }

  void conv1d_backward_data(const Tensor& dy, const Tensor& w, const Conv1dGeometry& g, const Tensor& dx) override {
    CPC_NVTX_RANGE("conv1d_backward_data");
    const char* op = "conv1d_backward_data";
    const cuda::ConvShape d = conv_shape(dx, w, g, dy, op, "dx", "dy");
    const float *dyp = arg(dy, op, "dy"), *wp = arg(w, op, "weight");
    float* dxp = arg(dx, op, "dx");
    conv_.backward_data(ctx(true), dyp, wp, d, dxp);
  }

  void conv1d_backward_weights(const Tensor& x, const Tensor& dy, const Conv1dGeometry& g, const Tensor& dw,
                               const Tensor* dbias) override {
    CPC_NVTX_RANGE("conv1d_backward_weights");
    const char* op = "conv1d_backward_weights";
    const cuda::ConvShape d = conv_shape(x, dw, g, dy, op, "x", "dy");
    if (dbias) expect_numel(*dbias, d.Cout, op, "dbias");
    const float *xp = arg(x, op, "x"), *dyp = arg(dy, op, "dy");
    float* dwp = arg(dw, op, "dw");
    float* dbp = dbias && dbias->defined() ? arg(*dbias, op, "dbias") : nullptr;
    conv_.backward_weights(ctx(true), xp, dyp, d, dwp, dbp);
  }

  // ---------------------------------------------------------------- norms
  void batchnorm_forward_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, float momentum, float eps,
                               const Tensor& rm, const Tensor& rv, const Tensor& mean, const Tensor& invstd,
                               const Tensor& y) override {
    CPC_NVTX_RANGE("batchnorm_forward_train");
    const char* op = "batch_norm";
    const cuda::NormShape d = norm_shape(x, op);
    expect_numel(gamma, d.C, op, "weight");
    expect_numel(beta, d.C, op, "bias");
    CPC_CHECK(rm.defined() == rv.defined(), op, " on cuda: running mean and variance go together");
    if (rm.defined()) expect_numel(rm, d.C, op, "running_mean"), expect_numel(rv, d.C, op, "running_var");
    expect_numel(mean, d.C, op, "save_mean");
    expect_numel(invstd, d.C, op, "save_invstd");
    expect_shape(y, x.shape(), op, "y");
    CPC_CHECK(d.B * d.L > 1, op, " on cuda: training needs more than one value per channel, input ", x.shape());
    const float *xp = arg(x, op, "x"), *gp = arg(gamma, op, "weight"), *bp = arg(beta, op, "bias");
    float* rmp = opt(rm, op, "running_mean");
    float* rvp = opt(rv, op, "running_var");
    float *mp = arg(mean, op, "save_mean"), *ip = arg(invstd, op, "save_invstd"), *yp = arg(y, op, "y");
    bn_.forward_train(ctx(true), xp, gp, bp, momentum, eps, d, rmp, rvp, mp, ip, yp);
  }

  void batchnorm_forward_eval(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, const Tensor& rm,
                              const Tensor& rv, const Tensor& invstd, const Tensor& y) override {
    CPC_NVTX_RANGE("batchnorm_forward_eval");
    const char* op = "batch_norm (eval)";
    const cuda::NormShape d = norm_shape(x, op);
    expect_numel(gamma, d.C, op, "weight");
    expect_numel(beta, d.C, op, "bias");
    expect_numel(rm, d.C, op, "running_mean");
    expect_numel(rv, d.C, op, "running_var");
    expect_numel(invstd, d.C, op, "save_invstd");
    expect_shape(y, x.shape(), op, "y");
    const float *xp = arg(x, op, "x"), *gp = arg(gamma, op, "weight"), *bp = arg(beta, op, "bias");
    const float *rmp = arg(rm, op, "running_mean"), *rvp = arg(rv, op, "running_var");
    float *ip = arg(invstd, op, "save_invstd"), *yp = arg(y, op, "y");
    bn_.forward_eval(ctx(true), xp, gp, bp, eps, d, rmp, rvp, ip, yp);
  }

  void batchnorm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                          const Tensor& invstd, bool training, const Tensor& dx, const Tensor& dgamma,
                          const Tensor& dbeta) override {
    CPC_NVTX_RANGE("batchnorm_backward");
    const char* op = "batch_norm_backward";
    const cuda::NormShape d = norm_shape(x, op);
    expect_shape(dy, x.shape(), op, "dy");
    expect_numel(gamma, d.C, op, "weight");
    expect_numel(mean, d.C, op, "mean");
    expect_numel(invstd, d.C, op, "invstd");
    if (dx.defined()) expect_shape(dx, x.shape(), op, "dx");
    if (dgamma.defined()) expect_numel(dgamma, d.C, op, "dgamma");
    if (dbeta.defined()) expect_numel(dbeta, d.C, op, "dbeta");
    const float *xp = arg(x, op, "x"), *dyp = arg(dy, op, "dy"), *gp = arg(gamma, op, "weight");
    const float *mp = arg(mean, op, "mean"), *ip = arg(invstd, op, "invstd");
    float *dxp = opt(dx, op, "dx"), *dgp = opt(dgamma, op, "dgamma"), *dbp = opt(dbeta, op, "dbeta");
    bn_.backward(ctx(training), xp, dyp, gp, mp, ip, training, d, dxp, dgp, dbp);
  }

  void batchnorm_stats(const Tensor& x, const Tensor& mean, const Tensor& var) override {
    CPC_NVTX_RANGE("batchnorm_stats");
    const char* op = "batchnorm_stats";
    const cuda::NormShape d = norm_shape(x, op);
    expect_numel(mean, d.C, op, "mean");
    expect_numel(var, d.C, op, "var");
    const float* xp = arg(x, op, "x");
    float *mp = arg(mean, op, "mean"), *vp = arg(var, op, "var");
    CPC_CUDA_CHECK(cuda::launch_batchnorm_stats(xp, d, mp, vp, stream()));
  }

  void channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift, const Tensor& y) override {
    CPC_NVTX_RANGE("channel_affine");
    const char* op = "channel_affine";
    const cuda::NormShape d = norm_shape(x, op);
    expect_numel(scale, d.C, op, "scale");
    expect_numel(shift, d.C, op, "shift");
    expect_shape(y, x.shape(), op, "y");
    const float *xp = arg(x, op, "x"), *sp = arg(scale, op, "scale"), *hp = arg(shift, op, "shift");
    float* yp = arg(y, op, "y");
    CPC_CUDA_CHECK(cuda::launch_channel_affine(xp, sp, hp, d, yp, stream()));
  }

  void channel_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps, const Tensor& mean,
                            const Tensor& invstd, const Tensor& y) override {
    CPC_NVTX_RANGE("channel_norm_forward");
    const char* op = "channel_norm";
    const cuda::NormShape d = norm_shape(x, op);
    expect_numel(gamma, d.C, op, "weight");
    expect_numel(beta, d.C, op, "bias");
    expect_numel(mean, d.B * d.L, op, "save_mean (B, L)");
    expect_numel(invstd, d.B * d.L, op, "save_invstd (B, L)");
    expect_shape(y, x.shape(), op, "y");
    const float *xp = arg(x, op, "x"), *gp = arg(gamma, op, "weight"), *bp = arg(beta, op, "bias");
    float *mp = arg(mean, op, "save_mean"), *ip = arg(invstd, op, "save_invstd"), *yp = arg(y, op, "y");
    CPC_CUDA_CHECK(cuda::launch_channel_norm_forward(xp, gp, bp, eps, d, mp, ip, yp, stream()));
  }

  void channel_norm_backward(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                             const Tensor& invstd, const Tensor& dx, const Tensor& dgamma,
                             const Tensor& dbeta) override {
    CPC_NVTX_RANGE("channel_norm_backward");
    const char* op = "channel_norm_backward";
    const cuda::NormShape d = norm_shape(x, op);
    expect_shape(dy, x.shape(), op, "dy");
    expect_numel(gamma, d.C, op, "weight");
    expect_numel(mean, d.B * d.L, op, "mean (B, L)");
    expect_numel(invstd, d.B * d.L, op, "invstd (B, L)");
    if (dx.defined()) expect_shape(dx, x.shape(), op, "dx");
    if (dgamma.defined()) expect_numel(dgamma, d.C, op, "dgamma");
    if (dbeta.defined()) expect_numel(dbeta, d.C, op, "dbeta");
    const float *xp = arg(x, op, "x"), *dyp = arg(dy, op, "dy"), *gp = arg(gamma, op, "weight");
    const float *mp = arg(mean, op, "mean"), *ip = arg(invstd, op, "invstd");
    float *dxp = opt(dx, op, "dx"), *dgp = opt(dgamma, op, "dgamma"), *dbp = opt(dbeta, op, "dbeta");
    CPC_CUDA_CHECK(cuda::launch_channel_norm_backward(xp, dyp, gp, mp, ip, d, dxp, dgp, dbp, stream()));
  }

  // ---------------------------------------------------------------- GRU
  // Two implementations (the gru option): cells (gru.h: cuBLAS GEMMs + the fused cell of
  // kernels/common/gru_cell.h, reserve (B, T, 4H)) and cudnn (gru_cudnn.h: cuDNN's RNN v8
  // API, a 1-D reserve holding the packed weights and cuDNN's reserve space). Empty
  // shapes (a zero B, T, Din or H) always take cells, which returns at once. A forward
  // and its backward must run under the same option.
  Shape gru_reserve_shape(int64_t B, int64_t T, int64_t Din, int64_t H) override {
    // cuDNN sizes the reserve, which needs a device; without one the default shape is as
    // good as any (nothing can run).
    if (use_cudnn_gru({B, T, Din, H}) && available()) return Shape({gru_.reserve_floats(ctx(true), {B, T, Din, H})});
    return Backend::gru_reserve_shape(B, T, Din, H);
  }

  void gru_layer_forward(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                         const Tensor& b_hh, const Tensor& y, const Tensor& reserve) override {
    CPC_NVTX_RANGE("gru_layer_forward");
    const char* op = "gru";
    const cuda::GruDims d = gru_dims(x, w_ih, w_hh, op);
    if (h0.defined()) expect_numel(h0, d.B * d.H, op, "h0 (B, H)");
    expect_numel(b_ih, 3 * d.H, op, "b_ih");
    expect_numel(b_hh, 3 * d.H, op, "b_hh");
    expect_numel(y, d.B * d.T * d.H, op, "y (B, T, H)");
    const bool cudnn = use_cudnn_gru(d);
    expect_numel(reserve, gru_reserve_shape(d.B, d.T, d.Din, d.H).numel(), op,
                 cudnn ? "reserve (gru_reserve_shape, gru = cudnn)" : "reserve (B, T, 4H)");
    const float *xp = arg(x, op, "x"), *h0p = opt(h0, op, "h0");
    const float *wi = arg(w_ih, op, "weight_ih"), *wh = arg(w_hh, op, "weight_hh");
    const float *bi = arg(b_ih, op, "bias_ih"), *bh = arg(b_hh, op, "bias_hh");
    float *yp = arg(y, op, "y"), *rp = arg(reserve, op, "reserve");
    if (cudnn)
      gru_.forward(ctx(true), xp, h0p, wi, wh, bi, bh, d, yp, rp);
    else
      cuda::gru_forward(ctx(false), xp, h0p, wi, wh, bi, bh, d, yp, rp);
  }

  void gru_layer_backward(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh, const Tensor& y,
                          const Tensor& reserve, const Tensor& dy, const Tensor& dh_n, const Tensor& dx,
                          const Tensor& dh0, const Tensor& dw_ih, const Tensor& dw_hh, const Tensor& db_ih,
                          const Tensor& db_hh) override {
    CPC_NVTX_RANGE("gru_layer_backward");
    const char* op = "gru_backward";
    const cuda::GruDims d = gru_dims(x, w_ih, w_hh, op);
    if (h0.defined()) expect_numel(h0, d.B * d.H, op, "h0 (B, H)");
    expect_numel(y, d.B * d.T * d.H, op, "y (B, T, H)");
    const bool cudnn = use_cudnn_gru(d);
    expect_numel(reserve, gru_reserve_shape(d.B, d.T, d.Din, d.H).numel(), op,
                 cudnn ? "reserve (gru_reserve_shape, gru = cudnn; did the gru option change since the forward?)"
                       : "reserve (B, T, 4H; did the gru option change since the forward?)");
    if (dy.defined()) expect_numel(dy, d.B * d.T * d.H, op, "dy (B, T, H)");
    if (dh_n.defined()) expect_numel(dh_n, d.B * d.H, op, "dh_n (B, H)");
    if (dx.defined()) expect_numel(dx, x.numel(), op, "dx (B, T, Din)");
    if (dh0.defined()) expect_numel(dh0, d.B * d.H, op, "dh0 (B, H)");
    if (dw_ih.defined()) expect_shape(dw_ih, w_ih.shape(), op, "dweight_ih");
    if (dw_hh.defined()) expect_shape(dw_hh, w_hh.shape(), op, "dweight_hh");
    if (db_ih.defined()) expect_numel(db_ih, 3 * d.H, op, "dbias_ih");
    if (db_hh.defined()) expect_numel(db_hh, 3 * d.H, op, "dbias_hh");
    const float *xp = arg(x, op, "x"), *h0p = opt(h0, op, "h0");
    const float *wi = arg(w_ih, op, "weight_ih"), *wh = arg(w_hh, op, "weight_hh");
    const float* yp = arg(y, op, "y");
    float* rp = arg(reserve, op, "reserve");  // cuDNN's backward writes into its reserve space
    const float *dyp = opt(dy, op, "dy"), *dhn = opt(dh_n, op, "dh_n");
    float *dxp = opt(dx, op, "dx"), *dh0p = opt(dh0, op, "dh0");
    float *dwi = opt(dw_ih, op, "dweight_ih"), *dwh = opt(dw_hh, op, "dweight_hh");
    float *dbi = opt(db_ih, op, "dbias_ih"), *dbh = opt(db_hh, op, "dbias_hh");
    // cudnn takes the weights the forward packed into the reserve (w_ih and w_hh are
    // checked above but not read; the Backend passes no biases to backward).
    if (cudnn)
      gru_.backward(ctx(true), xp, h0p, yp, rp, dyp, dhn, d, dxp, dh0p, dwi, dwh, dbi, dbh);
    else
      cuda::gru_backward(ctx(false), xp, h0p, wi, wh, yp, rp, dyp, dhn, d, dxp, dh0p, dwi, dwh, dbi, dbh);
  }

  // ---------------------------------------------------------------- contrastive
  ContrastiveStats contrastive_forward(const Tensor& a, const Tensor& c, const ContrastiveSpec& spec, const Tensor& da,
                                       const Tensor& dc) override {
    CPC_NVTX_RANGE("contrastive_forward");
    const char* op = "contrastive_loss";
    expect_rank(a, 2, op, "anchors", "(R, D)");
    expect_rank(c, 2, op, "candidates", "(M, D)");
    const int64_t R = a.size(0), M = c.size(0), D = a.size(1);
    CPC_CHECK(c.size(1) == D, op, " on cuda: anchors ", a.shape(), " and candidates ", c.shape(), " differ in D");
    CPC_CHECK(spec.blocks >= 1 && R % spec.blocks == 0 && M % spec.blocks == 0, op, " on cuda: ", spec.blocks,
              " blocks do not divide ", R, " anchors and ", M, " candidates");
    CPC_CHECK(spec.row_label && spec.col_label, op, " on cuda: row and column labels are required");
    CPC_CHECK(!spec.row_group == !spec.col_group && !spec.row_group == !spec.row_keep, op,
              " on cuda: row_group, col_group and row_keep go together");
    CPC_CHECK(!spec.excl_offsets == !spec.excl_cols, op, " on cuda: excl_offsets and excl_cols go together");
    if (da.defined()) expect_shape(da, a.shape(), op, "d(anchors)");
    if (dc.defined()) expect_shape(dc, c.shape(), op, "d(candidates)");
    const bool shared_grad = da.defined() && dc.defined() && da.raw() == dc.raw();
    CPC_CHECK(!shared_grad || a.raw() == c.raw(), op,
              " on cuda: one gradient buffer for anchors and candidates needs them to be one tensor");
    const float *ap = arg(a, op, "anchors"), *cp = arg(c, op, "candidates");
    float *dap = opt(da, op, "d(anchors)"), *dcp = opt(dc, op, "d(candidates)");
    const cuda::ContrastiveOutcome r =
        cuda::contrastive_forward(ctx(false), staging_, ap, cp, R, M, D, spec, dap, dcp, contrastive_tile_);
    return {r.loss, r.used, r.skipped, r.correct, r.column_correct};
  }

  // ---------------------------------------------------------------- optimizers
  void adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const Tensor& vmax,
                   const AdamHyper& h) override {
    CPC_NVTX_RANGE("adam_update");
    const char* op = "adam_update";
    check_same_shape(grad, param, op);
    check_same_shape(m, param, op);
    check_same_shape(v, param, op);
    CPC_CHECK(h.step >= 1, op, ": step is 1-based, found ", h.step);
    CPC_CHECK(!h.amsgrad || vmax.defined(), op, ": amsgrad needs the max_exp_avg_sq state, found none");
    if (h.amsgrad) check_same_shape(vmax, param, op);
    float* pp = arg(param, op, "param");
    const float* gp = arg(grad, op, "grad");
    float *mp = arg(m, op, "exp_avg"), *vp = arg(v, op, "exp_avg_sq");
    float* vmp = h.amsgrad ? arg(vmax, op, "max_exp_avg_sq") : nullptr;
    CPC_CUDA_CHECK(cuda::launch_adam(pp, gp, mp, vp, vmp, param.numel(), adam_scalars(h), stream()));
  }

  // Every tensor in one launch: a table of chunks (at most kMultiTensorChunk elements of
  // one tensor each, pointers pre-offset), one thread block per chunk. The per-element
  // math is adam_update's, so the results are the same bits.
  void adam_update_multi(const std::vector<AdamSlots>& slots, const AdamHyper& h) override {
    CPC_NVTX_RANGE("adam_update_multi");
    const char* op = "adam_update_multi";
    CPC_CHECK(h.step >= 1, op, ": step is 1-based, found ", h.step);
    std::vector<cuda::AdamChunk>& chunks = adam_chunks_;
    chunks.clear();  // keeps its capacity: steady-state steps allocate nothing
    for (const AdamSlots& t : slots) {
      check_same_shape(t.grad, t.param, op);
      check_same_shape(t.exp_avg, t.param, op);
      check_same_shape(t.exp_avg_sq, t.param, op);
      CPC_CHECK(!h.amsgrad || t.max_exp_avg_sq.defined(), op, ": amsgrad needs the max_exp_avg_sq state of ",
                t.param.shape(), ", found none");
      if (h.amsgrad) check_same_shape(t.max_exp_avg_sq, t.param, op);
      float* p = arg(t.param, op, "param");
      const float* g = arg(t.grad, op, "grad");
      float *m = arg(t.exp_avg, op, "exp_avg"), *v = arg(t.exp_avg_sq, op, "exp_avg_sq");
      float* vm = h.amsgrad ? arg(t.max_exp_avg_sq, op, "max_exp_avg_sq") : nullptr;
      for (int64_t i = 0; i < t.param.numel(); i += cuda::kMultiTensorChunk)
        chunks.push_back({p + i, g + i, m + i, v + i, vm ? vm + i : nullptr,
                          std::min(cuda::kMultiTensorChunk, t.param.numel() - i)});
    }
    if (chunks.empty()) return;
    const math::AdamScalars s = adam_scalars(h);
    const auto* table = static_cast<const cuda::AdamChunk*>(
        adam_table_.upload(chunks.data(), sizeof(cuda::AdamChunk) * chunks.size(), alloc_, staging_, stream()));
    CPC_CUDA_CHECK(cuda::launch_adam_multi(table, static_cast<int64_t>(chunks.size()), s, stream()));
  }

  double sum_squares_multi(const std::vector<Tensor>& xs) override {
    CPC_NVTX_RANGE("sum_squares_multi");
    std::vector<cuda::SpanChunk>& chunks = norm_chunks_;
    chunks.clear();
    for (const Tensor& x : xs) {
      const float* p = arg(x, "sum_squares_multi", "x");
      for (int64_t i = 0; i < x.numel(); i += cuda::kMultiTensorChunk)
        chunks.push_back({p + i, std::min(cuda::kMultiTensorChunk, x.numel() - i)});
    }
    if (chunks.empty()) return 0.0;
    cudaStream_t st = stream();
    const auto* table = static_cast<const cuda::SpanChunk*>(
        norm_table_.upload(chunks.data(), sizeof(cuda::SpanChunk) * chunks.size(), alloc_, staging_, st));
    double* sc = scratch();
    CPC_CUDA_CHECK(cuda::launch_sum_squares_multi(table, static_cast<int64_t>(chunks.size()), sc, st));
    double out = 0.0;
    CPC_CUDA_CHECK(cudaMemcpyAsync(&out, sc + cuda::kReduceBlocks, sizeof(double), cudaMemcpyDeviceToHost, st));
    CPC_CUDA_CHECK(cudaStreamSynchronize(st));
    return out;
  }

  void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr, float momentum, float dampening,
                  float weight_decay, bool nesterov, bool first_step) override {
    CPC_NVTX_RANGE("sgd_update");
    const char* op = "sgd_update";
    check_same_shape(grad, param, op);
    CPC_CHECK(momentum == 0.f || buf.defined(), op, ": momentum ", momentum, " needs a momentum buffer, found none");
    if (momentum != 0.f) check_same_shape(buf, param, op);
    float* pp = arg(param, op, "param");
    const float* gp = arg(grad, op, "grad");
    float* bp = momentum != 0.f ? arg(buf, op, "momentum_buffer") : nullptr;
    const math::SgdScalars s{lr, momentum, dampening, weight_decay, nesterov, first_step};
    CPC_CUDA_CHECK(cuda::launch_sgd(pp, gp, bp, param.numel(), s, stream()));
  }

 private:
  std::once_flag stream_once_, blas_once_, dnn_once_, scratch_once_;
  cudaStream_t stream_ = nullptr;
  int device_ = -1;
  cublasHandle_t blas_ = nullptr;
  cudnnHandle_t dnn_ = nullptr;
  double* scratch_ = nullptr;  // reduction partials and result
  bool tf32_ = false;
  bool bf16_ = false;  // precision option
  // Chunk tables of the multi-tensor ops, kept on the device while the tensors stay the same.
  cuda::DeviceTable adam_table_, norm_table_;
  std::vector<cuda::AdamChunk> adam_chunks_;  // host tables, reused between calls
  std::vector<cuda::SpanChunk> norm_chunks_;
  int64_t contrastive_tile_ = cuda::kDefaultContrastiveTile;
  // Never destroyed (like the handles): Buffers of static tensors may be freed after
  // this backend object during static destruction.
  cuda::CachingAllocator& alloc_ = *new cuda::CachingAllocator;
  cuda::HostStaging staging_;
  // copy_async: the copy stream, its staging ring and events (never destroyed, like the handles).
  // 32 events: with fewer copies in flight (the loader keeps prefetch + 1), every wait is exact.
  static constexpr uint64_t kCopyEvents = 32;
  std::mutex copy_issue_mu_, copy_event_mu_;
  cudaStream_t copy_stream_ = nullptr;
  cudaEvent_t compute_mark_ = nullptr;
  cudaEvent_t copy_done_[kCopyEvents] = {};
  uint64_t copy_tickets_ = 0;
  // 16 chunks (64 MiB pinned): an ecg12 batch of 64 (13.8 MB) spans 4, so the copies of the
  // loader's batches in flight rarely wait for a chunk.
  cuda::HostStaging copy_staging_{16, "the loader's host->device copies"};
  cuda::CudnnConv1d conv_;
  cuda::CudnnBatchNorm bn_;
  cuda::CudnnGru gru_;
  bool gru_cudnn_ = cuda::gru_cudnn_from_env();  // gru option: cuDNN RNN (true) or cells (gru.h)

  // The compute stream, made on first use; fixes the device this backend serves.
  // call_once retries after a throw, so a failed first attempt is not cached.
  cudaStream_t stream() {
    std::call_once(stream_once_, [this] {
      CPC_CHECK(available(), "cuda: cannot run kernels: ", no_device_reason());
      int dev = 0;
      CPC_CUDA_CHECK(cudaGetDevice(&dev));
      cudaStream_t s = nullptr;
      CPC_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
      device_ = dev;
      stream_ = s;
    });
    return stream_;
  }

  cublasHandle_t blas() {
    std::call_once(blas_once_, [this] {
      cudaStream_t s = stream();
      cublasHandle_t h = nullptr;
      CPC_CUBLAS_CHECK(cublasCreate(&h));
      try {
        CPC_CUBLAS_CHECK(cublasSetStream(h, s));
        // No TF32 unless asked for: fp32 GEMMs then agree with the CPU backend to fp32 rounding.
        CPC_CUBLAS_CHECK(cublasSetMathMode(h, tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
      } catch (...) {
        cublasDestroy(h);
        throw;
      }
      blas_ = h;
    });
    return blas_;
  }

  cudnnHandle_t dnn() {
    std::call_once(dnn_once_, [this] {
      cudaStream_t s = stream();
      cudnnHandle_t h = nullptr;
      CPC_CUDNN_CHECK(cudnnCreate(&h));
      try {
        CPC_CUDNN_CHECK(cudnnSetStream(h, s));
      } catch (...) {
        cudnnDestroy(h);
        throw;
      }
      dnn_ = h;
    });
    return dnn_;
  }

  // What the op implementations share; cuDNN is created only for ops that use it.
  cuda::CudaContext ctx(bool need_dnn) {
    cuda::CudaContext c;
    c.stream = stream();
    c.blas = blas();
    c.dnn = need_dnn ? dnn() : nullptr;
    c.alloc = &alloc_;
    c.tf32 = tf32_;
    c.bf16 = bf16_;
    return c;
  }

  double* scratch() {
    std::call_once(scratch_once_, [this] {
      scratch_ = static_cast<double*>(alloc_.allocate(sizeof(double) * cuda::kReduceScratch, stream()));
    });
    return scratch_;
  }

  // The CPU backend's scalars (bias corrections in double on the host).
  static math::AdamScalars adam_scalars(const AdamHyper& h) {
    return math::adam_scalars(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.decoupled, h.amsgrad, h.step);
  }

  // Checks a tensor argument before any launch and returns its device pointer.
  float* arg(const Tensor& t, const char* op, const char* role) {
    CPC_CHECK(t.defined(), op, " on cuda: ", role, " is undefined");
    CPC_CHECK(t.device().kind == DeviceKind::cuda, op, " on cuda: ", role, " ", t.shape(), " is on ", t.device().str(),
              ", expected a cuda tensor (move it with .to(Device::cuda()))");
    CPC_CHECK(t.dtype() == DType::f32, op, " on cuda: ", role, " ", t.shape(), " must be f32, found ",
              dtype_name(t.dtype()), " (precision bf16 rounds inside the ops; tensors stay f32)");
    CPC_CHECK(t.is_contiguous(), op, " on cuda: ", role, " ", t.shape(), " must be contiguous");
    stream();
    CPC_CHECK(t.device().index == device_, op, " on cuda: ", role, " is on ", t.device().str(),
              " but this backend serves cuda:", device_, " (the device current at its first use)");
    return t.f32();
  }
  // An optional tensor: null when undefined.
  float* opt(const Tensor& t, const char* op, const char* role) { return t.defined() ? arg(t, op, role) : nullptr; }

  // GemmArgs carries raw pointers: catch a host pointer here rather than as an
  // illegal-address fault that would poison the context.
  void check_device_pointer(const void* p, const char* what) {
    CPC_CHECK(p != nullptr, "gemm on cuda: ", what, " is a null pointer");
    stream();
    cudaPointerAttributes attr{};
    CPC_CUDA_CHECK(cudaPointerGetAttributes(&attr, p));
    CPC_CHECK(attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged, "gemm on cuda: ", what,
              " is not device memory (pass the f32() of cuda tensors)");
    CPC_CHECK(attr.type == cudaMemoryTypeManaged || attr.device == device_, "gemm on cuda: ", what,
              " lives on cuda:", attr.device, " but this backend serves cuda:", device_);
  }

  // y (O, C, inner) with C = bias.numel(); returns C.
  static int64_t bias_channels(const Tensor& y, const Tensor& bias, int64_t inner, const char* op, const char* role) {
    CPC_CHECK(y.defined() && bias.defined(), op, " on cuda: ", role, " and the bias must be defined");
    const int64_t C = bias.numel();
    CPC_CHECK(inner >= 1, op, " on cuda: inner extent ", inner, " must be >= 1");
    CPC_CHECK(C == 0 ? y.numel() == 0 : y.numel() % (C * inner) == 0, op, " on cuda: ", role, " ", y.shape(),
              " is not (O, ", C, ", ", inner, ") for a bias of ", C, " channels");
    return C;
  }

  static void check_narrow(const Shape& full, const Shape& part, int64_t start, const char* op) {
    CPC_CHECK(full[0] == part[0] && full[2] == part[2], op, " on cuda: ", full, " and ", part,
              " differ outside the narrowed axis");
    CPC_CHECK(start >= 0 && start + part[1] <= full[1], op, " on cuda: [", start, ", ", start + part[1],
              ") out of range for axis 1 of ", full);
  }

  // x (B, Cin, L), w (Cout, Cin, K), y (B, Cout, Lout) with Lout from the geometry.
  static cuda::ConvShape conv_shape(const Tensor& x, const Tensor& w, const Conv1dGeometry& g, const Tensor& y,
                                    const char* op, const char* xrole, const char* yrole) {
    expect_rank(x, 3, op, xrole, "(B, Cin, L)");
    expect_rank(w, 3, op, "weight", "(Cout, Cin, K)");
    expect_rank(y, 3, op, yrole, "(B, Cout, Lout)");
    CPC_CHECK(g.stride >= 1 && g.dilation >= 1 && g.padding >= 0, op, " on cuda: stride ", g.stride, ", dilation ",
              g.dilation, " must be >= 1 and padding ", g.padding, " >= 0");
    CPC_CHECK(x.size(1) == w.size(1), op, " on cuda: ", xrole, " ", x.shape(), " has ", x.size(1),
              " channels, the weight ", w.shape(), " expects ", w.size(1));
    const int64_t lout = g.out_length(x.size(2), w.size(2));
    CPC_CHECK(lout >= 1, op, " on cuda: length ", x.size(2), " is too short for kernel ", w.size(2), ", dilation ",
              g.dilation, " and padding ", g.padding);
    expect_shape(y, {x.size(0), w.size(0), lout}, op, yrole);
    return {x.size(0), x.size(1), x.size(2), w.size(0), w.size(2), lout, g.stride, g.padding, g.dilation};
  }

  // The gru option, except for empty shapes (cells returns at once for them).
  bool use_cudnn_gru(const cuda::GruDims& d) const { return gru_cudnn_ && d.B > 0 && d.T > 0 && d.Din > 0 && d.H > 0; }

  static cuda::GruDims gru_dims(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh, const char* op) {
    expect_rank(x, 3, op, "x", "(B, T, Din)");
    expect_rank(w_hh, 2, op, "weight_hh", "(3H, H)");
    const int64_t H = w_hh.size(1);
    expect_shape(w_hh, {3 * H, H}, op, "weight_hh");
    expect_shape(w_ih, {3 * H, x.size(2)}, op, "weight_ih");
    return {x.size(0), x.size(1), x.size(2), H};
  }

  void dropout(const Tensor& x, float p, uint64_t seed, const Tensor& y, bool accumulate, const char* op) {
    check_same_shape(x, y, op);
    const float* xp = arg(x, op, accumulate ? "dy" : "x");
    float* yp = arg(y, op, accumulate ? "dx" : "y");
    const float scale = 1.f / (1.f - p);  // float, as the CPU computes it
    CPC_CUDA_CHECK(cuda::launch_dropout(xp, yp, x.numel(), p, scale, seed, accumulate, stream()));
  }

  double reduce(const Tensor& x, bool squares, const char* op) {
    const float* xp = arg(x, op, "x");
    if (x.numel() == 0) return 0.0;
    cudaStream_t s = stream();
    double* sc = scratch();
    CPC_CUDA_CHECK(cuda::launch_reduce_sum(xp, x.numel(), squares, sc, s));
    double out = 0.0;
    CPC_CUDA_CHECK(cudaMemcpyAsync(&out, sc + cuda::kReduceBlocks, sizeof(double), cudaMemcpyDeviceToHost, s));
    CPC_CUDA_CHECK(cudaStreamSynchronize(s));
    return out;
  }
};

CudaBackend g_cuda;
BackendRegistrar g_register(DeviceKind::cuda, &g_cuda);

}  // namespace
}  // namespace cpc
