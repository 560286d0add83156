// One GRU layer, forward and backward (PyTorch's gate order and formulas), against the
// double kernels; finite differences for the input, the initial state and all weights.
// On CUDA each case also runs through cuDNN's RNN API (option gru = cudnn).
#include <cmath>

#include "kernels/cpu/gru.h"
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

// Inputs: x, h0, w_ih, w_hh, b_ih, b_hh, dy, dh_n.
OpCase gru_case(const std::string& name, int64_t B, int64_t T, int64_t Din, int64_t H, bool h0, bool dh_n,
                bool cudnn = false) {
  const GruDims d{B, T, Din, H};
  OpCase c;
  c.name = "gru/" + name + (cudnn ? "_cudnn" : "");
  c.ops = {Op::gru_layer_forward, Op::gru_layer_backward};
  c.inputs = {Shape{B, T, Din}, Shape{B, H}, Shape{3 * H, Din}, Shape{3 * H, H}, Shape{3 * H}, Shape{3 * H},
              Shape{B, T, H},   Shape{B, H}};
  c.prepare = [H](std::vector<std::vector<float>>& in) {  // weights in PyTorch's init range U(-1/sqrt(H), 1/sqrt(H))
    const float k = 1.f / std::sqrt(static_cast<float>(H));
    for (int w = 2; w <= 5; ++w)
      for (float& v : in[static_cast<size_t>(w)]) v *= k;
  };
  c.run = [=](Backend& b, const Tensors& in) {
    const Device dev = in[0].device();
    Tensor y = Tensor::zeros({B, T, H}, dev), reserve = Tensor::zeros(b.gru_reserve_shape(B, T, Din, H), dev);
    Tensor dx = zeros_like(in[0]), dh0 = zeros_like(in[1]), dwi = zeros_like(in[2]), dwh = zeros_like(in[3]),
           dbi = zeros_like(in[4]), dbh = zeros_like(in[5]);
    const Tensor h0t = h0 ? in[1] : Tensor(), dhn = dh_n ? in[7] : Tensor();
    b.gru_layer_forward(in[0], h0t, in[2], in[3], in[4], in[5], y, reserve);
    b.gru_layer_backward(in[0], h0t, in[2], in[3], y, reserve, in[6], dhn, dx, h0 ? dh0 : Tensor(), dwi, dwh, dbi,
                         dbh);
    return Tensors{y, dx, dh0, dwi, dwh, dbi, dbh};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec y(B * T * H), reserve(B * T * 4 * H), dx(in[0].size(), 0.0), dh0(B * H, 0.0), dwi(in[2].size(), 0.0),
        dwh(in[3].size(), 0.0), dbi(3 * H, 0.0), dbh(3 * H, 0.0);
    Vec ws(std::max(cpu::gru_forward_workspace(d), cpu::gru_backward_workspace(d)));
    const double* h0p = h0 ? in[1].data() : nullptr;
    cpu::gru_forward(in[0].data(), h0p, in[2].data(), in[3].data(), in[4].data(), in[5].data(), d, y.data(),
                     reserve.data(), ws.data());
    cpu::gru_backward(in[0].data(), h0p, in[2].data(), in[3].data(), y.data(), reserve.data(), in[6].data(),
                      dh_n ? in[7].data() : nullptr, d, dx.data(), h0 ? dh0.data() : nullptr, dwi.data(), dwh.data(),
                      dbi.data(), dbh.data(), ws.data());
    return std::vector<Vec>{y, dx, dh0, dwi, dwh, dbi, dbh};
  };
  c.tol = 1e-5;
  c.device_tol = 2e-5;  // cuBLAS / cuDNN GEMMs against OpenBLAS / oneDNN over T steps
  if (!dh_n) {         // the finite-difference loss is sum(y * dy) only
    c.grad = {6, {0, 2, 3, 4, 5}, {1, 3, 4, 5, 6}};
    if (h0) c.grad.inputs.push_back(1), c.grad.outputs.push_back(2);
  }
  if (cudnn) c.options = {{"cuda", "gru", "cudnn", "cells"}};
  return c;
}

// The backward ADDS into its outputs: the gradients start from random values (inputs
// 8..13) and must end as those values plus the gradients.
OpCase gru_accumulates_case() {
  OpCase c = gru_case("backward_accumulates", 2, 3, 4, 5, true, true);
  const int64_t B = 2, T = 3, Din = 4, H = 5;
  for (const Shape& s : {Shape{B, T, Din}, Shape{B, H}, Shape{3 * H, Din}, Shape{3 * H, H}, Shape{3 * H}, Shape{3 * H}})
    c.inputs.push_back(s);
  const auto run = c.run;
  const auto reference = c.reference;
  // The same ops from zero give g; from start values s the outputs must be s + g.
  c.run = [run](Backend& b, const Tensors& in) {
    const Device dev = in[0].device();
    Tensor y = Tensor::zeros({2, 3, 5}, dev), reserve = Tensor::zeros(b.gru_reserve_shape(2, 3, 4, 5), dev);
    Tensor dx = copy_of(in[8]), dh0 = copy_of(in[9]), dwi = copy_of(in[10]), dwh = copy_of(in[11]),
           dbi = copy_of(in[12]), dbh = copy_of(in[13]);
    b.gru_layer_forward(in[0], in[1], in[2], in[3], in[4], in[5], y, reserve);
    b.gru_layer_backward(in[0], in[1], in[2], in[3], y, reserve, in[6], in[7], dx, dh0, dwi, dwh, dbi, dbh);
    return Tensors{y, dx, dh0, dwi, dwh, dbi, dbh};
  };
  c.reference = [reference](const std::vector<Vec>& in) {
    std::vector<Vec> out = reference(in);
    for (size_t k = 1; k < out.size(); ++k)
      for (size_t i = 0; i < out[k].size(); ++i) out[k][i] += in[7 + k][i];
    return out;
  };
  c.grad = {};
  return c;
}

std::vector<OpCase> gru_cases() {
  std::vector<OpCase> v;
  for (bool cudnn : {false, true}) {
    v.push_back(gru_case("h0", 2, 5, 7, 6, true, false, cudnn));
    v.push_back(gru_case("zeros_h0_dh_n", 3, 4, 5, 8, false, true, cudnn));
    v.push_back(gru_case("one_step", 1, 1, 3, 4, true, false, cudnn));
    v.push_back(gru_case("encoder_size", 4, 16, 128, 256, true, true, cudnn));
  }
  v.push_back(gru_accumulates_case());
  return v;
}

CPC_OP_CASES(gru_cases());

}  // namespace
}  // namespace cpc::ops_test
