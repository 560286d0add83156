#pragma once
// A synthetic 12-lead ECG generator, so the default demo needs no download.
// Each beat is a sum of P, Q, R, S and T Gaussian waves over the cardiac phase (the
// closed form of McSharry et al.'s ECGSYN dynamical model), each wave with a 3-D
// cardiac vector projected onto the 12 standard lead directions. Beat times follow
// a rhythm class with heart-rate variability, in rate ranges that overlap between
// classes as their clinical definitions do; per-recording gains, noise, mains
// interference and baseline wander vary widely, so a probe is not at its ceiling.
#include <cstdint>
#include <string>

namespace cpc::tools {

enum class Rhythm : int { normal = 0, tachycardia = 1, bradycardia = 2, irregular = 3, ectopic = 4 };
constexpr int kNumRhythms = 5;
const char* rhythm_name(Rhythm r);

struct SynthEcgOptions {
  int64_t recordings = 500;
  double rate = 500.0;    // Hz
  double seconds = 10.0;  // per recording
  double test_fraction = 0.2;
  uint64_t seed = 0;
};

// Writes layout (a): signals (N, 12, L) float32 in millivolts, `rhythm` (class per
// recording, balanced), `split` (0 train / 1 test), attribute labels = "rhythm".
void write_synthetic_ecg(const std::string& path, const SynthEcgOptions& o);

// One recording (12 x L, row-major) of a rhythm; exposed for tests.
void synthesize_ecg(Rhythm rhythm, const SynthEcgOptions& o, uint64_t seed, float* out, int64_t length);

}  // namespace cpc::tools
