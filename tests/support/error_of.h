#pragma once
// Runs f and returns the cpc::Error message it throws ("" if it throws none).
#include <string>

#include "engine/core/error.h"

namespace cpc::test {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace cpc::test
