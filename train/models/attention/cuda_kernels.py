"""Run the ``adfl::`` ops on the project's CUDA kernels (``libadfl_kernels.so``) in PyTorch.

``use_cuda_kernels()`` loads the library built by ``make native`` and registers each kernel
as the CUDA implementation of its custom op, so a fused model on a GPU runs the same kernels
as the TensorRT plugins; backward still recomputes the composite. Used by the GPU tests and
the kernel benchmark; CPU-only machines never load it.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import torch

from . import ops

DEFAULT_LIB = Path(__file__).resolve().parents[3] / "build" / "libadfl_kernels.so"
_GATE_KIND = {"spatial_gate": 0, "channel_gate": 1, "hyper_gate": 2}
_loaded: ctypes.CDLL | None = None


def library_path() -> Path:
    return Path(os.environ.get("ADFL_KERNELS_LIB", DEFAULT_LIB))


def _suffix(t: torch.Tensor) -> str:
    if t.dtype == torch.float32:
        return "f32"
    if t.dtype == torch.float16:
        return "f16"
    raise TypeError(f"adfl CUDA kernels take float32 or float16 tensors, not {t.dtype}")


def _ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


def _check(rc: int, name: str) -> None:
    if rc != 0:
        raise RuntimeError(f"adfl CUDA kernel {name} failed with cudaError {rc}")


def _stream() -> ctypes.c_void_p:
    return ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)


def _register(lib: ctypes.CDLL) -> None:
    def spatial_attention(q, k, v, x, alpha):
        q, k, v, x, alpha = (t.contiguous() for t in (q, k, v, x, alpha))
        y = torch.empty_like(x)
        b, c, h, w = x.shape
        fn = getattr(lib, f"adfl_spatial_attention_{_suffix(x)}")
        _check(fn(_ptr(q), _ptr(k), _ptr(v), _ptr(x), _ptr(alpha), _ptr(y), b, c, q.shape[1], h * w, _stream()), "spatial_attention")
        return y

    def channel_attention(x, alpha):
        x, alpha = x.contiguous(), alpha.contiguous()
        y = torch.empty_like(x)
        b, c, h, w = x.shape
        _check(getattr(lib, f"adfl_channel_attention_{_suffix(x)}")(_ptr(x), _ptr(alpha), _ptr(y), b, c, h * w, _stream()), "channel_attention")
        return y

    def hyper_attention(q, k, v):
        q, k, v = (t.contiguous() for t in (q, k, v))
        y = torch.empty_like(v)
        _check(getattr(lib, f"adfl_hyper_attention_{_suffix(v)}")(_ptr(q), _ptr(k), _ptr(v), _ptr(y), v.shape[0], v[0].numel(), _stream()), "hyper_attention")
        return y

    def gate(name):
        def run(*args):
            args = [t.contiguous() for t in args]
            x = args[-1]
            logits = args[0] if len(args) == 2 else x
            b, c, h, w = x.shape
            per_sample = logits[0].numel()
            workspace = torch.empty(int(lib.adfl_softmax_gate_workspace_size(b, per_sample)), dtype=torch.uint8, device=x.device)
            y = torch.empty_like(x)
            fn = getattr(lib, f"adfl_softmax_gate_{_suffix(x)}")
            _check(fn(_GATE_KIND[name], _ptr(logits), _ptr(x), _ptr(y), b, c, h * w, _ptr(workspace), _stream()), name)
            return y

        return run

    impls = {
        "spatial_attention": spatial_attention,
        "channel_attention": channel_attention,
        "hyper_attention": hyper_attention,
        "spatial_gate": gate("spatial_gate"),
        "channel_gate": gate("channel_gate"),
        "hyper_gate": gate("hyper_gate"),
    }
    for name, impl in impls.items():
        ops.OPS[name].register_kernel("cuda")(impl)


def use_cuda_kernels(path: str | Path | None = None) -> bool:
    """Load the kernel library and register it for CUDA tensors; False if unavailable."""
    global _loaded
    if _loaded is not None:
        return True
    path = Path(path) if path else library_path()
    if not torch.cuda.is_available() or not path.is_file():
        return False
    lib = ctypes.CDLL(str(path))
    lib.adfl_softmax_gate_workspace_size.restype = ctypes.c_size_t
    _register(lib)
    _loaded = lib
    return True
