// Type II hyper gate (paper Eq. 14): y = softmax(x over all C*H*W entries of a sample) * x.
// Launcher only; no TensorRT types here (the plugin wraps it).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace adfl {

// Bytes of scratch the launcher needs for `batch` samples of `length` = C*H*W entries.
size_t hyperGateWorkspaceSize(int batch, int length);

// x, y: [batch, length] contiguous, T = float or __half; statistics in fp32.
template <typename T>
cudaError_t launchHyperGate(const T* x, T* y, int batch, int length, void* workspace, cudaStream_t stream);

}  // namespace adfl
