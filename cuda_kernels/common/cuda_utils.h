// Small helpers shared by the ADFL kernels: type traits for fp32/fp16 I/O with fp32 math,
// warp/block reductions, and the online-softmax (max, sum) pair with its merge rule.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>

namespace adfl {

template <typename T>
__device__ __forceinline__ float toFloat(T v);
template <>
__device__ __forceinline__ float toFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ float toFloat<__half>(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T fromFloat(float v);
template <>
__device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half fromFloat<__half>(float v) { return __float2half(v); }

// Running softmax statistics of a set of logits: m = max, s = sum exp(l - m).
struct SoftmaxStats {
    float m;
    float s;
};

__device__ __forceinline__ SoftmaxStats emptyStats() { return {-FLT_MAX, 0.f}; }

// Merge two partial statistics; exact in exact arithmetic, and never overflows because every
// exponent is <= 0.
__device__ __forceinline__ SoftmaxStats mergeStats(SoftmaxStats a, SoftmaxStats b) {
    float m = fmaxf(a.m, b.m);
    float s = (a.s == 0.f ? 0.f : a.s * __expf(a.m - m)) + (b.s == 0.f ? 0.f : b.s * __expf(b.m - m));
    return {m, s};
}

__device__ __forceinline__ SoftmaxStats addLogit(SoftmaxStats a, float l) {
    return mergeStats(a, SoftmaxStats{l, 1.f});
}

__device__ __forceinline__ SoftmaxStats warpMergeStats(SoftmaxStats v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        SoftmaxStats o{__shfl_xor_sync(0xffffffffu, v.m, offset), __shfl_xor_sync(0xffffffffu, v.s, offset)};
        v = mergeStats(v, o);
    }
    return v;
}

// Block-wide merge; every thread gets the result. blockDim.x must be a multiple of 32 (<= 1024).
__device__ __forceinline__ SoftmaxStats blockMergeStats(SoftmaxStats v) {
    __shared__ SoftmaxStats partial[32];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    v = warpMergeStats(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    const int warps = blockDim.x >> 5;
    v = (threadIdx.x < warps) ? partial[lane] : emptyStats();
    if (warp == 0) v = warpMergeStats(v);
    if (threadIdx.x == 0) partial[0] = v;
    __syncthreads();
    v = partial[0];
    __syncthreads();
    return v;
}

}  // namespace adfl
