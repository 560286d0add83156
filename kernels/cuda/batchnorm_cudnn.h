#pragma once
// BatchNorm1d through cuDNN (CUDNN_BATCHNORM_SPATIAL on x viewed as (B, C, 1, L)):
// training forward (batch statistics, running-stat update with the unbiased variance,
// saved mean and 1/sqrt(var + eps), as PyTorch and our CPU backend), inference forward
// and training backward. Eval-mode backward (statistics are constants, which cuDNN's
// backward does not offer) and the eval invstd are kernels of norms.cu. Backward
// accumulates into dx, dgamma, dbeta (cuDNN's beta = 1), as the Backend requires.
#include <cudnn.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "kernels/cuda/runtime/cuda_context.h"
#include "kernels/cuda/norms.h"

namespace cpc::cuda {

class CudnnBatchNorm {
 public:
  CudnnBatchNorm() = default;
  ~CudnnBatchNorm();
  CudnnBatchNorm(const CudnnBatchNorm&) = delete;
  CudnnBatchNorm& operator=(const CudnnBatchNorm&) = delete;

  // running_mean / running_var: both or neither (no update).
  void forward_train(const CudaContext& ctx, const float* x, const float* gamma, const float* beta, float momentum,
                     float eps, const NormDims& d, float* running_mean, float* running_var, float* save_mean,
                     float* save_invstd, float* y);
  void forward_eval(const CudaContext& ctx, const float* x, const float* gamma, const float* beta, float eps,
                    const NormDims& d, const float* running_mean, const float* running_var, float* save_invstd,
                    float* y);
  // dx, dgamma, dbeta may each be null.
  void backward(const CudaContext& ctx, const float* x, const float* dy, const float* gamma, const float* mean,
                const float* invstd, bool training, const NormDims& d, float* dx, float* dgamma, float* dbeta);

 private:
  struct Descs {
    cudnnTensorDescriptor_t x = nullptr, bn = nullptr;
    ~Descs();
  };
  std::mutex mu_;
  std::map<std::tuple<int64_t, int64_t, int64_t>, std::unique_ptr<Descs>> cache_;
  const Descs& descs(const NormDims& d);
};

}  // namespace cpc::cuda
