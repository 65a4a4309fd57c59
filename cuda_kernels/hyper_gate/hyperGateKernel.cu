// Two passes over x, three memory sweeps in all (read, read, write): the op is memory bound,
// so the roofline target is 3 * batch * length * sizeof(T) bytes at the GPU's DRAM bandwidth.
//   pass 1: each block reduces one chunk of one sample to online-softmax stats (m, s).
//   pass 2: each block merges its sample's chunk stats (few) and writes y = exp(x - m) / s * x.
// Splitting a sample over chunks keeps every SM busy at batch 1 (attn4: 393,216 entries/sample).
#include "hyperGateKernel.h"

#include "../common/cuda_utils.h"

namespace adfl {
namespace {

constexpr int kThreads = 256;
constexpr int kChunk = 8192;  // entries per block

int chunksPerSample(int length) { return (length + kChunk - 1) / kChunk; }

template <typename T>
__global__ void hyperGateStats(const T* __restrict__ x, SoftmaxStats* __restrict__ stats, int length, int chunks) {
    const int sample = blockIdx.y;
    const int chunk = blockIdx.x;
    const T* row = x + static_cast<size_t>(sample) * length;
    const int begin = chunk * kChunk;
    const int end = min(begin + kChunk, length);
    SoftmaxStats acc = emptyStats();
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) acc = addLogit(acc, toFloat(row[i]));
    acc = blockMergeStats(acc);
    if (threadIdx.x == 0) stats[sample * chunks + chunk] = acc;
}

template <typename T>
__global__ void hyperGateApply(const T* __restrict__ x, T* __restrict__ y, const SoftmaxStats* __restrict__ stats,
                               int length, int chunks) {
    const int sample = blockIdx.y;
    __shared__ SoftmaxStats total;
    if (threadIdx.x == 0) {
        SoftmaxStats acc = emptyStats();
        for (int c = 0; c < chunks; ++c) acc = mergeStats(acc, stats[sample * chunks + c]);
        total = acc;
    }
    __syncthreads();
    const float m = total.m;
    const float inv = 1.f / total.s;
    const size_t offset = static_cast<size_t>(sample) * length;
    const int begin = blockIdx.x * kChunk;
    const int end = min(begin + kChunk, length);
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
        const float v = toFloat(x[offset + i]);
        y[offset + i] = fromFloat<T>(__expf(v - m) * inv * v);
    }
}

}  // namespace

size_t hyperGateWorkspaceSize(int batch, int length) {
    return static_cast<size_t>(batch) * chunksPerSample(length) * sizeof(SoftmaxStats);
}

template <typename T>
cudaError_t launchHyperGate(const T* x, T* y, int batch, int length, void* workspace, cudaStream_t stream) {
    if (batch <= 0 || length <= 0) return cudaSuccess;
    const int chunks = chunksPerSample(length);
    const dim3 grid(chunks, batch);
    auto* stats = static_cast<SoftmaxStats*>(workspace);
    hyperGateStats<T><<<grid, kThreads, 0, stream>>>(x, stats, length, chunks);
    hyperGateApply<T><<<grid, kThreads, 0, stream>>>(x, y, stats, length, chunks);
    return cudaGetLastError();
}

template cudaError_t launchHyperGate<float>(const float*, float*, int, int, void*, cudaStream_t);
template cudaError_t launchHyperGate<__half>(const __half*, __half*, int, int, void*, cudaStream_t);

}  // namespace adfl
