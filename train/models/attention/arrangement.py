"""Arrangements of a spatial and a channel attention (Sec. IV-C, Fig. 6)."""

from __future__ import annotations

from torch import Tensor, nn


class Sequential(nn.Module):
    """``sc`` / ``cs``: one module after the other (``first`` sees the input)."""

    def __init__(self, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.first = first
        self.second = second

    def forward(self, x: Tensor) -> Tensor:
        return self.second(self.first(x))


class ParallelSum(nn.Module):
    """``sum``: spatial and channel attention on the same input, outputs added (Fig. 6c).

    For Type I both branches carry their residual, so at initialisation (alpha = 0) the
    result is ``2 * I``; for Type II it is ``A^s * I + A^c * I``.
    """

    def __init__(self, spatial: nn.Module, channel: nn.Module) -> None:
        super().__init__()
        self.spatial = spatial
        self.channel = channel

    def forward(self, x: Tensor) -> Tensor:
        return self.spatial(x) + self.channel(x)


class MapProduct(nn.Module):
    """``multiply`` (Type II only): ``A^SC = A^C (x) A^S`` broadcast, then ``A^SC * I`` (Eq. 3),
    computed as two gates ``A^C * (A^S * I)`` with both maps generated from ``I``."""

    def __init__(self, spatial: nn.Module, channel: nn.Module) -> None:
        super().__init__()
        self.spatial = spatial
        self.channel = channel

    def forward(self, x: Tensor) -> Tensor:
        return self.channel.gate(self.channel.logits(x), self.spatial.gate(self.spatial.logits(x), x))
