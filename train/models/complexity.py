"""Parameter and FLOP counts of a model, measured by ``torch.utils.flop_counter``.

FLOPs are counted as the counter does: 2 per multiply-accumulate of convolutions, matmuls and
attention; element-wise ops (BN, ReLU, softmax) are not counted.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, flop_registry, register_flop_formula


def _register_cpu_sdpa_formula() -> None:
    """On CPU, ``scaled_dot_product_attention`` runs ``_scaled_dot_product_flash_attention_for_cpu``,
    which the counter does not know (it would count 0): QK^T plus AV, 2 FLOPs per MAC."""
    op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    if op in flop_registry or op.default in flop_registry:
        return

    @register_flop_formula(op)
    def _cpu_flash_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
        *batch, m, e = query_shape
        n, ev = key_shape[-2], value_shape[-1]
        heads = 1
        for size in batch:
            heads *= size
        return 2 * heads * m * n * (e + ev)


_register_cpu_sdpa_formula()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, input_size: tuple[int, int] = (384, 128), batch: int = 1) -> int:
    """FLOPs of one eval-mode forward pass on a ``batch`` of ``input_size`` (H, W) images."""
    was_training = model.training
    model.eval()
    x = torch.zeros(batch, 3, *input_size)
    try:
        with FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops()
