#pragma once
// One GRU unit at one time step, PyTorch's "linear before reset" cell (as cuDNN):
//   r = sigma(gi_r + gh_r), z = sigma(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
//   h = (1 - z) * n + z * h_prev
// where gi = W_i x + b_i and gh = W_h h_prev + b_h, gate order r, z, n.
#include "kernels/common/activation_math.h"

namespace cpc::math {

template <class T>
struct GruGates {
  T r, z, n, h;
};

// The library's sigmoid and tanh; the CPU's GRU passes vectorizable ones instead
// (kernels/cpu/gru.h).
struct LibraryActivations {
  template <class T>
  static CPC_HD T sigmoid(T x) {
    return math::sigmoid(x);
  }
  template <class T>
  static CPC_HD T tanh(T x) {
    return tanh_(x);
  }
};

template <class T, class Act = LibraryActivations>
CPC_HD GruGates<T> gru_cell_forward(T gi_r, T gi_z, T gi_n, T gh_r, T gh_z, T gh_n, T h_prev) {
  GruGates<T> g;
  g.r = Act::sigmoid(gi_r + gh_r);
  g.z = Act::sigmoid(gi_z + gh_z);
  g.n = Act::tanh(gi_n + g.r * gh_n);
  g.h = (T(1) - g.z) * g.n + g.z * h_prev;
  return g;
}

// Gradients of the pre-activations given dh (gradient of h). d_gh_n is the gradient
// of gh_n (= W_hn h_prev + b_hn), which differs from d_gi_n by the factor r.
template <class T>
struct GruCellGrads {
  T d_r, d_z, d_gi_n, d_gh_n, d_h_prev_direct;
};

template <class T>
CPC_HD GruCellGrads<T> gru_cell_backward(T dh, T r, T z, T n, T gh_n, T h_prev) {
  GruCellGrads<T> g;
  const T dn = dh * (T(1) - z);
  const T dz = dh * (h_prev - n);
  const T da_n = dn * (T(1) - n * n);
  const T dr = da_n * gh_n;
  g.d_gi_n = da_n;
  g.d_gh_n = da_n * r;
  g.d_r = dr * r * (T(1) - r);
  g.d_z = dz * z * (T(1) - z);
  g.d_h_prev_direct = dh * z;
  return g;
}

}  // namespace cpc::math
