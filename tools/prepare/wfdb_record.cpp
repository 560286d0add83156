#include "tools/prepare/wfdb_record.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <fstream>
#include <iterator>
#include <sstream>

#include "engine/core/error.h"
#include "tools/prepare/prepare_common.h"

namespace cpc::tools {

namespace fs = std::filesystem;

namespace {

struct Line {
  int64_t number;
  std::string text;
};

// Header lines without comment lines (first non-blank character '#') and blank lines;
// a '#' later in a line is kept: descriptions may contain one.
std::vector<Line> header_lines(const std::string& path) {
  check_regular_file(path, "a WFDB header");
  std::ifstream f(path);
  CPC_CHECK(f, path, ": cannot open the WFDB header");
  std::vector<Line> out;
  std::string line;
  for (int64_t n = 1; std::getline(f, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    out.push_back({n, line});
  }
  return out;
}

double number(const std::string& s, const std::string& path, int64_t line, const char* field) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  CPC_CHECK(!s.empty() && end && *end == 0 && std::isfinite(v), path, " line ", line, ": ", field, " '", s,
            "' is not a number");
  return v;
}

int integer(const std::string& s, const std::string& path, int64_t line, const char* field) {
  const double v = number(s, path, line, field);
  CPC_CHECK(v == std::floor(v) && std::abs(v) < 2147483648.0, path, " line ", line, ": ", field, " '", s,
            "' is not an integer");
  return static_cast<int>(v);
}

// "212", "16x2", "212:3", "16+512": format, samples per frame, skew, byte offset.
void parse_format(const std::string& s, WfdbSignal& sig, const std::string& path, int64_t line) {
  const size_t end = s.find_first_of("x:+");
  sig.format = integer(s.substr(0, end), path, line, "format");
  size_t pos = end;
  while (pos != std::string::npos) {
    const char tag = s[pos];
    const size_t next = s.find_first_of("x:+", pos + 1);
    const std::string v = s.substr(pos + 1, next == std::string::npos ? std::string::npos : next - pos - 1);
    if (tag == 'x') sig.samples_per_frame = integer(v, path, line, "samples per frame");
    if (tag == ':') sig.skew = integer(v, path, line, "skew");
    if (tag == '+') sig.byte_offset = integer(v, path, line, "byte offset");
    pos = next;
  }
  CPC_CHECK(sig.byte_offset >= 0 && sig.skew >= 0 && sig.samples_per_frame >= 1, path, " line ", line, ": format '", s,
            "': byte offset and skew must be >= 0 and samples per frame >= 1");
}

// "200", "200(0)", "200/mV", "1000.0(-5)/uV": gain, baseline (if given), units.
bool parse_gain(const std::string& s, WfdbSignal& sig, const std::string& path, int64_t line) {
  const size_t slash = s.find('/');
  if (slash != std::string::npos) sig.units = s.substr(slash + 1);
  const std::string g = s.substr(0, slash);
  const size_t open = g.find('(');
  sig.gain = number(g.substr(0, open), path, line, "ADC gain");
  if (sig.gain == 0) sig.gain = 200;  // the spec's default
  if (open == std::string::npos) return false;
  const size_t close = g.find(')', open);
  CPC_CHECK(close != std::string::npos, path, " line ", line, ": ADC gain '", s, "' has an unclosed '('");
  sig.baseline = integer(g.substr(open + 1, close - open - 1), path, line, "baseline");
  return true;
}

int64_t bytes_for(int format, int64_t stream_samples) {
  return format == 16 ? 2 * stream_samples : stream_samples / 2 * 3 + (stream_samples % 2 ? 2 : 0);
}

int32_t sign12(uint32_t v) { return static_cast<int32_t>(v << 20) >> 20; }

}  // namespace

WfdbHeader parse_wfdb_header(const std::string& path) {
  const std::vector<Line> lines = header_lines(path);
  CPC_CHECK(!lines.empty(), path, ": empty WFDB header (expected a record line 'name nsig fs nsamples')");
  std::istringstream rec(lines[0].text);
  std::vector<std::string> f{std::istream_iterator<std::string>(rec), std::istream_iterator<std::string>()};
  const int64_t ln = lines[0].number;
  CPC_CHECK(f.size() >= 2, path, " line ", ln, ": record line '", lines[0].text,
            "' needs at least 'name nsig' (then fs, nsamples)");
  WfdbHeader h;
  h.name = f[0];
  CPC_CHECK(h.name.find('/') == std::string::npos, path, ": record '", h.name,
            "' is a multi-segment record; only single-segment records are supported");
  const int nsig = integer(f[1], path, ln, "number of signals");
  CPC_CHECK(nsig >= 1, path, " line ", ln, ": record has ", nsig, " signals; expected at least 1");
  if (f.size() >= 3) {
    h.rate = number(f[2].substr(0, f[2].find_first_of("/(")), path, ln, "sampling frequency");
    CPC_CHECK(h.rate > 0, path, " line ", ln, ": sampling frequency ", h.rate, " must be > 0");
  }
  if (f.size() >= 4) {
    const double n = number(f[3], path, ln, "number of samples");
    CPC_CHECK(n >= 0 && n == std::floor(n) && n < 1e15, path, " line ", ln, ": number of samples '", f[3],
              "' is not a count (0 to 10^15)");
    h.samples = n > 0 ? static_cast<int64_t>(n) : -1;  // 0: unknown, from the file size
  }
  CPC_CHECK(static_cast<int64_t>(lines.size()) >= 1 + nsig, path, ": the record line declares ", nsig,
            " signals but the header has ", lines.size() - 1, " signal lines");
  for (int s = 0; s < nsig; ++s) {
    const Line& l = lines[static_cast<size_t>(1 + s)];
    std::istringstream is(l.text);
    std::vector<std::string> t;
    std::string tok;
    // The first 8 fields are single tokens; the description is the rest of the line.
    while (t.size() < 8 && is >> tok) t.push_back(tok);
    std::string desc;
    std::getline(is, desc);
    const size_t a = desc.find_first_not_of(" \t"), b = desc.find_last_not_of(" \t");
    desc = a == std::string::npos ? "" : desc.substr(a, b - a + 1);
    CPC_CHECK(t.size() >= 2, path, " line ", l.number, ": signal line '", l.text, "' needs at least 'file format'");
    WfdbSignal sig;
    sig.file = t[0];
    parse_format(t[1], sig, path, l.number);
    sig.adc_resolution = sig.format == 16 ? 16 : 12;
    const bool has_baseline = t.size() >= 3 && parse_gain(t[2], sig, path, l.number);
    if (t.size() >= 4) sig.adc_resolution = integer(t[3], path, l.number, "ADC resolution");
    if (t.size() >= 5) sig.adc_zero = integer(t[4], path, l.number, "ADC zero");
    if (!has_baseline) sig.baseline = sig.adc_zero;
    sig.initial_value = t.size() >= 6 ? integer(t[5], path, l.number, "initial value") : sig.adc_zero;
    if (t.size() >= 7) sig.has_checksum = true, sig.checksum = integer(t[6], path, l.number, "checksum");
    if (t.size() >= 8) sig.block_size = integer(t[7], path, l.number, "block size");
    sig.description = desc.empty() ? cat("record ", h.name, ", signal ", s) : desc;
    h.signals.push_back(std::move(sig));
  }
  return h;
}

WfdbRecord read_wfdb_record(const std::string& hea_path) {
  WfdbRecord r;
  r.header = parse_wfdb_header(hea_path);
  const WfdbHeader& h = r.header;
  const fs::path dir = fs::path(hea_path).parent_path();
  const std::string rec = cat("record '", h.name, "' (", hea_path, ")");
  for (size_t s = 0; s < h.signals.size(); ++s) {
    const WfdbSignal& sig = h.signals[s];
    CPC_CHECK(sig.format == 16 || sig.format == 212, rec, ": signal ", s, " ('", sig.description, "') has format ",
              sig.format, "; supported formats are 16 and 212");
    CPC_CHECK(sig.samples_per_frame == 1 && sig.skew == 0, rec, ": signal ", s,
              " uses several samples per frame or a skew; not supported");
    CPC_CHECK(sig.file != "-" && sig.file != "~", rec, ": signal ", s, " has no signal file ('", sig.file,
              "'); not supported");
  }
  // Consecutive signals naming one file are multiplexed in it, frame by frame.
  struct Group {
    size_t first, count;
  };
  std::vector<Group> groups;
  for (size_t s = 0; s < h.signals.size(); ++s) {
    if (!groups.empty() && h.signals[groups.back().first].file == h.signals[s].file) {
      ++groups.back().count;
    } else {
      groups.push_back({s, 1});
    }
  }
  std::vector<std::vector<uint8_t>> data(groups.size());
  int64_t samples = h.samples;
  for (size_t g = 0; g < groups.size(); ++g) {
    const WfdbSignal& first = h.signals[groups[g].first];
    for (size_t s = groups[g].first; s < groups[g].first + groups[g].count; ++s)
      CPC_CHECK(h.signals[s].format == first.format && h.signals[s].byte_offset == first.byte_offset, rec,
                ": signals in file ", first.file, " disagree on format or byte offset");
    const std::string file = (dir / first.file).string();
    check_regular_file(file, "the signal file of " + rec);
    std::ifstream in(file, std::ios::binary);
    CPC_CHECK(in, rec, ": cannot open signal file ", file);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CPC_CHECK(static_cast<int64_t>(bytes.size()) >= first.byte_offset, rec, ": signal file ", file, " has ",
              bytes.size(), " bytes, less than its byte offset ", first.byte_offset);
    bytes.erase(bytes.begin(), bytes.begin() + first.byte_offset);
    const int64_t avail = static_cast<int64_t>(bytes.size()), n_sig = static_cast<int64_t>(groups[g].count);
    const int64_t from_size = first.format == 16 ? avail / (2 * n_sig) : avail * 2 / 3 / n_sig;
    if (samples < 0) samples = from_size;  // the header leaves the length to the file
    const int64_t need = bytes_for(first.format, samples * n_sig);
    // Format 212 writers may pad an odd sample count to a whole 3-byte pair.
    const bool ok = avail == need || (first.format == 212 && (samples * n_sig) % 2 == 1 && avail == need + 1);
    CPC_CHECK(ok, rec, ": header/data length mismatch: ", samples, " samples x ", n_sig, " signals in format ",
              first.format, " need ", need, " bytes, but ", file, " holds ", avail,
              first.byte_offset ? cat(" after its byte offset ", first.byte_offset) : std::string(), " (", from_size,
              " samples)");
    data[g] = std::move(bytes);
  }
  r.samples = samples;
  const int64_t n = samples;
  r.physical.resize(h.signals.size() * static_cast<size_t>(n));
  for (size_t g = 0; g < groups.size(); ++g) {
    const int64_t n_sig = static_cast<int64_t>(groups[g].count);
    const int format = h.signals[groups[g].first].format;
    const uint8_t* b = data[g].data();
    for (int64_t k = 0; k < n_sig; ++k) {
      const size_t s = groups[g].first + static_cast<size_t>(k);
      const WfdbSignal& sig = h.signals[s];
      float* out = r.physical.data() + s * static_cast<size_t>(n);
      uint32_t sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t j = i * n_sig + k;  // index in the multiplexed stream
        int32_t v;
        if (format == 16) {
          v = static_cast<int16_t>(b[2 * j] | (b[2 * j + 1] << 8));
        } else {
          const uint8_t* p = b + j / 2 * 3;
          v = j % 2 == 0 ? sign12(p[0] | ((p[1] & 0x0Fu) << 8)) : sign12(p[2] | ((p[1] & 0xF0u) << 4));
        }
        CPC_CHECK(v != (format == 16 ? -32768 : -2048), rec, ": signal ", s, " ('", sig.description, "') sample ", i,
                  " holds WFDB's missing-sample value ", v, "; records with gaps are not supported");
        sum += static_cast<uint32_t>(v);
        out[i] = static_cast<float>((v - sig.baseline) / sig.gain);
      }
      if (sig.has_checksum && (sum & 0xFFFFu) != (static_cast<uint32_t>(sig.checksum) & 0xFFFFu))
        r.warnings.push_back(cat(rec, ": signal ", s, " ('", sig.description, "') checksum mismatch: header says ",
                                 sig.checksum, ", the data sum to ", static_cast<int16_t>(sum & 0xFFFFu)));
    }
  }
  return r;
}

void write_wfdb_record(const std::string& dir, const std::string& name, int format, double rate,
                       const std::vector<WfdbWriteSignal>& signals, const std::vector<int32_t>& adc, int64_t n) {
  CPC_CHECK(format == 16 || format == 212, "write_wfdb_record: format ", format, " (only 16 and 212)");
  const int64_t c = static_cast<int64_t>(signals.size());
  CPC_CHECK(static_cast<int64_t>(adc.size()) == c * n, "write_wfdb_record: ", adc.size(), " values for ", c, " x ", n);
  const int32_t lo = format == 16 ? -32767 : -2047, hi = format == 16 ? 32767 : 2047;  // minimum = missing
  std::vector<uint8_t> bytes;
  int32_t pending = 0;
  bool have_pending = false;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t s = 0; s < c; ++s) {
      const int32_t v = adc[static_cast<size_t>(s * n + i)];
      CPC_CHECK(v >= lo && v <= hi, "write_wfdb_record: value ", v, " outside [", lo, ", ", hi, "] of format ", format);
      if (format == 16) {
        bytes.push_back(static_cast<uint8_t>(v)), bytes.push_back(static_cast<uint8_t>(v >> 8));
      } else if (!have_pending) {
        pending = v, have_pending = true;
      } else {
        const uint32_t a = static_cast<uint32_t>(pending) & 0xFFF, b = static_cast<uint32_t>(v) & 0xFFF;
        bytes.push_back(static_cast<uint8_t>(a));
        bytes.push_back(static_cast<uint8_t>(((a >> 8) & 0x0F) | ((b >> 4) & 0xF0)));
        bytes.push_back(static_cast<uint8_t>(b));
        have_pending = false;
      }
    }
  }
  if (have_pending) {  // an odd stream: the last pair is padded with a zero sample
    const uint32_t a = static_cast<uint32_t>(pending) & 0xFFF;
    bytes.push_back(static_cast<uint8_t>(a));
    bytes.push_back(static_cast<uint8_t>((a >> 8) & 0x0F));
    bytes.push_back(0);
  }
  const std::string base = (fs::path(dir) / name).string();
  std::ofstream dat(base + ".dat", std::ios::binary);
  CPC_CHECK(dat, base, ".dat: cannot create");
  dat.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  std::ofstream hea(base + ".hea");
  CPC_CHECK(hea, base, ".hea: cannot create");
  hea << name << ' ' << c << ' ' << rate << ' ' << n << '\n';
  for (int64_t s = 0; s < c; ++s) {
    const WfdbWriteSignal& w = signals[static_cast<size_t>(s)];
    uint32_t sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<uint32_t>(adc[static_cast<size_t>(s * n + i)]);
    const int32_t init = n ? adc[static_cast<size_t>(s * n)] : 0;
    hea << name << ".dat " << format << ' ' << w.gain << '(' << w.baseline << ")/" << w.units << ' '
        << (format == 16 ? 16 : 12) << " 0 " << init << ' ' << static_cast<int16_t>(sum & 0xFFFFu) << " 0 "
        << w.description << '\n';
  }
  CPC_CHECK(dat.good() && hea.good(), base, ": cannot write the record");
}

}  // namespace cpc::tools
