"""Run the ``adfl::`` ops on the project's CUDA kernels (``libadfl_kernels.so``) in PyTorch.

``use_cuda_kernels()`` loads the library built by ``make native`` and registers each kernel
as the CUDA implementation of its custom op, so a fused model on a GPU runs the same kernels
as the TensorRT plugins; backward still recomputes the composite. Used by the GPU tests and
the kernel benchmark; CPU-only machines never load it.

The launchers take raw pointers and pick the element width from one type, so every call is
checked first (``check_inputs``): all inputs of one contract type (float32 or float16; an fp32
``alpha`` beside fp16 activations under autocast is refused, not read at the wrong width),
contiguous, shaped as the contract says, within the kernels' limits, on one CUDA device. Each
failure is a one-line error naming the op and the input.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import torch

from adfl_deploy.model import attention_ops as contract

from . import ops

DEFAULT_LIB = Path(__file__).resolve().parents[3] / "build" / "libadfl_kernels.so"
#: GateKind of cuda_kernels/softmax_gate/softmaxGateKernel.h
_GATE_KIND = {"spatial_gate": 0, "channel_gate": 1, "hyper_gate": 2}
_SUFFIX = {torch.float32: "f32", torch.float16: "f16"}
_TORCH_DTYPE = {"float32": torch.float32, "float16": torch.float16}
_loaded: ctypes.CDLL | None = None


def library_path() -> Path:
    return Path(os.environ.get("ADFL_KERNELS_LIB", DEFAULT_LIB))


def entry_points(name: str) -> list[str]:
    """The C functions of ``libadfl_kernels.so`` that run op ``name`` (one per type)."""
    base = "adfl_softmax_gate" if name in _GATE_KIND else f"adfl_{name}"
    return [f"{base}_{_SUFFIX[_TORCH_DTYPE[t]]}" for t in contract.BY_NAME[name].dtypes]


def _shape_problem(name: str, t: dict[str, torch.Tensor]) -> str:
    """The contract's shape rules for op ``name``; '' if the shapes agree."""
    feature = t[contract.BY_NAME[name].output_like]
    if feature.dim() != 4:
        return f"{contract.BY_NAME[name].output_like} must be 4-D (B, C, H, W), got {tuple(feature.shape)}"
    b, c, h, w = feature.shape
    if "alpha" in t and tuple(t["alpha"].shape) != (1,):
        return f"alpha must have shape (1,), got {tuple(t['alpha'].shape)}"
    if name == "spatial_attention":
        q, k, v = t["q"], t["k"], t["v"]
        if q.dim() != 4 or tuple(q.shape) != tuple(k.shape) or (q.shape[0], *q.shape[2:]) != (b, h, w):
            return f"q, k must be (B, C', H, W) = (B, C', {h}, {w}) alike, got {tuple(q.shape)} and {tuple(k.shape)}"
        if tuple(v.shape) != (b, c, h, w):
            return f"v must have x's shape {(b, c, h, w)}, got {tuple(v.shape)}"
    elif name == "hyper_attention":
        if tuple(t["q"].shape) != (b, c, h, w) or tuple(t["k"].shape) != (b, c, h, w):
            return f"q, k, v must share one shape, got {tuple(t['q'].shape)}, {tuple(t['k'].shape)}, {(b, c, h, w)}"
    elif name == "spatial_gate":
        if tuple(t["logits"].shape) != (b, 1, h, w):
            return f"logits must be (B, 1, H, W) = {(b, 1, h, w)}, got {tuple(t['logits'].shape)}"
    elif name == "channel_gate":
        if tuple(t["logits"].shape) != (b, c):
            return f"logits must be (B, C) = {(b, c)}, got {tuple(t['logits'].shape)}"
    return contract.BY_NAME[name].check_limits({n: tuple(v.shape) for n, v in t.items()})


def check_inputs(name: str, tensors) -> str:
    """Validate the inputs of op ``name`` for the CUDA kernels; return the type suffix
    ('f32'/'f16'). Raises TypeError (types), ValueError (layout, shapes, limits) or
    RuntimeError (devices) with one line naming the op and the input."""
    spec = contract.BY_NAME[name]
    if len(tensors) != len(spec.inputs):
        raise TypeError(f"adfl::{name} takes {len(spec.inputs)} inputs {spec.inputs}, got {len(tensors)}")
    named = dict(zip(spec.inputs, tensors))
    ref = named[spec.output_like]
    allowed = tuple(_TORCH_DTYPE[d] for d in spec.dtypes)
    if ref.dtype not in allowed:
        raise TypeError(f"adfl::{name}: {spec.output_like} is {ref.dtype}; the CUDA kernels take {' or '.join(spec.dtypes)}")
    for n, t in named.items():
        if t.dtype != ref.dtype:
            raise TypeError(
                f"adfl::{name}: {n} is {t.dtype} but {spec.output_like} is {ref.dtype}; every input must have one type "
                f"(cast {n} to {ref.dtype})"
            )
    for n, t in named.items():
        if not t.is_contiguous():
            raise ValueError(
                f"adfl::{name}: {n} is not contiguous (strides {t.stride()}); the kernels read NCHW-contiguous memory"
            )
    problem = _shape_problem(name, named)
    if problem:
        raise ValueError(f"adfl::{problem}" if problem.startswith(f"{name}:") else f"adfl::{name}: {problem}")
    for n, t in named.items():
        if t.device.type != "cuda" or t.device != ref.device:
            raise RuntimeError(
                f"adfl::{name}: {n} is on {t.device}, {spec.output_like} on {ref.device}; all inputs must be on one CUDA device"
            )
    return _SUFFIX[ref.dtype]


def _ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


def _check(rc: int, name: str) -> None:
    if rc != 0:
        raise RuntimeError(f"adfl CUDA kernel {name} failed with cudaError {rc}")


def _stream() -> ctypes.c_void_p:
    return ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)


def _register(lib: ctypes.CDLL) -> None:
    def spatial_attention(q, k, v, x, alpha):
        suffix = check_inputs("spatial_attention", (q, k, v, x, alpha))
        y = torch.empty_like(x)
        b, c, h, w = x.shape
        fn = getattr(lib, f"adfl_spatial_attention_{suffix}")
        _check(
            fn(_ptr(q), _ptr(k), _ptr(v), _ptr(x), _ptr(alpha), _ptr(y), b, c, q.shape[1], h * w, _stream()), "spatial_attention"
        )
        return y

    def channel_attention(x, alpha):
        suffix = check_inputs("channel_attention", (x, alpha))
        y = torch.empty_like(x)
        b, c, h, w = x.shape
        _check(
            getattr(lib, f"adfl_channel_attention_{suffix}")(_ptr(x), _ptr(alpha), _ptr(y), b, c, h * w, _stream()),
            "channel_attention",
        )
        return y

    def hyper_attention(q, k, v):
        suffix = check_inputs("hyper_attention", (q, k, v))
        y = torch.empty_like(v)
        _check(
            getattr(lib, f"adfl_hyper_attention_{suffix}")(
                _ptr(q), _ptr(k), _ptr(v), _ptr(y), v.shape[0], v[0].numel(), _stream()
            ),
            "hyper_attention",
        )
        return y

    def gate(name):
        def run(*args):
            suffix = check_inputs(name, args)
            x = args[-1]
            logits = args[0] if len(args) == 2 else x
            b, c, h, w = x.shape
            per_sample = logits[0].numel()
            workspace = torch.empty(int(lib.adfl_softmax_gate_workspace_size(b, per_sample)), dtype=torch.uint8, device=x.device)
            y = torch.empty_like(x)
            fn = getattr(lib, f"adfl_softmax_gate_{suffix}")
            _check(fn(_GATE_KIND[name], _ptr(logits), _ptr(x), _ptr(y), b, c, h * w, _ptr(workspace), _stream()), name)
            return y

        return run

    impls = {
        "spatial_attention": spatial_attention,
        "channel_attention": channel_attention,
        "hyper_attention": hyper_attention,
        **{name: gate(name) for name in _GATE_KIND},
    }
    missing = set(contract.NAMES) ^ set(impls)
    assert not missing, f"ops without (or beyond) a CUDA implementation: {sorted(missing)}"
    for name in contract.NAMES:
        ops.OPS[name].register_kernel("cuda")(impls[name])


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
