#pragma once
// PhysioNet WFDB records (header(5) and signal(5) of the WFDB Applications Guide):
// the .hea header and the signal files of formats 16 (little-endian int16) and 212
// (pairs of 12-bit two's-complement samples packed in 3 bytes), including several
// signals multiplexed in one file. Plus a writer of both formats for the tests.
#include <cstdint>
#include <string>
#include <vector>

namespace cpc::tools {

struct WfdbSignal {
  std::string file;  // relative to the header's directory
  int format = 0;    // 16 or 212 are readable
  int samples_per_frame = 1;
  int skew = 0;
  int64_t byte_offset = 0;
  double gain = 200;  // ADC units per physical unit; 0 or missing in the header means 200
  int baseline = 0;   // ADC value of physical zero; defaults to adc_zero
  std::string units = "mV";
  int adc_resolution = 12;  // bits; informational
  int adc_zero = 0;
  int initial_value = 0;
  bool has_checksum = false;
  int checksum = 0;  // 16-bit sum of the signal's samples
  int block_size = 0;
  std::string description;  // e.g. the lead name; defaults to "record NAME, signal i"
};

struct WfdbHeader {
  std::string name;
  double rate = 250;     // Hz, WFDB's default
  int64_t samples = -1;  // per signal; -1 when the header leaves it to the file size
  std::vector<WfdbSignal> signals;
};

// Parses a .hea file. Throws cpc::Error naming the file and line on malformed input
// and on what the reader does not support (multi-segment records).
WfdbHeader parse_wfdb_header(const std::string& hea_path);

struct WfdbRecord {
  WfdbHeader header;
  int64_t samples = 0;                // per signal
  std::vector<float> physical;        // (signals x samples): (adc - baseline) / gain
  std::vector<std::string> warnings;  // checksum mismatches: WFDB's tools warn and read on
};

// Reads a record's signals in physical units. Errors (naming the record and file):
// formats other than 16/212, several samples per frame or skew, header/data length
// mismatch, WFDB's missing-sample value (-32768 / -2048).
WfdbRecord read_wfdb_record(const std::string& hea_path);

struct WfdbWriteSignal {
  std::string description;
  std::string units = "mV";
  double gain = 200;
  int baseline = 0;
};

// Writes dir/name.hea and dir/name.dat (all signals multiplexed, format 16 or 212)
// from ADC values adc[s * samples + i], with checksums and initial values.
void write_wfdb_record(const std::string& dir, const std::string& name, int format, double rate,
                       const std::vector<WfdbWriteSignal>& signals, const std::vector<int32_t>& adc, int64_t samples);

}  // namespace cpc::tools
