#include "models/cpc_model.h"

#include <algorithm>

#include "engine/core/backend.h"
#include "engine/ops/ops.h"
#include "layers/activations.h"
#include "layers/batch_norm1d.h"
#include "layers/channels_last.h"
#include "layers/conv1d.h"

namespace cpc {

namespace {

// Holds the predictors under "Wk.<k>", as seed 004's nn.ModuleList.
class ModuleList : public Module {
 public:
  template <class M>
  M* add(std::unique_ptr<M> m) {
    return register_module(std::to_string(size_++), std::move(m));
  }

 private:
  int size_ = 0;
};

std::unique_ptr<Sequential> make_resnet_encoder(int64_t in_channels, const EncoderConfig& e, Generator& gen) {
  auto enc = std::make_unique<Sequential>();
  enc->add(std::make_unique<Conv1d>(in_channels, e.stem.channels, e.stem.kernel,
                                    Conv1dGeometry{e.stem.stride, e.stem.padding, 1}, false, gen));
  enc->add(make_norm(e.norm, e.stem.channels));
  enc->add(std::make_unique<ReLU>());
  int64_t c = e.stem.channels;
  for (const ResidualStageSpec& b : e.blocks) {
    enc->add(std::make_unique<ResidualBlock1d>(c, b.channels, b.kernel, b.stride, e.norm, gen));
    c = b.channels;
  }
  if (e.latent > 0) enc->add(std::make_unique<Conv1d>(c, e.latent, 1, Conv1dGeometry{}, true, gen));
  return enc;
}

}  // namespace

CpcModel::CpcModel(const CpcConfig& config, Generator& gen) : config_(config), info_nce_(config.loss) {
  const EncoderConfig& e = config.encoder;
  encoder_ = register_module("encoder", e.type == EncoderConfig::Type::conv
                                            ? make_conv_encoder(config.channels, e.layers, e.norm, gen)
                                            : make_resnet_encoder(config.channels, e, gen));
  gru_ = register_module(
      "gru", std::make_unique<GRU>(e.out_channels(), config.context, static_cast<int>(config.context_layers), gen));
  auto wk = std::make_unique<ModuleList>();
  for (int64_t k = 0; k < config.K; ++k) {
    Linear* l = wk->add(std::make_unique<Linear>(config.context, e.out_channels(), config.predictor_bias, gen));
    predictors_.push_back({l->weight, l->bias});
  }
  register_module("Wk", std::move(wk));
}

CpcModel::Encoded CpcModel::encode(Var* x) {
  CPC_CHECK(x->value.rank() == 3 && x->value.size(1) == config_.channels, "CPC model: input ", x->value.shape(),
            " expected (B, ", config_.channels, ", L)");
  const bool cl = backend(x->value.device()).conv1d_prefers_channels_last();
  if (cl != channels_last_) {
    set_channels_last(*encoder_, cl);
    channels_last_ = cl;
  }
  // (B, T, Dz): channels-last, the encoder's output is already the GRU's layout.
  Var* z = cl ? encoder_->forward(ops::transpose(x, 1, 2)) : ops::transpose(encoder_->forward(x), 1, 2);
  return {z, gru_->forward(z).output};
}

void CpcModel::set_communicator(Communicator* comm) {
  info_nce_.set_communicator(comm);
  const bool sync = config_.train.sync_batchnorm;
  apply([&](Module& m) {
    if (auto* bn = dynamic_cast<BatchNorm1d*>(&m)) bn->sync = sync ? comm : nullptr;
  });
}

const InfoNceResult& CpcModel::loss(Var* x, Generator* rng, int64_t t_random) {
  const Encoded e = encode(x);
  return info_nce_.forward(e.c, e.z, predictors_, rng, t_random);
}

}  // namespace cpc
