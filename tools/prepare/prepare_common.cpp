#include "tools/prepare/prepare_common.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <system_error>
#include <fstream>
#include <random>
#include <set>

#include "engine/core/error.h"
#include "engine/data/h5_file.h"

namespace cpc::tools {

void check_regular_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  CPC_CHECK(st.type() != std::filesystem::file_type::not_found, path, ": no such file (expected ", what, ")");
  CPC_CHECK(!ec && st.type() == std::filesystem::file_type::regular, path, ": not a file (expected ", what, ")",
            ec ? " (" + ec.message() + ")" : "");
}

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

}  // namespace

std::vector<std::string> find_files(const std::string& dir, const std::string& extension, const std::string& what) {
  std::error_code ec;
  CPC_CHECK(fs::is_directory(dir, ec), what, " ", dir, ": not a directory");
  const std::string ext = lower(extension);
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > ext.size() && lower(name.substr(name.size() - ext.size())) == ext && it->is_regular_file(ec))
      out.push_back(it->path().lexically_relative(dir).generic_string());
  }
  CPC_CHECK(!ec, what, " ", dir, ": cannot list the directory: ", ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> split_csv_line(const std::string& line, char delim) {
  std::vector<std::string> fields;
  std::string cur;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (quoted) {
      if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"', ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        cur += ch;
      }
    } else if (ch == '"') {
      quoted = was_quoted = true;
    } else if (ch == delim) {
      fields.push_back(was_quoted ? cur : trim(cur));
      cur.clear(), was_quoted = false;
    } else {
      cur += ch;
    }
  }
  fields.push_back(was_quoted ? cur : trim(cur));
  return fields;
}

std::vector<CsvRow> read_csv_rows(const std::string& path) {
  std::ifstream f(path);
  CPC_CHECK(f, path, ": cannot open the CSV file");
  std::vector<CsvRow> rows;
  std::string line;
  for (int64_t n = 1; std::getline(f, line); ++n) {
    if (n == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte order mark
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    rows.push_back({n, split_csv_line(line)});
  }
  return rows;
}

LabelIndex::LabelIndex(std::vector<std::string> names, const std::string& source) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  for (const std::string& n : names) {
    CPC_CHECK(n.find(',') == std::string::npos, source, ": label '", n,
              "' contains a comma, the separator of the label_names attribute");
    index_[n] = static_cast<int64_t>(names_.size());
    names_.push_back(n);
  }
}

int64_t LabelIndex::operator()(const std::string& name) const {
  auto it = index_.find(name);
  CPC_CHECK(it != index_.end(), "label '", name, "' is not among the ", names_.size(), " known labels");
  return it->second;
}

std::string LabelIndex::joined() const {
  std::string s;
  for (const std::string& n : names_) s += (s.empty() ? "" : ",") + n;
  return s;
}

std::vector<int64_t> assign_split(const std::vector<int64_t>& groups, double fraction, uint64_t seed) {
  CPC_CHECK(fraction >= 0 && fraction < 1, "--test-fraction must be in [0, 1), found ", fraction);
  std::map<int64_t, std::vector<size_t>> members;
  for (size_t i = 0; i < groups.size(); ++i) members[groups[i]].push_back(i);
  // Largest remainder: round(fraction x n) test recordings in all, each group getting
  // floor(fraction x its size) plus one for the largest remainders (ties: seeded order).
  struct Share {
    std::vector<size_t>* idx;
    size_t n_test;
    double remainder;
    uint64_t tie;
  };
  std::mt19937_64 rng(seed);
  std::vector<Share> shares;
  size_t assigned = 0;
  for (auto& [group, idx] : members) {
    const double exact = fraction * static_cast<double>(idx.size());
    const auto whole = static_cast<size_t>(std::floor(exact));
    shares.push_back({&idx, whole, exact - static_cast<double>(whole), rng()});
    assigned += whole;
  }
  const auto total = static_cast<size_t>(std::llround(fraction * static_cast<double>(groups.size())));
  std::vector<Share*> order;
  for (Share& sh : shares) order.push_back(&sh);
  std::sort(order.begin(), order.end(), [](const Share* a, const Share* b) {
    return a->remainder != b->remainder ? a->remainder > b->remainder : a->tie < b->tie;
  });
  for (size_t k = 0; assigned < total && k < order.size(); ++k, ++assigned) ++order[k]->n_test;
  std::vector<int64_t> split(groups.size(), 0);
  for (Share& sh : shares) {
    std::vector<size_t>& idx = *sh.idx;
    // Fisher-Yates with our own index draw: std::shuffle differs between libraries.
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
    for (size_t k = 0; k < sh.n_test; ++k) split[idx[k]] = 1;
  }
  return split;
}

int64_t parse_split(const std::string& s) {
  const std::string v = lower(trim(s));
  if (v == "0" || v == "train") return 0;
  if (v == "1" || v == "test" || v == "val" || v == "valid" || v == "validation") return 1;
  return -1;
}

void write_ragged(const std::string& path, const RaggedOutput& o) {
  const int64_t total = o.offsets.back();
  CPC_CHECK(static_cast<int64_t>(o.signals.size()) == o.channels * total && (!o.flat || o.channels == 1), path,
            ": internal: ", o.signals.size(), " samples for ", o.channels, " channels x ", total);
  H5File f(path, H5File::Mode::create);
  if (o.flat) {
    f.write_floats("signals", {total}, o.signals.data());
  } else {
    f.write_floats("signals", {o.channels, total}, o.signals.data());
  }
  f.write_ints("offsets", o.offsets);
  for (const auto& [name, values] : o.ints) f.write_ints(name, values);
  for (const auto& [name, value] : o.attributes) f.set_attribute("", name, value);
  f.commit();
}

void add_label(const std::string& name, const std::vector<int64_t>& values, const LabelIndex& index, RaggedOutput& o,
                PrepareReport& rep) {
  CPC_CHECK(!o.ints.count(name), "label '", name, "' is given twice");
  o.ints[name] = values;
  std::string& all = o.attributes["labels"];
  all += (all.empty() ? "" : ",") + name;
  o.attributes[name + "_names"] = index.joined();
  rep.notes.push_back(cat("label ", name, ": ", index.names().size(), " classes (", index.joined(), ")"));
}

std::string format_rate(double hz) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.10g", hz);
  return b;
}

void add_labels_and_split(const std::vector<int64_t>& label, const std::vector<int64_t>& split, bool labelled,
                          const LabelIndex& labels, RaggedOutput& o, PrepareReport& rep, const std::string& name) {
  o.ints["split"] = split;
  if (labelled) o.ints[name] = label;
  o.attributes["labels"] = labelled ? name : "";
  o.attributes[name + "_names"] = labelled ? labels.joined() : "";
  if (labelled) {
    rep.label_names = labels.names();
    rep.label_counts.assign(labels.names().size(), 0);
    for (int64_t l : label) ++rep.label_counts[static_cast<size_t>(l)];
  }
  for (int64_t s : split) ++(s ? rep.test : rep.train);
}

void print_report(const PrepareReport& r, double seconds_taken, std::FILE* out) {
  std::fprintf(out, "%s: wrote %s\n", r.command.c_str(), r.out.c_str());
  std::fprintf(out, "  files: %lld found, %lld written as recordings, %zu skipped\n", static_cast<long long>(r.found),
               static_cast<long long>(r.recordings), r.skipped.size());
  if (r.rate > 0) {
    std::fprintf(out, "  signal: %lld channel%s at %s Hz, %.3f hours (%lld samples per channel)\n",
                 static_cast<long long>(r.channels), r.channels == 1 ? "" : "s", format_rate(r.rate).c_str(), r.hours(),
                 static_cast<long long>(r.samples));
  } else {
    std::fprintf(out, "  signal: %lld channel%s, %lld samples per channel, rate unknown (no --rate given)\n",
                 static_cast<long long>(r.channels), r.channels == 1 ? "" : "s", static_cast<long long>(r.samples));
  }
  std::string rates;
  for (const auto& [hz, n] : r.source_rates)
    rates += (rates.empty() ? "" : ", ") + format_rate(hz) + " Hz x " + std::to_string(n);
  if (!rates.empty()) std::fprintf(out, "  source rates: %s\n", rates.c_str());
  if (!r.label_names.empty()) {
    std::string labels;
    const size_t shown = std::min<size_t>(r.label_names.size(), 30);
    for (size_t i = 0; i < shown; ++i)
      labels += (i ? ", " : "") + r.label_names[i] + " " + std::to_string(r.label_counts[i]);
    if (shown < r.label_names.size()) labels += ", ... (" + std::to_string(r.label_names.size() - shown) + " more)";
    std::fprintf(out, "  labels: %zu class%s: %s\n", r.label_names.size(), r.label_names.size() == 1 ? "" : "es",
                 labels.c_str());
  } else {
    std::fprintf(out, "  labels: none\n");
  }
  std::fprintf(out, "  split: %lld train, %lld test\n", static_cast<long long>(r.train),
               static_cast<long long>(r.test));
  const size_t shown = std::min<size_t>(r.skipped.size(), 20);
  for (size_t i = 0; i < shown; ++i)
    std::fprintf(out, "  skipped %s: %s\n", r.skipped[i].first.c_str(), r.skipped[i].second.c_str());
  if (shown < r.skipped.size()) std::fprintf(out, "  ... and %zu more skipped\n", r.skipped.size() - shown);
  for (const std::string& n : r.notes) std::fprintf(out, "  note: %s\n", n.c_str());
  std::fprintf(out, "  took %.1f s\n", seconds_taken);
}

}  // namespace cpc::tools
