#include "tools/cli/report_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/data/atomic_file.h"
#include "engine/core/error.h"
#include "engine/data/h5_file.h"
#include "tools/training/checkpoint.h"
#include "tools/cli/output_path.h"

namespace cpc::tools {

namespace {

using json = nlohmann::json;

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v, int digits = 4) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*g", digits, v);
  return b;
}

struct Series {
  Series(std::string n, std::string c, bool m = false) : name(std::move(n)), color(std::move(c)), markers(m) {}
  std::string name, color;
  bool markers;                                   // sparse series (validation): circles too
  std::vector<std::pair<double, double>> points;  // (step, value), finite only
};

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                         "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"};

// One line chart as inline SVG. Each series is a <path> whose data-points attribute is
// its number of points (the test counts them against metrics.jsonl).
std::string chart(const std::string& id, const std::string& title, const std::vector<Series>& series) {
  const double W = 640, H = 260, l = 64, r = 16, t = 28, b = 36;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Series& s : series)
    for (const auto& [x, y] : s.points) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  std::ostringstream o;
  o << "<figure id=\"" << id << "\"><svg class=\"chart\" data-metric=\"" << id << "\" width=\"" << W << "\" height=\""
    << H << "\" viewBox=\"0 0 " << W << " " << H << "\" xmlns=\"http://www.w3.org/2000/svg\">\n"
    << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << H << "\" fill=\"#ffffff\"/>\n"
    << "<text x=\"" << l << "\" y=\"18\" font-size=\"14\" font-weight=\"bold\">" << esc(title) << "</text>\n";
  if (!std::isfinite(x0)) {
    o << "<text x=\"" << l << "\" y=\"" << H / 2 << "\" font-size=\"12\">no data</text></svg></figure>\n";
    return o.str();
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad, y1 += pad;
  auto X = [&](double x) { return l + (x - x0) / (x1 - x0) * (W - l - r); };
  auto Y = [&](double y) { return H - b - (y - y0) / (y1 - y0) * (H - t - b); };
  o << "<g stroke=\"#999\" stroke-width=\"1\"><line x1=\"" << l << "\" y1=\"" << H - b << "\" x2=\"" << W - r
    << "\" y2=\"" << H - b << "\"/><line x1=\"" << l << "\" y1=\"" << t << "\" x2=\"" << l << "\" y2=\"" << H - b
    << "\"/></g>\n<g font-size=\"10\" fill=\"#333\">\n";
  for (int i = 0; i <= 4; ++i) {
    const double yv = y0 + (y1 - y0) * i / 4, xv = x0 + (x1 - x0) * i / 4;
    o << "<text x=\"" << l - 4 << "\" y=\"" << Y(yv) + 3 << "\" text-anchor=\"end\">" << num(yv, 3) << "</text>"
      << "<line x1=\"" << l << "\" y1=\"" << Y(yv) << "\" x2=\"" << W - r << "\" y2=\"" << Y(yv)
      << "\" stroke=\"#eee\"/>\n<text x=\"" << X(xv) << "\" y=\"" << H - b + 14 << "\" text-anchor=\"middle\">"
      << num(std::round(xv), 6) << "</text>\n";
  }
  o << "<text x=\"" << (W + l) / 2 << "\" y=\"" << H - 4 << "\" text-anchor=\"middle\">step</text>\n</g>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    if (s.points.empty()) continue;
    o << "<path data-series=\"" << esc(s.name) << "\" data-points=\"" << s.points.size() << "\" fill=\"none\" stroke=\""
      << s.color << "\" stroke-width=\"1.5\" d=\"";
    for (size_t j = 0; j < s.points.size(); ++j)
      o << (j ? " L" : "M") << num(X(s.points[j].first), 6) << " " << num(Y(s.points[j].second), 6);
    o << "\"/>\n";
    if (s.markers)
      for (const auto& [x, y] : s.points)
        o << "<circle cx=\"" << num(X(x), 6) << "\" cy=\"" << num(Y(y), 6) << "\" r=\"2.5\" fill=\"" << s.color << "\"/>";
    o << "<text x=\"" << W - r - 4 << "\" y=\"" << t + 12 * (i + 1) << "\" font-size=\"10\" text-anchor=\"end\" fill=\""
      << s.color << "\">" << esc(s.name) << "</text>\n";
  }
  o << "</svg></figure>\n";
  return o.str();
}

void add(Series& s, const json& rec, const char* key) {
  if (!rec.contains(key) || !rec[key].is_number()) return;
  const double v = rec[key].get<double>();
  if (std::isfinite(v)) s.points.emplace_back(rec["step"].get<double>(), v);
}

std::string probe_section(const std::string& path) {
  std::ifstream f(path);
  CPC_CHECK(f.good(), path, ": cannot open the probe results");
  json j;
  try {
    j = json::parse(f);
  } catch (const json::exception& e) {
    fail(path, ": not a probe --json file (", e.what(), ")");
  }
  CPC_CHECK(j.is_object() && j.contains("accuracy") && j.contains("confusion") && j.contains("classes"), path,
            ": not a probe --json file (expected accuracy, classes, confusion)");
  std::ostringstream o;
  o << "<section class=\"probe\"><h3>Probe: " << esc(j.value("label", std::string("?"))) << " from "
    << esc(j.value("feature", std::string("?"))) << " <small>(" << esc(path) << ")</small></h3>\n<p>accuracy <b>"
    << num(j["accuracy"].get<double>(), 4) << "</b></p>\n<table class=\"confusion\"><tr><th>true \\ predicted</th>";
  const json& classes = j["classes"];
  for (const json& c : classes) o << "<th>" << esc(c.dump()) << "</th>";
  o << "<th>per class</th></tr>\n";
  int most = 1;
  for (const json& row : j["confusion"])
    for (const json& v : row) most = std::max(most, v.get<int>());
  for (size_t i = 0; i < j["confusion"].size(); ++i) {
    o << "<tr><th>" << (i < classes.size() ? esc(classes[i].dump()) : "?") << "</th>";
    for (const json& v : j["confusion"][i]) {
      const int n = v.get<int>();
      const int shade = 255 - static_cast<int>(140.0 * n / most);
      o << "<td style=\"background:rgb(" << shade << "," << shade << ",255)\">" << n << "</td>";
    }
    const double pc = j.contains("per_class") && i < j["per_class"].size() ? j["per_class"][i].get<double>() : NAN;
    o << "<td>" << num(pc, 3) << "</td></tr>\n";
  }
  o << "</table></section>\n";
  return o.str();
}

}  // namespace

int run_report(const ReportArgs& a) {
  const std::string metrics_path = a.run + "/metrics.jsonl";
  std::error_code fs_ec;  // a path that cannot even be stat'ed (too long, no access) is not a file
  CPC_CHECK(std::filesystem::is_directory(a.run, fs_ec), a.run, ": not a run directory");
  std::ifstream mf(metrics_path);
  CPC_CHECK(mf.good(), metrics_path, ": cannot open (is ", a.run, " a run directory of cpc-engine train?)");
  const std::string out = a.out.empty() ? a.run + "/report.html" : a.out;
  check_output_path(out);

  Series loss{"training loss", kColors[0]}, val_loss{"validation loss", kColors[1], true};
  Series acc{"training accuracy", kColors[0]}, val_acc{"validation accuracy", kColors[1], true};
  Series lr{"learning rate", kColors[2]}, gn{"gradient norm", kColors[3]}, sps{"samples/s", kColors[4]};
  std::vector<Series> per_k;
  int64_t records = 0, skipped = 0, last_step = 0;
  std::string line;
  while (std::getline(mf, line)) {
    const json rec = json::parse(line, nullptr, false);
    if (rec.is_discarded() || !rec.is_object() || !rec.contains("step") || !rec["step"].is_number()) {
      ++skipped;  // a partial line of a killed run
      continue;
    }
    ++records;
    last_step = rec["step"].get<int64_t>();
    add(loss, rec, "loss"), add(val_loss, rec, "val_loss"), add(acc, rec, "accuracy"), add(val_acc, rec, "val_accuracy");
    add(lr, rec, "lr"), add(gn, rec, "grad_norm"), add(sps, rec, "samples_per_s");
    if (rec.contains("accuracy_per_k") && rec["accuracy_per_k"].is_array()) {
      const json& ks = rec["accuracy_per_k"];
      for (size_t k = per_k.size(); k < ks.size(); ++k)
        per_k.emplace_back("k = " + std::to_string(k + 1), kColors[k % 12]);
      for (size_t k = 0; k < ks.size(); ++k)
        if (ks[k].is_number() && std::isfinite(ks[k].get<double>()))
          per_k[k].points.emplace_back(rec["step"].get<double>(), ks[k].get<double>());
    }
  }
  CPC_CHECK(records > 0, metrics_path, ": no records (", skipped, " unreadable lines)");

  std::string config = "(no checkpoint in " + a.run + ")";
  const std::string ckpt = a.run + "/" + kCheckpointFile;
  if (std::filesystem::exists(ckpt)) {
    H5File f(ckpt, H5File::Mode::read, "a checkpoint written by cpc-engine train");
    if (f.has_attribute("", "config")) config = json::parse(f.attribute("", "config"), nullptr, false).dump(2);
  }

  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cpc-engine run " << esc(a.run)
    << "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}figure{display:inline-block;margin:8px;"
       "border:1px solid #ddd}h1{font-size:20px}table.confusion{border-collapse:collapse}table.confusion td,"
       "table.confusion th{border:1px solid #ccc;padding:3px 8px;text-align:right}pre{background:#f6f6f6;padding:8px;"
       "font-size:12px}</style></head><body>\n<h1>cpc-engine run <code>"
    << esc(a.run) << "</code></h1>\n<p>" << records << " steps logged, last step " << last_step;
  if (skipped) h << " (" << skipped << " unreadable lines skipped)";
  if (!loss.points.empty())
    h << "; final training loss " << num(loss.points.back().second) << ", accuracy "
      << (acc.points.empty() ? "-" : num(acc.points.back().second, 3));
  if (!val_loss.points.empty())
    h << "; last validation loss " << num(val_loss.points.back().second) << ", accuracy "
      << (val_acc.points.empty() ? "-" : num(val_acc.points.back().second, 3));
  h << "</p>\n";
  h << chart("loss", "InfoNCE loss", {loss, val_loss}) << chart("accuracy", "Contrastive accuracy", {acc, val_acc})
    << chart("accuracy_per_k", "Accuracy per prediction step k", per_k) << chart("lr", "Learning rate", {lr})
    << chart("grad_norm", "Gradient norm (before clipping)", {gn}) << chart("samples_per_s", "Samples/s", {sps});
  for (const std::string& p : a.probes) h << probe_section(p);
  h << "<h3>Config</h3>\n<pre>" << esc(config) << "</pre>\n</body></html>\n";
  write_file_atomically(out, h.str());
  std::printf("wrote %s: %lld steps, %zu probe result%s\n", out.c_str(), static_cast<long long>(records),
              a.probes.size(), a.probes.size() == 1 ? "" : "s");
  return 0;
}

}  // namespace cpc::tools
