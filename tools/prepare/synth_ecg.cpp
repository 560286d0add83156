#include "tools/prepare/synth_ecg.h"

#include <cmath>
#include <random>
#include <vector>

#include "engine/core/error.h"
#include "engine/data/h5_file.h"

namespace cpc::tools {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Lead directions in the frontal (x: left, y: down) and horizontal (z: posterior)
// planes: I, II, III, aVR, aVL, aVF, V1..V6.
struct Vec3 {
  double x, y, z;
};
const Vec3 kLeads[12] = {{1, 0, 0},          {0.5, 0.866, 0},    {-0.5, 0.866, 0},   {-0.866, -0.5, 0},
                         {0.866, -0.5, 0},   {0, 1, 0},          {-0.3, 0.2, -0.93}, {0, 0.2, -0.98},
                         {0.4, 0.25, -0.88}, {0.7, 0.25, -0.67}, {0.9, 0.25, -0.36}, {1, 0.25, 0}};

struct Wave {
  double theta;  // phase of the peak (radians, R at 0)
  double width;  // Gaussian width (radians)
  Vec3 v;        // cardiac vector (mV)
};

double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }

}  // namespace

const char* rhythm_name(Rhythm r) {
  switch (r) {
    case Rhythm::normal:
      return "normal";
    case Rhythm::tachycardia:
      return "tachycardia";
    case Rhythm::bradycardia:
      return "bradycardia";
    case Rhythm::irregular:
      return "irregular";
    case Rhythm::ectopic:
      return "ectopic";
  }
  return "?";
}

void synthesize_ecg(Rhythm rhythm, const SynthEcgOptions& o, uint64_t seed, float* out, int64_t L) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01(0.0, 1.0);
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  auto jitter = [&](double v, double rel) { return v * (1.0 + rel * n01(rng)); };

  // Per-recording morphology: ECGSYN's defaults with a little variation per person.
  const double axis = 0.35 + 0.35 * n01(rng) * 0.5;  // electrical axis tilt
  const Vec3 r_dir{std::cos(axis), std::sin(axis) + 0.6, -0.5};
  std::vector<Wave> normal{
      {-1.22, 0.25, {jitter(0.10, 0.2), jitter(0.12, 0.2), 0.02}},            // P
      {-0.26, 0.10, {jitter(-0.05, 0.2), -0.08, 0.10}},                       // Q
      {0.00, 0.10, {jitter(r_dir.x, 0.15), jitter(r_dir.y, 0.15), r_dir.z}},  // R
      {0.26, 0.10, {jitter(-0.10, 0.2), -0.25, -0.35}},                       // S
      {1.75, 0.40, {jitter(0.20, 0.2), jitter(0.25, 0.2), -0.05}},            // T
  };
  // A premature ventricular beat: no P, wide bizarre QRS, discordant T.
  const std::vector<Wave> pvc{
      {-0.10, 0.30, {-0.6, 0.9, 0.8}}, {0.35, 0.30, {0.3, -0.6, -0.5}}, {1.60, 0.50, {-0.2, -0.3, 0.1}}};

  // Beat times. Heart-rate ranges as clinically defined, so classes overlap in rate the
  // way real ones do: AF and ectopy occur at any rate, and only the rhythm's regularity
  // (or the premature beats) tells them from sinus rhythm.
  double hr = 0, hrv = 0;
  switch (rhythm) {
    case Rhythm::normal:
      hr = 60 + 40 * u01(rng), hrv = 0.02 + 0.04 * u01(rng);
      break;
    case Rhythm::tachycardia:
      hr = 100 + 60 * u01(rng), hrv = 0.01 + 0.02 * u01(rng);
      break;
    case Rhythm::bradycardia:
      hr = 38 + 22 * u01(rng), hrv = 0.02 + 0.04 * u01(rng);
      break;
    case Rhythm::irregular:
      hr = 60 + 90 * u01(rng), hrv = 0.0;
      break;
    case Rhythm::ectopic:
      hr = 55 + 55 * u01(rng), hrv = 0.02 + 0.04 * u01(rng);
      break;
  }
  const double af_spread = 0.12 + 0.15 * u01(rng);   // how irregular the AF ventricular response is
  const double pvc_rate = 0.10 + 0.20 * u01(rng);    // share of premature beats
  const double seconds = static_cast<double>(L) / o.rate;
  struct Beat {
    double t_r, rr;
    bool ectopic;
  };
  std::vector<Beat> beats;
  double t = -1.0 + u01(rng), resp_phase = 2 * kPi * u01(rng);
  while (t < seconds + 1.5) {
    double rr = 60.0 / hr;
    if (rhythm == Rhythm::irregular) {
      rr *= std::exp(af_spread * n01(rng));  // AF: irregularly irregular
    } else {
      // Respiratory sinus arrhythmia plus Mayer waves (the HRV of ECGSYN's spectrum).
      rr *=
          1.0 + hrv * (std::sin(2 * kPi * 0.25 * t + resp_phase) + 0.5 * std::sin(2 * kPi * 0.1 * t)) + 0.01 * n01(rng);
    }
    bool ect = false;
    if (rhythm == Rhythm::ectopic && !beats.empty() && !beats.back().ectopic && u01(rng) < pvc_rate) {
      ect = true;
      rr *= 0.6;  // premature
    } else if (!beats.empty() && beats.back().ectopic) {
      rr = 2.0 * 60.0 / hr - beats.back().rr;  // compensatory pause
    }
    beats.push_back({t, rr, ect});
    t += rr;
  }

  // Recording conditions vary far more between people and sessions than the rhythm
  // does: body habitus scales every lead, electrode placement each lead, and the noise
  // (muscle, mains, breathing) ranges from clean to poor.
  const double wander_f = 0.15 + 0.2 * u01(rng), wander_a = 0.05 + 0.25 * u01(rng), wander_p = 2 * kPi * u01(rng);
  const double noise = 0.01 + 0.07 * u01(rng);
  const double mains_a = 0.05 * u01(rng), mains_f = u01(rng) < 0.5 ? 50.0 : 60.0, mains_p = 2 * kPi * u01(rng);
  const double body_gain = std::exp(0.3 * n01(rng));
  double lead_gain[12];
  for (double& g : lead_gain) g = body_gain * std::exp(0.15 * n01(rng));
  const double f_wave_f = 5 + 3 * u01(rng);  // AF fibrillatory waves (4-8 Hz)
  for (int64_t i = 0; i < L; ++i) {
    const double ti = static_cast<double>(i) / o.rate;
    Vec3 v{0, 0, 0};
    // The beats whose waves reach ti: phase = 2 pi (ti - t_R) / RR, R at phase 0.
    for (const Beat& b : beats) {
      const double phase = 2 * kPi * (ti - b.t_r) / b.rr;
      if (phase < -2.5 * kPi / 2 || phase > 2.2 * kPi / 2 + 1.5) continue;
      const std::vector<Wave>& waves = b.ectopic ? pvc : normal;
      for (size_t w = 0; w < waves.size(); ++w) {
        if (rhythm == Rhythm::irregular && !b.ectopic && w == 0) continue;  // no P waves in AF
        const double d = phase - waves[w].theta;
        const double g = std::exp(-d * d / (2 * waves[w].width * waves[w].width));
        v.x += waves[w].v.x * g, v.y += waves[w].v.y * g, v.z += waves[w].v.z * g;
      }
    }
    if (rhythm == Rhythm::irregular) {
      const double f = 0.04 * std::sin(2 * kPi * f_wave_f * ti) + 0.02 * std::sin(2 * kPi * 1.7 * f_wave_f * ti);
      v.x += f, v.y += f;
    }
    const double wander = wander_a * std::sin(2 * kPi * wander_f * ti + wander_p);
    const double mains = mains_a * std::sin(2 * kPi * mains_f * ti + mains_p);
    for (int l = 0; l < 12; ++l)
      out[l * L + i] = static_cast<float>(lead_gain[l] * dot(kLeads[l], v) + wander * (0.5 + 0.1 * l / 12.0) + mains +
                                          noise * n01(rng));
  }
}

void write_synthetic_ecg(const std::string& path, const SynthEcgOptions& o) {
  CPC_CHECK(o.recordings >= 1, "synth-ecg: --n must be >= 1, found ", o.recordings);
  CPC_CHECK(o.rate >= 50 && o.seconds > 0, "synth-ecg: rate ", o.rate, " Hz and ", o.seconds,
            " s must be >= 50 Hz and > 0 s");
  const int64_t L = static_cast<int64_t>(std::llround(o.rate * o.seconds));
  std::vector<float> signals(static_cast<size_t>(o.recordings * 12 * L));
  std::vector<int64_t> rhythm(static_cast<size_t>(o.recordings)), split(static_cast<size_t>(o.recordings));
  std::mt19937_64 rng(o.seed);
  for (int64_t r = 0; r < o.recordings; ++r) {
    rhythm[r] = r % kNumRhythms;  // balanced classes
    split[r] = (static_cast<double>(rng() % 1000) / 1000.0) < o.test_fraction ? 1 : 0;
    synthesize_ecg(static_cast<Rhythm>(rhythm[r]), o, rng(), signals.data() + r * 12 * L, L);
  }
  {
    H5File f(path, H5File::Mode::create);
    f.write_floats("signals", {o.recordings, 12, L}, signals.data());
    f.write_ints("rhythm", rhythm);
    f.write_ints("split", split);
    f.set_attribute("", "labels", "rhythm");
    f.set_attribute("", "rhythm_names", "normal,tachycardia,bradycardia,irregular,ectopic");
    f.set_attribute("", "rate_hz", std::to_string(o.rate));
    f.set_attribute("", "leads", "I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6");
    f.commit();
  }
}

}  // namespace cpc::tools
