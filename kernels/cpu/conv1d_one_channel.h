#pragma once
// The weight gradient of a channels-last convolution with one input channel (an audio
// encoder's first layer, on the raw waveform):
//   dw[o][0][k] += sum over (b, t) of dy[b, t, o] * x[b, t * stride - padding + k * dilation],
// dbias[o] += sum of dy[b, t, o]. dy is read once; under bf16 each row of dy and each
// window of x is rounded as it is read, products accumulate in float (per fixed chunk of
// rows, then the chunks in order in double: the same bits at any thread count; with
// AVX-512, checked at run time, in fused multiply-adds, so the bits differ from an AVX2
// machine's by float rounding).
//
// Why: at audio_cdck2's first layer (batch 8, 4096 x 512 outputs, K = 10) oneDNN 2.6's
// weight gradient takes 6.1 ms in fp32, and in bf16 2.9 ms after a 2.2 ms pass rounding dy
// into a copy; its FLOPs (0.34 G) are nothing, the 67 MB of dy are all.
#include "engine/core/op_dims.h"

namespace cpc::cpu {

bool conv1d_one_channel_applies(const Conv1dDims& d);
void conv1d_one_channel_backward_weights(const float* x, const float* dy, const Conv1dDims& d, float* dw,
                                         float* dbias);

}  // namespace cpc::cpu
