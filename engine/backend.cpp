#include "engine/backend.h"

#include <array>

#include "engine/error.h"

namespace cpc {

namespace {
std::array<Backend*, kNumDeviceKinds>& registry() {
  static std::array<Backend*, kNumDeviceKinds> r{};
  return r;
}
const char* kind_name(DeviceKind k) { return k == DeviceKind::cpu ? "cpu" : "cuda"; }
}  // namespace

void register_backend(DeviceKind kind, Backend* b) { registry()[static_cast<int>(kind)] = b; }

bool has_backend(DeviceKind kind) { return registry()[static_cast<int>(kind)] != nullptr; }

Backend& backend(Device device) {
  Backend* b = registry()[static_cast<int>(device.kind)];
  CPC_CHECK(b != nullptr, "device ", device.str(), ": this build has no ", kind_name(device.kind),
            " backend (configure with -DCPC_CUDA=ON for cuda)");
  return *b;
}

void Backend::unavailable(const char* op) const { fail("`", op, "` is not available on ", name(), " yet"); }

void Backend::set_option(const std::string& key, const std::string&) {
  fail("backend ", name(), " has no option '", key, "'");
}
void Backend::gemm(const GemmArgs&) { unavailable("gemm"); }
void Backend::batchnorm_stats(const Tensor&, const Tensor&, const Tensor&) { unavailable("batchnorm_stats"); }
void Backend::channel_affine(const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  unavailable("channel_affine");
}
void Backend::fill(const Tensor&, float) { unavailable("fill"); }
void Backend::axpy(float, const Tensor&, const Tensor&) { unavailable("axpy"); }
void Backend::axpy_scaled(float, const Tensor&, const Tensor&, const Tensor&) { unavailable("axpy_scaled"); }
void Backend::add(const Tensor&, const Tensor&, const Tensor&) { unavailable("add"); }
void Backend::add_bias(const Tensor&, const Tensor&, int64_t) { unavailable("add_bias"); }
void Backend::bias_grad(const Tensor&, const Tensor&, int64_t) { unavailable("bias_grad"); }
void Backend::relu_forward(const Tensor&, const Tensor&) { unavailable("relu"); }
void Backend::relu_backward(const Tensor&, const Tensor&, const Tensor&) { unavailable("relu_backward"); }
void Backend::gelu_forward(const Tensor&, const Tensor&) { unavailable("gelu"); }
void Backend::gelu_backward(const Tensor&, const Tensor&, const Tensor&) { unavailable("gelu_backward"); }
void Backend::dropout_forward(const Tensor&, float, uint64_t, const Tensor&) { unavailable("dropout"); }
void Backend::dropout_backward(const Tensor&, float, uint64_t, const Tensor&) { unavailable("dropout_backward"); }
double Backend::sum_squares(const Tensor&) { unavailable("sum_squares"); }
double Backend::sum(const Tensor&) { unavailable("sum"); }
void Backend::transpose_last2(const Tensor&, const Tensor&, float) { unavailable("transpose"); }
void Backend::narrow_forward(const Tensor&, int64_t, const Tensor&) { unavailable("narrow"); }
void Backend::narrow_backward(const Tensor&, int64_t, const Tensor&) { unavailable("narrow_backward"); }
void Backend::mean_axis_forward(const Tensor&, const Tensor&) { unavailable("mean_pool"); }
void Backend::mean_axis_backward(const Tensor&, const Tensor&) { unavailable("mean_pool_backward"); }
void Backend::max_axis_forward(const Tensor&, const Tensor&, const Tensor&) { unavailable("max_pool"); }
void Backend::max_axis_backward(const Tensor&, const Tensor&, const Tensor&) { unavailable("max_pool_backward"); }
void Backend::conv1d_forward(const Tensor&, const Tensor&, const Tensor*, const Conv1dGeometry&, const Tensor&) {
  unavailable("conv1d");
}
void Backend::conv1d_backward_data(const Tensor&, const Tensor&, const Conv1dGeometry&, const Tensor&) {
  unavailable("conv1d_backward_data");
}
void Backend::conv1d_backward_weights(const Tensor&, const Tensor&, const Conv1dGeometry&, const Tensor&,
                                      const Tensor*) {
  unavailable("conv1d_backward_weights");
}
void Backend::batchnorm_forward_train(const Tensor&, const Tensor&, const Tensor&, float, float, const Tensor&,
                                      const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  unavailable("batch_norm");
}
void Backend::batchnorm_forward_eval(const Tensor&, const Tensor&, const Tensor&, float, const Tensor&, const Tensor&,
                                     const Tensor&, const Tensor&) {
  unavailable("batch_norm");
}
void Backend::batchnorm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool,
                                 const Tensor&, const Tensor&, const Tensor&) {
  unavailable("batch_norm_backward");
}
void Backend::channel_norm_forward(const Tensor&, const Tensor&, const Tensor&, float, const Tensor&, const Tensor&,
                                   const Tensor&) {
  unavailable("channel_norm");
}
void Backend::channel_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                    const Tensor&, const Tensor&, const Tensor&) {
  unavailable("channel_norm_backward");
}
void Backend::gru_layer_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                const Tensor&, const Tensor&, const Tensor&) {
  unavailable("gru");
}
void Backend::gru_layer_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  unavailable("gru_backward");
}
ContrastiveStats Backend::contrastive_forward(const Tensor&, const Tensor&, const ContrastiveSpec&, const Tensor&,
                                              const Tensor&) {
  unavailable("contrastive_loss");
}
void Backend::l2_normalize_forward(const Tensor&, float, const Tensor&) { unavailable("l2_normalize"); }
void Backend::l2_normalize_backward(const Tensor&, const Tensor&, float, const Tensor&) {
  unavailable("l2_normalize_backward");
}
void Backend::swap_axes(const Tensor&, int64_t, int64_t, int64_t, int64_t, const Tensor&, float) {
  unavailable("swap_axes");
}
uint64_t Backend::copy_async(const Tensor& dst, const Tensor& src) {
  Tensor d = dst;  // shares dst's storage
  d.copy_from(src);
  return 0;
}

Shape Backend::gru_reserve_shape(int64_t B, int64_t T, int64_t, int64_t H) { return Shape({B, T, 4 * H}); }

void Backend::adam_update(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const AdamHyper&) {
  unavailable("adam_update");
}
void Backend::adam_update_multi(const std::vector<AdamSlots>& slots, const AdamHyper& h) {
  for (const AdamSlots& s : slots) adam_update(s.param, s.grad, s.exp_avg, s.exp_avg_sq, s.max_exp_avg_sq, h);
}
double Backend::sum_squares_multi(const std::vector<Tensor>& xs) {
  double ss = 0;
  for (const Tensor& x : xs) ss += sum_squares(x);
  return ss;
}
void Backend::sgd_update(const Tensor&, const Tensor&, const Tensor&, float, float, float, float, bool, bool) {
  unavailable("sgd_update");
}

}  // namespace cpc
