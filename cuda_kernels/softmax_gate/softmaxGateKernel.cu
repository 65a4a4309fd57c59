// Two passes; memory bound. Work per sample: L logits (HW, C or CHW) and C*HW gated values.
//   pass 1 (stats): each block reduces one chunk of kChunk logits of one sample to
//                   online-softmax statistics (m, s) - many blocks per sample at batch 1;
//   pass 2 (apply): each block merges its sample's chunk statistics and writes a chunk of
//                   y = exp(l - m) / s * x.
// DRAM bytes (ideal) = (L + 2 * C * HW) * sizeof(T) per sample (for kHyper L = C*HW is read
// twice): the roofline target is those bytes at the GPU's memory bandwidth.
#include "softmaxGateKernel.h"

#include "../common/cuda_utils.h"
#include "../common/launchErrors.h"
#include "../common/opContract.h"

namespace adfl {
namespace {

constexpr int kThreads = 256;
constexpr int kChunk = 8192;

int chunks(int length) { return (length + kChunk - 1) / kChunk; }

template <typename T>
__global__ void gateStats(const T* __restrict__ logits, SoftmaxStats* __restrict__ stats, int length, int nChunks) {
    const int sample = blockIdx.y;
    const T* row = logits + static_cast<long long>(sample) * length;
    const int begin = blockIdx.x * kChunk;
    const int end = min(begin + kChunk, length);
    SoftmaxStats acc = emptyStats();
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) acc = addLogit(acc, toFloat(row[i]));
    acc = blockMergeStats(acc);
    if (threadIdx.x == 0) stats[sample * nChunks + blockIdx.x] = acc;
}

template <typename T>
__global__ void gateApply(GateKind kind, const T* __restrict__ logits, const T* __restrict__ x, T* __restrict__ y,
                          const SoftmaxStats* __restrict__ stats, int channels, int positions, int logitLength,
                          int nChunks) {
    const int sample = blockIdx.y;
    __shared__ SoftmaxStats total;
    if (threadIdx.x == 0) {
        SoftmaxStats acc = emptyStats();
        for (int c = 0; c < nChunks; ++c) acc = mergeStats(acc, stats[sample * nChunks + c]);
        total = acc;
    }
    __syncthreads();
    const float m = total.m;
    const float inv = 1.f / total.s;
    const int length = channels * positions;
    const long long xBase = static_cast<long long>(sample) * length;
    const long long lBase = static_cast<long long>(sample) * logitLength;
    const int begin = blockIdx.x * kChunk;
    const int end = min(begin + kChunk, length);
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const int li = kind == GateKind::kHyper ? i : (kind == GateKind::kSpatial ? i % positions : i / positions);
        const float w = __expf(toFloat(logits[lBase + li]) - m) * inv;
        y[xBase + i] = fromFloat<T>(w * toFloat(x[xBase + i]));
    }
}

int logitLength(GateKind kind, int channels, int positions) {
    return kind == GateKind::kSpatial ? positions : (kind == GateKind::kChannel ? channels : channels * positions);
}

}  // namespace

size_t softmaxGateWorkspaceSize(int batch, int logitsPerSample) {
    return static_cast<size_t>(batch) * chunks(logitsPerSample) * sizeof(SoftmaxStats);
}

template <typename T>
cudaError_t launchSoftmaxGate(GateKind kind, const T* logits, const T* x, T* y, int batch, int channels,
                              int positions, void* workspace, cudaStream_t stream) {
    if (batch < 0 || channels < 0 || positions < 0) return cudaErrorInvalidValue;
    if (batch == 0 || channels == 0 || positions == 0) return cudaSuccess;
    if (kind != GateKind::kSpatial && kind != GateKind::kChannel && kind != GateKind::kHyper) return cudaErrorInvalidValue;
    if (batch > 65535 || static_cast<long long>(batch) * channels * positions > contract::kMaxElements)
        return cudaErrorInvalidValue;
    if (workspace == nullptr || (kind != GateKind::kHyper && logits == nullptr)) return cudaErrorInvalidValue;
    if (kind == GateKind::kHyper) logits = x;
    const int length = logitLength(kind, channels, positions);
    const int nChunks = chunks(length);
    auto* stats = static_cast<SoftmaxStats*>(workspace);
    const PendingError pending = takePendingError();
    if (pending.sticky) return pending.error;  // the context is unusable: launching cannot succeed
    gateStats<T><<<dim3(nChunks, batch), kThreads, 0, stream>>>(logits, stats, length, nChunks);
    // pass 2 reads pass 1's statistics: never launch it after a failed first launch
    const cudaError_t first = cudaGetLastError();
    if (first != cudaSuccess) return first;
    const int applyChunks = chunks(channels * positions);
    gateApply<T><<<dim3(applyChunks, batch), kThreads, 0, stream>>>(kind, logits, x, y, stats, channels, positions,
                                                                      length, nChunks);
    return cudaGetLastError();
}

template cudaError_t launchSoftmaxGate<float>(GateKind, const float*, const float*, float*, int, int, int, void*,
                                              cudaStream_t);
template cudaError_t launchSoftmaxGate<__half>(GateKind, const __half*, const __half*, __half*, int, int, int, void*,
                                               cudaStream_t);

}  // namespace adfl
