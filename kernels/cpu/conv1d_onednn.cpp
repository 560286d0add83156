#include "kernels/cpu/conv1d_onednn.h"

#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "engine/core/error.h"
#include "kernels/cpu/cpu_options.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

namespace {

using dnnl::memory;
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool>;

Key key_of(const Conv1dDims& d, bool bias, bool bf16) {
  return {d.B, d.Cin, d.L, d.Cout, d.K, d.stride, d.padding, d.dilation, bias, bf16, d.channels_last};
}

// Adds src into dst (n elements).
void add_into(float* dst, const float* src, int64_t n) {
  parallel_for(n, n > 65536, [&](int64_t i) { dst[i] += src[i]; });
}
}  // namespace

struct OneDnnConv1d::Impl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};

  // One cached primitive with its memory objects and argument map.
  struct Prim {
    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
    std::vector<dnnl_exec_arg_t> c_args;  // built once: the C++ execute() builds a vector per call
    size_t scratch_bytes = 0;
  };
  // A cached reorder between our (Cout, Cin, K) f32 weights and a kernel's own layout.
  struct Reorder {
    dnnl::reorder prim;
    memory from, to;
    dnnl_exec_arg_t c_args[2];  // as Prim's: no argument map built per call
    std::vector<float> buffer;  // the kernel-side copy
  };
  // Under precision bf16 the inputs of each convolution (src and weights forward,
  // diff_dst and weights or src backward) are bf16 copies; outputs and gradients stay f32.
  // Channels-last (nwc) activations let oneDNN pick its direct kernels; they want the
  // weights in a blocked layout of their choice, reordered from and to ours per call
  // (a few hundred KB, against activations of tens of MB).
  struct Entry {
    bool bf16 = false, channels_last = false;
    memory::desc src, wei, bias, dst;  // as the primitives read them (src/wei bf16 when bf16)
    memory::desc src32, wei32, ddst;   // diff_src, diff_weights (f32); diff_dst (bf16 when bf16)
    memory::desc wei_user;             // ours: (Cout, Cin, K) f32
    dnnl::convolution_forward::primitive_desc fwd_pd;
    Prim fwd, bwd_data, bwd_weights;
    Reorder wei_fwd, wei_bwd_data, dwei_out;  // channels-last only
    bool has_fwd = false, has_bwd_data = false, has_bwd_weights = false;
  };
  std::map<Key, Entry> cache;
  std::vector<float> scratch, temp;  // grow to the largest need, then stay
  std::vector<uint16_t> in16[2];     // bf16 copies of the two inputs of a call

  const void* bf16_copy(int slot, const float* src, int64_t n) {
    if (static_cast<int64_t>(in16[slot].size()) < n) in16[slot].resize(static_cast<size_t>(n));
    to_bf16(src, n, in16[slot].data());
    return in16[slot].data();
  }

  dnnl::primitive_attr attr() {
    dnnl::primitive_attr a;
    a.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // scratch from us: no allocation per call
    return a;
  }

  Entry& entry(const Conv1dDims& d, bool bias) {
    const bool bf16 = d.bf16();
    const Key k = key_of(d, bias, bf16);
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
    Entry e;
    e.bf16 = bf16;
    e.channels_last = d.channels_last;
    const auto f32 = memory::data_type::f32, in = bf16 ? memory::data_type::bf16 : f32;
    const auto act = d.channels_last ? memory::format_tag::nwc : memory::format_tag::ncw;
    const auto wtag = d.channels_last ? memory::format_tag::any : memory::format_tag::oiw;
    e.src = memory::desc({d.B, d.Cin, d.L}, in, act);
    e.wei = memory::desc({d.Cout, d.Cin, d.K}, in, wtag);
    e.dst = memory::desc({d.B, d.Cout, d.Lout}, f32, act);
    e.src32 = memory::desc({d.B, d.Cin, d.L}, f32, act);
    e.wei32 = memory::desc({d.Cout, d.Cin, d.K}, f32, wtag);
    e.ddst = memory::desc({d.B, d.Cout, d.Lout}, in, act);
    e.wei_user = memory::desc({d.Cout, d.Cin, d.K}, f32, memory::format_tag::oiw);
    if (bias) e.bias = memory::desc({d.Cout}, f32, memory::format_tag::x);
    // oneDNN counts dilation from 0; its right padding makes the output length exact.
    const memory::dims strides{d.stride}, dil{d.dilation - 1}, pad_l{d.padding},
        pad_r{(d.Lout - 1) * d.stride + (d.K - 1) * d.dilation + 1 - d.L - d.padding};
    auto fd =
        bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                               e.src, e.wei, e.bias, e.dst, strides, dil, pad_l, pad_r)
             : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                               e.src, e.wei, e.dst, strides, dil, pad_l, pad_r);
    e.fwd_pd = dnnl::convolution_forward::primitive_desc(fd, attr(), eng);
    return cache.emplace(k, std::move(e)).first->second;
  }

  Prim make(dnnl::primitive p, const dnnl::primitive_desc_base& pd,
            std::initializer_list<std::pair<int, memory::desc>> mems) {
    Prim out;
    out.prim = std::move(p);
    for (const auto& [arg, md] : mems) out.args[arg] = memory(md, eng, nullptr);
    out.scratch_bytes = pd.scratchpad_desc().get_size();
    out.args[DNNL_ARG_SCRATCHPAD] = memory(pd.scratchpad_desc(), eng, nullptr);
    for (const auto& [arg, mem] : out.args) out.c_args.push_back({arg, mem.get()});
    return out;
  }

  void run(Prim& p, std::initializer_list<std::pair<int, const void*>> ptrs) {
    for (const auto& [arg, ptr] : ptrs) p.args.at(arg).set_data_handle(const_cast<void*>(ptr));
    const size_t floats = (p.scratch_bytes + sizeof(float) - 1) / sizeof(float);
    if (scratch.size() < floats) scratch.resize(floats);
    p.args.at(DNNL_ARG_SCRATCHPAD).set_data_handle(scratch.data());
    const dnnl_status_t st =
        dnnl_primitive_execute(p.prim.get(), stream.get(), static_cast<int>(p.c_args.size()), p.c_args.data());
    CPC_CHECK(st == dnnl_success, "conv1d: oneDNN primitive execution failed (status ", static_cast<int>(st), ")");
    stream.wait();
  }

  Reorder make_reorder(const memory::desc& from, const memory::desc& to, bool to_kernel) {
    Reorder r;
    r.from = memory(from, eng, nullptr);
    r.to = memory(to, eng, nullptr);
    r.prim = dnnl::reorder(r.from, r.to);
    r.c_args[0] = {DNNL_ARG_FROM, r.from.get()};
    r.c_args[1] = {DNNL_ARG_TO, r.to.get()};
    r.buffer.resize((to_kernel ? to : from).get_size() / sizeof(float) + 1);
    return r;
  }
  void run_reorder(Reorder& r, const void* from, void* to) {
    r.from.set_data_handle(const_cast<void*>(from));
    r.to.set_data_handle(to);
    const dnnl_status_t st = dnnl_primitive_execute(r.prim.get(), stream.get(), 2, r.c_args);
    CPC_CHECK(st == dnnl_success, "conv1d: oneDNN weight reorder failed (status ", static_cast<int>(st), ")");
    stream.wait();
  }
  // Our weights into the kernel's layout; returns the kernel-side copy.
  const void* to_kernel(Reorder& r, const float* w) {
    run_reorder(r, w, r.buffer.data());
    return r.buffer.data();
  }
  // The kernel's weight gradient (in r.buffer) into ours, at `out`.
  void from_kernel(Reorder& r, float* out) { run_reorder(r, r.buffer.data(), out); }

  float* temp_buffer(int64_t n) {
    if (static_cast<int64_t>(temp.size()) < n) temp.resize(static_cast<size_t>(n));
    return temp.data();
  }
};

OneDnnConv1d::OneDnnConv1d() : impl_(std::make_unique<Impl>()) {}
OneDnnConv1d::~OneDnnConv1d() = default;

void OneDnnConv1d::forward(const float* x, const float* w, const float* bias, const Conv1dDims& d, float* y) {
  Impl::Entry& e = impl_->entry(d, bias != nullptr);
  if (!e.has_fwd) {
    if (bias)
      e.fwd = impl_->make(
          dnnl::convolution_forward(e.fwd_pd), e.fwd_pd,
          {{DNNL_ARG_SRC, e.src}, {DNNL_ARG_WEIGHTS, e.fwd_pd.weights_desc()}, {DNNL_ARG_BIAS, e.bias}, {DNNL_ARG_DST, e.dst}});
    else
      e.fwd = impl_->make(dnnl::convolution_forward(e.fwd_pd), e.fwd_pd,
                          {{DNNL_ARG_SRC, e.src}, {DNNL_ARG_WEIGHTS, e.fwd_pd.weights_desc()}, {DNNL_ARG_DST, e.dst}});
    if (e.channels_last) e.wei_fwd = impl_->make_reorder(e.wei_user, e.fwd_pd.weights_desc(), true);
    e.has_fwd = true;
  }
  const void* xs = e.bf16 ? impl_->bf16_copy(0, x, d.B * d.Cin * d.L) : x;
  const void* ws = e.channels_last ? impl_->to_kernel(e.wei_fwd, w)
                   : e.bf16        ? impl_->bf16_copy(1, w, d.Cout * d.Cin * d.K)
                                   : w;
  if (bias)
    impl_->run(e.fwd, {{DNNL_ARG_SRC, xs}, {DNNL_ARG_WEIGHTS, ws}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, y}});
  else
    impl_->run(e.fwd, {{DNNL_ARG_SRC, xs}, {DNNL_ARG_WEIGHTS, ws}, {DNNL_ARG_DST, y}});
}

void OneDnnConv1d::backward_data(const float* dy, const float* w, const Conv1dDims& d, float* dx, bool accumulate) {
  // Keyed without bias: backward data does not depend on it.
  Impl::Entry& e = impl_->entry(d, false);
  if (!e.has_bwd_data) {
    const memory::dims strides{d.stride}, dil{d.dilation - 1}, pad_l{d.padding},
        pad_r{(d.Lout - 1) * d.stride + (d.K - 1) * d.dilation + 1 - d.L - d.padding};
    dnnl::convolution_backward_data::desc bd(dnnl::algorithm::convolution_direct, e.src32, e.wei, e.ddst, strides,
                                             dil, pad_l, pad_r);
    dnnl::convolution_backward_data::primitive_desc pd(bd, impl_->attr(), impl_->eng, e.fwd_pd);
    e.bwd_data = impl_->make(dnnl::convolution_backward_data(pd), pd,
                             {{DNNL_ARG_DIFF_DST, e.ddst}, {DNNL_ARG_WEIGHTS, pd.weights_desc()},
                              {DNNL_ARG_DIFF_SRC, e.src32}});
    if (e.channels_last) e.wei_bwd_data = impl_->make_reorder(e.wei_user, pd.weights_desc(), true);
    e.has_bwd_data = true;
  }
  const int64_t n = d.B * d.Cin * d.L;
  float* tmp = accumulate ? impl_->temp_buffer(n) : dx;  // overwriting: straight into dx
  const void* dys = e.bf16 ? impl_->bf16_copy(0, dy, d.B * d.Cout * d.Lout) : dy;
  const void* ws = e.channels_last ? impl_->to_kernel(e.wei_bwd_data, w)
                   : e.bf16        ? impl_->bf16_copy(1, w, d.Cout * d.Cin * d.K)
                                   : w;
  impl_->run(e.bwd_data, {{DNNL_ARG_DIFF_DST, dys}, {DNNL_ARG_WEIGHTS, ws}, {DNNL_ARG_DIFF_SRC, tmp}});
  if (accumulate) add_into(dx, tmp, n);
}

void OneDnnConv1d::backward_weights(const float* x, const float* dy, const Conv1dDims& d, float* dw, float* dbias) {
  const bool bias = dbias != nullptr;
  Impl::Entry& e = impl_->entry(d, bias);
  if (!e.has_bwd_weights) {
    const memory::dims strides{d.stride}, dil{d.dilation - 1}, pad_l{d.padding},
        pad_r{(d.Lout - 1) * d.stride + (d.K - 1) * d.dilation + 1 - d.L - d.padding};
    auto bd = bias ? dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, e.src, e.wei32,
                                                              e.bias, e.ddst, strides, dil, pad_l, pad_r)
                   : dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, e.src, e.wei32,
                                                              e.ddst, strides, dil, pad_l, pad_r);
    dnnl::convolution_backward_weights::primitive_desc pd(bd, impl_->attr(), impl_->eng, e.fwd_pd);
    const memory::desc dwd = pd.diff_weights_desc();
    if (bias)
      e.bwd_weights = impl_->make(dnnl::convolution_backward_weights(pd), pd,
                                  {{DNNL_ARG_SRC, e.src},
                                   {DNNL_ARG_DIFF_DST, e.ddst},
                                   {DNNL_ARG_DIFF_WEIGHTS, dwd},
                                   {DNNL_ARG_DIFF_BIAS, e.bias}});
    else
      e.bwd_weights = impl_->make(dnnl::convolution_backward_weights(pd), pd,
                                  {{DNNL_ARG_SRC, e.src}, {DNNL_ARG_DIFF_DST, e.ddst}, {DNNL_ARG_DIFF_WEIGHTS, dwd}});
    if (e.channels_last) e.dwei_out = impl_->make_reorder(dwd, e.wei_user, false);
    e.has_bwd_weights = true;
  }
  const int64_t nw = d.Cout * d.Cin * d.K;
  float* tmp = impl_->temp_buffer(nw + d.Cout);
  const void* xs = e.bf16 ? impl_->bf16_copy(0, x, d.B * d.Cin * d.L) : x;
  const void* dys = e.bf16 ? impl_->bf16_copy(1, dy, d.B * d.Cout * d.Lout) : dy;
  // Channels-last: the kernel writes its blocked layout, reordered into tmp below.
  float* dwk = e.channels_last ? e.dwei_out.buffer.data() : tmp;
  if (bias)
    impl_->run(
        e.bwd_weights,
        {{DNNL_ARG_SRC, xs}, {DNNL_ARG_DIFF_DST, dys}, {DNNL_ARG_DIFF_WEIGHTS, dwk}, {DNNL_ARG_DIFF_BIAS, tmp + nw}});
  else
    impl_->run(e.bwd_weights, {{DNNL_ARG_SRC, xs}, {DNNL_ARG_DIFF_DST, dys}, {DNNL_ARG_DIFF_WEIGHTS, dwk}});
  if (e.channels_last) impl_->from_kernel(e.dwei_out, tmp);
  add_into(dw, tmp, nw);
  if (bias) add_into(dbias, tmp + nw, d.Cout);
}

}  // namespace cpc::cpu
