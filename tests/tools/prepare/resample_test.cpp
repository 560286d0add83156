// The resampler's passband and stopband.
#include "tests/tools/prepare/prepare_test_util.h"

namespace cpc::tools {
namespace {

using namespace prepare_test;  // fs, AllOf, HasSubstr, the files and helpers

TEST(PrepareResample, OneKilohertzKeepsAmplitudeAndFrequency) {
  for (auto [in_rate, out_rate] : {std::pair{44100.0, 16000.0},
                                   {8000.0, 16000.0},
                                   {22050.0, 16000.0},
                                   {48000.0, 16000.0},
                                   {44100.0, 16000.0 * std::sqrt(2.0)},
                                   {16000.0, 8000.0 * kPi}}) {
    SCOPED_TRACE(::testing::Message() << in_rate << " -> " << out_rate);
    const Resampler r(in_rate, out_rate);
    const std::vector<float> x = sine(1000, in_rate, static_cast<int64_t>(in_rate), 0.8);
    const std::vector<float> y = r.process(x);
    EXPECT_EQ(static_cast<int64_t>(y.size()), static_cast<int64_t>(std::ceil(in_rate * out_rate / in_rate - 1e-6)));
    const Fit f = fit_sine(y, 1000, out_rate, 0.8);
    EXPECT_NEAR(f.amplitude, 0.8, 0.008);  // within 1%
    EXPECT_LT(f.residual, 0.01);           // the ideal sine in phase and frequency, to 1%
  }
  EXPECT_TRUE(Resampler(44100, 16000).exact_phases());
  EXPECT_FALSE(Resampler(44100, 16000 * std::sqrt(2.0)).exact_phases());
  EXPECT_EQ(Resampler(44100, 16000).output_length(44100), 16000);
  EXPECT_EQ(Resampler(8000, 16000).output_length(3), 6);
}

TEST(PrepareResample, ToneAboveTheNewNyquistIsRemoved) {
  for (auto [freq, in_rate, out_rate] : {std::tuple{10000.0, 44100.0, 16000.0},
                                         {9000.0, 22050.0, 16000.0},
                                         {8600.0, 44100.0, 16000.0 * std::sqrt(2.0) / 1.4}}) {
    SCOPED_TRACE(::testing::Message() << freq << " Hz, " << in_rate << " -> " << out_rate);
    const std::vector<float> x = sine(freq, in_rate, static_cast<int64_t>(in_rate), 1.0);
    const std::vector<float> y = Resampler(in_rate, out_rate).process(x);
    double e = 0;
    const size_t lo = y.size() / 5, hi = y.size() - y.size() / 5;
    for (size_t i = lo; i < hi; ++i) e += static_cast<double>(y[i]) * y[i];
    const double rms = std::sqrt(e / static_cast<double>(hi - lo));
    const double db = 20 * std::log10(rms / std::sqrt(0.5));
    EXPECT_LT(db, -40.0);
    EXPECT_LT(db, -70.0) << "designed for 80 dB";
  }
}

TEST(PrepareResample, ConstantStaysConstantAndPassbandIsFlat) {
  const std::vector<float> one(8000, 1.0f);
  const std::vector<float> y = Resampler(8000, 16000).process(one);
  for (size_t i = 200; i + 200 < y.size(); ++i) ASSERT_NEAR(y[i], 1.0f, 1e-4f) << i;
  // 0.85 x the output Nyquist is in the passband: amplitude within 0.1%.
  const std::vector<float> x = sine(6800, 44100, 44100, 0.5);
  EXPECT_NEAR(fit_sine(Resampler(44100, 16000).process(x), 6800, 16000, 0.5).amplitude, 0.5, 0.0005);
}

}  // namespace
}  // namespace cpc::tools
