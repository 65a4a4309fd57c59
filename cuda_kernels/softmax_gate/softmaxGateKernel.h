// ADFL Type II softmax gates (paper Eqs. 12-14): y = softmax(logits over one sample) * x,
// broadcast according to the gate kind. Launchers only; no TensorRT types.
//   kSpatial: logits [B, 1, H, W], softmax over H*W, y[b,c,p] = a[b,p]   * x[b,c,p]
//   kChannel: logits [B, C],       softmax over C,   y[b,c,p] = a[b,c]   * x[b,c,p]
//   kHyper:   logits = x,          softmax over C*H*W, y      = a[b,c,p] * x[b,c,p]
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace adfl {

enum class GateKind : int { kSpatial = 0, kChannel = 1, kHyper = 2 };

// Scratch bytes for `batch` samples whose logits have `logitsPerSample` entries.
size_t softmaxGateWorkspaceSize(int batch, int logitsPerSample);

// x, y: [batch, channels, positions]; logits as above (nullptr for kHyper).
template <typename T>
cudaError_t launchSoftmaxGate(GateKind kind, const T* logits, const T* x, T* y, int batch, int channels,
                              int positions, void* workspace, cudaStream_t stream);

}  // namespace adfl
