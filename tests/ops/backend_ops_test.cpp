// Runs the backend-ops table (op_case.h) on every registered backend with a device:
// BackendOps/<case>/<backend>. Without a GPU the CUDA instances skip with the reason;
// on one (the GPU check runs this binary) they compare with the CPU backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <string>

#include "engine/core/error.h"
#include "kernels/cpu/cpu_options.h"
#include "tests/ops/op_case.h"
#include "tests/support/error_of.h"

namespace cpc::ops_test {

std::vector<OpCase>& registry() {
  static std::vector<OpCase> r;
  return r;
}

namespace {

uint32_t seed_of(const std::string& name) {  // stable per case (FNV-1a)
  uint32_t h = 2166136261u;
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return h;
}

std::vector<std::vector<float>> make_inputs(const OpCase& c) {
  std::mt19937 gen(seed_of(c.name));
  std::vector<std::vector<float>> in;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    const Inputs kind = i < c.kinds.size() ? c.kinds[i] : Inputs::uniform;
    std::vector<float> v(static_cast<size_t>(c.inputs[i].numel()));
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    switch (kind) {
      case Inputs::uniform:
        for (float& x : v) x = u(gen);
        break;
      case Inputs::away_from_zero:
        for (float& x : v) x = (u(gen) < 0 ? -1.f : 1.f) * (0.1f + 0.9f * std::fabs(u(gen)));
        break;
      case Inputs::positive:
        for (float& x : v) x = 1.f + 0.5f * u(gen);
        break;
      case Inputs::distinct: {
        std::vector<int> idx(v.size());
        std::iota(idx.begin(), idx.end(), 0);
        std::shuffle(idx.begin(), idx.end(), gen);
        for (size_t k = 0; k < v.size(); ++k) v[k] = 0.05f * static_cast<float>(idx[k]) - 0.025f * v.size();
        break;
      }
    }
    in.push_back(std::move(v));
  }
  if (c.prepare) c.prepare(in);
  return in;
}

Tensors to_device(const OpCase& c, const std::vector<std::vector<float>>& host, Device d) {
  Tensors t;
  for (size_t i = 0; i < host.size(); ++i) t.push_back(Tensor::from_vector(c.inputs[i], host[i], d));
  return t;
}

std::vector<std::vector<float>> to_host(const Tensors& t) {
  std::vector<std::vector<float>> h;
  for (const Tensor& x : t) h.push_back(x.defined() ? x.to_vector() : std::vector<float>{});
  return h;
}

// Sets the case's options for backend b for the lifetime of this object.
class Options {
 public:
  Options(const OpCase& c, Backend& b) : c_(c), b_(b) {
    for (const OpCase::Option& o : c_.options)
      if (o.backend == b_.name()) b_.set_option(o.key, o.value);
  }
  ~Options() {
    for (const OpCase::Option& o : c_.options)
      if (o.backend == b_.name()) b_.set_option(o.key, o.restore);
  }

 private:
  const OpCase& c_;
  Backend& b_;
};

std::vector<std::vector<float>> run_on(const OpCase& c, Backend& b, Device d,
                                       const std::vector<std::vector<float>>& host) {
  const Options opts(c, b);
  const Tensors out = c.run(b, to_device(c, host, d));
  b.synchronize();
  return to_host(out);
}

// |got - want| <= tol * max|want| (or tol when want is all zero).
::testing::AssertionResult close_scaled(const std::vector<float>& got, const Vec& want, double tol,
                                        const std::string& what) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": " << got.size() << " values, expected " << want.size();
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  const double bound = tol * std::max(scale, 1e-3);
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= bound))
      return ::testing::AssertionFailure() << what << "[" << i << "]: " << got[i] << " vs " << want[i]
                                           << " (bound " << bound << " = " << tol << " x scale " << scale << ")";
  return ::testing::AssertionSuccess();
}

Vec widen(const std::vector<float>& v) { return Vec(v.begin(), v.end()); }

struct Param {
  size_t index;
  DeviceKind kind;
};

std::string kind_str(DeviceKind k) { return k == DeviceKind::cpu ? "cpu" : "cuda"; }

class BackendOps : public ::testing::TestWithParam<Param> {};

TEST_P(BackendOps, MatchesReferenceAndGradients) {
  const OpCase& c = registry()[GetParam().index];
  const DeviceKind kind = GetParam().kind;
  if (!has_backend(kind)) GTEST_SKIP() << "this build has no " << kind_str(kind) << " backend";
  Backend& b = backend(Device{kind, 0});
  if (!b.available()) GTEST_SKIP() << "needs a " << kind_str(kind) << " device; " << b.describe();
  const Device dev{kind, 0};
  const std::vector<std::vector<float>> host = make_inputs(c);
  const std::vector<std::vector<float>> got = run_on(c, b, dev, host);

  if (kind == DeviceKind::cpu) {
    if (c.reference) {
      std::vector<Vec> in;
      for (const auto& h : host) in.push_back(widen(h));
      const std::vector<Vec> want = c.reference(in);
      ASSERT_EQ(want.size(), got.size()) << c.name << ": reference outputs";
      for (size_t i = 0; i < want.size(); ++i)
        EXPECT_TRUE(close_scaled(got[i], want[i], c.tol, c.name + " output " + std::to_string(i) + " vs double"));
    }
  } else {
    const std::vector<std::vector<float>> want = run_on(c, backend(Device::cpu()), Device::cpu(), host);
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const std::string what = c.name + " output " + std::to_string(i) + " " + b.name() + " vs cpu";
      if (c.exact) {
        EXPECT_EQ(got[i], want[i]) << what;
      } else {
        EXPECT_TRUE(close_scaled(got[i], widen(want[i]), c.device_tol, what));
      }
    }
  }
  if (c.check) {
    EXPECT_TRUE(c.check(got)) << c.name;
  }

  // Gradient mode: central differences of sum(y * dy) through this backend's forward.
  const OpCase::Grad& g = c.grad;
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const int in = g.inputs[k];
    const std::vector<float>& analytic = got[static_cast<size_t>(g.outputs[k])];
    ASSERT_EQ(analytic.size(), host[static_cast<size_t>(in)].size()) << c.name << ": gradient of input " << in;
    double scale = 1e-3;
    for (float a : analytic) scale = std::max(scale, static_cast<double>(std::fabs(a)));
    const size_t n = analytic.size(), samples = std::min<size_t>(n, 8);
    for (size_t s = 0; s < samples; ++s) {
      const size_t i = samples == n ? s : (s * 7919 + 13) % n;
      auto loss = [&](float delta) {
        std::vector<std::vector<float>> h = host;
        h[static_cast<size_t>(in)][i] += delta;
        const std::vector<std::vector<float>> o = run_on(c, b, dev, h);
        double l = 0;
        for (size_t j = 0; j < o[0].size(); ++j)
          l += static_cast<double>(o[0][j]) * (g.dy < 0 ? 1.0 : h[static_cast<size_t>(g.dy)][j]);
        return l;
      };
      const float h = static_cast<float>(g.eps);
      const double fd = (loss(h) - loss(-h)) / (2.0 * h);
      EXPECT_NEAR(analytic[i], fd, g.tol * scale)
          << c.name << " on " << b.name() << ": d/d input " << in << " at " << i << " (finite difference)";
    }
  }
}

std::vector<Param> all_params() {
  std::vector<Param> p;
  for (size_t i = 0; i < registry().size(); ++i)
    for (DeviceKind k : {DeviceKind::cpu, DeviceKind::cuda}) p.push_back({i, k});
  return p;
}

INSTANTIATE_TEST_SUITE_P(Table, BackendOps, ::testing::ValuesIn(all_params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           std::string n = registry()[info.param.index].name + "_" + kind_str(info.param.kind);
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// Every op of the front has at least one case, and case names are unique.
TEST(BackendOpsTable, CoversEveryOp) {
  std::set<int> covered;
  std::set<std::string> names;
  for (const OpCase& c : registry()) {
    EXPECT_TRUE(names.insert(c.name).second) << "duplicate case name " << c.name;
    for (Op op : c.ops) covered.insert(static_cast<int>(op));
  }
  for (int i = 0; i < kNumOps; ++i)
    EXPECT_TRUE(covered.count(i)) << "no backend-ops case for " << op_name(static_cast<Op>(i));
}

// supports_op instead of throwing stubs: every registered backend runs every op on f32
// and refuses other dtypes (no device needed to ask); the front names op, dtype and
// backend before touching any data.
TEST(BackendOpsTable, FrontRefusesUnsupportedDtype) {
  for (DeviceKind kind : {DeviceKind::cpu, DeviceKind::cuda}) {
    if (!has_backend(kind)) continue;
    Backend& b = backend(Device{kind, 0});
    for (int i = 0; i < kNumOps; ++i) {
      EXPECT_TRUE(b.supports_op(static_cast<Op>(i), DType::f32)) << b.name() << " " << op_name(static_cast<Op>(i));
      EXPECT_FALSE(b.supports_op(static_cast<Op>(i), DType::bf16)) << b.name() << " " << op_name(static_cast<Op>(i));
    }
  }
  Backend& cpu = backend(Device::cpu());
  const Tensor h = Tensor::empty({4}, Device::cpu(), DType::bf16), y = Tensor::zeros({4});
  try {
    cpu.relu_forward(h, y);
    ADD_FAILURE() << "bf16 input accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("relu_forward on cpu: x (4,) is bf16"), std::string::npos) << e.what();
  }
}

using test::error_of;

// The front's checks name op, backend, argument and shapes, for every backend alike,
// before any data is touched (what the CUDA tests checked per backend before).
TEST(BackendOpsTable, FrontNamesOpArgumentAndShapes) {
  Backend& b = backend(Device::cpu());
  std::string msg = error_of([&] {
    b.conv1d_forward(Tensor::zeros({2, 3, 10}), Tensor::zeros({4, 5, 3}), nullptr, Conv1dGeometry{},
                     Tensor::zeros({2, 4, 8}));
  });
  EXPECT_NE(msg.find("conv1d_forward on cpu: x (2, 3, 10) has 3 channels, the weight (4, 5, 3) expects 5"),
            std::string::npos)
      << msg;
  msg = error_of([&] {
    b.conv1d_forward(Tensor::zeros({2, 3, 10}), Tensor::zeros({4, 3, 3}), nullptr, Conv1dGeometry{2, 1, 1},
                     Tensor::zeros({2, 4, 8}));
  });
  EXPECT_NE(msg.find("y (2, 4, 8) expected (2, 4, 5)"), std::string::npos) << msg;
  Conv1dGeometry cl;
  cl.channels_last = true;
  msg = error_of([&] {  // channels-last: x (B, L, Cin), the channels on the last axis
    b.conv1d_forward(Tensor::zeros({2, 10, 3}), Tensor::zeros({4, 5, 3}), nullptr, cl, Tensor::zeros({2, 8, 4}));
  });
  EXPECT_NE(msg.find("x (2, 10, 3) has 3 channels, the weight (4, 5, 3) expects 5"), std::string::npos) << msg;
  const cpu::CpuOptions saved = cpu::cpu_options();
  b.set_option("conv", "im2col");  // a backend whose convolutions take (B, C, L) only
  msg = error_of([&] {
    b.conv1d_forward(Tensor::zeros({2, 10, 3}), Tensor::zeros({4, 3, 3}), nullptr, cl, Tensor::zeros({2, 8, 4}));
  });
  cpu::cpu_options() = saved;
  EXPECT_NE(msg.find("conv1d_forward on cpu: this backend runs conv1d on (B, C, L) activations only"),
            std::string::npos)
      << msg;
  // bf16 activations: only a GEMM convolution's input under precision bf16, only written by
  // the BatchNorm that runs by rows (channels-last).
  const Tensor x16 = Tensor::empty({2, 10, 256}, Device::cpu(), DType::bf16);
  msg = error_of([&] {
    b.conv1d_forward(x16, Tensor::zeros({256, 256, 3}), nullptr, cl, Tensor::zeros({2, 8, 256}));
  });
  EXPECT_NE(msg.find("conv1d_forward on cpu: x (2, 10, 256) is bf16, which this backend takes only as the rounded "
                     "input of a convolution under precision bf16"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("precision is fp32"), std::string::npos) << msg;
  Conv1dGeometry cl16 = cl;
  cl16.precision = Precision::bf16;
  msg = error_of([&] {  // 3 channels: oneDNN's kernels, which round inside
    b.conv1d_forward(Tensor::empty({2, 10, 3}, Device::cpu(), DType::bf16), Tensor::zeros({4, 3, 3}), nullptr, cl16,
                     Tensor::zeros({2, 8, 4}));
  });
  EXPECT_NE(msg.find("conv1d_forward on cpu: x (2, 10, 3) is bf16"), std::string::npos) << msg;
  msg = error_of([&] {
    const Tensor c5 = Tensor::zeros({5});
    b.batchnorm_forward_train(Tensor::zeros({2, 5, 8}), c5, c5, 0.1f, 1e-5f, Tensor(), Tensor(), Tensor::zeros({5}),
                              Tensor::zeros({5}), Tensor::empty({2, 5, 8}, Device::cpu(), DType::bf16), true);
  });
  EXPECT_NE(msg.find("batchnorm_forward_train on cpu: y (2, 5, 8) is bf16, which this backend does not write for "
                     "input (2, 5, 8)"),
            std::string::npos)
      << msg;
  msg = error_of([&] { b.transpose(Tensor::zeros({2, 3, 4}), 2, 3, 4, 1, Tensor::zeros({2, 3, 5}), 0.f); });
  EXPECT_NE(msg.find("transpose on cpu: y (O, N, M, I) (2, 3, 5) expected 24 elements"), std::string::npos) << msg;
  msg = error_of([&] {
    const Tensor x = Tensor::zeros({2, 5, 8});
    b.gru_layer_forward(x, Tensor(), Tensor::zeros({12, 7}), Tensor::zeros({12, 4}), Tensor::zeros({12}),
                        Tensor::zeros({12}), Tensor::zeros({2, 5, 4}), Tensor::zeros({2, 5, 16}));
  });
  EXPECT_NE(msg.find("gru_layer_forward on cpu: weight_ih (12, 7) expected (12, 8)"), std::string::npos) << msg;
  msg = error_of([&] {
    const int32_t labels[6] = {0, 1, 2, 3, 4, 5};
    ContrastiveSpec spec;
    spec.blocks = 4;
    spec.row_label = spec.col_label = labels;
    b.contrastive_forward(Tensor::zeros({6, 3}), Tensor::zeros({6, 3}), spec, Tensor(), Tensor());
  });
  EXPECT_NE(msg.find("4 blocks do not divide 6 anchors and 6 candidates"), std::string::npos) << msg;
  msg = error_of([&] {  // sampled candidates: every listed column is checked
    const int32_t labels[6] = {0, 1, 2, 3, 4, 5}, cand[6] = {0, 1, 1, 6, 2, 0};
    ContrastiveSpec spec;
    spec.row_label = spec.col_label = labels;
    spec.row_candidates = cand, spec.candidates_per_row = 2;
    b.contrastive_forward(Tensor::zeros({3, 3}), Tensor::zeros({6, 3}), spec, Tensor(), Tensor());
  });
  EXPECT_NE(msg.find("sampled candidate 6 of anchor 1 is outside [0, 6)"), std::string::npos) << msg;
  msg = error_of([&] {
    const int32_t labels[6] = {0, 1, 2, 3, 4, 5}, cand[6] = {0, 1, 1, 2, 2, 0};
    ContrastiveSpec spec;
    spec.blocks = 3;
    spec.row_label = spec.col_label = labels;
    spec.row_candidates = cand, spec.candidates_per_row = 2;
    b.contrastive_forward(Tensor::zeros({3, 3}), Tensor::zeros({6, 3}), spec, Tensor(), Tensor());
  });
  EXPECT_NE(msg.find("sampled candidates do not combine with blocks"), std::string::npos) << msg;
  msg = error_of([&] {
    b.channel_norm_forward(Tensor::zeros({2, 3, 4}), Tensor::zeros({3}), Tensor::zeros({3}), 1e-5f,
                           Tensor::zeros({2, 3}), Tensor::zeros({8}), Tensor::zeros({2, 3, 4}));
  });
  EXPECT_NE(msg.find("save_mean (B, L) (2, 3) expected 8 elements"), std::string::npos) << msg;
  // Overlap: an output sharing memory with an input it reads.
  const Tensor x = Tensor::zeros({2, 4, 4});
  msg = error_of([&] { b.transpose(x, 2, 4, 4, 1, x, 0.f); });
  EXPECT_NE(msg.find("transpose on cpu: y (2, 4, 4) overlaps x (2, 4, 4)"), std::string::npos) << msg;
  const Tensor big = Tensor::zeros({8});
  msg = error_of([&] { b.add(big.slice(0, 4), big.slice(0, 4), big.slice(2, 6)); });
  EXPECT_NE(msg.find("add on cpu: y (4,) partially overlaps a (4,)"), std::string::npos) << msg;
  GemmArgs g;
  g.m = g.n = g.k = 4, g.lda = g.ldb = g.ldc = 4;
  const Tensor buf = Tensor::zeros({32});
  g.a = g.b = buf.f32(), g.c = buf.f32() + 8;  // C [8, 24) overlaps A and B [0, 16)
  msg = error_of([&] { b.gemm(g); });
  EXPECT_NE(msg.find("gemm on cpu: C overlaps A or B"), std::string::npos) << msg;
  // Int ranges: extents the libraries take as int.
  GemmArgs huge;
  huge.m = int64_t{1} << 32, huge.n = huge.k = 1, huge.lda = huge.ldb = huge.ldc = 1;
  msg = error_of([&] { b.gemm(huge); });
  EXPECT_NE(msg.find("gemm on cpu: m, n, k: extent 4294967296 outside [0, 2147483647]"), std::string::npos) << msg;
  // A tensor on another backend's device never reaches this backend's kernels.
  if (has_backend(DeviceKind::cuda)) {
    msg = error_of([&] { backend(Device::cuda()).fill(Tensor::zeros({3}), 1.f); });
    EXPECT_NE(msg.find("fill on cuda: y (3,) is on cpu"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace cpc::ops_test
