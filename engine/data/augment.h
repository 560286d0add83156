#pragma once
// Data augmentation of training windows, applied by the loader's thread on the CPU
// batch before any copy to a device (config `data.augment`, off by default). Each
// window's randomness comes from (seed, step, micro-batch, row) alone, so a resumed run
// draws exactly what the uninterrupted one drew, and ranks draw independently.
//
// Audio (WavAugment-style): additive white noise at a signal-to-noise ratio, gain,
// band-pass filtering, time masking. ECG (the self-supervised ECG literature): the same
// noise and masking, baseline wander, power-line interference, per-lead amplitude
// scaling, lead dropout. Ranges are drawn uniformly per window (per lead where said).
#include <cstdint>
#include <optional>
#include <string>

namespace cpc {

struct AugmentRange {
  double lo = 0, hi = 0;
};

struct AugmentOptions {
  std::optional<AugmentRange> noise_snr_db;  // white noise at this SNR (signal power over the window)
  std::optional<AugmentRange> gain_db;       // the whole window scaled by 10^(g/20)
  struct Bandpass {
    AugmentRange low_hz, high_hz;  // 2nd-order Butterworth high-pass and low-pass corners
    double p = 1.0;                // probability per window
  };
  std::optional<Bandpass> bandpass;
  struct TimeMask {
    int64_t count = 1;  // spans per window, each zeroed on every lead
    double max_s = 0;   // span length drawn from [0, max_s] seconds
  };
  std::optional<TimeMask> time_mask;
  struct Wander {
    AugmentRange amplitude;  // of a sinusoid per lead, in signal units
    double max_hz = 0.5;     // its frequency drawn from [0.05, max_hz]
  };
  std::optional<Wander> baseline_wander;
  struct Powerline {
    AugmentRange amplitude;
    double hz = 50;  // mains frequency (50 or 60)
  };
  std::optional<Powerline> powerline;
  std::optional<AugmentRange> amplitude_scale;  // per lead
  double lead_dropout = 0;                      // probability per lead (one lead always stays)

  bool any() const;
  bool needs_rate() const;  // transforms given in Hz or seconds
  std::string describe() const;
};

// Augments one window x (C, L), row-major, at rate_hz samples per second. `stream`
// identifies the window's draw (step, micro-batch and row folded together by the caller).
void augment_window(const AugmentOptions& o, double rate_hz, uint64_t seed, uint64_t stream, float* x, int64_t C,
                    int64_t L);

}  // namespace cpc
