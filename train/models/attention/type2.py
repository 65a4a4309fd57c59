"""Type II attention: direct generation of a softmax-normalised map (Sec. IV-B, supplementary B).

Each module exposes ``attention_map(x)`` (broadcastable to ``x``) so the ``multiply``
arrangement (Eq. 3) can combine maps before gating; ``forward`` is ``map * x``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import functional as AF


class _Gate(nn.Module):
    def attention_map(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.attention_map(x) * x


class SpatialGate(_Gate):
    """``2s``: softmax over H*W of conv3x3([mean_c(I); max_c(I)]), Eq. (12).

    The conv has no bias: a constant added before a softmax over all positions cancels out.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=3, stride=1, padding=1, bias=False)

    def attention_map(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return AF.spatial_gate(self.conv(pooled))


class ChannelGate(_Gate):
    """``2c``: softmax over C of MLP(avgpool(I)) + MLP(maxpool(I)), Eq. (13); MLP bottleneck C/16."""

    reduction = 16

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // self.reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, inner, kernel_size=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(inner, channels, kernel_size=1, bias=False),
        )

    def attention_map(self, x: Tensor) -> Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return AF.channel_gate((avg + mx).flatten(1))


class HyperGate(_Gate):
    """``2h``: softmax of the input over all C*H*W entries, Eq. (14); no parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def attention_map(self, x: Tensor) -> Tensor:
        return AF.hyper_gate(x)
