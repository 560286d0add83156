// libFuzzer target: the WAV reader (prepare wav) on arbitrary bytes. A cpc::Error is
// the expected answer to a bad file; anything else (a crash, a sanitizer report, another
// exception) is a finding.
#include "engine/core/error.h"
#include "tests/fuzz/fuzz_input.h"
#include "tools/prepare/wav_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cpc::fuzz::write_input("in.wav", data, size);
  try {
    const cpc::tools::WavAudio a = cpc::tools::read_wav(path);
    if (static_cast<int64_t>(a.samples.size()) != a.channels * a.frames) __builtin_trap();
  } catch (const cpc::Error&) {
  }
  return 0;
}
