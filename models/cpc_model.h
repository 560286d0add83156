#pragma once
// A CPC model built from a CpcConfig: encoder (strided conv stack or 1-D ResNet) ->
// latents z (B, T, Dz); GRU -> context c (B, T, Dc); K linear predictors Wk.k
// (nn.Linear(Dc, Dz)) scored by InfoNCE. Parameter names follow the PyTorch module
// tools/python/load_encoder.py builds: encoder.*, gru.*, Wk.*.
#include <memory>
#include <vector>

#include "engine/core/random.h"
#include "layers/gru.h"
#include "layers/linear.h"
#include "layers/sequential.h"
#include "losses/info_nce_loss.h"
#include "models/cpc_config.h"

namespace cpc {

class CpcModel : public Module {
 public:
  CpcModel(const CpcConfig& config, Generator& gen);

  struct Encoded {
    Var* z;  // (B, T, Dz)
    Var* c;  // (B, T, Dc)
  };
  // x (B, C, L) with C and L as configured.
  Encoded encode(Var* x);
  // The InfoNCE loss of a batch (t drawn from rng in t_mode random; t_random >= 0 fixes it).
  const InfoNceResult& loss(Var* x, Generator* rng, int64_t t_random = -1);

  const CpcConfig& config() const { return config_; }
  // Data parallel: global negatives gather over comm (loss.negatives_from global) and,
  // with train.sync_batchnorm, BatchNorm statistics span every rank's batch.
  void set_communicator(Communicator* comm);
  Sequential* encoder() const { return encoder_; }

 private:
  CpcConfig config_;
  bool channels_last_ = false;  // the encoder's layout (layers/channels_last.h): each forward
                                // picks what its backend's convolutions run fastest
  Sequential* encoder_;
  GRU* gru_;
  std::vector<LinearPredictor> predictors_;
  InfoNceLoss info_nce_;
};

}  // namespace cpc
