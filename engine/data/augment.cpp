#include "engine/data/augment.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <vector>

#include "engine/core/error.h"
#include "engine/core/random.h"

namespace cpc {

namespace {

constexpr double kPi = 3.14159265358979323846;

double uniform(std::mt19937_64& g, const AugmentRange& r) {
  return r.lo + (r.hi - r.lo) * std::uniform_real_distribution<double>(0.0, 1.0)(g);
}

// A 2nd-order Butterworth section (RBJ cookbook, Q = 1/sqrt(2)), run forward in double.
void biquad(float* x, int64_t L, double rate, double f0, bool highpass) {
  const double w0 = 2 * kPi * f0 / rate, c = std::cos(w0), alpha = std::sin(w0) / std::sqrt(2.0);
  const double b0 = highpass ? (1 + c) / 2 : (1 - c) / 2, b1 = highpass ? -(1 + c) : 1 - c, b2 = b0;
  const double a0 = 1 + alpha, a1 = -2 * c, a2 = 1 - alpha;
  double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  for (int64_t i = 0; i < L; ++i) {
    const double v = x[i];
    const double y = (b0 * v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2) / a0;
    x2 = x1, x1 = v, y2 = y1, y1 = y;
    x[i] = static_cast<float>(y);
  }
}

void check_range(const AugmentRange& r, const char* what) {
  CPC_CHECK(std::isfinite(r.lo) && std::isfinite(r.hi) && r.lo <= r.hi, "data.augment.", what, ": [", r.lo, ", ",
            r.hi, "] is not a range [lo, hi]");
}

}  // namespace

bool AugmentOptions::any() const {
  return noise_snr_db || gain_db || bandpass || time_mask || baseline_wander || powerline || amplitude_scale ||
         lead_dropout > 0;
}

bool AugmentOptions::needs_rate() const { return bandpass || time_mask || baseline_wander || powerline; }

std::string AugmentOptions::describe() const {
  std::ostringstream s;
  auto range = [&](const char* name, const AugmentRange& r, const char* unit) {
    s << (s.tellp() > 0 ? ", " : "") << name << " " << r.lo << ".." << r.hi << unit;
  };
  if (noise_snr_db) range("noise at SNR", *noise_snr_db, " dB");
  if (gain_db) range("gain", *gain_db, " dB");
  if (bandpass)
    s << (s.tellp() > 0 ? ", " : "") << "band-pass " << bandpass->low_hz.lo << ".." << bandpass->low_hz.hi << " to "
      << bandpass->high_hz.lo << ".." << bandpass->high_hz.hi << " Hz (p " << bandpass->p << ")";
  if (time_mask) s << (s.tellp() > 0 ? ", " : "") << time_mask->count << " time masks of up to " << time_mask->max_s << " s";
  if (baseline_wander) range("baseline wander", baseline_wander->amplitude, "");
  if (powerline) s << (s.tellp() > 0 ? ", " : "") << powerline->hz << " Hz interference";
  if (amplitude_scale) range("lead scale", *amplitude_scale, "x");
  if (lead_dropout > 0) s << (s.tellp() > 0 ? ", " : "") << "lead dropout " << lead_dropout;
  return s.str();
}

void augment_window(const AugmentOptions& o, double rate, uint64_t seed, uint64_t stream, float* x, int64_t C,
                    int64_t L) {
  if (!o.any() || C == 0 || L == 0) return;
  CPC_CHECK(!o.needs_rate() || rate > 0, "data.augment: ", o.describe(),
            " needs the data's sample rate (the file's rate_hz attribute)");
  std::mt19937_64 g(splitmix64(splitmix64(seed) ^ stream));  // the window's own generator
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  const int64_t n = C * L;
  if (o.amplitude_scale) {
    check_range(*o.amplitude_scale, "amplitude_scale");
    for (int64_t c = 0; c < C; ++c) {
      const float f = static_cast<float>(uniform(g, *o.amplitude_scale));
      for (int64_t i = 0; i < L; ++i) x[c * L + i] *= f;
    }
  }
  if (o.gain_db) {
    check_range(*o.gain_db, "gain_db");
    const float f = static_cast<float>(std::pow(10.0, uniform(g, *o.gain_db) / 20));
    for (int64_t i = 0; i < n; ++i) x[i] *= f;
  }
  if (o.bandpass && u01(g) < o.bandpass->p) {
    const double nyquist = rate / 2;
    const double lo = uniform(g, o.bandpass->low_hz), hi = uniform(g, o.bandpass->high_hz);
    CPC_CHECK(0 < lo && lo < hi && hi < nyquist, "data.augment.bandpass: corners ", lo, " and ", hi,
              " Hz must satisfy 0 < low < high < ", nyquist, " Hz (half the sample rate)");
    for (int64_t c = 0; c < C; ++c) {
      biquad(x + c * L, L, rate, lo, true);
      biquad(x + c * L, L, rate, hi, false);
    }
  }
  if (o.baseline_wander) {
    check_range(o.baseline_wander->amplitude, "baseline_wander.amplitude");
    for (int64_t c = 0; c < C; ++c) {
      const double a = uniform(g, o.baseline_wander->amplitude);
      const double f = 0.05 + (std::max(o.baseline_wander->max_hz, 0.05) - 0.05) * u01(g), ph = 2 * kPi * u01(g);
      for (int64_t i = 0; i < L; ++i) x[c * L + i] += static_cast<float>(a * std::sin(2 * kPi * f * i / rate + ph));
    }
  }
  if (o.powerline) {
    check_range(o.powerline->amplitude, "powerline.amplitude");
    for (int64_t c = 0; c < C; ++c) {
      const double a = uniform(g, o.powerline->amplitude), ph = 2 * kPi * u01(g);
      for (int64_t i = 0; i < L; ++i)
        x[c * L + i] += static_cast<float>(a * std::sin(2 * kPi * o.powerline->hz * i / rate + ph));
    }
  }
  if (o.noise_snr_db) {  // after the other transforms: the SNR is of what the model sees
    check_range(*o.noise_snr_db, "noise_snr_db");
    double power = 0;
    for (int64_t i = 0; i < n; ++i) power += static_cast<double>(x[i]) * x[i];
    power /= static_cast<double>(n);
    const double sigma = std::sqrt(power / std::pow(10.0, uniform(g, *o.noise_snr_db) / 10));
    std::normal_distribution<double> noise(0.0, 1.0);
    for (int64_t i = 0; i < n; ++i) x[i] += static_cast<float>(sigma * noise(g));
  }
  if (o.time_mask) {
    const int64_t max_len = std::min<int64_t>(L, static_cast<int64_t>(std::llround(o.time_mask->max_s * rate)));
    for (int64_t k = 0; k < o.time_mask->count; ++k) {
      const int64_t len = static_cast<int64_t>(u01(g) * static_cast<double>(max_len + 1));
      const int64_t start = static_cast<int64_t>(u01(g) * static_cast<double>(L - std::min(len, L) + 1));
      for (int64_t c = 0; c < C; ++c)
        std::fill(x + c * L + start, x + c * L + std::min(L, start + len), 0.f);
    }
  }
  if (o.lead_dropout > 0 && C > 1) {
    std::vector<char> drop(static_cast<size_t>(C));
    int64_t kept = 0;
    for (int64_t c = 0; c < C; ++c) kept += !(drop[static_cast<size_t>(c)] = u01(g) < o.lead_dropout);
    if (kept == 0) drop[static_cast<size_t>(g() % static_cast<uint64_t>(C))] = 0;  // one lead always stays
    for (int64_t c = 0; c < C; ++c)
      if (drop[static_cast<size_t>(c)]) std::fill(x + c * L, x + (c + 1) * L, 0.f);
  }
}

}  // namespace cpc
