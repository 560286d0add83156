#pragma once
// Loads one PyTorch reference case (tools/python/reference/make_reference.py documents the
// file format) and compares our tensors against it.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/data/h5_file.h"

namespace cpc::test {

// Path of the reference file, from the CPC_REFERENCE environment variable or the
// build-time default; fails the test with the command to regenerate it if absent.
const std::string& reference_path();
H5File& reference_file();

class ReferenceCase {
 public:
  explicit ReferenceCase(const std::string& name);
  const std::string& name() const { return name_; }
  const nlohmann::json& config() const { return config_; }
  std::string kind() const;
  bool has(const std::string& path) const;
  Tensor tensor(const std::string& path) const;                    // f32 copy of /<case>/<path>
  H5Array expected(const std::string& path) const;                 // double values
  std::vector<std::string> names(const std::string& group) const;  // relative to group
  // param/ and buffer/ merged into a state dict.
  std::map<std::string, Tensor> state() const;

 private:
  std::string name_;
  nlohmann::json config_;
};

struct Closeness {
  double rel_error;  // max |a - e| / max |e|
  double max_abs;
  double ref_max;  // max |e|
  int64_t worst_index;
};
Closeness compare(const Tensor& actual, const H5Array& expected);

// Asserts max |a - e| <= tol * max |e| + atol with a message naming what was compared.
// atol is for gradients that are exactly zero in exact arithmetic (then only
// rounding remains and a relative error means nothing).
void expect_close(const Tensor& actual, const H5Array& expected, double tol, const std::string& what,
                  double atol = 0.0);

}  // namespace cpc::test
