// Each augmentation does what it says, measured on known signals: the noise's SNR within
// 0.5 dB of the one asked for, gain and scaling exact, the band-pass's pass and stop
// bands, masks on every lead at once, wander slow and bounded, mains interference at its
// frequency and amplitude, lead dropout at its rate; draws repeat for the same stream.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/data/augment.h"
#include "models/cpc_config.h"
#include "tests/support/error_of.h"

namespace cpc {
namespace {

constexpr double kPi = 3.14159265358979323846;
using test::error_of;

std::vector<float> tone(double hz, double rate, int64_t L, int64_t C = 1, double amplitude = 1.0) {
  std::vector<float> x(static_cast<size_t>(C * L));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < L; ++i) x[c * L + i] = static_cast<float>(amplitude * std::sin(2 * kPi * hz * i / rate + c));
  return x;
}

double power(const std::vector<float>& x, size_t from = 0) {
  double p = 0;
  for (size_t i = from; i < x.size(); ++i) p += static_cast<double>(x[i]) * x[i];
  return p / static_cast<double>(x.size() - from);
}

// Amplitude of the `hz` component over x[from:] (projection on sin and cos).
double amplitude_at(const std::vector<float>& x, double hz, double rate, size_t from) {
  double s = 0, c = 0;
  for (size_t i = from; i < x.size(); ++i) {
    s += x[i] * std::sin(2 * kPi * hz * i / rate), c += x[i] * std::cos(2 * kPi * hz * i / rate);
  }
  const double n = static_cast<double>(x.size() - from);
  return 2 * std::hypot(s, c) / n;
}

TEST(Augment, NoiseHasTheRequestedSnr) {
  for (double snr : {0.0, 10.0, 25.0}) {
    AugmentOptions o;
    o.noise_snr_db = AugmentRange{snr, snr};
    const std::vector<float> clean = tone(440, 16000, 32000);
    std::vector<float> x = clean;
    augment_window(o, 16000, 1, 7, x.data(), 1, 32000);
    std::vector<float> noise(x.size());
    for (size_t i = 0; i < x.size(); ++i) noise[i] = x[i] - clean[i];
    const double measured = 10 * std::log10(power(clean) / power(noise));
    EXPECT_NEAR(measured, snr, 0.5) << "SNR asked " << snr << " dB";
  }
}

TEST(Augment, GainAndLeadScalingAreExact) {
  AugmentOptions o;
  o.gain_db = AugmentRange{6, 6};
  std::vector<float> x = tone(5, 100, 50, 3);
  const std::vector<float> x0 = x;
  augment_window(o, 100, 1, 1, x.data(), 3, 50);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_FLOAT_EQ(x[i], x0[i] * static_cast<float>(std::pow(10.0, 0.3)));
  AugmentOptions s;
  s.amplitude_scale = AugmentRange{0.5, 1.5};
  x = x0;
  augment_window(s, 100, 1, 2, x.data(), 3, 50);
  const double f0 = x[1] / x0[1], f1 = x[51] / x0[51];
  EXPECT_GE(f0, 0.5);
  EXPECT_LE(f0, 1.5);
  EXPECT_NE(f0, f1) << "one factor per lead";
  for (int64_t i = 0; i < 50; ++i) EXPECT_NEAR(x[i], x0[i] * f0, 1e-6);
}

TEST(Augment, BandpassPassesTheBandAndStopsTheRest) {
  AugmentOptions o;
  o.bandpass = AugmentOptions::Bandpass{{300, 300}, {3000, 3000}, 1.0};
  const double rate = 16000;
  auto gain_db = [&](double hz) {
    std::vector<float> x = tone(hz, rate, 16000);
    augment_window(o, rate, 1, 1, x.data(), 1, 16000);
    return 20 * std::log10(amplitude_at(x, hz, rate, 8000));  // past the filters' transient
  };
  EXPECT_NEAR(gain_db(1000), 0.0, 1.0);
  EXPECT_LT(gain_db(40), -30.0);   // 3 octaves below 300 Hz at 12 dB per octave
  EXPECT_LT(gain_db(7500), -12.0);  // 1.3 octaves above 3 kHz
  std::vector<float> x = tone(1000, rate, 100);
  EXPECT_NE(error_of([&] { augment_window(o, 0, 1, 1, x.data(), 1, 100); }).find("needs the data's sample rate"),
            std::string::npos);
}

TEST(Augment, TimeMasksZeroTheSameSpanOnEveryLead) {
  AugmentOptions o;
  o.time_mask = AugmentOptions::TimeMask{3, 0.05};
  const int64_t C = 4, L = 1000;
  int64_t masked_total = 0;
  for (uint64_t stream = 0; stream < 20; ++stream) {
    std::vector<float> x(static_cast<size_t>(C * L), 1.f);
    augment_window(o, 1000, 3, stream, x.data(), C, L);
    int64_t zeros = 0;
    for (int64_t i = 0; i < L; ++i) {
      for (int64_t c = 1; c < C; ++c) ASSERT_EQ(x[c * L + i], x[i]) << "lead " << c << " at " << i;
      zeros += x[i] == 0.f;
    }
    EXPECT_LE(zeros, 3 * 50);
    masked_total += zeros;
  }
  EXPECT_GT(masked_total, 20 * 3 * 10);  // about a quarter of the 3 x 50 samples per window, on average
}

TEST(Augment, BaselineWanderIsSlowAndBounded) {
  AugmentOptions o;
  o.baseline_wander = AugmentOptions::Wander{{0.3, 0.3}, 0.5};
  const double rate = 500;
  std::vector<float> x(2 * 5000, 0.f);
  augment_window(o, rate, 1, 1, x.data(), 2, 5000);
  double peak = 0;
  for (size_t i = 0; i + 1 < x.size(); ++i) {
    peak = std::max(peak, std::fabs(static_cast<double>(x[i])));
    if (i % 5000 != 4999) {
      EXPECT_LE(std::fabs(x[i + 1] - x[i]), 2 * kPi * 0.5 / rate * 0.3 + 1e-6) << i;
    }
  }
  EXPECT_LE(peak, 0.3 + 1e-6);
  EXPECT_GT(peak, 0.05);
}

TEST(Augment, PowerlineAddsMainsAtItsAmplitude) {
  AugmentOptions o;
  o.powerline = AugmentOptions::Powerline{{0.1, 0.1}, 60};
  std::vector<float> x(3000, 0.f);
  augment_window(o, 500, 1, 1, x.data(), 1, 3000);
  EXPECT_NEAR(amplitude_at(x, 60, 500, 0), 0.1, 1e-3);
  EXPECT_LT(amplitude_at(x, 50, 500, 0), 5e-3);
}

TEST(Augment, LeadDropoutAtItsRateKeepingOneLead) {
  AugmentOptions o;
  o.lead_dropout = 0.5;
  const int64_t C = 12, L = 10;
  int64_t dropped = 0, windows = 400;
  for (int64_t w = 0; w < windows; ++w) {
    std::vector<float> x(static_cast<size_t>(C * L), 1.f);
    augment_window(o, 500, 9, static_cast<uint64_t>(w), x.data(), C, L);
    int64_t here = 0;
    for (int64_t c = 0; c < C; ++c) here += x[c * L] == 0.f;
    EXPECT_LT(here, C);
    dropped += here;
  }
  EXPECT_NEAR(static_cast<double>(dropped) / (C * windows), 0.5, 0.05);
}

TEST(Augment, DrawsDependOnSeedAndStreamOnly) {
  AugmentOptions o;
  o.noise_snr_db = AugmentRange{5, 20};
  o.gain_db = AugmentRange{-3, 3};
  auto run = [&](uint64_t seed, uint64_t stream) {
    std::vector<float> x = tone(10, 100, 200, 2);
    augment_window(o, 100, seed, stream, x.data(), 2, 200);
    return x;
  };
  EXPECT_EQ(run(1, 5), run(1, 5));
  EXPECT_NE(run(1, 5), run(1, 6));
  EXPECT_NE(run(1, 5), run(2, 5));
}

TEST(Augment, ConfigIsValidatedNamingTheKey) {
  auto config_with = [](const std::string& augment) {
    nlohmann::json j = nlohmann::json::parse(R"({"encoder": {"layers": [{"channels": 8, "kernel": 4, "stride": 2}]}})");
    j["data"] = {{"augment", nlohmann::json::parse(augment)}};
    return CpcConfig::from_json(j, "c.json:");
  };
  EXPECT_TRUE(config_with(R"({"noise_snr_db": [10, 30], "lead_dropout": 0.2})").augment.any());
  EXPECT_NE(error_of([&] { config_with(R"({"noise_snr_db": [30, 10]})"); })
                .find("c.json: data.augment.noise_snr_db: expected -20 <= lo <= hi <= 100, found [30,10]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { config_with(R"({"reverb": 1})"); }).find("unknown key 'reverb'"), std::string::npos);
  EXPECT_NE(error_of([&] { config_with(R"({"bandpass": {"low_hz": [500, 600], "high_hz": [400, 800]}})"); })
                .find("every low corner below every high one"),
            std::string::npos);
  EXPECT_NE(error_of([&] { config_with(R"({"lead_dropout": 1})"); }).find("probability below 1"), std::string::npos);
}

}  // namespace
}  // namespace cpc
