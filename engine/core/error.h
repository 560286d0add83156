#pragma once
// One exception type for every user-facing failure: the message says what, where,
// expected vs found. Tools catch it at the top, print it, and exit non-zero.
#include <sstream>
#include <stdexcept>
#include <string>

namespace cpc {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <class T, class... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
}  // namespace detail

template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  return os.str();
}

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(cat(parts...));
}

}  // namespace cpc

// CPC_CHECK(cond, "conv1d: input ", x.shape(), " expected (B, C, L)")
#define CPC_CHECK(cond, ...)               \
  do {                                     \
    if (!(cond)) ::cpc::fail(__VA_ARGS__); \
  } while (0)
