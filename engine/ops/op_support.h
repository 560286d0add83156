#pragma once
// What the op files of engine/ops/ share: argument checks and the tape helpers.
#include "engine/core/error.h"
#include "engine/ops/ops.h"

namespace cpc::ops {

inline double bytes_of(const Tensor& t) { return static_cast<double>(t.nbytes()); }  // for the profile's GB/s

inline Backend& be(const Var* v) { return backend(v->value.device()); }

inline void check_var(const Var* v, const char* op, const char* what) {
  CPC_CHECK(v != nullptr && v->value.defined(), op, ": ", what, " is missing");
  CPC_CHECK(v->value.is_contiguous(), op, ": ", what, " ", v->value.shape(), " must be contiguous");
}

inline void check_same_device(const Var* a, const Var* b, const char* op) {
  if (a && b)
    CPC_CHECK(a->value.device() == b->value.device(), op, ": tensors on ", a->value.device().str(), " and ",
              b->value.device().str(), "; move them to one device");
}

inline bool wants_grad(const Var* v) { return v && v->requires_grad; }

// The gradient of v if it wants one, else an undefined tensor (kernels skip those).
inline Tensor grad_or_none(Tape& tape, Var* v) { return wants_grad(v) ? tape.grad(v) : Tensor(); }
// As grad_or_none, for a kernel that writes all of it (Tape::grad_to_write).
inline Tensor grad_to_write_or_none(Tape& tape, Var* v, bool& accumulate) {
  accumulate = true;
  return wants_grad(v) ? tape.grad_to_write(v, accumulate) : Tensor();
}

// Views a tensor as (O, N, I) around dimension dim.
inline Shape around(const Shape& s, int dim) {
  int64_t o = 1, i = 1;
  for (int d = 0; d < dim; ++d) o *= s[d];
  for (int d = dim + 1; d < s.rank(); ++d) i *= s[d];
  return Shape{o, s[dim], i};
}

inline int normalize_dim(int dim, int rank, const char* op) {
  if (dim < 0) dim += rank;
  CPC_CHECK(0 <= dim && dim < rank, op, ": dim ", dim, " out of range for a ", rank, "-D tensor");
  return dim;
}

inline void check_norm_args(Var* x, Var* gamma, Var* beta, const char* op) {
  check_var(x, op, "input");
  check_rank(x->value, 3, op, "(B, C, L)");
  check_var(gamma, op, "weight");
  check_var(beta, op, "bias");
  const int64_t c = x->value.size(1);
  CPC_CHECK(gamma->value.numel() == c && beta->value.numel() == c, op, ": input ", x->value.shape(), " has ", c,
            " channels, weight/bias have ", gamma->value.numel(), "/", beta->value.numel());
  check_same_device(x, gamma, op);
}

}  // namespace cpc::ops
