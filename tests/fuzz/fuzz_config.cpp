// libFuzzer target: the JSON config loader with --set overrides. The input is a config
// file; each line after the first NUL byte is one `--set key=value`.
#include <cstring>
#include <sstream>

#include "engine/core/error.h"
#include "models/cpc_config.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t json = nul ? static_cast<size_t>(nul - data) : size;
  const std::string path = cpc::fuzz::write_input("config.json", data, json);
  std::vector<std::string> overrides;
  if (nul) {
    std::stringstream ss(std::string(reinterpret_cast<const char*>(nul + 1), size - json - 1));
    for (std::string line; std::getline(ss, line);) overrides.push_back(line);
  }
  try {
    const cpc::CpcConfig c = cpc::CpcConfig::load(path, overrides);
    if (c.encoder.out_length(c.window) < c.K + 1) __builtin_trap();  // load promises enough steps
  } catch (const cpc::Error&) {
  }
  return 0;
}
