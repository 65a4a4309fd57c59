// ADFL Type I hyper attention core (paper Eq. 9): every one of the M = C'*H*W locations is a
// scalar, logits are the outer product e_ji = q_j * k_i, and out_j = sum_i softmax_i(e_ji) v_i.
// The M x M map (38 MB per image at attn3 of ResNet50) is never materialised. The 1x1 conv back
// to C channels and the scaled residual stay outside the op. Launcher only; no TensorRT types.
#pragma once

#include <cuda_runtime.h>

namespace adfl {

// q, k, v, y: [batch, M] contiguous (M = C' * H * W).
template <typename T>
cudaError_t launchHyperAttention(const T* q, const T* k, const T* v, T* y, int batch, int locations,
                                 cudaStream_t stream);

}  // namespace adfl
