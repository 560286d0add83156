#include "tools/prepare/resample.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "engine/core/error.h"

namespace cpc::tools {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kRolloff = 0.95;        // -6 dB point, as a fraction of the slower Nyquist
constexpr double kAttenuationDb = 80.0;  // stopband, from the slower Nyquist on
constexpr int64_t kMaxExactPhases = 4096;
constexpr int kInterpolatedPhases = 512;

double bessel_i0(double x) {  // power series; converges fast for the betas used here
  double sum = 1, term = 1;
  for (int k = 1; k < 200 && term > 1e-15 * sum; ++k) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
  }
  return sum;
}

bool is_integer(double v) { return v == std::floor(v) && v < 9e15; }

}  // namespace

Resampler::Resampler(double in_rate, double out_rate) : in_rate_(in_rate), out_rate_(out_rate) {
  CPC_CHECK(in_rate > 0 && out_rate > 0 && std::isfinite(in_rate) && std::isfinite(out_rate),
            "resample: rates must be positive, found ", in_rate, " Hz -> ", out_rate, " Hz");
  const double ratio = std::min(1.0, out_rate / in_rate);      // slower Nyquist / input Nyquist
  const double g = kRolloff * ratio;                           // cutoff, in cycles per 2 input samples
  const double transition = 2 * (1 - kRolloff) * 0.5 * ratio;  // cycles per input sample
  const double beta = 0.1102 * (kAttenuationDb - 8.7);
  const double half = (kAttenuationDb - 7.95) / (2.285 * 2 * kPi * transition) / 2;  // Kaiser's length estimate
  const int half_taps = static_cast<int>(std::ceil(half));
  taps_ = 2 * half_taps;

  if (is_integer(in_rate) && is_integer(out_rate)) {
    const int64_t a = static_cast<int64_t>(in_rate), b = static_cast<int64_t>(out_rate), d = std::gcd(a, b);
    up_ = b / d, down_ = a / d;
    exact_ = up_ <= kMaxExactPhases;
  }
  phases_ = exact_ ? static_cast<int>(up_) : kInterpolatedPhases + 1;
  const double i0_beta = bessel_i0(beta);
  table_.resize(static_cast<size_t>(phases_) * static_cast<size_t>(taps_));
  for (int p = 0; p < phases_; ++p) {
    // Fractional input time of this phase; tap j multiplies x[floor(t) - half_taps + 1 + j].
    const double phi =
        exact_ ? static_cast<double>(p) / static_cast<double>(up_) : static_cast<double>(p) / kInterpolatedPhases;
    float* row = table_.data() + static_cast<size_t>(p) * static_cast<size_t>(taps_);
    double sum = 0;
    for (int j = 0; j < taps_; ++j) {
      const double tau = phi + half_taps - 1 - j;  // distance from the output time, input samples
      const double x = tau / half;
      double h = 0;
      if (std::abs(x) < 1) {
        const double s = tau == 0 ? 1.0 : std::sin(kPi * g * tau) / (kPi * g * tau);
        h = g * s * bessel_i0(beta * std::sqrt(1 - x * x)) / i0_beta;
      }
      row[j] = static_cast<float>(h);
      sum += h;
    }
    for (int j = 0; j < taps_; ++j) row[j] = static_cast<float>(row[j] / sum);
  }
}

int64_t Resampler::output_length(int64_t n) const {
  if (n <= 0) return 0;
  if (exact_ || up_ > 1 || down_ > 1) return (n * up_ + down_ - 1) / down_;
  return static_cast<int64_t>(std::ceil(static_cast<double>(n) * out_rate_ / in_rate_ - 1e-9));
}

void Resampler::process(const float* in, int64_t n, float* out) const {
  const int64_t n_out = output_length(n);
  const int half_taps = taps_ / 2;
  const double step = in_rate_ / out_rate_;
  std::vector<float> coef(static_cast<size_t>(taps_));
  for (int64_t o = 0; o < n_out; ++o) {
    int64_t base;  // floor of the output's input time
    const float* c;
    if (exact_) {
      const int64_t num = o * down_;
      base = num / up_;
      c = table_.data() + static_cast<size_t>(num % up_) * static_cast<size_t>(taps_);
    } else {
      const double t = static_cast<double>(o) * step;
      base = static_cast<int64_t>(std::floor(t));
      const double pos = (t - static_cast<double>(base)) * kInterpolatedPhases;
      const int p = std::min(static_cast<int>(pos), kInterpolatedPhases - 1);
      const float a = static_cast<float>(pos - p);
      const float* r0 = table_.data() + static_cast<size_t>(p) * static_cast<size_t>(taps_);
      const float* r1 = r0 + taps_;
      for (int j = 0; j < taps_; ++j) coef[static_cast<size_t>(j)] = r0[j] + a * (r1[j] - r0[j]);
      c = coef.data();
    }
    const int64_t first = base - half_taps + 1;
    if (first >= 0 && first + taps_ <= n) {
      // Four partial sums: lets the compiler vectorise without reassociating one sum.
      const float* x = in + first;
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int j = 0;
      for (; j + 4 <= taps_; j += 4) {
        s0 += x[j] * c[j], s1 += x[j + 1] * c[j + 1], s2 += x[j + 2] * c[j + 2], s3 += x[j + 3] * c[j + 3];
      }
      for (; j < taps_; ++j) s0 += x[j] * c[j];
      out[o] = (s0 + s1) + (s2 + s3);
    } else {  // near the ends: zeros outside the recording
      float s = 0;
      const int64_t j0 = std::max<int64_t>(0, -first), j1 = std::min<int64_t>(taps_, n - first);
      for (int64_t j = j0; j < j1; ++j) s += in[first + j] * c[j];
      out[o] = s;
    }
  }
}

std::vector<float> Resampler::process(const std::vector<float>& in) const {
  std::vector<float> out(static_cast<size_t>(output_length(static_cast<int64_t>(in.size()))));
  process(in.data(), static_cast<int64_t>(in.size()), out.data());
  return out;
}

int64_t append_resampled(const float* x, int64_t frames, double from, double to, std::vector<std::vector<float>>& dst,
                         Resamplers& cache) {
  int64_t length = frames;
  for (size_t c = 0; c < dst.size(); ++c) {
    const float* xc = x + c * static_cast<size_t>(frames);
    if (from == to) {
      dst[c].insert(dst[c].end(), xc, xc + frames);
      continue;
    }
    std::unique_ptr<Resampler>& r = cache[from];
    if (!r) r = std::make_unique<Resampler>(from, to);
    length = r->output_length(frames);
    const size_t at = dst[c].size();
    dst[c].resize(at + static_cast<size_t>(length));
    r->process(xc, frames, dst[c].data() + at);
  }
  return length;
}

}  // namespace cpc::tools
