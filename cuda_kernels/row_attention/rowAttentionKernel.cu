// Warp-per-query flash attention (see rowAttentionKernel.h).
//
// Work per sample (Q queries, K keys, D query dims, E value dims):
//   FLOPs = 2*Q*K*D (logits) + 2*Q*K*E (weighted sum)   bytes (DRAM, ideal) = (Q*D + K*D + K*E + 2*Q*E) * sizeof(T)
// 1c at attn3 of ResNet50, 384x128 (C = 1024, HW = 192): 0.81 GFLOP and 1.6 MB per image, so the
// op is compute bound (arithmetic intensity ~500 FLOP/byte); the roofline target is the GPU's
// fp32 CUDA-core rate (this kernel does not use tensor cores). 1s: 2*HW*HW*(C' + C) FLOPs.
//
// Algorithm (mirrored step by step by tests/kernels/tiling_model.py):
//   one warp owns one query row j; lane l holds elements l, l+32, ... of q_j and of the
//   output accumulator o_j in registers. Keys are visited in tiles of kKeyTile; for each tile
//   the warp computes kKeyTile logits (lane partial dot products + butterfly reduction), then
//   applies one online-softmax update: m' = max(m, max tile), o = o * exp(m - m') +
//   sum_t exp(l_t - m') v_t, s likewise. Finally y_j = alpha * o / s + x_j.
#include "rowAttentionKernel.h"

#include "../common/cuda_utils.h"
#include "../common/launchErrors.h"
#include "../common/opContract.h"

namespace adfl {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kKeyTile = 8;

struct RowLayout {
    // element (sample b, row r, dim d) lives at b * sampleStride + r * rowStride + d * dimStride
    long long sampleStride;
    int rowStride;
    int dimStride;
};

template <typename T>
__device__ __forceinline__ float load(const T* base, const RowLayout& L, int b, int row, int dim) {
    return toFloat(base[b * L.sampleStride + static_cast<long long>(row) * L.rowStride +
                        static_cast<long long>(dim) * L.dimStride]);
}

// QD / VD: values per lane of the query and value rows (dims up to 32*QD / 32*VD).
template <typename T, int QD, int VD>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    rowAttention(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ x,
                 const T* __restrict__ alpha, T* __restrict__ y, int rows, int qDim, int vDim, RowLayout qL,
                 RowLayout vL) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
    const int b = blockIdx.y;
    if (row >= rows) return;  // whole warp exits together

    float qr[QD];
#pragma unroll
    for (int t = 0; t < QD; ++t) {
        const int d = lane + 32 * t;
        qr[t] = d < qDim ? load(q, qL, b, row, d) : 0.f;
    }
    float o[VD];
#pragma unroll
    for (int t = 0; t < VD; ++t) o[t] = 0.f;
    float m = -FLT_MAX;
    float s = 0.f;

    for (int key0 = 0; key0 < rows; key0 += kKeyTile) {
        float logit[kKeyTile];
        float tileMax = -FLT_MAX;
#pragma unroll
        for (int u = 0; u < kKeyTile; ++u) {
            const int key = key0 + u;
            float partial = 0.f;
            if (key < rows) {
#pragma unroll
                for (int t = 0; t < QD; ++t) {
                    const int d = lane + 32 * t;
                    if (d < qDim) partial = fmaf(qr[t], load(k, qL, b, key, d), partial);
                }
            }
#pragma unroll
            for (int offset = 16; offset > 0; offset >>= 1) partial += __shfl_xor_sync(0xffffffffu, partial, offset);
            logit[u] = key < rows ? partial : -FLT_MAX;
            tileMax = fmaxf(tileMax, logit[u]);
        }
        const float mNew = fmaxf(m, tileMax);
        const float rescale = __expf(m - mNew);  // 0 on the first tile (m = -FLT_MAX)
        s *= rescale;
#pragma unroll
        for (int t = 0; t < VD; ++t) o[t] *= rescale;
#pragma unroll
        for (int u = 0; u < kKeyTile; ++u) {
            const int key = key0 + u;
            if (key >= rows) break;
            const float p = __expf(logit[u] - mNew);
            s += p;
#pragma unroll
            for (int t = 0; t < VD; ++t) {
                const int d = lane + 32 * t;
                if (d < vDim) o[t] = fmaf(p, load(v, vL, b, key, d), o[t]);
            }
        }
        m = mNew;
    }

    const float a = toFloat(alpha[0]) / s;
#pragma unroll
    for (int t = 0; t < VD; ++t) {
        const int d = lane + 32 * t;
        if (d < vDim) {
            const long long at = b * vL.sampleStride + static_cast<long long>(row) * vL.rowStride +
                                 static_cast<long long>(d) * vL.dimStride;
            y[at] = fromFloat<T>(fmaf(a, o[t], toFloat(x[at])));
        }
    }
}

// Values per lane of the instantiated kernels: queries up to 32 (QD), values up to 64 (VD).
constexpr int kMaxQueryPerLane = 32;
constexpr int kMaxValuePerLane = 64;
static_assert(32 * kMaxQueryPerLane == contract::kRowMaxQueryDim, "query limit of the contract != dispatch table");
static_assert(32 * kMaxValuePerLane == contract::kRowMaxValueDim, "value limit of the contract != dispatch table");
static_assert(contract::kRowMaxValueDim == kRowAttentionMaxDim, "rowAttentionKernel.h limit != contract");

int perLane(int dim, int maxPerLane) {
    const int need = (dim + 31) / 32;
    for (int p : {1, 2, 4, 8, 16, 32, 64})
        if (need <= p && p <= maxPerLane) return p;
    return -1;
}

template <typename T, int QD>
cudaError_t dispatchValues(int vd, dim3 grid, const T* q, const T* k, const T* v, const T* x, const T* alpha, T* y,
                           int rows, int qDim, int vDim, RowLayout qL, RowLayout vL, cudaStream_t stream) {
    const dim3 block(kWarpsPerBlock * 32);
#define ADFL_ROW_CASE(VDN)                                                                                        \
    case VDN:                                                                                                     \
        rowAttention<T, QD, VDN><<<grid, block, 0, stream>>>(q, k, v, x, alpha, y, rows, qDim, vDim, qL, vL); \
        break;
    switch (vd) {
        ADFL_ROW_CASE(1)
        ADFL_ROW_CASE(2)
        ADFL_ROW_CASE(4)
        ADFL_ROW_CASE(8)
        ADFL_ROW_CASE(16)
        ADFL_ROW_CASE(32)
        ADFL_ROW_CASE(64)
        default: return cudaErrorInvalidValue;
    }
#undef ADFL_ROW_CASE
    return cudaGetLastError();  // this launch's error: a pending one was taken before it
}

template <typename T>
cudaError_t launchRows(const T* q, const T* k, const T* v, const T* x, const T* alpha, T* y, int batch, int rows,
                       int qDim, int vDim, RowLayout qL, RowLayout vL, cudaStream_t stream) {
    if (batch < 0 || rows < 0 || qDim < 0 || vDim < 0) return cudaErrorInvalidValue;
    if (batch == 0 || rows == 0 || vDim == 0) return cudaSuccess;  // empty output
    if (qDim == 0) return cudaErrorInvalidValue;
    const int qd = perLane(qDim, kMaxQueryPerLane), vd = perLane(vDim, kMaxValuePerLane);
    if (qd < 0 || vd < 0) return cudaErrorInvalidValue;  // beyond contract::kRowMax{Query,Value}Dim
    if (static_cast<long long>(batch) * rows * (qDim > vDim ? qDim : vDim) > contract::kMaxElements)
        return cudaErrorInvalidValue;  // 32-bit row/dim indices
    if (batch > 65535) return cudaErrorInvalidValue;  // grid.y
    const PendingError pending = takePendingError();
    if (pending.sticky) return pending.error;  // the context is unusable: launching cannot succeed
    const dim3 grid((rows + kWarpsPerBlock - 1) / kWarpsPerBlock, batch);
    switch (qd) {
        case 1: return dispatchValues<T, 1>(vd, grid, q, k, v, x, alpha, y, rows, qDim, vDim, qL, vL, stream);
        case 2: return dispatchValues<T, 2>(vd, grid, q, k, v, x, alpha, y, rows, qDim, vDim, qL, vL, stream);
        case 4: return dispatchValues<T, 4>(vd, grid, q, k, v, x, alpha, y, rows, qDim, vDim, qL, vL, stream);
        case 8: return dispatchValues<T, 8>(vd, grid, q, k, v, x, alpha, y, rows, qDim, vDim, qL, vL, stream);
        case 16: return dispatchValues<T, 16>(vd, grid, q, k, v, x, alpha, y, rows, qDim, vDim, qL, vL, stream);
        case 32: return dispatchValues<T, 32>(vd, grid, q, k, v, x, alpha, y, rows, qDim, vDim, qL, vL, stream);
        default: return cudaErrorInvalidValue;  // unreachable: perLane caps qd at kMaxQueryPerLane
    }
}

}  // namespace

template <typename T>
cudaError_t launchSpatialAttention(const T* q, const T* k, const T* v, const T* x, const T* alpha, T* y, int batch,
                                   int channels, int reduced, int positions, cudaStream_t stream) {
    // rows = positions (stride 1), dims = channels (stride H*W)
    const RowLayout qL{static_cast<long long>(reduced) * positions, 1, positions};
    const RowLayout vL{static_cast<long long>(channels) * positions, 1, positions};
    return launchRows(q, k, v, x, alpha, y, batch, positions, reduced, channels, qL, vL, stream);
}

template <typename T>
cudaError_t launchChannelAttention(const T* x, const T* alpha, T* y, int batch, int channels, int positions,
                                   cudaStream_t stream) {
    // rows = channels (stride H*W), dims = positions (stride 1); q = k = v = x
    const RowLayout L{static_cast<long long>(channels) * positions, positions, 1};
    return launchRows(x, x, x, x, alpha, y, batch, channels, positions, positions, L, L, stream);
}

template cudaError_t launchSpatialAttention<float>(const float*, const float*, const float*, const float*,
                                                   const float*, float*, int, int, int, int, cudaStream_t);
template cudaError_t launchSpatialAttention<__half>(const __half*, const __half*, const __half*, const __half*,
                                                    const __half*, __half*, int, int, int, int, cudaStream_t);
template cudaError_t launchChannelAttention<float>(const float*, const float*, float*, int, int, int, cudaStream_t);
template cudaError_t launchChannelAttention<__half>(const __half*, const __half*, __half*, int, int, int,
                                                    cudaStream_t);

}  // namespace adfl
