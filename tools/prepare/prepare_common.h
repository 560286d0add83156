#pragma once
// What the `prepare wav | csv | wfdb` importers share: finding input files, small CSV
// tables (manifests, label files, data), label indexing, the train/test split, the
// ragged HDF5 writer and the summary they print.
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tools/cli/output_path.h"

namespace cpc::tools {

// Files under dir (recursively, following the top directory if it is a link) whose
// name ends in `extension` (case-insensitive, e.g. ".wav"), as '/'-separated paths
// relative to dir, sorted. Throws cpc::Error naming `what` (e.g. "--in") when dir is
// not a directory.
std::vector<std::string> find_files(const std::string& dir, const std::string& extension, const std::string& what);
// Fails unless path is a regular file: "no such file", or "not a file (expected WHAT)"
// for a directory or a path that cannot be examined (too long, no access); never throws
// anything but cpc::Error.
void check_regular_file(const std::string& path, const std::string& what);

// One parsed line of a CSV file: fields (trimmed, double quotes removed) and its
// 1-based line number. Blank lines are skipped.
struct CsvRow {
  int64_t line = 0;
  std::vector<std::string> fields;
};
// Splits one line on `delim`, honouring "quoted, fields" and "" escapes.
std::vector<std::string> split_csv_line(const std::string& line, char delim = ',');
std::vector<CsvRow> read_csv_rows(const std::string& path);

// Maps label strings to dense indices in sorted name order (the order of the
// `label_names` attribute). Names containing ',' are rejected: it is the separator.
class LabelIndex {
 public:
  explicit LabelIndex(std::vector<std::string> names, const std::string& source);
  int64_t operator()(const std::string& name) const;
  const std::vector<std::string>& names() const { return names_; }
  std::string joined() const;  // "a,b,c"

 private:
  std::vector<std::string> names_;
  std::map<std::string, int64_t> index_;
};

// 0 train / 1 test, stratified: round(fraction x n) recordings go to test, each group
// (label; pass all zeros for none) getting its share to within one (largest
// remainder), chosen by a seeded shuffle. Same files, seed and fraction: same split.
std::vector<int64_t> assign_split(const std::vector<int64_t>& groups, double fraction, uint64_t seed);

// "0"/"train" -> 0, "1"/"test"/"val"/"valid"/"validation" -> 1; -1 when not recognised.
int64_t parse_split(const std::string& s);

// Layout (b): signals (channels, total), or (total,) when flat, with offsets (n + 1);
// integer datasets (labels, split) and string root attributes. Written to a temporary
// file and renamed into place, so `path` is never left half-written.
struct RaggedOutput {
  int64_t channels = 1;
  bool flat = true;
  std::vector<float> signals;  // channel-major: signals[c * total + t]
  std::vector<int64_t> offsets{0};
  std::map<std::string, std::vector<int64_t>> ints;
  std::map<std::string, std::string> attributes;
};
void write_ragged(const std::string& path, const RaggedOutput& o);

struct PrepareReport {
  std::string command, out;
  int64_t found = 0;                                  // input files considered
  int64_t recordings = 0, channels = 1, samples = 0;  // samples per channel, all recordings
  double rate = 0;
  std::map<double, int64_t> source_rates;  // input rate -> files
  std::vector<std::string> label_names;
  std::vector<int64_t> label_counts;
  int64_t train = 0, test = 0;
  std::vector<std::pair<std::string, std::string>> skipped;  // file, reason
  std::vector<std::string> notes;                            // printed as they are
  double hours() const { return rate > 0 ? static_cast<double>(samples) / rate / 3600.0 : 0.0; }
};
// Records the per-recording `split` and (when labelled) `label` datasets with the
// `labels`/`label_names` attributes in o, and the label and split counts in rep.
// `name` is the label's dataset (its names go to `<name>_names`).
void add_labels_and_split(const std::vector<int64_t>& label, const std::vector<int64_t>& split, bool labelled,
                          const LabelIndex& labels, RaggedOutput& o, PrepareReport& rep,
                          const std::string& name = "label");
// One more label after add_labels_and_split: dataset `name`, attribute `<name>_names`,
// appended to `labels`; its class count goes to the report's notes.
void add_label(const std::string& name, const std::vector<int64_t>& values, const LabelIndex& index, RaggedOutput& o,
               PrepareReport& rep);

void print_report(const PrepareReport& r, double seconds_taken, std::FILE* out);

// "16000" rather than "16000.000000", exact for any rate people use.
std::string format_rate(double hz);

}  // namespace cpc::tools
