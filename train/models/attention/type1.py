"""Type I attention: long-range dependency (Sec. IV-A, supplementary A, Fig. 7).

Every module returns ``alpha * attention(I) + I`` with a learnable scalar ``alpha``
initialised to 0, so a freshly inserted module is the identity and training starts from the
backbone's behaviour.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import functional as AF
from . import ops


def _conv1x1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1)


class _ScaledResidual(nn.Module):
    """Holds the learnable ``alpha`` shared by all Type I modules.

    ``fused = True`` routes the softmax-attention core through its ``adfl::`` custom op (one
    ONNX node / TensorRT plugin at export); the math is the same either way.
    """

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(1))
        self.fused = False


class SpatialAttention(_ScaledResidual):
    """``1s``: HW x HW attention between positions; Q, K reduced to C' = C/8 channels."""

    reduction = 8

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // self.reduction)
        self.query = _conv1x1(channels, inner)
        self.key = _conv1x1(channels, inner)
        self.value = _conv1x1(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        fn = ops.spatial_attention if self.fused else AF.spatial_attention
        return fn(self.query(x), self.key(x), self.value(x), x, self.alpha)


class ChannelAttention(_ScaledResidual):
    """``1c``: C x C attention between channels, computed on the input itself (no convs)."""

    def __init__(self, channels: int) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return (ops.channel_attention if self.fused else AF.channel_attention)(x, self.alpha)


class HyperAttention(_ScaledResidual):
    """``1h``: C'HW x C'HW attention between all locations, C' = C/64, then a 1x1 conv back to C."""

    reduction = 64

    def __init__(self, channels: int) -> None:
        super().__init__()
        inner = max(1, channels // self.reduction)
        self.query = _conv1x1(channels, inner)
        self.key = _conv1x1(channels, inner)
        self.value = _conv1x1(channels, inner)
        self.expand = _conv1x1(inner, channels)

    def forward(self, x: Tensor) -> Tensor:
        fn = ops.hyper_attention if self.fused else AF.hyper_attention_core
        core = fn(self.query(x), self.key(x), self.value(x))
        return self.alpha * self.expand(core) + x


class BatchAttention(_ScaledResidual):
    """``1b``: B x B attention between the samples of a batch.

    The output for one image depends on the other images of its batch, as the paper notes
    (supplementary A.4, Table II reports mean +/- std over test batch sizes). ``eval_mode``
    chooses what inference does: ``"batch"`` keeps the paper's behaviour; ``"self"`` lets each
    image attend only to itself, which gives ``(1 + alpha) * F`` whatever the batch.
    Training always attends over the batch.
    """

    def __init__(self, channels: int, eval_mode: str = "batch") -> None:
        super().__init__()
        if eval_mode not in ("batch", "self"):
            raise ValueError(f"eval_mode must be 'batch' or 'self', not {eval_mode!r}")
        self.eval_mode = eval_mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training and self.eval_mode == "self":
            return (1 + self.alpha) * x
        return AF.batch_attention(x, self.alpha)
