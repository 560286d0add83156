#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>

#include "engine/core/error.h"

namespace cpc {

constexpr int kMaxRank = 4;

// A tensor shape of rank 0..4, stored inline (no heap), printed as "(B, C, L)".
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) {
    CPC_CHECK(dims.size() <= kMaxRank, "shape: rank ", dims.size(), " exceeds the maximum ", kMaxRank);
    for (int64_t d : dims) {
      CPC_CHECK(d >= 0, "shape: negative dimension ", d);
      d_[rank_++] = d;
    }
  }
  int rank() const { return rank_; }
  int64_t operator[](int i) const { return d_[i < 0 ? i + rank_ : i]; }
  int64_t& operator[](int i) { return d_[i < 0 ? i + rank_ : i]; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= d_[i];
    return n;
  }
  bool operator==(const Shape& o) const {
    if (rank_ != o.rank_) return false;
    for (int i = 0; i < rank_; ++i)
      if (d_[i] != o.d_[i]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const {
    std::string s = "(";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(d_[i]);
    return s + (rank_ == 1 ? ",)" : ")");
  }

 private:
  std::array<int64_t, kMaxRank> d_{};
  int rank_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

}  // namespace cpc
