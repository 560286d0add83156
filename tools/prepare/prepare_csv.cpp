#include "tools/prepare/prepare_csv.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <system_error>
#include <fstream>

#include "engine/core/error.h"
#include "tools/prepare/prepare_common.h"

namespace cpc::tools {

namespace fs = std::filesystem;

namespace {

char detect_delimiter(const std::string& header) {
  if (header.find(',') != std::string::npos) return ',';
  if (header.find(';') != std::string::npos) return ';';
  if (header.find('\t') != std::string::npos) return '\t';
  return ',';
}

}  // namespace

CsvRecording read_csv_recording(const std::string& path, const PrepareCsvArgs& a) {
  check_regular_file(path, "a CSV file");
  std::ifstream f(path);
  CPC_CHECK(f, path, ": cannot open the CSV file");
  CsvRecording rec;
  std::string line;
  int64_t n = 0;
  std::vector<std::string> header;
  char delim = ',';
  while (header.empty() && std::getline(f, line)) {
    ++n;
    if (n == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // UTF-8 byte order mark
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    delim = detect_delimiter(line);
    header = split_csv_line(line, delim);
  }
  CPC_CHECK(!header.empty(), path, ": empty file (expected a header row naming the channel columns)");
  // Role of each column: -1 ignored, -2 label, otherwise the channel index.
  std::vector<int> role(header.size());
  int label_col = -1, channels = 0;
  for (size_t c = 0; c < header.size(); ++c) {
    if (!a.label_column.empty() && header[c] == a.label_column) {
      role[c] = -2, label_col = static_cast<int>(c);
    } else if (std::find(a.ignore_columns.begin(), a.ignore_columns.end(), header[c]) != a.ignore_columns.end()) {
      role[c] = -1;
    } else {
      role[c] = channels++;
      rec.channel_names.push_back(header[c]);
    }
  }
  if (!a.label_column.empty() && label_col < 0) {
    std::string have;
    for (const std::string& h : header) have += (have.empty() ? "" : ", ") + h;
    fail(path, ": no column '", a.label_column, "' for --label-column (the header has: ", have, ")");
  }
  for (const std::string& ignored : a.ignore_columns) {
    if (std::find(header.begin(), header.end(), ignored) != header.end()) continue;
    std::string have;
    for (const std::string& h : header) have += (have.empty() ? "" : ", ") + h;
    fail(path, ": no column '", ignored, "' for --ignore-column (the header has: ", have, ")");
  }
  CPC_CHECK(channels >= 1, path, ": no channel columns left after the label and ignored columns");
  rec.channels.resize(static_cast<size_t>(channels));
  while (std::getline(f, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::vector<std::string> cells = split_csv_line(line, delim);
    CPC_CHECK(cells.size() == header.size(), path, " line ", n, ": ", cells.size(), " fields, the header has ",
              header.size());
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string& s = cells[c];
      if (role[c] == -1) continue;
      if (role[c] == -2) {
        CPC_CHECK(!s.empty(), path, " line ", n, ": empty label in column '", a.label_column, "'");
        if (rec.rows == 0) rec.label = s;
        CPC_CHECK(s == rec.label, path, " line ", n, ": label column '", a.label_column, "' changes from '", rec.label,
                  "' to '", s, "'; one CSV file is one recording with one label");
        continue;
      }
      CPC_CHECK(!s.empty(), path, " line ", n, ", column ", c + 1, " ('", header[c], "'): empty cell");
      const char* b = s.data() + (s[0] == '+' ? 1 : 0);
      double v = 0;
      const auto [end, ec] = std::from_chars(b, s.data() + s.size(), v);
      CPC_CHECK(ec == std::errc() && end == s.data() + s.size(), path, " line ", n, ", column ", c + 1, " ('",
                header[c], "'): '", s, "' is not a number");
      CPC_CHECK(std::isfinite(v), path, ": sample ", rec.rows, " (line ", n, ", column '", header[c], "') is ", s,
                "; NaN/Inf samples are not supported");
      rec.channels[static_cast<size_t>(role[c])].push_back(static_cast<float>(v));
    }
    ++rec.rows;
  }
  return rec;
}


PrepareReport prepare_csv(const PrepareCsvArgs& a) {
  CPC_CHECK(a.rate >= 0, "prepare csv: --rate must be > 0, found ", a.rate);
  check_output_path(a.out);
  std::vector<std::string> files;
  std::string root;
  if (fs::is_directory(a.in)) {
    root = a.in;
    files = find_files(a.in, ".csv", "--in");
    CPC_CHECK(!files.empty(), "--in ", a.in, ": no *.csv files found (searched recursively)");
  } else {
    CPC_CHECK(fs::is_regular_file(a.in), "--in ", a.in, ": no such file or directory");
    root = fs::path(a.in).parent_path().string();
    files = {fs::path(a.in).filename().string()};
  }

  PrepareReport rep;
  rep.command = "prepare csv", rep.out = a.out, rep.rate = a.rate;
  rep.found = static_cast<int64_t>(files.size());
  RaggedOutput o;
  o.flat = false;
  std::vector<std::vector<float>> channels;
  std::vector<std::string> channel_names, record_labels;
  std::string first_file;
  int64_t renamed = 0;
  for (const std::string& rel : files) {
    const std::string path = root.empty() ? rel : (fs::path(root) / rel).string();
    CsvRecording r = read_csv_recording(path, a);
    if (channels.empty()) {
      channels.resize(r.channels.size());
      channel_names = r.channel_names, first_file = path;
    }
    CPC_CHECK(r.channels.size() == channels.size(), path, ": ", r.channels.size(), " channel columns, but ", first_file,
              " has ", channels.size(), "; every file must have the same channels");
    if (r.rows == 0) {
      rep.skipped.push_back({rel, "no data rows"});
      continue;
    }
    if (r.channel_names != channel_names) ++renamed;
    for (size_t c = 0; c < channels.size(); ++c) {
      channels[c].insert(channels[c].end(), r.channels[c].begin(), r.channels[c].end());
      std::vector<float>().swap(r.channels[c]);
    }
    o.offsets.push_back(o.offsets.back() + r.rows);
    record_labels.push_back(r.label);
  }
  const int64_t n = static_cast<int64_t>(o.offsets.size()) - 1;
  CPC_CHECK(n > 0, "--in ", a.in, ": no CSV file has data rows");
  const bool labelled = !a.label_column.empty();
  const LabelIndex labels(labelled ? record_labels : std::vector<std::string>{}, a.in);
  std::vector<int64_t> label;
  if (labelled)
    for (const std::string& l : record_labels) label.push_back(labels(l));
  const std::vector<int64_t> split =
      assign_split(labelled ? label : std::vector<int64_t>(static_cast<size_t>(n), 0), a.test_fraction, a.seed);

  o.channels = static_cast<int64_t>(channels.size());
  o.signals.reserve(static_cast<size_t>(o.channels * o.offsets.back()));
  for (std::vector<float>& c : channels) {
    o.signals.insert(o.signals.end(), c.begin(), c.end());
    std::vector<float>().swap(c);
  }
  std::string names;
  for (std::string c : channel_names) {
    std::replace(c.begin(), c.end(), ',', ';');
    names += (names.empty() ? "" : ",") + c;
  }
  add_labels_and_split(label, split, labelled, labels, o, rep);
  o.attributes["channel_names"] = names;
  if (a.rate > 0) o.attributes["rate_hz"] = format_rate(a.rate);
  o.attributes["source"] = "prepare csv --in " + fs::absolute(a.in).lexically_normal().string();
  write_ragged(a.out, o);

  rep.recordings = n;
  rep.channels = o.channels;
  rep.samples = o.offsets.back();
  rep.notes.push_back("channels: " + names);
  if (renamed)
    rep.notes.push_back(cat(renamed, " files name their columns differently from ", first_file,
                            "; channel_names has the first file's header"));
  return rep;
}

int run_prepare_csv(const PrepareCsvArgs& args) {
  const auto t0 = std::chrono::steady_clock::now();
  const PrepareReport r = prepare_csv(args);
  print_report(r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), stdout);
  return 0;
}

}  // namespace cpc::tools
