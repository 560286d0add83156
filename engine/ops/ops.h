#pragma once
// The differentiable op API. Each function checks shapes and devices, runs the
// forward kernel of the inputs' device and, when grad is on, records one tape node
// whose backward calls the backward kernels. Layouts: (B, C, L) for conv and norms,
// (B, T, D) for the GRU and linear layers.
#include <cstdint>
#include <vector>

#include "engine/core/autograd.h"
#include "engine/distributed/communicator.h"
#include "engine/core/backend.h"

namespace cpc::ops {

// x (..., Din), w (Dout, Din), b (Dout) or null -> (..., Dout).
Var* linear(Var* x, Var* w, Var* b);
// x (B, Cin, L), w (Cout, Cin, K), b (Cout) or null -> (B, Cout, Lout).
Var* conv1d(Var* x, Var* w, Var* b, const Conv1dGeometry& g);
// x (B, C, L). Training uses batch statistics and updates the running ones in place.
// With `sync` (world > 1) the statistics are those of every rank's batch together
// (synchronised BatchNorm: N ranks x batch B normalise as one process with batch N*B),
// and backward combines the ranks' gradient sums the same way. relu: returns
// relu(batch_norm(x)) in one pass over memory each way (as the two ops; not fused
// under sync). round: the output may be a bf16 tensor (its values rounded) where the
// backend writes one (Backend::batchnorm_rounded_output): only for a consumer that
// rounds its input to bf16 anyway, a convolution under precision bf16 that takes
// rounded inputs (Backend::conv1d_rounded_input).
Var* batch_norm(Var* x, Var* gamma, Var* beta, const Tensor& running_mean, const Tensor& running_var, bool training,
                float momentum, float eps, Communicator* sync = nullptr, bool relu = false, bool round = false);
// Every rank's x (n, ...) concatenated in rank order -> (world * n, ...). Backward: each
// rank receives the sum over ranks of the gradients of its rows (a reduce-scatter),
// because every rank's loss may use every rank's rows. All ranks must call it.
Var* all_gather(Var* x, Communicator& comm);
// x (B, C, L): LayerNorm over C at each (b, l) with per-channel affine weights.
Var* channel_norm(Var* x, Var* gamma, Var* beta, float eps);
Var* relu(Var* x);
Var* gelu(Var* x);  // exact (erf) form, PyTorch's default
Var* add(Var* a, Var* b);
// Inverted dropout with a counter-based mask: the same (seed) gives the same mask on
// every backend. p = 0 returns x itself.
Var* dropout(Var* x, float p, uint64_t seed);
// Swaps two adjacent dims (as torch.transpose), e.g. encoder (B, C, T) -> GRU input
// (B, T, C) with transpose(x, 1, 2), or (batch, time, D) -> (time, batch, D) with (0, 1).
Var* transpose(Var* x, int dim0, int dim1);
// x[:, start:start+length, :] (dim 1) or the analogous slice of another dim: a view
// for dim 0 (contiguous rows), a copy otherwise.
Var* narrow(Var* x, int dim, int64_t start, int64_t length);
// (B, T, D) -> (B, D) at step t.
Var* select(Var* x, int dim, int64_t index);
// Mean / max over dim 1 or 2 of a 3-D tensor, which is removed.
Var* mean_pool(Var* x, int dim);
Var* max_pool(Var* x, int dim);
Var* reshape(Var* x, const Shape& shape);

struct GruLayerParams {
  Var* w_ih;
  Var* w_hh;
  Var* b_ih;
  Var* b_hh;
};
struct GruOutput {
  Var* output;  // (B, T, H): hidden states of the last layer at every step
  Var* h_n;     // (num_layers, B, H): last hidden state of every layer
};
// Stacked GRU, batch-first, PyTorch semantics (gate order r, z, n; linear before
// reset). h0 (num_layers, B, H) or null for zeros.
GruOutput gru(Var* x, Var* h0, const std::vector<GruLayerParams>& layers);

// Rows of x (N, D) scaled to unit L2 norm: x / max(||x||, eps), as F.normalize. A
// zero row stays zero, with a finite gradient.
Var* l2_normalize(Var* x, float eps = 1e-8f);

// Fused contrastive cross-entropy of anchors a (R, D) against candidates c (M, D)
// (see ContrastiveSpec in engine/core/backend.h): mean over anchors with at least one
// positive of  logsumexp(valid scores) - [mean | logsumexp](positive scores).
// Anchors without positives are skipped and counted in stats. The (R, M) score
// matrix is never stored. a and c may be the same Var (self-similarity). Gradients
// are computed in the same pass when needed (O((R + M) D) memory).
Var* contrastive_loss(Var* a, Var* c, const ContrastiveSpec& spec, ContrastiveStats* stats = nullptr);

// mean((y - target)^2) over all elements -> scalar. target is a constant.
Var* mse_loss(Var* y, const Tensor& target);
// alpha * x.
Var* scale(Var* x, float alpha);
// sum of all elements -> scalar.
Var* sum(Var* x);

}  // namespace cpc::ops
