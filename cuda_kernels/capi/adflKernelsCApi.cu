// C entry points for the kernels (ctypes-friendly): used by the GPU tests and benchmarks to run
// each kernel on tensors that PyTorch allocated. Pointers are device pointers; `stream` may be 0.
// Every function returns a cudaError_t value (0 = success): cudaErrorInvalidValue (1) for shapes
// beyond the contract (common/opContract.h), checked before anything is launched, else the
// error of this launch. An error left pending by earlier work is not returned as this kernel's:
// it is cleared and reported on stderr (a sticky one, after which nothing can launch, is returned).
#include "common/launchErrors.h"
#include "hyper_attention/hyperAttentionKernel.h"
#include "row_attention/rowAttentionKernel.h"
#include "softmax_gate/softmaxGateKernel.h"

#include <cuda_fp16.h>

#include <cstdio>

namespace {

// Take an error pending from earlier work; true if launching can still succeed.
bool clearForeignError(char const* entry) {
    adfl::PendingError const pending = adfl::takePendingError();
    if (pending.error != cudaSuccess && !pending.sticky)
        std::fprintf(stderr, "[adfl kernels] %s: a CUDA error from earlier work was pending (%s); cleared, not this kernel's\n",
                     entry, cudaGetErrorString(pending.error));
    return !pending.sticky;
}

}  // namespace

#define ADFL_C_API extern "C" __attribute__((visibility("default")))

#define ADFL_DEFINE_FOR(SUFFIX, T)                                                                                   \
    ADFL_C_API int adfl_spatial_attention_##SUFFIX(const void* q, const void* k, const void* v, const void* x,      \
                                                   const void* alpha, void* y, int batch, int channels, int reduced, \
                                                   int positions, cudaStream_t stream) {                             \
        clearForeignError(__func__);                                                                                 \
        return adfl::launchSpatialAttention<T>(static_cast<const T*>(q), static_cast<const T*>(k),                  \
                                               static_cast<const T*>(v), static_cast<const T*>(x),                  \
                                               static_cast<const T*>(alpha), static_cast<T*>(y), batch, channels,   \
                                               reduced, positions, stream);                                          \
    }                                                                                                                \
    ADFL_C_API int adfl_channel_attention_##SUFFIX(const void* x, const void* alpha, void* y, int batch,            \
                                                   int channels, int positions, cudaStream_t stream) {               \
        clearForeignError(__func__);                                                                                 \
        return adfl::launchChannelAttention<T>(static_cast<const T*>(x), static_cast<const T*>(alpha),              \
                                               static_cast<T*>(y), batch, channels, positions, stream);              \
    }                                                                                                                \
    ADFL_C_API int adfl_hyper_attention_##SUFFIX(const void* q, const void* k, const void* v, void* y, int batch,   \
                                                 int locations, cudaStream_t stream) {                               \
        clearForeignError(__func__);                                                                                 \
        return adfl::launchHyperAttention<T>(static_cast<const T*>(q), static_cast<const T*>(k),                    \
                                             static_cast<const T*>(v), static_cast<T*>(y), batch, locations,        \
                                             stream);                                                                \
    }                                                                                                                \
    ADFL_C_API int adfl_softmax_gate_##SUFFIX(int kind, const void* logits, const void* x, void* y, int batch,      \
                                              int channels, int positions, void* workspace, cudaStream_t stream) {   \
        clearForeignError(__func__);                                                                                 \
        return adfl::launchSoftmaxGate<T>(static_cast<adfl::GateKind>(kind), static_cast<const T*>(logits),         \
                                          static_cast<const T*>(x), static_cast<T*>(y), batch, channels, positions, \
                                          workspace, stream);                                                        \
    }

ADFL_DEFINE_FOR(f32, float)
ADFL_DEFINE_FOR(f16, __half)

ADFL_C_API size_t adfl_softmax_gate_workspace_size(int batch, int logits_per_sample) {
    return adfl::softmaxGateWorkspaceSize(batch, logits_per_sample);
}
