#include "tools/cli/probe_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <nlohmann/json.hpp>

#include "engine/data/atomic_file.h"
#include "engine/core/error.h"
#include "engine/data/h5_file.h"
#include "tools/cli/output_path.h"

namespace cpc::tools {

namespace {

struct Features {
  int64_t n = 0, d = 0;
  std::vector<double> x;
  std::vector<int64_t> y;
};

// "NAME=V[,V...]" -> (NAME, values); "" -> no filter.
std::pair<std::string, std::set<int64_t>> parse_where(const std::string& where, const std::string& option) {
  if (where.empty()) return {};
  const size_t eq = where.find('=');
  CPC_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < where.size(), "probe: ", option, " '", where,
            "': expected NAME=V[,V...], e.g. speaker=0,1,2");
  std::set<int64_t> values;
  std::stringstream ss(where.substr(eq + 1));
  for (std::string v; std::getline(ss, v, ',');) {
    char* end = nullptr;
    const long long x = std::strtoll(v.c_str(), &end, 10);
    CPC_CHECK(!v.empty() && end && *end == '\0', "probe: ", option, " '", where, "': '", v, "' is not an integer");
    values.insert(x);
  }
  return {where.substr(0, eq), values};
}

Features load(const std::string& path, const std::string& feature, const std::string& label, const std::string& where,
              const std::string& option) {
  H5File f(path, H5File::Mode::read);
  CPC_CHECK(f.has(feature), path, ": no feature dataset '", feature,
            "' (cpc-engine embed writes context, z_mean and c_mean)");
  CPC_CHECK(f.has(label), path, ": no label dataset '", label, "' (labels here: ", f.attribute("", "labels"), ")");
  const auto [where_name, where_values] = parse_where(where, option);
  if (!where_name.empty())
    CPC_CHECK(f.has(where_name), path, ": ", option, " names '", where_name, "', not a dataset here (labels: ",
              f.attribute("", "labels"), ")");
  const H5Array a = f.read(feature);
  CPC_CHECK(a.dims.size() == 2, path, ": '", feature, "' must be (N, D)");
  const int64_t n = a.dims[0], d = a.dims[1];
  const std::vector<int64_t> y = f.read_ints(label);
  CPC_CHECK(static_cast<int64_t>(y.size()) == n, path, ": '", label, "' has ", y.size(), " entries for ", n,
            " windows");
  std::vector<int64_t> keep_by;
  if (!where_name.empty()) {
    keep_by = f.read_ints(where_name);
    CPC_CHECK(static_cast<int64_t>(keep_by.size()) == n, path, ": '", where_name, "' has ", keep_by.size(),
              " entries for ", n, " windows");
  }
  Features out;
  out.d = d;
  for (int64_t i = 0; i < n; ++i) {
    if (!keep_by.empty() && !where_values.count(keep_by[static_cast<size_t>(i)])) continue;
    out.x.insert(out.x.end(), a.values.begin() + i * d, a.values.begin() + (i + 1) * d);
    out.y.push_back(y[static_cast<size_t>(i)]);
    ++out.n;
  }
  CPC_CHECK(out.n > 0, path, ": ", option, " ", where, " keeps no window");
  return out;
}

}  // namespace

ProbeResult fit_probe(const ProbeArgs& a) {
  CPC_CHECK(std::isfinite(a.l2) && a.l2 >= 0, "probe: --l2 must be a finite number >= 0, found ", a.l2);
  const Features tr = load(a.train, a.feature, a.label, a.train_where, "--train-where"),
                 te = load(a.test, a.feature, a.label, a.test_where, "--test-where");
  CPC_CHECK(tr.d == te.d, "probe: train features have ", tr.d, " dimensions, test ", te.d);
  // Classes are the labels seen in training, indexed densely.
  std::map<int64_t, int> index;
  for (int64_t y : tr.y) index.emplace(y, 0);
  int k = 0;
  ProbeResult res;
  for (auto& [label, i] : index) i = k++, res.classes.push_back(label);
  CPC_CHECK(k >= 2, "probe: training labels have a single class; nothing to classify");
  const int64_t D = tr.d;
  // Standardise with the training statistics.
  std::vector<double> mean(D, 0), sd(D, 0);
  for (int64_t i = 0; i < tr.n; ++i)
    for (int64_t d = 0; d < D; ++d) mean[d] += tr.x[i * D + d] / tr.n;
  for (int64_t i = 0; i < tr.n; ++i)
    for (int64_t d = 0; d < D; ++d) sd[d] += std::pow(tr.x[i * D + d] - mean[d], 2) / tr.n;
  for (double& s : sd) s = std::sqrt(s) + 1e-8;
  auto feat = [&](const Features& f, int64_t i, int64_t d) { return (f.x[i * D + d] - mean[d]) / sd[d]; };
  // Softmax regression, full batch, Adam on the mean cross-entropy + l2/2 |W|^2.
  std::vector<double> W((D + 1) * k, 0.0), m(W.size(), 0.0), v(W.size(), 0.0), g(W.size());
  std::vector<double> logits(k);
  for (int it = 1; it <= a.iterations; ++it) {
    std::fill(g.begin(), g.end(), 0.0);
    for (int64_t i = 0; i < tr.n; ++i) {
      double mx = -1e300;
      for (int c = 0; c < k; ++c) {
        double s = W[D * k + c];
        for (int64_t d = 0; d < D; ++d) s += feat(tr, i, d) * W[d * k + c];
        logits[c] = s, mx = std::max(mx, s);
      }
      double z = 0;
      for (int c = 0; c < k; ++c) z += std::exp(logits[c] - mx);
      const int yi = index[tr.y[i]];
      for (int c = 0; c < k; ++c) {
        const double p = std::exp(logits[c] - mx) / z - (c == yi ? 1.0 : 0.0);
        for (int64_t d = 0; d < D; ++d) g[d * k + c] += p * feat(tr, i, d) / tr.n;
        g[D * k + c] += p / tr.n;
      }
    }
    for (size_t j = 0; j < W.size(); ++j) {
      if (j < static_cast<size_t>(D * k)) g[j] += a.l2 * W[j];
      m[j] = 0.9 * m[j] + 0.1 * g[j];
      v[j] = 0.999 * v[j] + 0.001 * g[j] * g[j];
      W[j] -= 0.05 * (m[j] / (1 - std::pow(0.9, it))) / (std::sqrt(v[j] / (1 - std::pow(0.999, it))) + 1e-8);
    }
  }
  res.confusion.assign(static_cast<size_t>(k), std::vector<int>(static_cast<size_t>(k), 0));
  int64_t correct = 0, counted = 0;
  for (int64_t i = 0; i < te.n; ++i) {
    auto it = index.find(te.y[i]);
    if (it == index.end()) continue;  // a class never seen in training
    int best = 0;
    double best_s = -1e300;
    for (int c = 0; c < k; ++c) {
      double s = W[D * k + c];
      for (int64_t d = 0; d < D; ++d) s += feat(te, i, d) * W[d * k + c];
      if (s > best_s) best_s = s, best = c;
    }
    ++res.confusion[static_cast<size_t>(it->second)][static_cast<size_t>(best)];
    correct += best == it->second, ++counted;
  }
  CPC_CHECK(counted > 0, "probe: no test window has a label seen in training");
  res.accuracy = static_cast<double>(correct) / static_cast<double>(counted);
  for (int c = 0; c < k; ++c) {
    int tot = 0;
    for (int p = 0; p < k; ++p) tot += res.confusion[c][p];
    res.per_class.push_back(tot ? static_cast<double>(res.confusion[c][c]) / tot : 0.0);
  }
  return res;
}

int run_probe(const ProbeArgs& a) {
  if (!a.json.empty()) check_output_path(a.json);  // before the work
  const ProbeResult r = fit_probe(a);
  std::printf("probe %s on '%s': accuracy %.3f\n", a.feature.c_str(), a.label.c_str(), r.accuracy);
  if (!a.train_where.empty() || !a.test_where.empty())
    std::printf("windows: train where %s, test where %s\n", a.train_where.empty() ? "all" : a.train_where.c_str(),
                a.test_where.empty() ? "all" : a.test_where.c_str());
  std::printf("per class:");
  for (size_t c = 0; c < r.classes.size(); ++c) std::printf("  %lld: %.3f", r.classes[c], r.per_class[c]);
  std::printf("\nconfusion (rows true, columns predicted):\n");
  for (const auto& row : r.confusion) {
    for (int v : row) std::printf(" %5d", v);
    std::printf("\n");
  }
  if (!a.json.empty()) {
    nlohmann::json j{{"accuracy", r.accuracy},   {"per_class", r.per_class}, {"classes", r.classes},
                     {"confusion", r.confusion}, {"feature", a.feature},     {"label", a.label}};
    if (!a.train_where.empty()) j["train_where"] = a.train_where;
    if (!a.test_where.empty()) j["test_where"] = a.test_where;
    write_file_atomically(a.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace cpc::tools
