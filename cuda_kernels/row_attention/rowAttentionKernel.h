// Flash-style softmax attention between the "rows" of a feature map, with the scale-and-residual
// epilogue of ADFL's Type I modules: y_j = alpha * sum_i softmax_i(q_j . k_i) v_i + x_j.
//   1s (SpatialAttention): rows are the H*W positions; q, k have C' dims, v, x, y have C dims.
//   1c (ChannelAttention): rows are the C channels;  q = k = v = x, all with H*W dims.
// The attention map is never written to memory. Launchers only; no TensorRT types here.
#pragma once

#include <cuda_runtime.h>

namespace adfl {

// Largest value-row length (32 lanes x 64 values); query rows (1s: C', 1c: H*W) stop at 1024
// (32 lanes x 32 values). Both limits are contract::kRowMax{Value,Query}Dim (common/opContract.h).
// Launchers return cudaErrorInvalidValue beyond them, before touching the device.
constexpr int kRowAttentionMaxDim = 2048;

// q, k: [batch, C', H, W]; v, x, y: [batch, C, H, W]; alpha: one element of T (device).
template <typename T>
cudaError_t launchSpatialAttention(const T* q, const T* k, const T* v, const T* x, const T* alpha, T* y, int batch,
                                   int channels, int reduced, int positions, cudaStream_t stream);

// x, y: [batch, C, H, W]; alpha: one element of T (device).
template <typename T>
cudaError_t launchChannelAttention(const T* x, const T* alpha, T* y, int batch, int channels, int positions,
                                   cudaStream_t stream);

}  // namespace adfl
