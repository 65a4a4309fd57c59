// Launch-error bookkeeping shared by the launchers, the C API and the plugin (host code only).
//
// cudaGetLastError() returns the last error of *any* earlier runtime call on this thread, so a
// launcher that only reads it after its own launch blames an earlier failure on itself. The
// callers therefore take a pending error before launching: a non-sticky one (e.g. a bad launch
// configuration of someone else's kernel) is cleared and reported as foreign; a sticky one (the
// context is broken, nothing can run) stays and is returned without launching.
#pragma once

#include <cuda_runtime.h>

namespace adfl {

struct PendingError {
    cudaError_t error = cudaSuccess;  // what was pending before this launch
    bool sticky = false;              // still pending after clearing: the context is unusable
};

inline PendingError takePendingError() {
    PendingError p;
    p.error = cudaGetLastError();
    if (p.error != cudaSuccess) p.sticky = cudaPeekAtLastError() != cudaSuccess;
    return p;
}

}  // namespace adfl
