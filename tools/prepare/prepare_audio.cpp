#include "tools/prepare/prepare_audio.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>

#include "engine/core/error.h"
#include "tools/prepare/resample.h"
#include "tools/prepare/wav_file.h"

namespace cpc::tools {

namespace fs = std::filesystem;

namespace {

struct Entry {
  std::string path;                 // relative to --in
  std::vector<std::string> labels;  // one per label column; none when unlabelled
  int64_t split = -1;               // from the manifest; -1: seeded
};

struct Entries {
  std::vector<std::string> columns;  // the label columns ("label" for folders)
  std::vector<Entry> rows;
};

// A manifest is path,label[,split] rows, or starts with a header naming its columns:
// path, then any label columns (each becomes an integer dataset of that name, e.g.
// speaker, language) and optionally split.
Entries entries_from_manifest(const PrepareWavArgs& a) {
  const std::vector<CsvRow> rows = read_csv_rows(a.manifest);
  Entries out;
  int64_t split_column = -1;
  size_t first = 0;
  if (!rows.empty() && !rows[0].fields.empty() && (rows[0].fields[0] == "path" || rows[0].fields[0] == "PATH")) {
    const std::vector<std::string>& h = rows[0].fields;
    first = 1;
    for (size_t c = 1; c < h.size(); ++c) {
      const std::string& name = h[c];
      CPC_CHECK(!name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                                     std::string::npos,
                a.manifest, " line ", rows[0].line, ": column name '", name,
                "' must be letters, digits or _ (it names a dataset)");
      CPC_CHECK(name != "signals" && name != "offsets" && name != "path", a.manifest, " line ", rows[0].line,
                ": column name '", name, "' is reserved");
      if (name == "split") {
        CPC_CHECK(split_column < 0, a.manifest, " line ", rows[0].line, ": two split columns");
        split_column = static_cast<int64_t>(c);
        continue;
      }
      CPC_CHECK(std::find(out.columns.begin(), out.columns.end(), name) == out.columns.end(), a.manifest, " line ",
                rows[0].line, ": column '", name, "' appears twice");
      out.columns.push_back(name);
    }
    CPC_CHECK(!out.columns.empty(), a.manifest, " line ", rows[0].line,
              ": the header names no label column (expected path,<label columns>[,split])");
  } else {
    out.columns = {"label"};
  }
  const std::string expected = first ? cat(rows[0].fields.size(), " fields as the header says") : "path,label[,split]";
  int64_t with_split = 0;
  for (size_t r = first; r < rows.size(); ++r) {
    const CsvRow& row = rows[r];
    const size_t n = row.fields.size();
    const bool ok = first ? n == rows[0].fields.size() : n == 2 || n == 3;
    CPC_CHECK(ok, a.manifest, " line ", row.line, ": expected ", expected, ", found ", n, " fields");
    Entry e;
    e.path = row.fields[0];
    CPC_CHECK(!e.path.empty(), a.manifest, " line ", row.line, ": empty path");
    std::string split_text;
    for (size_t c = 1; c < n; ++c) {
      if (static_cast<int64_t>(c) == split_column || (!first && c == 2)) {
        split_text = row.fields[c];
        continue;
      }
      CPC_CHECK(!row.fields[c].empty(), a.manifest, " line ", row.line, ": empty ",
                first ? rows[0].fields[c] : std::string("label"));
      e.labels.push_back(row.fields[c]);
    }
    CPC_CHECK(fs::is_regular_file(fs::path(a.in) / e.path), a.manifest, " line ", row.line, ": file '", e.path,
              "' not found under ", a.in);
    if (split_column >= 0 || n == 3) {
      e.split = parse_split(split_text);
      CPC_CHECK(e.split >= 0, a.manifest, " line ", row.line, ": split '", split_text, "' is not 0/1/train/test/val");
      ++with_split;
    }
    out.rows.push_back(std::move(e));
  }
  CPC_CHECK(!out.rows.empty(), a.manifest, ": the manifest lists no files (expected rows ", expected, ")");
  CPC_CHECK(with_split == 0 || with_split == static_cast<int64_t>(out.rows.size()), a.manifest, ": ", with_split,
            " of ", out.rows.size(), " rows have a split column; give it on every row or on none");
  return out;
}

Entries entries_from_folders(const PrepareWavArgs& a) {
  const std::vector<std::string> files = find_files(a.in, ".wav", "--in");
  CPC_CHECK(!files.empty(), "--in ", a.in, ": no *.wav files found (searched recursively)");
  Entries out;
  bool any_sub = false;
  for (const std::string& f : files) {
    const size_t slash = f.find('/');
    out.rows.push_back({f, {slash == std::string::npos ? "." : f.substr(0, slash)}, -1});
    any_sub |= slash != std::string::npos;
  }
  if (any_sub)
    out.columns = {"label"};
  else
    for (Entry& e : out.rows) e.labels.clear();  // a flat directory: no labels
  return out;
}

// cpc::Error messages start with the file's path; the summary names the file already.
std::string reason(const std::string& what, const std::string& path) {
  return what.rfind(path + ": ", 0) == 0 ? what.substr(path.size() + 2) : what;
}

}  // namespace

PrepareReport prepare_wav(const PrepareWavArgs& a) {
  CPC_CHECK(a.rate > 0, "prepare wav: --rate must be > 0, found ", a.rate);
  CPC_CHECK(a.test_fraction >= 0 && a.test_fraction < 1, "prepare wav: --test-fraction must be in [0, 1), found ",
            a.test_fraction);
  CPC_CHECK(fs::is_directory(a.in), "--in ", a.in, ": not a directory");
  check_output_path(a.out);
  const Entries listed = a.manifest.empty() ? entries_from_folders(a) : entries_from_manifest(a);
  const std::vector<Entry>& entries = listed.rows;
  const size_t n_labels = listed.columns.size();
  std::vector<LabelIndex> indices;
  for (size_t c = 0; c < n_labels; ++c) {
    std::vector<std::string> names;
    for (const Entry& e : entries) names.push_back(e.labels[c]);
    indices.emplace_back(names, a.manifest.empty() ? a.in : a.manifest);
  }

  PrepareReport rep;
  rep.command = "prepare wav", rep.out = a.out, rep.rate = a.rate;
  rep.found = static_cast<int64_t>(entries.size());
  RaggedOutput o;
  o.flat = !a.keep_channels;
  std::vector<std::vector<float>> channels;  // kept channels, appended per recording
  std::vector<std::vector<int64_t>> label(std::max<size_t>(n_labels, 1));  // per column, per recording
  std::vector<int64_t> manifest_split;
  Resamplers resamplers;
  for (const Entry& e : entries) {
    const std::string path = (fs::path(a.in) / e.path).string();
    WavAudio w;
    try {
      w = read_wav(path);
    } catch (const Error& err) {
      rep.skipped.push_back({e.path, reason(err.what(), path)});
      continue;
    }
    if (w.frames == 0) {
      rep.skipped.push_back({e.path, "no samples"});
      continue;
    }
    if (channels.empty()) channels.resize(a.keep_channels ? static_cast<size_t>(w.channels) : 1);
    if (a.keep_channels && static_cast<size_t>(w.channels) != channels.size()) {
      rep.skipped.push_back({e.path, cat(w.channels, " channels, the first file has ", channels.size(),
                                         " (--keep-channels needs the same count everywhere)")});
      continue;
    }
    if (!a.keep_channels && w.channels > 1) {  // average to mono, in place into channel 0
      for (int64_t i = 0; i < w.frames; ++i) {
        double s = 0;
        for (int c = 0; c < w.channels; ++c) s += w.samples[static_cast<size_t>(c * w.frames + i)];
        w.samples[static_cast<size_t>(i)] = static_cast<float>(s / w.channels);
      }
      w.samples.resize(static_cast<size_t>(w.frames));
      w.channels = 1;
    }
    const int64_t length = append_resampled(w.samples.data(), w.frames, w.rate, a.rate, channels, resamplers);
    o.offsets.push_back(o.offsets.back() + length);
    ++rep.source_rates[w.rate];
    for (size_t c = 0; c < label.size(); ++c) label[c].push_back(c < n_labels ? indices[c](e.labels[c]) : 0);
    manifest_split.push_back(e.split);
  }
  CPC_CHECK(!manifest_split.empty(), "--in ", a.in, ": none of the ", entries.size(),
            " WAV files could be read; the first: ", rep.skipped.front().first, ": ", rep.skipped.front().second);

  const std::vector<int64_t> split =
      manifest_split.front() >= 0 ? manifest_split : assign_split(label[0], a.test_fraction, a.seed);
  o.channels = static_cast<int64_t>(channels.size());
  const int64_t total = o.offsets.back();
  if (channels.size() == 1) {
    o.signals = std::move(channels[0]);  // no copy: the signal is the large part
  } else {
    o.signals.reserve(static_cast<size_t>(o.channels * total));
    for (std::vector<float>& c : channels) {
      o.signals.insert(o.signals.end(), c.begin(), c.end());
      std::vector<float>().swap(c);
    }
  }
  const LabelIndex none({}, a.in);
  add_labels_and_split(label[0], split, n_labels > 0, n_labels ? indices[0] : none, o, rep,
                       n_labels ? listed.columns[0] : "label");
  for (size_t c = 1; c < n_labels; ++c) add_label(listed.columns[c], label[c], indices[c], o, rep);
  o.attributes["rate_hz"] = format_rate(a.rate);
  o.attributes["source"] = "prepare wav --in " + fs::absolute(a.in).lexically_normal().string() +
                           (a.manifest.empty() ? "" : " --manifest " + fs::absolute(a.manifest).string());
  write_ragged(a.out, o);

  rep.recordings = static_cast<int64_t>(split.size());
  rep.channels = o.channels;
  rep.samples = total;
  return rep;
}

int run_prepare_wav(const PrepareWavArgs& args) {
  const auto t0 = std::chrono::steady_clock::now();
  const PrepareReport r = prepare_wav(args);
  print_report(r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), stdout);
  return 0;
}

}  // namespace cpc::tools
