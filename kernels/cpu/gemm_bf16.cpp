#include "kernels/cpu/gemm_bf16.h"

#include "kernels/cpu/bf16_round.h"

#include <algorithm>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "engine/core/error.h"
#include "kernels/common/bf16.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

void to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld, uint16_t* dst) {
  parallel_for(rows, rows * cols > 65536, [&](int64_t r) {
    round_to_bf16(src + r * ld, cols, dst + r * cols);
  });
}

void to_bf16(const float* src, int64_t n, uint16_t* dst) {
  constexpr int64_t kChunk = 16384;
  parallel_for((n + kChunk - 1) / kChunk, n > 65536, [&](int64_t c) {
    const int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
    round_to_bf16(src + begin, end - begin, dst + begin);
  });
}

namespace {

using dnnl::memory;
using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float, float>;

struct Prim {
  dnnl::matmul prim;
  memory a, b, c, scratch;
  dnnl_exec_arg_t c_args[4];  // built once: the C++ execute() builds a map per call
  size_t scratch_bytes = 0;
};

struct State {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  std::map<Key, Prim> cache;
  std::vector<uint16_t> a16, b16;
  std::vector<uint8_t> scratch;
};

State& state() {
  thread_local State s;  // oneDNN objects are not shared across threads here
  return s;
}

}  // namespace

void gemm_bf16_packed(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a, int64_t lda,
                      const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  State& s = state();
  const Key key{ta, tb, m, n, k, lda, ldb, ldc, alpha, beta};
  auto it = s.cache.find(key);
  if (it == s.cache.end()) {
    const auto bf16 = memory::data_type::bf16, f32 = memory::data_type::f32;
    // Transposes are strides: op(A)[i][j] lives at i * lda + j, or j * lda + i when transposed.
    const memory::desc ad({m, k}, bf16, ta ? memory::dims{1, lda} : memory::dims{lda, 1});
    const memory::desc bd({k, n}, bf16, tb ? memory::dims{1, ldb} : memory::dims{ldb, 1});
    const memory::desc cd({m, n}, f32, memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (alpha != 1.f) attr.set_output_scales(0, {alpha});
    if (beta != 0.f) {
      dnnl::post_ops po;
      po.append_sum(beta);
      attr.set_post_ops(po);
    }
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(ad, bd, cd), attr, s.eng);
    Prim p;
    p.prim = dnnl::matmul(pd);
    p.a = memory(ad, s.eng, nullptr), p.b = memory(bd, s.eng, nullptr), p.c = memory(cd, s.eng, nullptr);
    p.scratch_bytes = pd.scratchpad_desc().get_size();
    p.scratch = memory(pd.scratchpad_desc(), s.eng, nullptr);
    it = s.cache.emplace(key, std::move(p)).first;
    Prim& q = it->second;
    q.c_args[0] = {DNNL_ARG_SRC, q.a.get()}, q.c_args[1] = {DNNL_ARG_WEIGHTS, q.b.get()};
    q.c_args[2] = {DNNL_ARG_DST, q.c.get()}, q.c_args[3] = {DNNL_ARG_SCRATCHPAD, q.scratch.get()};
  }
  Prim& p = it->second;
  if (s.scratch.size() < p.scratch_bytes) s.scratch.resize(p.scratch_bytes);
  p.a.set_data_handle(const_cast<uint16_t*>(a)), p.b.set_data_handle(const_cast<uint16_t*>(b));
  p.c.set_data_handle(c), p.scratch.set_data_handle(s.scratch.data());
  const dnnl_status_t st = dnnl_primitive_execute(p.prim.get(), s.stream.get(), 4, p.c_args);
  CPC_CHECK(st == dnnl_success, "gemm (bf16): oneDNN matmul failed (status ", static_cast<int>(st), ")");
  s.stream.wait();
}

void gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  State& s = state();
  // Packed bf16 copies: op(A) is m x k, stored k x m when transposed (and likewise B).
  const int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  if (static_cast<int64_t>(s.a16.size()) < ar * ac) s.a16.resize(static_cast<size_t>(ar * ac));
  if (static_cast<int64_t>(s.b16.size()) < br * bc) s.b16.resize(static_cast<size_t>(br * bc));
  to_bf16(a, ar, ac, lda, s.a16.data());
  to_bf16(b, br, bc, ldb, s.b16.data());
  gemm_bf16_packed(ta, tb, m, n, k, alpha, s.a16.data(), ac, s.b16.data(), bc, beta, c, ldc);
}

}  // namespace cpc::cpu
