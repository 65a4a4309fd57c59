// Thread-per-query flash attention with scalar tokens.
//
// Work per sample: FLOPs = 4 * M^2 (a multiply for the logit, exp, and an FMA per key: counted
// as 2 MACs), bytes (DRAM, ideal) = 4 * M * sizeof(T). M = 3072 at attn3 of ResNet50: 38 MFLOP
// + 9.4 M exponentials per image, so the op is bound by the SFU exp throughput, not memory;
// the roofline target is M^2 exponentials at the GPU's SFU rate (16 per SM per clock on Hopper).
//
// Algorithm (mirrored by tests/kernels/tiling_model.py): a block of kThreads queries walks the
// keys in tiles of kThreads; each tile's k and v are staged in shared memory as fp32; each
// thread updates its online softmax (m, s, o) once per tile with the tile's max.
#include "hyperAttentionKernel.h"

#include "../common/cuda_utils.h"
#include "../common/launchErrors.h"
#include "../common/opContract.h"

namespace adfl {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads)
    hyperAttention(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ y,
                   int locations) {
    __shared__ float ks[kThreads];
    __shared__ float vs[kThreads];
    const long long base = static_cast<long long>(blockIdx.y) * locations;
    const int j = blockIdx.x * kThreads + threadIdx.x;
    const float qj = j < locations ? toFloat(q[base + j]) : 0.f;
    float m = -FLT_MAX, s = 0.f, o = 0.f;
    for (int key0 = 0; key0 < locations; key0 += kThreads) {
        const int count = min(kThreads, locations - key0);
        __syncthreads();
        if (threadIdx.x < count) {
            ks[threadIdx.x] = toFloat(k[base + key0 + threadIdx.x]);
            vs[threadIdx.x] = toFloat(v[base + key0 + threadIdx.x]);
        }
        __syncthreads();
        float tileMax = -FLT_MAX;
        for (int u = 0; u < count; ++u) tileMax = fmaxf(tileMax, qj * ks[u]);
        const float mNew = fmaxf(m, tileMax);
        const float rescale = __expf(m - mNew);
        s *= rescale;
        o *= rescale;
        for (int u = 0; u < count; ++u) {
            const float p = __expf(qj * ks[u] - mNew);
            s += p;
            o = fmaf(p, vs[u], o);
        }
        m = mNew;
    }
    if (j < locations) y[base + j] = fromFloat<T>(o / s);
}

}  // namespace

template <typename T>
cudaError_t launchHyperAttention(const T* q, const T* k, const T* v, T* y, int batch, int locations,
                                 cudaStream_t stream) {
    if (batch < 0 || locations < 0) return cudaErrorInvalidValue;
    if (batch == 0 || locations == 0) return cudaSuccess;
    if (batch > 65535 || static_cast<long long>(batch) * locations > contract::kMaxElements) return cudaErrorInvalidValue;
    const PendingError pending = takePendingError();
    if (pending.sticky) return pending.error;  // the context is unusable: launching cannot succeed
    const dim3 grid((locations + kThreads - 1) / kThreads, batch);
    hyperAttention<T><<<grid, kThreads, 0, stream>>>(q, k, v, y, locations);
    return cudaGetLastError();  // this launch's error: a pending one was taken before it
}

template cudaError_t launchHyperAttention<float>(const float*, const float*, const float*, float*, int, int,
                                                 cudaStream_t);
template cudaError_t launchHyperAttention<__half>(const __half*, const __half*, const __half*, __half*, int, int,
                                                  cudaStream_t);

}  // namespace adfl
