#pragma once
// The backend-ops test table (after ggml's test-backend-ops). An OpCase runs one or
// more Backend ops on random inputs; backend_ops_test.cpp runs every case on every
// registered backend that has a device:
//   - the CPU backend against a double-precision reference (the CPU kernels' templates
//     instantiated for double, or a plain formula), to `tol` of each output's scale;
//   - every other backend against the CPU backend on the same inputs, to `device_tol`
//     (or bit for bit with `exact`);
//   - in gradient mode, each gradient output against central finite differences of
//     sum(y * dy) through the same backend's forward.
// One file per op family (tests/ops/<op>.cpp) registers its cases with CPC_OP_CASES; a
// new op is a new entry, a new backend is tested by every entry with nothing to add.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/tensor.h"

namespace cpc::ops_test {

using Vec = std::vector<double>;
using Tensors = std::vector<Tensor>;

enum class Inputs {
  uniform,          // U(-1, 1)
  away_from_zero,   // U(-1, -0.1) or U(0.1, 1): no finite difference crosses a kink at 0
  distinct,         // a shuffled grid with steps of 0.05: no two values within a difference step
  positive,         // U(0.5, 1.5): variances, second moments
};

struct OpCase {
  std::string name;           // "conv1d/stride2_pad1": family/variant
  std::vector<Op> ops;        // the Backend ops it exercises (the table must cover every Op)
  std::vector<Shape> inputs;  // random f32 inputs, host-generated from the case's seed
  std::vector<Inputs> kinds;  // per input (default uniform)
  // Adjusts the generated host inputs (e.g. a duplicate row), before every run.
  std::function<void(std::vector<std::vector<float>>& in)> prepare;
  // Runs the ops on backend b, inputs already on b's device; returns outputs (any device).
  std::function<Tensors(Backend& b, const Tensors& in)> run;
  // Double-precision reference from the same inputs; empty when the case has none
  // (then only the cross-backend comparison and the checks below apply).
  std::function<std::vector<Vec>(const std::vector<Vec>& in)> reference;
  double tol = 1e-5;         // vs reference: |got - want| <= tol * max|want| per output
  double device_tol = 1e-5;  // other backend vs CPU backend, same scale rule
  bool exact = false;        // other backends must equal the CPU backend bit for bit
  // Gradient mode: outputs[grad.outputs[i]] is d/d inputs[grad.inputs[i]] of
  // sum(outputs[0] * inputs[grad.dy]) (dy < 0: of sum(outputs[0])).
  struct Grad {
    int dy = -1;
    std::vector<int> inputs, outputs;
    double eps = 1e-2, tol = 2e-2;  // float forward: a sanity bound; kernels/ has the double checks
  } grad;
  // Backend options set around the run on a backend of that name: {backend, key, value, restore}.
  struct Option {
    std::string backend, key, value, restore;
  };
  std::vector<Option> options;
  // An extra assertion over the outputs (host copies), on every backend.
  std::function<::testing::AssertionResult(const std::vector<std::vector<float>>& out)> check;
};

std::vector<OpCase>& registry();

struct Register {
  explicit Register(std::vector<OpCase> cases) {
    for (OpCase& c : cases) registry().push_back(std::move(c));
  }
};

#define CPC_OP_CASES_CAT2(a, b) a##b
#define CPC_OP_CASES_CAT(a, b) CPC_OP_CASES_CAT2(a, b)
// CPC_OP_CASES({case, case, ...}); at namespace scope, once or more per file.
#define CPC_OP_CASES(...) \
  static const ::cpc::ops_test::Register CPC_OP_CASES_CAT(cpc_op_cases_, __COUNTER__)(__VA_ARGS__)

// Helpers for case definitions.
inline Tensor zeros_like(const Tensor& t) { return Tensor::zeros(t.shape(), t.device()); }
inline Tensor copy_of(const Tensor& t) {
  Tensor c = Tensor::empty(t.shape(), t.device());
  c.copy_from(t);
  return c;
}
// A gradient output for a backward op told to overwrite it (accumulate = false): NaN
// everywhere, so that any element read or left unwritten shows in the comparison.
inline Tensor garbage_like(const Tensor& t) {
  Tensor g = Tensor::empty(t.shape(), t.device());
  backend(t.device()).fill(g, std::numeric_limits<float>::quiet_NaN());
  return g;
}
inline Tensor scalar(double v) { return Tensor::from_vector({1}, {static_cast<float>(v)}); }
inline Vec sized(int64_t n) { return Vec(static_cast<size_t>(n), 0.0); }
// (O, P, Q) -> (O, Q, P): references of channels-last cases run the (B, C, L) ones.
inline Vec swap_last2(const Vec& v, int64_t O, int64_t P, int64_t Q) {
  Vec out(v.size());
  for (int64_t o = 0; o < O; ++o)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) out[(o * Q + q) * P + p] = v[(o * P + p) * Q + q];
  return out;
}

}  // namespace cpc::ops_test
