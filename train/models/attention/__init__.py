"""Attention modules built from their paper tokens (``1s``, ``2multiply``, ...)."""

from __future__ import annotations

from torch import nn

from adfl_deploy.model.variants import ATTENTION_MODULES

from .arrangement import MapProduct, ParallelSum, Sequential
from .type1 import BatchAttention, ChannelAttention, HyperAttention, SpatialAttention
from .type2 import ChannelGate, HyperGate, SpatialGate

#: single modules by token: (attention type, s/c/h/b) -> class
SINGLE_MODULES: dict[str, type[nn.Module]] = {
    "1s": SpatialAttention,
    "1c": ChannelAttention,
    "1h": HyperAttention,
    "1b": BatchAttention,
    "2s": SpatialGate,
    "2c": ChannelGate,
    "2h": HyperGate,
}

ARRANGEMENTS = {
    "sc": lambda s, c: Sequential(s, c),
    "cs": lambda s, c: Sequential(c, s),
    "sum": ParallelSum,
    "multiply": MapProduct,
}


def create_attention(module: str, channels: int, batch_attention: str = "batch") -> nn.Module:
    """Build the attention named ``module`` (e.g. ``"1sum"``) for a ``channels``-wide feature map."""
    if module not in ATTENTION_MODULES:
        raise ValueError(f"unknown attention module {module!r}; choose from {', '.join(ATTENTION_MODULES)}")
    if module in SINGLE_MODULES:
        if module == "1b":
            return BatchAttention(channels, eval_mode=batch_attention)
        return SINGLE_MODULES[module](channels)
    kind, arrangement = module[0], module[1:]
    spatial = SINGLE_MODULES[f"{kind}s"](channels)
    channel = SINGLE_MODULES[f"{kind}c"](channels)
    return ARRANGEMENTS[arrangement](spatial, channel)


__all__ = [
    "BatchAttention",
    "ChannelAttention",
    "ChannelGate",
    "HyperAttention",
    "HyperGate",
    "MapProduct",
    "ParallelSum",
    "Sequential",
    "SpatialAttention",
    "SpatialGate",
    "create_attention",
]
