#include "kernels/cuda/batchnorm_cudnn.h"

#include <climits>

#include "engine/core/error.h"
#include "kernels/cuda/runtime/cuda_check.h"
#include "kernels/cuda/elementwise.h"

namespace cpc::cuda {

namespace {
constexpr cudnnBatchNormMode_t kMode = CUDNN_BATCHNORM_SPATIAL;
// cuDNN's backward takes an epsilon but, given the saved mean and inverse std of the
// forward pass (always the case here), computes with those; the interface does not
// carry the forward's eps, so a valid placeholder goes in.
constexpr double kBackwardEps = 1e-5;
static_assert(kBackwardEps >= CUDNN_BN_MIN_EPSILON, "cuDNN rejects epsilons below CUDNN_BN_MIN_EPSILON");
}  // namespace

CudnnBatchNorm::Descs::~Descs() {
  if (x) cudnnDestroyTensorDescriptor(x);
  if (bn) cudnnDestroyTensorDescriptor(bn);
}

CudnnBatchNorm::~CudnnBatchNorm() = default;

const CudnnBatchNorm::Descs& CudnnBatchNorm::descs(const NormDims& d) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto key = std::make_tuple(d.B, d.C, d.L);
  auto it = cache_.find(key);
  if (it != cache_.end()) return *it->second;
  CPC_CHECK(d.B >= 1 && d.C >= 1 && d.L >= 1 && d.B <= INT_MAX && d.C <= INT_MAX && d.L <= INT_MAX,
            "batch_norm on cuda: input (", d.B, ", ", d.C, ", ", d.L, ") is empty or exceeds cuDNN's int range");
  auto e = std::make_unique<Descs>();
  CPC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->x));
  CPC_CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->bn));
  CPC_CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(d.B),
                                             static_cast<int>(d.C), 1, static_cast<int>(d.L)));
  CPC_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(e->bn, e->x, kMode));  // (1, C, 1, 1)
  const Descs& ref = *e;
  cache_.emplace(key, std::move(e));
  return ref;
}

void CudnnBatchNorm::forward_train(const CudaContext& ctx, const float* x, const float* gamma, const float* beta,
                                   float momentum, float eps, const NormDims& d, float* running_mean,
                                   float* running_var, float* save_mean, float* save_invstd, float* y) {
  CPC_CHECK(!running_mean == !running_var, "batch_norm on cuda: running mean and variance go together");
  CPC_CHECK(static_cast<double>(eps) >= CUDNN_BN_MIN_EPSILON, "batch_norm on cuda: eps ", eps,
            " below cuDNN's minimum ", CUDNN_BN_MIN_EPSILON);
  const Descs& s = descs(d);
  const float one = 1.f, zero = 0.f;
  // exponentialAverageFactor = momentum: running = (1 - momentum) running + momentum batch,
  // with the unbiased batch variance for running_var (PyTorch's and our CPU's rule);
  // resultSaveInvVariance is 1 / sqrt(biased var + eps), our save_invstd.
  CPC_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(ctx.dnn, kMode, &one, &zero, s.x, x, s.x, y, s.bn, gamma, beta,
                                                         static_cast<double>(momentum), running_mean, running_var,
                                                         static_cast<double>(eps), save_mean, save_invstd));
}

void CudnnBatchNorm::forward_eval(const CudaContext& ctx, const float* x, const float* gamma, const float* beta,
                                  float eps, const NormDims& d, const float* running_mean, const float* running_var,
                                  float* save_invstd, float* y) {
  CPC_CHECK(static_cast<double>(eps) >= CUDNN_BN_MIN_EPSILON, "batch_norm on cuda: eps ", eps,
            " below cuDNN's minimum ", CUDNN_BN_MIN_EPSILON);
  const Descs& s = descs(d);
  const float one = 1.f, zero = 0.f;
  CPC_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(ctx.dnn, kMode, &one, &zero, s.x, x, s.x, y, s.bn, gamma,
                                                          beta, running_mean, running_var, static_cast<double>(eps)));
  CPC_CUDA_CHECK(launch_batchnorm_eval_invstd(running_var, eps, d.C, save_invstd, ctx.stream));
}

void CudnnBatchNorm::backward(const CudaContext& ctx, const float* x, const float* dy, const float* gamma,
                              const float* mean, const float* invstd, bool training, const NormDims& d, float* dx,
                              float* dgamma, float* dbeta) {
  if (!dx && !dgamma && !dbeta) return;
  if (!training) {
    CPC_CUDA_CHECK(launch_batchnorm_backward_eval(x, dy, gamma, mean, invstd, d, dx, dgamma, dbeta, ctx.stream));
    return;
  }
  const Descs& s = descs(d);
  // cuDNN writes all three outputs and blends dgamma and dbeta with one beta: missing
  // outputs land in scratch; with only one parameter gradient wanted, both go to
  // scratch (beta 0) and the wanted one is added.
  const bool both = dgamma && dbeta, one_param = !both && (dgamma || dbeta);
  DeviceScratch dx_tmp = ctx.scratch(dx ? 0 : sizeof(float) * d.B * d.C * d.L);
  DeviceScratch p_tmp = ctx.scratch(both ? 0 : sizeof(float) * 2 * d.C);
  float* dx_p = dx ? dx : dx_tmp.get<float>();
  float* dg_p = both ? dgamma : p_tmp.get<float>();
  float* db_p = both ? dbeta : p_tmp.get<float>() + d.C;
  const float one = 1.f, zero = 0.f;
  CPC_CUDNN_CHECK(cudnnBatchNormalizationBackward(ctx.dnn, kMode, &one, dx ? &one : &zero, &one, both ? &one : &zero,
                                                  s.x, x, s.x, dy, s.x, dx_p, s.bn, gamma, dg_p, db_p, kBackwardEps,
                                                  mean, invstd));
  if (one_param) CPC_CUDA_CHECK(launch_axpy(1.f, dgamma ? dg_p : db_p, dgamma ? dgamma : dbeta, d.C, ctx.stream));
}

}  // namespace cpc::cuda
