// conv1d_forward / conv1d_backward_data / conv1d_backward_weights over the geometries
// the encoders use (strided, padded, dilated, pointwise) and awkward ones, against the
// double instantiation of the im2col kernel (the CPU backend runs oneDNN by default),
// with finite differences for x, weight and bias. The channels_last cases take x (B, L, Cin)
// and give y (B, Lout, Cout) (oneDNN's direct kernels on the CPU); backends without them
// run the same cases through their transposes, as ops::conv1d does.
#include "kernels/cpu/conv1d.h"
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

// overwrite: dx starts as garbage and backward data overwrites it (accumulate = false).
OpCase conv_case(const char* name, int64_t B, int64_t Cin, int64_t L, int64_t Cout, int64_t K, int64_t stride,
                 int64_t pad, int64_t dil, bool bias = true, bool overwrite = false) {
  const Conv1dGeometry g{stride, pad, dil};
  const int64_t Lout = g.out_length(L, K);
  const Conv1dDims d{B, Cin, L, Cout, K, Lout, stride, pad, dil};
  OpCase c;
  c.name = std::string("conv1d/") + name;
  c.ops = {Op::conv1d_forward, Op::conv1d_backward_data, Op::conv1d_backward_weights};
  c.inputs = {Shape{B, Cin, L}, Shape{Cout, Cin, K}, Shape{Cout}, Shape{B, Cout, Lout}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = Tensor::zeros({B, Cout, Lout}, in[0].device()), dw = zeros_like(in[1]), db = zeros_like(in[2]);
    Tensor dx = overwrite ? garbage_like(in[0]) : zeros_like(in[0]);
    b.conv1d_forward(in[0], in[1], bias ? &in[2] : nullptr, g, y);
    b.conv1d_backward_data(in[3], in[1], g, dx, !overwrite);
    b.conv1d_backward_weights(in[0], in[3], g, dw, bias ? &db : nullptr);
    return Tensors{y, dx, dw, db};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec y(B * Cout * Lout), dx(in[0].size(), 0.0), dw(in[1].size(), 0.0), db(Cout, 0.0), col(cpu::col_size(d));
    cpu::conv1d_forward(in[0].data(), in[1].data(), bias ? in[2].data() : nullptr, d, y.data(), col.data());
    cpu::conv1d_backward_data(in[3].data(), in[1].data(), d, dx.data(), col.data());
    cpu::conv1d_backward_weights(in[0].data(), in[3].data(), d, dw.data(), bias ? db.data() : nullptr, col.data());
    return std::vector<Vec>{y, dx, dw, db};
  };
  c.tol = 1e-5;
  c.device_tol = 1e-5;  // fp32 without TF32: cuDNN and oneDNN differ in summation order only
  c.grad = {3, {0, 1}, {1, 2}};
  if (bias) c.grad.inputs.push_back(2), c.grad.outputs.push_back(3);
  return c;
}

// (B, P, Q) -> (B, Q, P) on a backend.
Tensor swap12(Backend& b, const Tensor& t) {
  Tensor out = Tensor::zeros({t.size(0), t.size(2), t.size(1)}, t.device());
  b.transpose(t, t.size(0), t.size(1), t.size(2), 1, out, 0.f);
  return out;
}

// What the forward leaves for the backward, as ops::conv1d passes it (Conv1dSaved): a space
// of the size the backend asks for, NaN-filled so that anything read before the forward
// wrote it shows.
Conv1dSaved saved_space(Backend& b, const Tensor& x, const Tensor& w, const Conv1dGeometry& g, const Tensor& y) {
  Conv1dSaved s;
  const int64_t bytes = b.conv1d_saved_bytes(x, w, g, y);
  if (bytes > 0) s.space = garbage_like(Tensor::empty({(bytes + 3) / 4}, x.device()));
  return s;
}

enum class Saved { none, both, weights_only };  // weights_only: backward_weights without backward_data

OpCase conv_channels_last_case(const char* name, int64_t B, int64_t Cin, int64_t L, int64_t Cout, int64_t K,
                               int64_t stride, int64_t pad, int64_t dil, bool bias = true, bool overwrite = false,
                               Saved saved = Saved::none) {
  Conv1dGeometry g{stride, pad, dil};
  g.channels_last = true;
  const int64_t Lout = g.out_length(L, K);
  const Conv1dDims d{B, Cin, L, Cout, K, Lout, stride, pad, dil};
  OpCase c;
  c.name = std::string("conv1d/channels_last_") + name;
  c.ops = {Op::conv1d_forward, Op::conv1d_backward_data, Op::conv1d_backward_weights};
  c.inputs = {Shape{B, L, Cin}, Shape{Cout, Cin, K}, Shape{Cout}, Shape{B, Lout, Cout}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor dw = zeros_like(in[1]), db = zeros_like(in[2]);
    if (!b.conv1d_channels_last()) {  // (B, C, L) kernels between transposes
      Conv1dGeometry gc = g;
      gc.channels_last = false;
      Tensor x = swap12(b, in[0]), dy = swap12(b, in[3]);
      Tensor y = Tensor::zeros({B, Cout, Lout}, x.device()), dx = overwrite ? garbage_like(x) : zeros_like(x);
      b.conv1d_forward(x, in[1], bias ? &in[2] : nullptr, gc, y);
      b.conv1d_backward_data(dy, in[1], gc, dx, !overwrite);
      b.conv1d_backward_weights(x, dy, gc, dw, bias ? &db : nullptr);
      return Tensors{swap12(b, y), swap12(b, dx), dw, db};
    }
    Tensor y = Tensor::zeros({B, Lout, Cout}, in[0].device());
    Tensor dx = overwrite ? garbage_like(in[0]) : zeros_like(in[0]);
    Conv1dSaved kept = saved == Saved::none ? Conv1dSaved{} : saved_space(b, in[0], in[1], g, y);
    Conv1dSaved* sv = saved == Saved::none ? nullptr : &kept;
    b.conv1d_forward(in[0], in[1], bias ? &in[2] : nullptr, g, y, sv);
    if (saved == Saved::weights_only) {
      b.conv1d_backward_weights(in[0], in[3], g, dw, bias ? &db : nullptr, sv);
      b.conv1d_backward_data(in[3], in[1], g, dx, !overwrite);
    } else {
      b.conv1d_backward_data(in[3], in[1], g, dx, !overwrite, sv);
      b.conv1d_backward_weights(in[0], in[3], g, dw, bias ? &db : nullptr, sv);
    }
    return Tensors{y, dx, dw, db};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    const Vec x = swap_last2(in[0], B, L, Cin), dy = swap_last2(in[3], B, Lout, Cout);
    Vec y(B * Cout * Lout), dx(x.size(), 0.0), dw(in[1].size(), 0.0), db(Cout, 0.0), col(cpu::col_size(d));
    cpu::conv1d_forward(x.data(), in[1].data(), bias ? in[2].data() : nullptr, d, y.data(), col.data());
    cpu::conv1d_backward_data(dy.data(), in[1].data(), d, dx.data(), col.data());
    cpu::conv1d_backward_weights(x.data(), dy.data(), d, dw.data(), bias ? db.data() : nullptr, col.data());
    return std::vector<Vec>{swap_last2(y, B, Cout, Lout), swap_last2(dx, B, Cin, L), dw, db};
  };
  c.tol = 1e-5;
  c.device_tol = 1e-5;
  c.grad = {3, {0, 1}, {1, 2}};
  if (bias) c.grad.inputs.push_back(2), c.grad.outputs.push_back(3);
  return c;
}

// The backward ops ADD into their outputs (gradients accumulate): dx, dw and db start
// from random values (inputs 4..6) and must end as those values plus the gradients.
OpCase conv_accumulates_case() {
  const int64_t B = 2, Cin = 3, L = 17, Cout = 4, K = 3;
  const Conv1dGeometry g{2, 1, 1};
  const int64_t Lout = g.out_length(L, K);
  const Conv1dDims d{B, Cin, L, Cout, K, Lout, 2, 1, 1};
  OpCase c;
  c.name = "conv1d/backward_accumulates";
  c.ops = {Op::conv1d_backward_data, Op::conv1d_backward_weights};
  c.inputs = {Shape{B, Cin, L}, Shape{Cout, Cin, K}, Shape{B, Cout, Lout}, Shape{B, Cin, L}, Shape{Cout, Cin, K},
              Shape{Cout}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor dx = copy_of(in[3]), dw = copy_of(in[4]), db = copy_of(in[5]);
    b.conv1d_backward_data(in[2], in[1], g, dx);
    b.conv1d_backward_weights(in[0], in[2], g, dw, &db);
    return Tensors{dx, dw, db};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec dx = in[3], dw = in[4], db = in[5], col(cpu::col_size(d));
    cpu::conv1d_backward_data(in[2].data(), in[1].data(), d, dx.data(), col.data());
    cpu::conv1d_backward_weights(in[0].data(), in[2].data(), d, dw.data(), db.data(), col.data());
    return std::vector<Vec>{dx, dw, db};
  };
  return c;
}

CPC_OP_CASES({
    conv_case("k3_pad1", 2, 5, 21, 7, 3, 1, 1, 1),
    conv_case("stride5_k10_pad3", 2, 1, 160, 8, 10, 5, 3, 1),  // audio_cdck2's first layer
    conv_case("stride2_k4_pad1", 3, 6, 33, 4, 4, 2, 1, 1),
    conv_case("dilation2", 2, 4, 30, 5, 3, 1, 2, 2),
    conv_case("pointwise", 2, 16, 19, 12, 1, 1, 0, 1),
    conv_case("no_bias_kernel_longer_than_input", 1, 3, 4, 2, 7, 1, 3, 1, false),
    conv_case("batch1_odd_channels", 1, 13, 50, 9, 5, 3, 2, 1),
    conv_accumulates_case(),
    // ecg12's stem, block and shortcut geometries; the rest as above.
    conv_channels_last_case("stem_12ch_stride4_k7", 2, 12, 90, 16, 7, 4, 3, 1, false),
    conv_channels_last_case("k7_stride2_pad3", 3, 16, 45, 32, 7, 2, 3, 1, false),
    conv_channels_last_case("pointwise_stride2_bias", 2, 16, 31, 24, 1, 2, 0, 1),
    conv_channels_last_case("stride5_k10_pad3", 2, 1, 160, 8, 10, 5, 3, 1),
    // One input channel: the weight gradient is conv1d_one_channel.h's (rows in groups of
    // four with a remainder, chunks of several rows, dilation).
    conv_channels_last_case("one_channel_600_rows", 3, 1, 1001, 16, 10, 5, 3, 1),
    conv_channels_last_case("one_channel_80_out", 2, 1, 403, 80, 10, 5, 3, 1),  // 64 in vectors, 16 after
    conv_channels_last_case("one_channel_dilation2", 2, 1, 50, 8, 3, 2, 2, 2, false),
    conv_channels_last_case("dilation2", 2, 4, 30, 5, 3, 1, 2, 2),
    conv_channels_last_case("kernel_longer_than_input", 1, 3, 4, 2, 7, 1, 3, 1, false),
    conv_channels_last_case("batch1_odd_channels", 1, 13, 50, 9, 5, 3, 2, 1),
    // 256+ channels: the CPU runs these as GEMMs over strided windows (conv1d_gemm.h):
    // K a multiple of the stride (audio_cdck2's layers), not, shorter than it, stride 1,
    // windows in the padding at both ends, no interior row at all, and a bias.
    conv_channels_last_case("gemm_k8_stride4", 2, 256, 40, 256, 8, 4, 2, 1, false),
    conv_channels_last_case("gemm_k4_stride2_bias", 3, 256, 21, 264, 4, 2, 1, 1),
    conv_channels_last_case("gemm_k5_stride2_pad3", 2, 272, 19, 256, 5, 2, 3, 1),
    conv_channels_last_case("gemm_k1_stride2", 2, 256, 9, 256, 1, 2, 0, 1),
    conv_channels_last_case("gemm_k3_stride1", 2, 256, 12, 256, 3, 1, 1, 1, false),
    conv_channels_last_case("gemm_no_interior", 2, 256, 3, 256, 7, 1, 3, 1),
    conv_channels_last_case("gemm_overwrite", 2, 256, 40, 256, 8, 4, 2, 1, false, true),
    conv_channels_last_case("gemm_k1_stride2_overwrite", 2, 256, 9, 256, 1, 2, 0, 1, false, true),
    conv_channels_last_case("gemm_no_interior_overwrite", 2, 256, 3, 256, 7, 1, 3, 1, false, true),
    // The same with the forward's saved space (what ops::conv1d passes): the backward
    // passes read the weights it reordered; and backward_weights alone after the forward.
    conv_channels_last_case("gemm_k8_stride4_saved", 2, 256, 40, 256, 8, 4, 2, 1, false, false, Saved::both),
    conv_channels_last_case("gemm_k4_stride2_bias_saved", 3, 256, 21, 264, 4, 2, 1, 1, true, true, Saved::both),
    conv_channels_last_case("gemm_k5_stride2_pad3_saved", 2, 272, 19, 256, 5, 2, 3, 1, true, false, Saved::both),
    conv_channels_last_case("gemm_no_interior_saved", 2, 256, 3, 256, 7, 1, 3, 1, true, false, Saved::both),
    conv_channels_last_case("gemm_weights_only_saved", 2, 256, 40, 256, 8, 4, 2, 1, true, false,
                            Saved::weights_only),
    conv_channels_last_case("small_saved", 2, 16, 31, 24, 3, 2, 1, 1, true, false, Saved::both),  // saves nothing
    // The first gradient to reach a value: dx overwritten, on each CPU path.
    conv_case("overwrite", 3, 6, 33, 4, 4, 2, 1, 1, true, true),
    conv_case("overwrite_pointwise", 2, 16, 19, 12, 1, 1, 0, 1, false, true),
    conv_channels_last_case("overwrite", 3, 16, 45, 32, 7, 2, 3, 1, false, true),
    [] {
      OpCase c = conv_case("overwrite_im2col", 3, 6, 33, 4, 4, 2, 1, 1, true, true);
      c.options = {{"cpu", "conv", "im2col", "onednn"}};
      return c;
    }(),
});

}  // namespace
}  // namespace cpc::ops_test
