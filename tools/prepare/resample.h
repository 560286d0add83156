#pragma once
// Band-limited resampling between arbitrary rates (44100 -> 16000, 8000 -> 16000,
// 22050 -> 16000, or irrational ratios).
//
// The filter: a Kaiser-windowed sinc, evaluated in input-sample time, with its -6 dB
// cutoff at 0.95 x min(in, out) / 2 and a transition band of +-5% of that Nyquist
// around it: flat (ripple < 0.01 dB) up to 0.9 x Nyquist, >= 80 dB down from the
// Nyquist of the slower rate on (Kaiser beta = 7.86, about 5 / (0.05 min(1, out/in))
// taps). Output sample n sits at input time n * in / out (zero phase, no delay); the
// signal is zero outside the recording.
//
// Polyphase: when in / out reduces to L / M with L <= 4096 (integer rates), one
// exact tap set per phase; otherwise 512 tabulated phases, linearly interpolated.
// Every phase is normalised to unit DC gain.
#include <cstdint>
#include <memory>
#include <map>
#include <vector>

namespace cpc::tools {

class Resampler {
 public:
  Resampler(double in_rate, double out_rate);

  double in_rate() const { return in_rate_; }
  double out_rate() const { return out_rate_; }
  int taps() const { return taps_; }  // per output sample
  bool exact_phases() const { return exact_; }
  // Output samples covering input times [0, n): ceil(n * out / in).
  int64_t output_length(int64_t n) const;
  // out must hold output_length(n) samples.
  void process(const float* in, int64_t n, float* out) const;
  std::vector<float> process(const std::vector<float>& in) const;

 private:
  double in_rate_, out_rate_;
  int taps_ = 0;  // 2 * half-width, in input samples
  bool exact_ = false;
  int64_t up_ = 1, down_ = 1;  // exact: input time of output n is n * down_ / up_
  int phases_ = 0;             // rows of table_ (exact: up_; interpolated: 512 + 1)
  std::vector<float> table_;   // phases_ x taps_
};

// Resamplers by source rate, for one target rate (one filter design per rate met).
using Resamplers = std::map<double, std::unique_ptr<Resampler>>;
// Appends a recording (dst.size() channels x frames, row-major) to the per-channel
// buffers dst, resampled from `from` to `to` Hz when they differ; returns the number of
// samples appended per channel.
int64_t append_resampled(const float* x, int64_t frames, double from, double to, std::vector<std::vector<float>>& dst,
                         Resamplers& cache);

}  // namespace cpc::tools
