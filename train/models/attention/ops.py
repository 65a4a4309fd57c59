"""The fused softmax-attention ops as PyTorch custom ops (``torch.library``).

One op per softmax-attention block, with the contract written in ``cuda_kernels/README.md``
and shared by every implementation:

=====================  ==================================  =============================
torch op               inputs -> output                    softmax over
=====================  ==================================  =============================
adfl::spatial_attention q, k (B,C',H,W), v, x (B,C,H,W),    key positions (HW), per query
                        alpha (1) -> alpha*attn + x (B,C,H,W)
adfl::channel_attention x (B,C,H,W), alpha (1) -> same      channels (C), per channel
adfl::hyper_attention   q, k, v (B,C',H,W) -> (B,C',H,W)    all C'HW locations, per location
adfl::spatial_gate      logits (B,1,H,W), x -> softmax*x    H*W positions
adfl::channel_gate      logits (B,C), x -> softmax*x        C channels
adfl::hyper_gate        x -> softmax(x)*x                   all C*H*W entries
=====================  ==================================  =============================

Names, input names (the schemas' argument names) and the output's shape come from the contract
table, ``adfl_deploy.model.attention_ops``; registering an op whose stub disagrees with it fails.

Each op's CPU/CUDA implementation is the composite in ``functional.py``; a fake kernel gives
shapes to ``torch.export``; autograd recomputes the composite in backward, so training in
fused mode works. At ONNX export each op becomes one ``com.adfl`` node
(``adfl_deploy.export.onnx_ops``), and on a GPU a TensorRT plugin runs the CUDA kernel.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import Tensor

from adfl_deploy.model import attention_ops as contract

from . import functional as AF


def _channel_gate_composite(logits: Tensor, x: Tensor) -> Tensor:
    return AF.channel_gate(logits) * x


def _spatial_gate_composite(logits: Tensor, x: Tensor) -> Tensor:
    return AF.spatial_gate(logits) * x


def _hyper_gate_composite(x: Tensor) -> Tensor:
    return AF.hyper_gate(x) * x


_COMPOSITE_FNS: dict[str, Callable[..., Tensor]] = {
    "spatial_attention": AF.spatial_attention,
    "channel_attention": AF.channel_attention,
    "hyper_attention": AF.hyper_attention_core,
    "spatial_gate": _spatial_gate_composite,
    "channel_gate": _channel_gate_composite,
    "hyper_gate": _hyper_gate_composite,
}

#: op name -> (composite implementation, index of the input whose shape the output has)
COMPOSITES: dict[str, tuple[Callable[..., Tensor], int]] = {
    op.name: (_COMPOSITE_FNS[op.name], op.output_index) for op in contract.OPS
}


def _register(name: str, schema_fn: Callable) -> Callable:
    """Register ``adfl::name`` from a typed stub, with fake kernel and recompute-autograd."""
    composite, shape_of = COMPOSITES[name]
    params = tuple(inspect.signature(schema_fn).parameters)
    if params != contract.BY_NAME[name].inputs:
        raise TypeError(f"adfl::{name}: stub takes {params}, the contract says {contract.BY_NAME[name].inputs}")

    op = torch.library.custom_op(f"adfl::{name}", mutates_args=())(schema_fn)

    @op.register_fake
    def _fake(*args):
        return torch.empty_like(args[shape_of])

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    def backward(ctx, grad):
        inputs = ctx.saved_tensors
        needs = ctx.needs_input_grad
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(bool(n)) for t, n in zip(inputs, needs)]
            out = composite(*leaves)
            wanted = [leaf for leaf, n in zip(leaves, needs) if n]
            grads = iter(torch.autograd.grad(out, wanted, grad) if wanted else ())
        return tuple(next(grads) if n else None for n in needs)

    op.register_autograd(backward, setup_context=setup_context)
    return op


# The stubs give each op its schema; the body is the composite.
def _spatial_attention(q: Tensor, k: Tensor, v: Tensor, x: Tensor, alpha: Tensor) -> Tensor:
    return AF.spatial_attention(q, k, v, x, alpha)


def _channel_attention(x: Tensor, alpha: Tensor) -> Tensor:
    return AF.channel_attention(x, alpha)


def _hyper_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    return AF.hyper_attention_core(q, k, v)


def _spatial_gate(logits: Tensor, x: Tensor) -> Tensor:
    return _spatial_gate_composite(logits, x)


def _channel_gate(logits: Tensor, x: Tensor) -> Tensor:
    return _channel_gate_composite(logits, x)


def _hyper_gate(x: Tensor) -> Tensor:
    return _hyper_gate_composite(x)


_STUBS = {
    "spatial_attention": _spatial_attention,
    "channel_attention": _channel_attention,
    "hyper_attention": _hyper_attention,
    "spatial_gate": _spatial_gate,
    "channel_gate": _channel_gate,
    "hyper_gate": _hyper_gate,
}
#: op name -> the registered custom op, in the contract's order
OPS = {name: _register(name, _STUBS[name]) for name in contract.NAMES}

spatial_attention = OPS["spatial_attention"]
channel_attention = OPS["channel_attention"]
hyper_attention = OPS["hyper_attention"]
spatial_gate = OPS["spatial_gate"]
channel_gate = OPS["channel_gate"]
hyper_gate = OPS["hyper_gate"]
