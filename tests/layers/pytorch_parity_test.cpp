// PyTorch parity of every op and layer: outputs, input gradients, parameter gradients
// and updated buffers against tools/python/reference/make_reference.py (float64 PyTorch).
// Tolerance: max |ours - torch| / max |torch| <= 1e-4 per tensor, in fp32.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "engine/ops/ops.h"
#include "kernels/cpu/cpu_options.h"
#include "layers/activations.h"
#include "layers/batch_norm1d.h"
#include "layers/channel_norm.h"
#include "layers/conv1d.h"
#include "layers/gru.h"
#include "layers/linear.h"
#include "layers/residual_block1d.h"
#include "layers/sequential.h"
#include "models/conv_encoder.h"
#include "tests/support/reference_case.h"

namespace cpc::test {
namespace {

using Vars = std::map<std::string, Var*>;
constexpr double kTol = 1e-4;

// Holds arbitrary children so a test can assemble PyTorch-named module trees.
class Container : public Module {
 public:
  template <class M>
  M* add(const std::string& name, std::unique_ptr<M> m) {
    return register_module(name, std::move(m));
  }
};

struct Built {
  std::unique_ptr<Module> module;  // may be null for parameter-free ops
  std::function<Vars(Vars&)> forward;
};

Built build(const ReferenceCase& c) {
  const auto& cfg = c.config();
  const std::string kind = c.kind();
  Generator gen(0);  // weights are overwritten from the case
  Built b;
  if (kind == "linear") {
    auto m = std::make_unique<Linear>(cfg["in"], cfg["out"], cfg["bias"], gen);
    Linear* p = m.get();
    b.module = std::move(m);
    b.forward = [p](Vars& in) { return Vars{{"y", p->forward(in["x"])}}; };
  } else if (kind == "conv1d") {
    Conv1dGeometry g{cfg["stride"], cfg["pad"], cfg["dil"]};
    auto m = std::make_unique<Conv1d>(cfg["cin"], cfg["cout"], cfg["k"], g, cfg["bias"], gen);
    Conv1d* p = m.get();
    b.module = std::move(m);
    b.forward = [p](Vars& in) { return Vars{{"y", p->forward(in["x"])}}; };
  } else if (kind == "batch_norm" || kind == "channel_norm") {
    std::unique_ptr<Layer> m;
    if (kind == "batch_norm")
      m = std::make_unique<BatchNorm1d>(cfg["channels"]);
    else
      m = std::make_unique<ChannelNorm>(cfg["channels"]);
    m->train(cfg.value("train", true));
    Layer* p = m.get();
    b.module = std::move(m);
    b.forward = [p](Vars& in) { return Vars{{"y", p->forward(in["x"])}}; };
  } else if (kind == "relu") {
    b.forward = [](Vars& in) { return Vars{{"y", ops::relu(in["x"])}}; };
  } else if (kind == "gelu") {
    b.forward = [](Vars& in) { return Vars{{"y", ops::gelu(in["x"])}}; };
  } else if (kind == "add") {
    b.forward = [](Vars& in) { return Vars{{"y", ops::add(in["a"], in["b"])}}; };
  } else if (kind == "transpose") {
    b.forward = [](Vars& in) { return Vars{{"y", ops::transpose(in["x"], -2, -1)}}; };
  } else if (kind == "narrow") {
    const int dim = cfg["dim"];
    const int64_t start = cfg["start"], len = cfg["length"];
    b.forward = [=](Vars& in) { return Vars{{"y", ops::narrow(in["x"], dim, start, len)}}; };
  } else if (kind == "select") {
    const int dim = cfg["dim"];
    const int64_t index = cfg["index"];
    b.forward = [=](Vars& in) { return Vars{{"y", ops::select(in["x"], dim, index)}}; };
  } else if (kind == "mean_pool" || kind == "max_pool") {
    const int dim = cfg["dim"];
    const bool max = kind == "max_pool";
    b.forward = [=](Vars& in) { return Vars{{"y", max ? ops::max_pool(in["x"], dim) : ops::mean_pool(in["x"], dim)}}; };
  } else if (kind == "gru") {
    auto m = std::make_unique<GRU>(cfg["input"], cfg["hidden"], cfg["layers"], gen);
    GRU* p = m.get();
    const bool h0 = cfg["h0"];
    b.module = std::move(m);
    b.forward = [=](Vars& in) {
      auto o = p->forward(in["x"], h0 ? in["h0"] : nullptr);
      return Vars{{"y", o.output}, {"h_n", o.h_n}};
    };
  } else if (kind == "resblock") {
    auto m = std::make_unique<ResidualBlock1d>(cfg["cin"], cfg["cout"], cfg["kernel"], cfg["stride"],
                                               parse_norm_kind(cfg["norm"]), gen);
    ResidualBlock1d* p = m.get();
    b.module = std::move(m);
    b.forward = [p](Vars& in) { return Vars{{"y", p->forward(in["x"])}}; };
  } else if (kind == "seed004") {
    // Seed 004's CDCK2: 5 strided convs (+BN, ReLU), GRU 512 -> 256, 12 predictors.
    auto root = std::make_unique<Container>();
    Sequential* encoder = root->add("encoder", make_conv_encoder(1, cdck2_encoder_layers(), NormKind::batch, gen));
    GRU* gru = root->add("gru", std::make_unique<GRU>(512, 256, 1, gen));
    auto wk = std::make_unique<Container>();
    std::vector<Linear*> preds;
    const int K = cfg["K"];
    for (int k = 0; k < K; ++k)
      preds.push_back(wk->add(std::to_string(k), std::make_unique<Linear>(256, 512, true, gen)));
    root->add("Wk", std::move(wk));
    const int64_t t = cfg["t"];
    b.module = std::move(root);
    b.forward = [=](Vars& in) {
      Var* z = ops::transpose(encoder->forward(in["x"]), 1, 2);   // (B, T, 512)
      Var* c = gru->forward(ops::narrow(z, 1, 0, t + 1)).output;  // (B, t+1, 256)
      Var* c_t = ops::select(c, 1, t);
      Vars out{{"z", z}, {"c", c}};
      for (int k = 0; k < K; ++k) out["pred." + std::to_string(k)] = preds[k]->forward(c_t);
      return out;
    };
  } else {
    ADD_FAILURE() << "unknown case kind " << kind;
  }
  return b;
}

// Every case runs with each CPU library choice (kernels/cpu/cpu_options.h).
enum class Variant { onednn, openblas_im2col };

class PyTorchParity : public ::testing::TestWithParam<std::tuple<std::string, Variant>> {
 protected:
  void SetUp() override {
    saved_ = cpu::cpu_options();
    if (std::get<1>(GetParam()) == Variant::openblas_im2col)
      cpu::cpu_options() = {cpu::GemmLibrary::openblas, cpu::ConvAlgorithm::im2col};
    else
      cpu::cpu_options() = {cpu::GemmLibrary::onednn, cpu::ConvAlgorithm::onednn};
  }
  void TearDown() override { cpu::cpu_options() = saved_; }
  cpu::CpuOptions saved_;
};

TEST_P(PyTorchParity, OutputsAndAllGradients) {
  const ReferenceCase c(std::get<0>(GetParam()));
  Built b = build(c);
  ASSERT_TRUE(b.forward);
  if (b.module) b.module->load_state_dict(c.state(), /*strict=*/true);

  Tape tape;
  TapeScope scope(tape);
  Vars in;
  for (const std::string& n : c.names("in")) in[n] = tape.var(c.tensor("in/" + n), /*requires_grad=*/true);
  Vars out = b.forward(in);

  std::vector<std::pair<Var*, Tensor>> seeds;
  const auto out_names = c.names("out");
  ASSERT_EQ(out.size(), out_names.size());
  for (const std::string& n : out_names) {
    ASSERT_TRUE(out.count(n)) << "no output named " << n;
    expect_close(out[n]->value, c.expected("out/" + n), kTol, c.name() + " output " + n);
    seeds.emplace_back(out[n], c.tensor("dout/" + n));
  }
  tape.backward(seeds);

  for (const std::string& n : c.names("grad/in")) {
    ASSERT_TRUE(in[n]->grad.defined()) << "no gradient reached input " << n;
    expect_close(in[n]->grad, c.expected("grad/in/" + n), kTol, c.name() + " d/d" + n);
  }
  if (b.module) {
    auto params = b.module->named_parameters();
    EXPECT_EQ(params.size(), c.names("grad/param").size());
    for (auto& [n, p] : params) expect_close(p->grad, c.expected("grad/param/" + n), kTol, c.name() + " d/d" + n);
    for (auto& [n, buf] : b.module->named_buffers())
      if (c.has("buffer_after/" + n)) expect_close(*buf, c.expected("buffer_after/" + n), kTol, c.name() + " " + n);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PyTorchParity,
    ::testing::Combine(::testing::Values("linear_3d", "linear_2d_nobias", "conv1d_s2_p1", "conv1d_s3_nopad_nobias",
                                         "conv1d_dilated", "conv1d_pointwise", "conv1d_pointwise_s2",
                                         "conv1d_seed004_first", "batch_norm_train", "batch_norm_eval", "channel_norm",
                                         "relu", "gelu", "add", "transpose", "narrow", "select", "mean_pool_1",
                                         "mean_pool_2", "max_pool_1", "max_pool_2", "gru_1layer", "gru_2layer_h0",
                                         "resblock_down_batch", "resblock_identity_channel", "seed004_network"),
                       ::testing::Values(Variant::onednn, Variant::openblas_im2col)),
    [](const ::testing::TestParamInfo<std::tuple<std::string, Variant>>& i) {
      return std::get<0>(i.param) + (std::get<1>(i.param) == Variant::onednn ? "_onednn" : "_openblas_im2col");
    });

}  // namespace
}  // namespace cpc::test
