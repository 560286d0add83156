// The CUDA backend (skeleton): device memory and copies, cuBLAS GEMM, and the
// pointwise, optimizer and reduction kernels of elementwise.cu, all on one compute
// stream. Ops not overridden here keep the base class's "`op` is not available on
// cuda yet" error. Registered for DeviceKind::cuda at start-up.
//
// The backend serves the CUDA device that is current when it is first used (one
// device per process, e.g. one MPI rank per GPU); tensors on another index are
// rejected rather than silently read across devices.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <library_types.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "engine/backend.h"
#include "engine/error.h"
#include "kernels/common/optimizer_math.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/elementwise.h"

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

class CudaBackend final : public Backend {
 public:
  // The stream and library handles are deliberately never destroyed: this object
  // dies during static destruction, when the CUDA runtime may already be torn down.
  // The driver reclaims them at process exit.

  std::string name() const override { return "cuda"; }

  bool available() const override { return probe().count > 0; }

  std::string describe() const override {
    int runtime = 0, driver = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);  // 0 when no driver is installed
    const size_t dnn = cudnnGetVersion();
    std::string s = cat("cuda: CUDA runtime ", cuda_version(runtime), " (driver ", cuda_version(driver),
                        "), cuDNN ", dnn / 10000, ".", (dnn % 10000) / 100, ".", dnn % 100, ", cuBLAS ",
                        cublas_version(), ", fp32 GEMM without TF32; ");
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
      s += cat(" [", i, "] ", prop.name, " (sm_", prop.major, prop.minor, ", ", prop.multiProcessorCount,
               " SMs, ", prop.totalGlobalMem >> 20, " MiB)");
    }
    return s;
  }

  void* allocate(size_t bytes) override {
    CPC_CHECK(available(), "cuda: cannot allocate ", bytes, " bytes: ", no_device_reason());
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      cudaGetLastError();
      fail("cuda: cudaMalloc of ", bytes, " bytes failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e),
           "); ", free_b >> 20, " MiB free of ", total_b >> 20, " MiB");
    }
    return p;
  }

  void deallocate(void* p) override {
    if (p == nullptr) return;
    // Reached from Buffer's destructor, so it must not throw. Pending work on our
    // stream may still read p; cudaErrorCudartUnloading is the normal end at exit.
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
    const cudaError_t e = cudaFree(p);
    if (e != cudaSuccess && e != cudaErrorCudartUnloading) {
      cudaGetLastError();
      std::fprintf(stderr, "cpc: cuda: cudaFree failed: %s (%s)\n", cudaGetErrorName(e), cudaGetErrorString(e));
    }
  }

  void copy(void* dst, Device dd, const void* src, Device sd, size_t bytes) override {
    if (bytes == 0) return;
    const bool dst_host = dd.kind == DeviceKind::cpu, src_host = sd.kind == DeviceKind::cpu;
    if (dst_host && src_host) {
      std::memcpy(dst, src, bytes);
      return;
    }
    CPC_CHECK(dst != nullptr && src != nullptr, "cuda: copy of ", bytes, " bytes ", sd.str(), " -> ", dd.str(),
              " with a null pointer");
    cudaStream_t s = stream();
    if (!dst_host && !src_host && dd.index != sd.index) {
      CPC_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dd.index, src, sd.index, bytes, s));
    } else {
      const cudaMemcpyKind kind = src_host ? cudaMemcpyHostToDevice
                                  : dst_host ? cudaMemcpyDeviceToHost
                                             : cudaMemcpyDeviceToDevice;
      // A pageable host source is staged before cudaMemcpyAsync returns, so the caller
      // may free it at once; only a host destination needs the wait below.
      CPC_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, s));
    }
    if (dst_host) CPC_CUDA_CHECK(cudaStreamSynchronize(s));
  }

  void synchronize() override {
    if (stream_ != nullptr) CPC_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // Row-major C = alpha op(A) op(B) + beta C is column-major C^T = op(B)^T op(A)^T:
  // hand cuBLAS B first and swap m and n; the leading dimensions carry over as is.
  void gemm(const GemmArgs& g) override {
    CPC_CHECK(fits_int(g.m) && fits_int(g.n) && fits_int(g.k), "gemm on cuda: m, n, k = ", g.m, ", ", g.n, ", ",
              g.k, " must lie in [0, ", INT_MAX, "]");
    CPC_CHECK(fits_int(g.lda) && fits_int(g.ldb) && fits_int(g.ldc), "gemm on cuda: lda, ldb, ldc = ", g.lda, ", ",
              g.ldb, ", ", g.ldc, " must lie in [0, ", INT_MAX, "]");
    const int64_t a_cols = g.trans_a ? g.m : g.k, b_cols = g.trans_b ? g.k : g.n;
    CPC_CHECK(g.lda >= std::max<int64_t>(1, a_cols), "gemm on cuda: lda ", g.lda, " < ", a_cols,
              ", the row width of A", g.trans_a ? "^T" : "");
    CPC_CHECK(g.ldb >= std::max<int64_t>(1, b_cols), "gemm on cuda: ldb ", g.ldb, " < ", b_cols,
              ", the row width of B", g.trans_b ? "^T" : "");
    CPC_CHECK(g.ldc >= std::max<int64_t>(1, g.n), "gemm on cuda: ldc ", g.ldc, " < n = ", g.n);
    if (g.m == 0 || g.n == 0) return;
    check_device_pointer(g.c, "C");
    if (g.k > 0) {
      check_device_pointer(g.a, "A");
      check_device_pointer(g.b, "B");
    }
    const float alpha = g.alpha, beta = g.beta;
    CPC_CUBLAS_CHECK(cublasSgemm(blas(), g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 static_cast<int>(g.n), static_cast<int>(g.m), static_cast<int>(g.k), &alpha, g.b,
                                 static_cast<int>(g.ldb), g.a, static_cast<int>(g.lda), &beta, g.c,
                                 static_cast<int>(g.ldc)));
  }

  void fill(const Tensor& y, float value) override {
    float* yp = arg(y, "fill", "y");
    CPC_CUDA_CHECK(cuda::launch_fill(yp, y.numel(), value, stream()));
  }

  void axpy(float alpha, const Tensor& x, const Tensor& y) override {
    check_same_shape(x, y, "axpy");
    const float* xp = arg(x, "axpy", "x");
    float* yp = arg(y, "axpy", "y");
    CPC_CUDA_CHECK(cuda::launch_axpy(alpha, xp, yp, y.numel(), stream()));
  }

  void add(const Tensor& a, const Tensor& b, const Tensor& y) override {
    check_same_shape(a, y, "add");
    check_same_shape(b, y, "add");
    const float *ap = arg(a, "add", "a"), *bp = arg(b, "add", "b");
    float* yp = arg(y, "add", "y");
    CPC_CUDA_CHECK(cuda::launch_add(ap, bp, yp, y.numel(), stream()));
  }

  void relu_forward(const Tensor& x, const Tensor& y) override {
    check_same_shape(x, y, "relu");
    const float* xp = arg(x, "relu", "x");
    float* yp = arg(y, "relu", "y");
    CPC_CUDA_CHECK(cuda::launch_relu_forward(xp, yp, x.numel(), stream()));
  }

  void relu_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) override {
    check_same_shape(y, dy, "relu_backward");
    check_same_shape(y, dx, "relu_backward");
    const float *yp = arg(y, "relu_backward", "y"), *dyp = arg(dy, "relu_backward", "dy");
    float* dxp = arg(dx, "relu_backward", "dx");
    CPC_CUDA_CHECK(cuda::launch_relu_backward(yp, dyp, dxp, y.numel(), stream()));
  }

  void gelu_forward(const Tensor& x, const Tensor& y) override {
    check_same_shape(x, y, "gelu");
    const float* xp = arg(x, "gelu", "x");
    float* yp = arg(y, "gelu", "y");
    CPC_CUDA_CHECK(cuda::launch_gelu_forward(xp, yp, x.numel(), stream()));
  }

  void gelu_backward(const Tensor& x, const Tensor& dy, const Tensor& dx) override {
    check_same_shape(x, dy, "gelu_backward");
    check_same_shape(x, dx, "gelu_backward");
    const float *xp = arg(x, "gelu_backward", "x"), *dyp = arg(dy, "gelu_backward", "dy");
    float* dxp = arg(dx, "gelu_backward", "dx");
    CPC_CUDA_CHECK(cuda::launch_gelu_backward(xp, dyp, dxp, x.numel(), stream()));
  }

  void dropout_forward(const Tensor& x, float p, uint64_t seed, const Tensor& y) override {
    dropout(x, p, seed, y, false, "dropout");
  }

  void dropout_backward(const Tensor& dy, float p, uint64_t seed, const Tensor& dx) override {
    dropout(dy, p, seed, dx, true, "dropout_backward");
  }

  double sum_squares(const Tensor& x) override { return reduce(x, true, "sum_squares"); }
  double sum(const Tensor& x) override { return reduce(x, false, "sum"); }

  void adam_update(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const Tensor& vmax,
                   const AdamHyper& h) override {
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
    // Bias corrections in double on the host, exactly as the CPU backend does.
    math::AdamScalars s{h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, 0.f, 0.f, h.decoupled, h.amsgrad};
    s.step_size = static_cast<float>(h.lr / (1.0 - std::pow(static_cast<double>(h.beta1), h.step)));
    s.bias_corr2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(h.beta2), h.step)));
    CPC_CUDA_CHECK(cuda::launch_adam(pp, gp, mp, vp, vmp, param.numel(), s, stream()));
  }

  void sgd_update(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr, float momentum,
                  float dampening, float weight_decay, bool nesterov, bool first_step) override {
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
        // No TF32: fp32 GEMMs must agree with the CPU backend to fp32 rounding.
        CPC_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
      } catch (...) {
        cublasDestroy(h);
        throw;
      }
      blas_ = h;
    });
    return blas_;
  }

  // For the convolution, norm and RNN ops still to come.
  [[maybe_unused]] cudnnHandle_t dnn() {
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

  double* scratch() {
    std::call_once(scratch_once_, [this] {
      stream();
      void* p = nullptr;
      CPC_CUDA_CHECK(cudaMalloc(&p, sizeof(double) * cuda::kReduceScratch));
      scratch_ = static_cast<double*>(p);
    });
    return scratch_;
  }

  // Checks a tensor argument before any launch and returns its device pointer.
  float* arg(const Tensor& t, const char* op, const char* role) {
    CPC_CHECK(t.defined(), op, " on cuda: ", role, " is undefined");
    CPC_CHECK(t.device().kind == DeviceKind::cuda, op, " on cuda: ", role, " ", t.shape(), " is on ",
              t.device().str(), ", expected a cuda tensor (move it with .to(Device::cuda()))");
    CPC_CHECK(t.dtype() == DType::f32, op, " on cuda: ", role, " ", t.shape(), " must be f32, found ",
              dtype_name(t.dtype()), " (no mixed-precision kernels yet)");
    CPC_CHECK(t.is_contiguous(), op, " on cuda: ", role, " ", t.shape(), " must be contiguous");
    stream();
    CPC_CHECK(t.device().index == device_, op, " on cuda: ", role, " is on ", t.device().str(),
              " but this backend serves cuda:", device_, " (the device current at its first use)");
    return t.f32();
  }

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
