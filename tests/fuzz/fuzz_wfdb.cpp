// libFuzzer target: the WFDB header parser and signal reader (prepare wfdb). The input
// is a header (rec.hea) and, after the first NUL byte, the signal file (rec.dat).
#include <cstring>

#include "engine/core/error.h"
#include "tests/fuzz/fuzz_input.h"
#include "tools/prepare/wfdb_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t hea = nul ? static_cast<size_t>(nul - data) : size;
  const std::string path = cpc::fuzz::write_input("rec.hea", data, hea);
  cpc::fuzz::write_input("rec.dat", nul ? nul + 1 : data + size, nul ? size - hea - 1 : 0);
  try {
    const cpc::tools::WfdbRecord r = cpc::tools::read_wfdb_record(path);
    if (r.physical.size() != r.header.signals.size() * static_cast<size_t>(r.samples)) __builtin_trap();
  } catch (const cpc::Error&) {
  }
  return 0;
}
