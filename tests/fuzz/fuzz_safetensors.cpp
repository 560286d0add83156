// libFuzzer target: the safetensors reader (what `load_encoder.py` reads back, and the
// bench's exchange format) on arbitrary bytes.
#include "engine/core/error.h"
#include "engine/data/safetensors_file.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cpc::fuzz::write_input("in.safetensors", data, size);
  try {
    std::map<std::string, std::string> meta;
    const auto tensors = cpc::load_safetensors(path, &meta);
    for (const auto& [name, t] : tensors)
      if (t.numel() * 4 > static_cast<int64_t>(size)) __builtin_trap();  // data beyond the file
  } catch (const cpc::Error&) {
  }
  return 0;
}
