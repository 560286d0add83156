#include "tools/prepare/prepare_wfdb.h"

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>

#include "engine/core/error.h"
#include "tools/prepare/resample.h"
#include "tools/prepare/wfdb_record.h"

namespace cpc::tools {

namespace fs = std::filesystem;

namespace {

struct LabelRow {
  std::string label;
  int64_t split = -1;
};

std::map<std::string, LabelRow> read_label_file(const std::string& path) {
  std::map<std::string, LabelRow> out;
  const std::vector<CsvRow> rows = read_csv_rows(path);
  for (size_t r = 0; r < rows.size(); ++r) {
    const CsvRow& row = rows[r];
    if (r == 0 && !row.fields.empty() && (row.fields[0] == "record" || row.fields[0] == "RECORD")) continue;
    CPC_CHECK(row.fields.size() == 2 || row.fields.size() == 3, path, " line ", row.line,
              ": expected record,label[,split], found ", row.fields.size(), " fields");
    CPC_CHECK(!row.fields[0].empty() && !row.fields[1].empty(), path, " line ", row.line, ": empty ",
              row.fields[0].empty() ? "record" : "label");
    LabelRow l{row.fields[1], -1};
    if (row.fields.size() == 3) {
      l.split = parse_split(row.fields[2]);
      CPC_CHECK(l.split >= 0, path, " line ", row.line, ": split '", row.fields[2], "' is not 0/1/train/test/val");
    }
    out[row.fields[0]] = l;
  }
  CPC_CHECK(!out.empty(), path, ": no rows (expected record,label[,split])");
  return out;
}

std::string joined(const std::vector<WfdbSignal>& signals, bool units) {
  std::string s;
  for (const WfdbSignal& sig : signals) {
    std::string v = units ? sig.units : sig.description;
    for (char& c : v)
      if (c == ',') c = ';';  // ',' separates the attribute's entries
    s += (s.empty() ? "" : ",") + v;
  }
  return s;
}

}  // namespace

PrepareReport prepare_wfdb(const PrepareWfdbArgs& a) {
  CPC_CHECK(a.rate >= 0, "prepare wfdb: --rate must be > 0, found ", a.rate);
  const std::vector<std::string> headers = find_files(a.in, ".hea", "--in");
  check_output_path(a.out);
  CPC_CHECK(!headers.empty(), "--in ", a.in, ": no *.hea files found (searched recursively)");
  std::map<std::string, LabelRow> label_rows;
  if (!a.labels.empty()) label_rows = read_label_file(a.labels);

  PrepareReport rep;
  rep.command = "prepare wfdb", rep.out = a.out;
  rep.found = static_cast<int64_t>(headers.size());
  RaggedOutput o;
  o.flat = false;
  std::vector<std::vector<float>> channels;
  std::vector<std::string> record_labels, missing;
  std::vector<int64_t> file_split;
  WfdbHeader first;
  std::string first_path;
  int64_t other_leads = 0, checksum_records = 0;
  std::string checksum_warnings;
  Resamplers resamplers;
  for (const std::string& rel : headers) {
    const std::string path = (fs::path(a.in) / rel).string();
    const WfdbRecord r = read_wfdb_record(path);
    const WfdbHeader& h = r.header;
    if (channels.empty()) {
      channels.resize(h.signals.size());
      first = h, first_path = path;
      rep.rate = a.rate > 0 ? a.rate : h.rate;
    }
    CPC_CHECK(h.signals.size() == channels.size(), "record '", h.name, "' (", path, ") has ", h.signals.size(),
              " signals, but the first record '", first.name, "' (", first_path, ") has ", channels.size(),
              "; every record must have the same channels");
    CPC_CHECK(a.rate > 0 || h.rate == first.rate, "record '", h.name, "' (", path, ") is sampled at ",
              format_rate(h.rate), " Hz, but the first record '", first.name, "' at ", format_rate(first.rate),
              " Hz; pass --rate to resample every record to one rate");
    if (r.samples == 0) {
      rep.skipped.push_back({rel, "no samples"});
      continue;
    }
    if (joined(h.signals, false) != joined(first.signals, false)) ++other_leads;
    if (!r.warnings.empty() && checksum_warnings.empty()) checksum_warnings = r.warnings.front();
    checksum_records += !r.warnings.empty();
    std::string key = rel.substr(0, rel.size() - 4);  // without ".hea"
    if (!a.labels.empty()) {
      auto it = label_rows.find(key);
      if (it == label_rows.end()) it = label_rows.find(h.name);
      if (it == label_rows.end()) {
        missing.push_back(key);
        continue;
      }
      record_labels.push_back(it->second.label);
      file_split.push_back(it->second.split);
    } else {
      file_split.push_back(-1);
    }
    const int64_t length = append_resampled(r.physical.data(), r.samples, h.rate, rep.rate, channels, resamplers);
    o.offsets.push_back(o.offsets.back() + length);
    ++rep.source_rates[h.rate];
  }
  if (!missing.empty()) {
    std::string some;
    for (size_t i = 0; i < std::min<size_t>(missing.size(), 5); ++i) some += (i ? ", " : "") + missing[i];
    fail(a.labels, ": no row for ", missing.size(), " of the ", headers.size(), " records (e.g. ", some,
         "); rows are 'record,label[,split]', the record as a path relative to --in without .hea or its name");
  }
  const int64_t n = static_cast<int64_t>(o.offsets.size()) - 1;
  CPC_CHECK(n > 0, "--in ", a.in, ": no record has any samples");

  const LabelIndex labels(record_labels, a.labels);
  std::vector<int64_t> label;
  for (const std::string& l : record_labels) label.push_back(labels(l));
  const bool labelled = !label.empty();
  int64_t given = 0;
  for (int64_t s : file_split) given += s >= 0;
  CPC_CHECK(given == 0 || given == n, a.labels, ": ", given, " of ", n,
            " records have a split column; give it on every row or on none");
  const std::vector<int64_t> split =
      given ? file_split
            : assign_split(labelled ? label : std::vector<int64_t>(static_cast<size_t>(n), 0), a.test_fraction, a.seed);

  o.channels = static_cast<int64_t>(channels.size());
  o.signals.reserve(static_cast<size_t>(o.channels * o.offsets.back()));
  for (std::vector<float>& c : channels) {
    o.signals.insert(o.signals.end(), c.begin(), c.end());
    std::vector<float>().swap(c);
  }
  add_labels_and_split(label, split, labelled, labels, o, rep);
  o.attributes["rate_hz"] = format_rate(rep.rate);
  o.attributes["leads"] = joined(first.signals, false);
  o.attributes["units"] = joined(first.signals, true);
  o.attributes["source"] = "prepare wfdb --in " + fs::absolute(a.in).lexically_normal().string() +
                           (a.labels.empty() ? "" : " --labels " + fs::absolute(a.labels).string());
  write_ragged(a.out, o);

  rep.recordings = n;
  rep.channels = o.channels;
  rep.samples = o.offsets.back();
  rep.notes.push_back("leads: " + o.attributes["leads"] + " (" + o.attributes["units"] + ")");
  if (other_leads)
    rep.notes.push_back(cat(other_leads, " records name their signals differently from '", first.name,
                            "'; the 'leads' attribute has the first record's names"));
  if (checksum_records)
    rep.notes.push_back(cat(checksum_records, " records fail their header checksum (read anyway, as WFDB's tools do); ",
                            "the first: ", checksum_warnings));
  return rep;
}

int run_prepare_wfdb(const PrepareWfdbArgs& args) {
  const auto t0 = std::chrono::steady_clock::now();
  const PrepareReport r = prepare_wfdb(args);
  print_report(r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), stdout);
  return 0;
}

}  // namespace cpc::tools
