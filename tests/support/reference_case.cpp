#include "tests/support/reference_case.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/core/error.h"

namespace cpc::test {

const std::string& reference_path() {
  static const std::string path = [] {
    const char* env = std::getenv("CPC_REFERENCE");
    return std::string(env ? env : CPC_DEFAULT_REFERENCE);
  }();
  return path;
}

H5File& reference_file() {
  static std::unique_ptr<H5File> f;
  if (!f) {
    try {
      f = std::make_unique<H5File>(reference_path(), H5File::Mode::read);
    } catch (const Error& e) {
      throw Error(cat(e.what(), "\nregenerate it with: /usr/bin/python3 tools/python/reference/make_reference.py --out ",
                      reference_path(), " (or build the 'reference' target)"));
    }
  }
  return *f;
}

ReferenceCase::ReferenceCase(const std::string& name) : name_(name) {
  H5File& f = reference_file();
  CPC_CHECK(f.has(name), reference_path(), ": case '", name, "' missing; regenerate the reference file");
  config_ = nlohmann::json::parse(f.attribute(name, "config"));
}

std::string ReferenceCase::kind() const { return reference_file().attribute(name_, "kind"); }

bool ReferenceCase::has(const std::string& path) const { return reference_file().has(name_ + "/" + path); }

Tensor ReferenceCase::tensor(const std::string& path) const { return reference_file().read_tensor(name_ + "/" + path); }

H5Array ReferenceCase::expected(const std::string& path) const { return reference_file().read(name_ + "/" + path); }

std::vector<std::string> ReferenceCase::names(const std::string& group) const {
  std::vector<std::string> out;
  if (!has(group)) return out;
  const std::string prefix = name_ + "/" + group + "/";
  for (const std::string& full : reference_file().datasets(name_ + "/" + group))
    out.push_back(full.substr(prefix.size()));
  return out;
}

std::map<std::string, Tensor> ReferenceCase::state() const {
  std::map<std::string, Tensor> s;
  for (const char* g : {"param", "buffer"})
    for (const std::string& n : names(g)) s[n] = tensor(std::string(g) + "/" + n);
  return s;
}

Closeness compare(const Tensor& actual, const H5Array& expected) {
  const std::vector<float> a = actual.to_vector();
  Closeness c{0, 0, 0, -1};
  if (a.size() != expected.values.size()) return {INFINITY, INFINITY, 0, -1};
  double ref_max = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ref_max = std::max(ref_max, std::fabs(expected.values[i]));
    const double d = std::fabs(static_cast<double>(a[i]) - expected.values[i]);
    if (!(d <= c.max_abs)) c.max_abs = d, c.worst_index = static_cast<int64_t>(i);
  }
  c.ref_max = ref_max;
  c.rel_error = c.max_abs / std::max(ref_max, 1e-30);
  return c;
}

void expect_close(const Tensor& actual, const H5Array& expected, double tol, const std::string& what, double atol) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what << ": shape";
  const Closeness c = compare(actual, expected);
  if (std::getenv("CPC_PARITY_VERBOSE")) std::printf("  %-60s rel error %.2e\n", what.c_str(), c.rel_error);
  EXPECT_LE(c.max_abs, tol * c.ref_max + atol)
      << what << ": max abs error " << c.max_abs << " at flat index " << c.worst_index << " (ours "
      << actual.to_vector()[static_cast<size_t>(std::max<int64_t>(c.worst_index, 0))] << ", PyTorch "
      << expected.values[static_cast<size_t>(std::max<int64_t>(c.worst_index, 0))] << ")";
}

}  // namespace cpc::test
