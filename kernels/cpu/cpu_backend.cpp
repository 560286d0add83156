// The CPU backend: oneDNN convolutions (or im2col + GEMM), oneDNN or OpenBLAS GEMMs
// (cpu_options.h), a GRU on those GEMMs, the fused contrastive kernel and plain (OpenMP)
// loops for the rest. Registered for DeviceKind::cpu at start-up. Scratch memory and the
// oneDNN primitive cache are per thread: threads running their own tapes do not share them.
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "kernels/common/optimizer_math.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/contrastive.h"
#include "kernels/cpu/contrastive_sampled.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/conv1d_gemm.h"
#include "kernels/cpu/conv1d_one_channel.h"
#include "kernels/cpu/conv1d_onednn.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gru.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/parallel.h"

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
char* openblas_get_config(void);
}

namespace cpc {
namespace {

float* f(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }

const char* isa_name(dnnl_cpu_isa_t isa) {  // the oneDNN ISA its JIT kernels use
  switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }

  std::string describe() const override {
    const dnnl_version_t* v = dnnl_version();
    return cat("cpu: OpenBLAS ", openblas_get_config(), " (", openblas_get_corename(), " kernels, ",
               openblas_get_num_threads(), " threads), oneDNN ", v->major, ".", v->minor, ".", v->patch, ", OpenMP ",
               omp_get_max_threads(), " threads, ISA ", isa_name(dnnl_get_effective_cpu_isa()), "; ",
               cpu::describe(cpu::cpu_options()));
  }
  void set_option(const std::string& key, const std::string& value) override {
    cpu::set_option(cpu::cpu_options(), key, value, "cpu option " + key);
  }

  void set_threads(int n) override {
    CPC_CHECK(n >= 1, "threads: expected >= 1, found ", n);
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
  }
  int threads() const override { return omp_get_max_threads(); }
  size_t workspace_bytes() const override { return scratch().ws.capacity() * sizeof(float); }

  void* allocate(size_t bytes) override {
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    CPC_CHECK(p != nullptr, "cpu: out of memory allocating ", bytes, " bytes");
    return p;
  }
  void deallocate(void* p) override { std::free(p); }
  void copy(void* dst, Device dd, const void* src, Device sd, size_t bytes) override {
    CPC_CHECK(dd.kind == DeviceKind::cpu && sd.kind == DeviceKind::cpu, "cpu backend: cannot copy ", sd.str(), " -> ",
              dd.str());
    std::memcpy(dst, src, bytes);
  }

  // Every op on f32 tensors; bf16 is a precision mode inside the ops, not a tensor dtype,
  // with one exception checked by the front: bf16 activations between a BatchNorm that
  // runs by rows and a GEMM convolution (conv1d_rounded_input, batchnorm_rounded_output).
  bool supports_op(Op, DType dtype) const override { return dtype == DType::f32; }
  void check_precision(Precision p) override {
    static const bool avx512 = [] {
      const unsigned isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa()), need = dnnl_cpu_isa_avx512_core;
      return (isa & need) == need;
    }();
    CPC_CHECK(p == Precision::fp32 || avx512,
              "precision bf16 on cpu: this CPU lacks AVX-512, which oneDNN's bf16 convolutions need; use fp32");
  }

 protected:
  void gemm_impl(const GemmArgs& g) override {
    cpu::gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.alpha, g.a, g.lda, g.b, g.ldb, g.beta, g.c, g.ldc,
              g.precision == Precision::bf16);
  }

  void fill_impl(const Tensor& y, float v) override {
    float* p = y.f32();
    const int64_t n = y.numel();
    if (v == 0.f) {
      // Chunks over the threads: one thread's memset reaches only about half the bandwidth.
      constexpr int64_t kChunk = 1 << 16;
      const int64_t chunks = (n + kChunk - 1) / kChunk;
      cpu::parallel_for(chunks, chunks > 4, [&](int64_t c) {
        const int64_t lo = c * kChunk;
        std::memset(p + lo, 0, sizeof(float) * std::min(kChunk, n - lo));
      });
      return;
    }
    for (int64_t i = 0; i < n; ++i) p[i] = v;
  }
  void axpy_impl(float a, const Tensor& x, const Tensor& y) override {
    const float* xp = x.f32();
    float* yp = y.f32();
    const int64_t n = x.numel();
    cpu::parallel_for(n, n > 65536, [&](int64_t i) { yp[i] += a * xp[i]; });
  }
  void axpy_scaled_impl(float a, const Tensor& s, const Tensor& x, const Tensor& y) override {
    axpy_impl(a * s.f32()[0], x, y);
  }
  void add_impl(const Tensor& a, const Tensor& b, const Tensor& y) override {
    const float *ap = a.f32(), *bp = b.f32();
    float* yp = y.f32();
    const int64_t n = y.numel();
    cpu::parallel_for(n, n > 65536, [&](int64_t i) { yp[i] = ap[i] + bp[i]; });
  }
  void add_bias_impl(const Tensor& y, const Tensor& bias, int64_t O, int64_t C, int64_t inner) override {
    float* yp = y.f32();
    const float* bp = bias.f32();
    if (inner == 1) {  // rows of C (linear, channels-last): vector lanes across channels
      cpu::parallel_for(O, O * C > 65536, [&](int64_t o) {
        float* yr = yp + o * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) yr[c] += bp[c];
      });
      return;
    }
    cpu::parallel_for(O * C, O * C * inner > 65536, [&](int64_t oc) {
      float* r = yp + oc * inner;
      const float v = bp[oc % C];
      for (int64_t i = 0; i < inner; ++i) r[i] += v;
    });
  }
  void bias_grad_impl(const Tensor& dy, const Tensor& db, int64_t O, int64_t C, int64_t inner) override {
    const float* dp = dy.f32();
    float* bp = db.f32();
    if (inner == 1) return cpu::rows::add_column_sums(dp, O, C, bp);  // any thread count: same sums
    cpu::parallel_for(C, O * C * inner > 65536, [&](int64_t c) {
      double s = 0;
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0; i < inner; ++i) s += dp[(o * C + c) * inner + i];
      bp[c] += static_cast<float>(s);
    });
  }
  void relu_forward_impl(const Tensor& x, const Tensor& y) override { cpu::relu_forward(x.f32(), y.f32(), x.numel()); }
  void relu_backward_impl(const Tensor& y, const Tensor& dy, const Tensor& dx, bool accumulate) override {
    cpu::relu_backward(y.f32(), dy.f32(), dx.f32(), y.numel(), accumulate);
  }
  void gelu_forward_impl(const Tensor& x, const Tensor& y) override { cpu::gelu_forward(x.f32(), y.f32(), x.numel()); }
  void gelu_backward_impl(const Tensor& x, const Tensor& dy, const Tensor& dx) override {
    cpu::gelu_backward(x.f32(), dy.f32(), dx.f32(), x.numel());
  }
  void dropout_forward_impl(const Tensor& x, float p, uint64_t seed, const Tensor& y) override {
    cpu::dropout_apply(x.f32(), y.f32(), x.numel(), p, seed, false);
  }
  void dropout_backward_impl(const Tensor& dy, float p, uint64_t seed, const Tensor& dx) override {
    cpu::dropout_apply(dy.f32(), dx.f32(), dy.numel(), p, seed, true);
  }
  double sum_squares_impl(const Tensor& x) override {
    const float* p = x.f32();
    const int64_t n = x.numel();
    return cpu::parallel_sum(n, n > 65536, [&](int64_t i) { return static_cast<double>(p[i]) * p[i]; });
  }
  // The gradient norm's sum over every parameter: fixed chunks of each tensor, each summed
  // in vector lanes and then in order, so the bits do not depend on the thread count; one
  // parallel region for all (a region per tensor cost more than the sums of small ones).
  double sum_squares_multi_impl(const std::vector<Tensor>& xs) override {
    constexpr int64_t kChunk = 1 << 14;
    struct Chunk {
      const float* p;
      int64_t n;
    };
    // The calling thread's lists, kept with their capacity (the steady state allocates
    // nothing); the workers reach them through these references, not their own.
    thread_local std::vector<Chunk> chunk_list;
    thread_local std::vector<double> partial_list;
    std::vector<Chunk>& chunks = chunk_list;
    std::vector<double>& partial = partial_list;
    chunks.clear();
    int64_t total = 0;
    for (const Tensor& x : xs) {
      const float* p = x.f32();
      const int64_t n = x.numel();
      for (int64_t o = 0; o < n; o += kChunk) chunks.push_back({p + o, std::min(kChunk, n - o)});
      total += n;
    }
    partial.assign(chunks.size(), 0.0);
    cpu::parallel_for(static_cast<int64_t>(chunks.size()), total > 65536, [&](int64_t i) {
      const float* p = chunks[static_cast<size_t>(i)].p;
      const int64_t n = chunks[static_cast<size_t>(i)].n;
      double s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < n; ++j) s += static_cast<double>(p[j]) * p[j];
      partial[static_cast<size_t>(i)] = s;
    });
    double ss = 0;
    for (const double v : partial) ss += v;
    return ss;
  }
  double sum_impl(const Tensor& x) override {
    const float* p = x.f32();
    const int64_t n = x.numel();
    return cpu::parallel_sum(n, n > 65536, [&](int64_t i) { return static_cast<double>(p[i]); });
  }

  void transpose_impl(const Tensor& x, int64_t O, int64_t M, int64_t N, int64_t I, const Tensor& y,
                      float beta) override {
    if (I == 1)  // the last two axes: the blocked kernel
      cpu::transpose_last2(x.f32(), y.f32(), O, M, N, beta);
    else
      cpu::swap_axes(x.f32(), y.f32(), O, M, N, I, beta);
  }
  void narrow_forward_impl(const Tensor& x, int64_t start, const Tensor& y) override {
    cpu::narrow_copy(x.f32(), y.f32(), x.size(0), x.size(1), x.size(2), start, y.size(1));
  }
  void narrow_backward_impl(const Tensor& dy, int64_t start, const Tensor& dx) override {
    cpu::narrow_add(dy.f32(), dx.f32(), dx.size(0), dx.size(1), dx.size(2), start, dy.size(1));
  }
  void mean_axis_forward_impl(const Tensor& x, const Tensor& y) override {
    cpu::mean_axis_forward(x.f32(), y.f32(), x.size(0), x.size(1), x.size(2));
  }
  void mean_axis_backward_impl(const Tensor& dy, const Tensor& dx) override {
    cpu::mean_axis_backward(dy.f32(), dx.f32(), dx.size(0), dx.size(1), dx.size(2));
  }
  void max_axis_forward_impl(const Tensor& x, const Tensor& y, const Tensor& argmax) override {
    cpu::max_axis_forward(x.f32(), y.f32(), argmax.f32(), x.size(0), x.size(1), x.size(2));
  }
  void max_axis_backward_impl(const Tensor& dy, const Tensor& argmax, const Tensor& dx) override {
    cpu::max_axis_backward(dy.f32(), argmax.f32(), dx.f32(), dx.size(0), dx.size(1), dx.size(2));
  }

  bool conv1d_channels_last() const override { return cpu::cpu_options().channels_last(); }
  bool conv1d_prefers_channels_last() const override {
    return cpu::cpu_options().channels_last();
  }
  // Which convolution runs d: the GEMMs over strided windows (wide channels-last layers),
  // oneDNN's primitives, or im2col + the gemm option (CPC_CPU_CONV=im2col).
  enum class ConvPath { gemm_windows, onednn, im2col };
  static ConvPath conv_path(const Conv1dDims& d) {
    if (cpu::cpu_options().conv != cpu::ConvAlgorithm::onednn) return ConvPath::im2col;
    return cpu::GemmConv1d::applies(d) ? ConvPath::gemm_windows : ConvPath::onednn;
  }
  int64_t conv1d_saved_bytes_impl(const Conv1dDims& d) const override {
    return conv_path(d) == ConvPath::gemm_windows ? cpu::GemmConv1d::saved_bytes(d) : 0;
  }
  // A bf16 x (rounded activations) where conv_path runs the GEMMs on rounded operands, and
  // BatchNorm writes them where it runs by rows (channels-last); CPC_CPU_BF16_ACTIVATIONS=off
  // keeps every activation f32 (the same values: the convolution rounds them itself).
  bool conv1d_rounded_input(const Conv1dDims& d) const override {
    return cpu::cpu_options().bf16_activations && d.bf16() && conv1d_channels_last() &&
           conv_path(d) == ConvPath::gemm_windows;
  }
  bool batchnorm_rounded_output(const NormDims& d) const override {
    return cpu::cpu_options().bf16_activations && d.L == 1;
  }
  static cpu::GemmConv1d::Operand conv_input(const Tensor& x) {
    return x.dtype() == DType::bf16 ? cpu::GemmConv1d::Operand{nullptr, static_cast<const uint16_t*>(x.raw())}
                                    : cpu::GemmConv1d::Operand{x.f32(), nullptr};
  }
  static cpu::GemmConv1d::Saved gemm_saved(Conv1dSaved* s) {
    return s ? cpu::GemmConv1d::Saved{s->space.raw(), &s->dy_ready}
             : cpu::GemmConv1d::Saved{nullptr, nullptr};
  }
  void conv1d_forward_impl(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv1dDims& d, const Tensor& y,
                           Conv1dSaved* saved) override {
    const float* b = bias ? bias->f32() : nullptr;
    switch (conv_path(d)) {
      case ConvPath::gemm_windows:
        return scratch().gemm_conv.forward(conv_input(x), w.f32(), b, d, y.f32(), gemm_saved(saved));
      case ConvPath::onednn: return scratch().onednn.forward(x.f32(), w.f32(), b, d, y.f32());
      case ConvPath::im2col: return cpu::conv1d_forward(x.f32(), w.f32(), b, d, y.f32(), workspace(cpu::col_size(d)));
    }
  }
  void conv1d_backward_data_impl(const Tensor& dy, const Tensor& w, const Conv1dDims& d, const Tensor& dx,
                                 bool accumulate, Conv1dSaved* saved) override {
    switch (conv_path(d)) {
      case ConvPath::gemm_windows:
        return scratch().gemm_conv.backward_data(dy.f32(), w.f32(), d, dx.f32(), accumulate, gemm_saved(saved));
      case ConvPath::onednn: return scratch().onednn.backward_data(dy.f32(), w.f32(), d, dx.f32(), accumulate);
      case ConvPath::im2col:
        if (!accumulate) fill_impl(dx, 0.f);  // col2im adds
        return cpu::conv1d_backward_data(dy.f32(), w.f32(), d, dx.f32(), workspace(cpu::col_size(d)));
    }
  }
  void conv1d_backward_weights_impl(const Tensor& x, const Tensor& dy, const Conv1dDims& d, const Tensor& dw,
                                    const Tensor* dbias, Conv1dSaved* saved) override {
    float* db = dbias ? dbias->f32() : nullptr;
    switch (conv_path(d)) {
      case ConvPath::gemm_windows:
        return scratch().gemm_conv.backward_weights(conv_input(x), dy.f32(), d, dw.f32(), db, gemm_saved(saved));
      case ConvPath::onednn:
        if (cpu::conv1d_one_channel_applies(d))
          return cpu::conv1d_one_channel_backward_weights(x.f32(), dy.f32(), d, dw.f32(), db);
        return scratch().onednn.backward_weights(x.f32(), dy.f32(), d, dw.f32(), db);
      case ConvPath::im2col: break;
    }
    cpu::conv1d_backward_weights(x.f32(), dy.f32(), d, dw.f32(), db, workspace(cpu::col_size(d)));
  }

  void batchnorm_forward_train_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, float momentum, float eps,
                                    const Tensor& rm, const Tensor& rv, const Tensor& mean, const Tensor& invstd,
                                    const NormDims& d, const Tensor& y, bool relu) override {
    if (y.dtype() == DType::bf16)  // rows (batchnorm_rounded_output): y rounded as it is stored
      return cpu::rows::forward_train(x.f32(), gamma.f32(), beta.f32(), momentum, eps, d.B, d.C, f(rm), f(rv),
                                      mean.f32(), invstd.f32(), static_cast<uint16_t*>(y.raw()), relu);
    cpu::batchnorm_forward_train(x.f32(), gamma.f32(), beta.f32(), momentum, eps, d, f(rm), f(rv), mean.f32(),
                                 invstd.f32(), y.f32(), relu);
  }
  void batchnorm_forward_eval_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                   const Tensor& rm, const Tensor& rv, const Tensor& invstd, const NormDims& d,
                                   const Tensor& y, bool relu) override {
    if (y.dtype() == DType::bf16)
      return cpu::rows_forward_eval(x.f32(), gamma.f32(), beta.f32(), eps, d, rm.f32(), rv.f32(), invstd.f32(),
                                    static_cast<uint16_t*>(y.raw()), relu);
    cpu::batchnorm_forward_eval(x.f32(), gamma.f32(), beta.f32(), eps, d, rm.f32(), rv.f32(), invstd.f32(), y.f32(),
                                relu);
  }
  void batchnorm_backward_impl(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                               const Tensor& invstd, bool training, const NormDims& d, const Tensor& dx,
                               const Tensor& dgamma, const Tensor& dbeta, bool accumulate,
                               const BatchNormRelu* relu) override {
    // The ReLU's mask recomputed from x and beta: y is not read.
    cpu::batchnorm_backward(x.f32(), dy.f32(), gamma.f32(), mean.f32(), invstd.f32(), training, d, f(dx), f(dgamma),
                            f(dbeta), accumulate, relu ? relu->beta.f32() : nullptr);
  }
  void batchnorm_stats_impl(const Tensor& x, const NormDims& d, const Tensor& mean, const Tensor& var) override {
    cpu::batchnorm_stats(x.f32(), d, mean.f32(), var.f32());
  }
  void channel_affine_impl(const Tensor& x, const Tensor& scale, const Tensor& shift, const NormDims& d,
                           const Tensor& y) override {
    cpu::channel_affine(x.f32(), scale.f32(), shift.f32(), d, y.f32());
  }
  void channel_norm_forward_impl(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                                 const NormDims& d, const Tensor& mean, const Tensor& invstd,
                                 const Tensor& y) override {
    cpu::channel_norm_forward(x.f32(), gamma.f32(), beta.f32(), eps, d, mean.f32(), invstd.f32(), y.f32());
  }
  void channel_norm_backward_impl(const Tensor& x, const Tensor& dy, const Tensor& gamma, const Tensor& mean,
                                  const Tensor& invstd, const NormDims& d, const Tensor& dx, const Tensor& dgamma,
                                  const Tensor& dbeta, bool accumulate) override {
    cpu::channel_norm_backward(x.f32(), dy.f32(), gamma.f32(), mean.f32(), invstd.f32(), d, f(dx), f(dgamma), f(dbeta),
                               workspace(cpu::channel_norm_backward_workspace(d)), accumulate);
  }

  void gru_layer_forward_impl(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                              const Tensor& b_ih, const Tensor& b_hh, const GruDims& d, const Tensor& y,
                              const Tensor& reserve) override {
    cpu::gru_forward(x.f32(), f(h0), w_ih.f32(), w_hh.f32(), b_ih.f32(), b_hh.f32(), d, y.f32(), reserve.f32(),
                     workspace(cpu::gru_forward_workspace(d)));
  }
  void gru_layer_backward_impl(const Tensor& x, const Tensor& h0, const Tensor& w_ih, const Tensor& w_hh,
                               const Tensor& y, const Tensor& reserve, const Tensor& dy, const Tensor& dh_n,
                               const GruDims& d, const Tensor& dx, const Tensor& dh0, const Tensor& dw_ih,
                               const Tensor& dw_hh, const Tensor& db_ih, const Tensor& db_hh) override {
    cpu::gru_backward(x.f32(), f(h0), w_ih.f32(), w_hh.f32(), y.f32(), reserve.f32(), f(dy), f(dh_n), d, f(dx), f(dh0),
                      f(dw_ih), f(dw_hh), f(db_ih), f(db_hh), workspace(cpu::gru_backward_workspace(d)));
  }

  ContrastiveStats contrastive_forward_impl(const Tensor& a, const Tensor& c, const ContrastiveSpec& spec,
                                            const Tensor& da, const Tensor& dc) override {
    const cpu::ContrastiveProblem p(spec, a.size(0), c.size(0), a.size(1));
    const cpu::ContrastiveResult r =
        spec.row_candidates
            ? cpu::contrastive_sampled(a.f32(), c.f32(), p,
                                       workspace(cpu::sampled_workspace(p.R, spec.candidates_per_row, p.M)), f(da), f(dc))
            : cpu::contrastive_forward(a.f32(), c.f32(), p, workspace(p.workspace()), f(da), f(dc));
    return {r.loss, r.used, r.skipped, r.correct, r.column_correct};
  }
  void l2_normalize_forward_impl(const Tensor& x, float eps, const Tensor& y) override {
    cpu::l2_normalize_forward(x.f32(), y.f32(), x.size(0), x.size(1), eps);
  }
  void l2_normalize_backward_impl(const Tensor& x, const Tensor& dy, float eps, const Tensor& dx) override {
    cpu::l2_normalize_backward(x.f32(), dy.f32(), dx.f32(), x.size(0), x.size(1), eps);
  }

  void adam_update_impl(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v, const Tensor& vmax,
                        const AdamHyper& h) override {
    const math::AdamScalars s =
        math::adam_scalars(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.decoupled, h.amsgrad, h.step);
    float *p = param.f32(), *mp = m.f32(), *vp = v.f32(), *vm = f(vmax);
    const float* g = grad.f32();
    const int64_t n = param.numel();
    if (vm) {
      cpu::parallel_for(n, n > 65536, [&](int64_t i) { math::adam_element(p[i], g[i], mp[i], vp[i], vm[i], s); });
      return;
    }
    // Without amsgrad: chunks of one vector loop each, over local copies of the scalars
    // and pointers (read through the closure they kept GCC from vectorising: 9.7 vs
    // 2.5 ms for audio_cdck2's 7.4 M parameters; the element's branches are the same
    // for every element).
    constexpr int64_t kChunk = 8192;
    cpu::parallel_for((n + kChunk - 1) / kChunk, n > 65536, [&](int64_t c) {
      const math::AdamScalars sc = s;
      float *P = p, *M = mp, *V = vp;
      const float* G = g;
      const int64_t end = std::min(n, (c + 1) * kChunk);
#pragma omp simd
      for (int64_t i = c * kChunk; i < end; ++i) {
        float unused = 0.f;
        math::adam_element(P[i], G[i], M[i], V[i], unused, sc);
      }
    });
  }
  void sgd_update_impl(const Tensor& param, const Tensor& grad, const Tensor& buf, float lr, float momentum,
                       float dampening, float weight_decay, bool nesterov, bool first_step) override {
    const math::SgdScalars s{lr, momentum, dampening, weight_decay, nesterov, first_step};
    float *p = param.f32(), *b = f(buf);
    const float* g = grad.f32();
    const int64_t n = param.numel();
    cpu::parallel_for(n, n > 65536, [&](int64_t i) {
      float unused = 0.f;
      math::sgd_element(p[i], g[i], b ? b[i] : unused, s);
    });
  }

 private:
  // Scratch memory reused across calls: grows to the largest request, then stays,
  // so steady-state steps allocate nothing. One per thread.
  struct Scratch {
    std::vector<float> ws;
    cpu::OneDnnConv1d onednn;
    cpu::GemmConv1d gemm_conv;  // wide channels-last layers
  };
  static Scratch& scratch() {
    static thread_local Scratch s;
    return s;
  }
  static float* workspace(int64_t n) {
    std::vector<float>& ws = scratch().ws;
    if (static_cast<int64_t>(ws.size()) < n) ws.resize(static_cast<size_t>(n));
    return ws.data();
  }
};

CpuBackend g_cpu;
BackendRegistrar g_register(DeviceKind::cpu, &g_cpu);

}  // namespace
}  // namespace cpc
