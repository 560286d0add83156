#pragma once
// The configuration of a CPC model and its training, read from JSON with every field
// validated: an unknown key, a wrong type or an impossible shape is an error naming
// the key, what was expected and what was found.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/data/augment.h"
#include "engine/optim/lr_schedule.h"
#include "layers/residual_block1d.h"
#include "losses/info_nce_loss.h"
#include "models/conv_encoder.h"

namespace cpc {

struct ResidualStageSpec {
  int64_t channels, kernel, stride;
};

struct EncoderConfig {
  enum class Type { conv, resnet } type = Type::conv;
  NormKind norm = NormKind::batch;
  std::vector<ConvLayerSpec> layers;      // conv: the strided stack
  ConvLayerSpec stem{64, 7, 2, 3};        // resnet: first conv
  std::vector<ResidualStageSpec> blocks;  // resnet: one ResidualBlock1d each
  int64_t latent = 0;                     // resnet: 1x1 projection to this many channels (0: none)
  int64_t out_channels() const;           // Dz
  int64_t downsampling() const;           // product of the strides
  int64_t out_length(int64_t L) const;    // T for a window of L samples
};

struct TrainConfig {
  int64_t batch_size = 8, steps = 1000, seed = 0;
  double lr = 2e-4, weight_decay = 0.01, clip = 1.0, min_lr = 0.0;
  std::string schedule = "warmup_cosine";
  int64_t warmup = 100;
  int64_t checkpoint_every = 500, validate_every = 200;
  // fp32, or bf16: convolution and GEMM inputs in bfloat16 with fp32 accumulation;
  // weights (the master copy), optimizer state, norms and the loss stay fp32.
  std::string precision = "fp32";
  bool sync_batchnorm = true;  // data parallel: BatchNorm statistics over every rank's batch
  int64_t validate_windows = 256;  // validation windows (one per split-1 recording, centred); 0: no validation
  // Gradient accumulation: each optimizer step runs this many micro-batches of
  // batch_size (per rank) and averages their gradients, so the step's batch is
  // accumulate_steps x batch_size x ranks. InfoNCE's negatives come from the micro-batch.
  int64_t accumulate_steps = 1;
};

struct CpcConfig {
  int64_t channels = 1, window = 20480;  // input (C, L)
  AugmentOptions augment;                 // data.augment: training windows only (off by default)
  std::string group_by;                   // data.group_by: each batch from recordings sharing this label
  EncoderConfig encoder;
  int64_t context = 256, context_layers = 1;  // GRU hidden size and layers
  int64_t K = 12;
  bool predictor_bias = true;
  InfoNceOptions loss;
  TrainConfig train;
  nlohmann::json source;  // the validated JSON, stored in checkpoints

  static CpcConfig from_json(const nlohmann::json& j, const std::string& where = "config:");
  static CpcConfig load(const std::string& path, const std::vector<std::string>& overrides = {});
};

// Applies "a.b.c=value" to j; the key path must exist. The value is read as JSON when
// it parses (numbers, true/false, quoted strings, arrays), else as a plain string.
void apply_override(nlohmann::json& j, const std::string& assignment);

}  // namespace cpc
