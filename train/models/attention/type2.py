"""Type II attention: direct generation of a softmax-normalised map (Sec. IV-B, supplementary B).

Each module computes the ``logits`` of its map and applies them with ``gate(logits, x)`` =
``softmax(logits) * x``; that gate is the fused op (``fused = True``). ``attention_map`` gives
the normalised map itself, for inspection and tests. Because element-wise products associate,
the ``multiply`` arrangement (Eq. 3) is two gates in a row: ``A^C * (A^S * I)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import functional as AF
from . import ops


class _Gate(nn.Module):
    #: (composite map function, fused gate op) of the subclass
    _map_fn = None
    _op = None

    def __init__(self) -> None:
        super().__init__()
        self.fused = False

    def logits(self, x: Tensor) -> Tensor:
        return x

    def attention_map(self, x: Tensor) -> Tensor:
        return type(self)._map_fn(self.logits(x))

    def gate(self, logits: Tensor, x: Tensor) -> Tensor:
        """``softmax(logits) * x`` over this module's axes."""
        if self.fused:
            return type(self)._op(logits, x)
        return type(self)._map_fn(logits) * x

    def forward(self, x: Tensor) -> Tensor:
        return self.gate(self.logits(x), x)


class SpatialGate(_Gate):
    """``2s``: softmax over H*W of conv3x3([mean_c(I); max_c(I)]), Eq. (12).

    The conv has no bias: a constant added before a softmax over all positions cancels out.
    """

    _map_fn = staticmethod(AF.spatial_gate)
    _op = staticmethod(ops.spatial_gate)

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=3, stride=1, padding=1, bias=False)

    def logits(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return self.conv(pooled)


class ChannelGate(_Gate):
    """``2c``: softmax over C of MLP(avgpool(I)) + MLP(maxpool(I)), Eq. (13); MLP bottleneck C/16."""

    reduction = 16
    _map_fn = staticmethod(AF.channel_gate)
    _op = staticmethod(ops.channel_gate)

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // self.reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, inner, kernel_size=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(inner, channels, kernel_size=1, bias=False),
        )

    def logits(self, x: Tensor) -> Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return (avg + mx).flatten(1)


class HyperGate(_Gate):
    """``2h``: softmax of the input over all C*H*W entries, Eq. (14); no parameters."""

    _map_fn = staticmethod(AF.hyper_gate)

    def __init__(self, channels: int) -> None:
        super().__init__()

    def gate(self, logits: Tensor, x: Tensor) -> Tensor:
        return ops.hyper_gate(x) if self.fused else AF.hyper_gate(x) * x
