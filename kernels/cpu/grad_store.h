#pragma once
// How a backward kernel stores a gradient value: added into its output (gradients
// accumulate), or written over it (the first gradient to reach a value: the output was
// not zeroed and may hold anything). The flag is a compile-time constant inside the
// kernel so that the overwriting loop never reads its output.
#include <type_traits>

namespace cpc::cpu {

template <bool Accumulate, class T>
inline void store_grad(T& out, T value) {
  if constexpr (Accumulate)
    out += value;
  else
    out = value;
}

// f(std::true_type{}) when accumulate, else f(std::false_type{}): f reads the mode as
// decltype(mode)::value, a constant.
template <class F>
void with_accumulate(bool accumulate, F&& f) {
  if (accumulate)
    f(std::true_type{});
  else
    f(std::false_type{});
}

}  // namespace cpc::cpu
