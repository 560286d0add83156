#pragma once
// What the checked front's files share (backend_checks*.cpp): the per-op check helper
// whose messages start "<op> on <backend>: ", and the dims each op computes once.
#include <algorithm>
#include <climits>
#include <initializer_list>

#include "engine/core/backend.h"
#include "engine/core/error.h"

namespace cpc::front {

inline const char* lo(const Tensor& t) { return static_cast<const char*>(t.raw()); }
inline const char* hi(const Tensor& t) { return lo(t) + t.nbytes(); }
// [begin, end) of two tensors' bytes intersect.
inline bool overlaps(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.nbytes() > 0 && b.nbytes() > 0 && lo(a) < hi(b) && lo(b) < hi(a);
}

// Shape, element-count and overlap checks with the op's prefix.
struct Front {
  const Backend& b;
  Op op;
  template <class... P>
  [[noreturn]] void fail_(const P&... parts) const {
    fail(op_name(op), " on ", b.name(), ": ", parts...);
  }
  void shape(const Tensor& t, const Shape& s, const char* role) const {
    if (t.shape() != s) fail_(role, " ", t.shape(), " expected ", s);
  }
  void numel(const Tensor& t, int64_t n, const char* role) const {
    if (t.numel() != n) fail_(role, " ", t.shape(), " expected ", n, " elements");
  }
  void rank(const Tensor& t, int r, const char* role, const char* layout) const {
    if (t.rank() != r) fail_(role, " ", t.shape(), " expected a ", r, "-D tensor ", layout);
  }
  void same(const Tensor& a, const char* ra, const Tensor& x, const char* rx) const {
    if (a.shape() != x.shape()) fail_(ra, " ", a.shape(), " and ", rx, " ", x.shape(), " differ");
  }
  // An output may not share memory with an input (exact aliasing too).
  void apart(const Tensor& out, const char* ro, const Tensor& in, const char* ri) const {
    if (overlaps(out, in)) fail_(ro, " ", out.shape(), " overlaps ", ri, " ", in.shape());
  }
  // Elementwise ops may write in place (the same elements) but not partially overlapping.
  void in_place_or_apart(const Tensor& out, const char* ro, const Tensor& in, const char* ri) const {
    if (overlaps(out, in) && !(out.raw() == in.raw() && out.nbytes() == in.nbytes()))
      fail_(ro, " ", out.shape(), " partially overlaps ", ri, " ", in.shape());
  }
  void ints(std::initializer_list<int64_t> vs, const char* what) const {
    for (int64_t v : vs)
      if (!fits_int(v)) fail_(what, " ", v, " outside [0, ", INT_MAX, "]");
  }
};

inline NormDims norm_dims(const Front& f, const Tensor& x) {
  f.rank(x, 3, "x", "(B, C, L)");
  return {x.size(0), x.size(1), x.size(2)};
}

// x (B, Cin, L), w (Cout, Cin, K), y (B, Cout, Lout) with Lout from the geometry;
// channels_last: x (B, L, Cin), y (B, Lout, Cout).
inline Conv1dDims conv_dims(const Front& f, const Tensor& x, const char* xrole, const Tensor& w, const Conv1dGeometry& g,
                     const Tensor& y, const char* yrole) {
  const bool cl = g.channels_last;
  if (cl && !f.b.conv1d_channels_last())
    f.fail_("this backend runs conv1d on (B, C, L) activations only, not channels-last (B, L, C)");
  f.rank(x, 3, xrole, cl ? "(B, L, Cin)" : "(B, Cin, L)");
  f.rank(w, 3, "weight", "(Cout, Cin, K)");
  f.rank(y, 3, yrole, cl ? "(B, Lout, Cout)" : "(B, Cout, Lout)");
  if (!(g.stride >= 1 && g.dilation >= 1 && g.padding >= 0))
    f.fail_("stride ", g.stride, ", dilation ", g.dilation, " must be >= 1 and padding ", g.padding, " >= 0");
  const int64_t cin = x.size(cl ? 2 : 1), len = x.size(cl ? 1 : 2);
  if (cin != w.size(1))
    f.fail_(xrole, " ", x.shape(), " has ", cin, " channels, the weight ", w.shape(), " expects ", w.size(1));
  const int64_t lout = g.out_length(len, w.size(2));
  if (lout < 1)
    f.fail_("length ", len, " is too short for kernel ", w.size(2), ", dilation ", g.dilation, " and padding ",
            g.padding);
  if (cl)
    f.shape(y, {x.size(0), lout, w.size(0)}, yrole);
  else
    f.shape(y, {x.size(0), w.size(0), lout}, yrole);
  f.ints({x.size(0), cin, len, w.size(0), w.size(2), lout, g.stride, g.padding, g.dilation}, "dimension");
  return {x.size(0), cin, len, w.size(0), w.size(2), lout, g.stride, g.padding, g.dilation, g.precision, cl};
}

inline GruDims gru_dims(const Front& f, const Tensor& x, const Tensor& w_ih, const Tensor& w_hh) {
  f.rank(x, 3, "x", "(B, T, Din)");
  f.rank(w_hh, 2, "weight_hh", "(3H, H)");
  const int64_t H = w_hh.size(1);
  f.shape(w_hh, {3 * H, H}, "weight_hh");
  f.shape(w_ih, {3 * H, x.size(2)}, "weight_ih");
  f.ints({x.size(0), x.size(1), x.size(2), 3 * H}, "dimension");
  return {x.size(0), x.size(1), x.size(2), H};
}

inline void check_narrow(const Front& f, const Tensor& full, const Tensor& part, int64_t start) {
  f.rank(full, 3, "full tensor", "(O, N, I)");
  f.rank(part, 3, "slice", "(O, len, I)");
  if (full.size(0) != part.size(0) || full.size(2) != part.size(2))
    f.fail_(full.shape(), " and ", part.shape(), " differ outside the narrowed axis");
  if (start < 0 || start + part.size(1) > full.size(1))
    f.fail_("[", start, ", ", start + part.size(1), ") out of range for axis 1 of ", full.shape());
}

}  // namespace cpc::front

#define CPC_FRONT_FAIL(...) ::cpc::fail(op_name(kOp), " on ", name(), ": ", __VA_ARGS__)
#define CPC_FRONT_CHECK(cond, ...) \
  do {                             \
    if (!(cond)) CPC_FRONT_FAIL(__VA_ARGS__); \
  } while (0)
