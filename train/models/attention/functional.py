"""The softmax-attention cores of ADFL as pure tensor functions.

Each function is one equation of the paper's supplementary material. They are the single place
where the attention math lives: the ``nn.Module`` wrappers only add the learned 1x1 convs, and
the fused-op path (custom ops, ONNX nodes, CUDA kernels) replaces exactly these functions.

The paper's softmax has no 1/sqrt(d) factor. ``1s``, ``1c`` and ``1b`` compute their
(HW x HW, C x C, B x B) maps explicitly: these maps are small, and an explicit fp32 softmax
is as accurate as a plain fp32 evaluation of the equations even for the large logits of
post-ReLU features (PyTorch's CPU flash-attention kernel was measured 4x less accurate on
real stage-3 features). ``1h``'s C'HW x C'HW map (38 MB per image at attn3 of ResNet50) goes
through ``scaled_dot_product_attention`` with ``scale=1`` so it is never materialised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """``out[j] = sum_i softmax_i(q_j . k_i) v_i`` over the second-to-last axis (no scaling)."""
    return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v


def _attend_streaming(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Same as ``_attend`` without materialising the map (memory-efficient kernels)."""
    return F.scaled_dot_product_attention(q, k, v, scale=1.0)


def spatial_attention(q: Tensor, k: Tensor, v: Tensor, x: Tensor, alpha: Tensor) -> Tensor:
    """Type I spatial attention, Eqs. (5)-(6).

    q, k: (B, C', H, W) query/key maps; v, x: (B, C, H, W). Position j attends to every position
    i with weight softmax_i(K_i . Q_j); ``O_j = alpha * sum_i A_ji V_i + I_j``.
    """
    b, c, h, w = v.shape
    qt = q.flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, HW, C')
    kt = k.flatten(2).transpose(1, 2).unsqueeze(1)
    vt = v.flatten(2).transpose(1, 2).unsqueeze(1)  # (B, 1, HW, C)
    out = _attend(qt, kt, vt).squeeze(1).transpose(1, 2).reshape(b, c, h, w)
    return alpha * out + x


def channel_attention(x: Tensor, alpha: Tensor) -> Tensor:
    """Type I channel attention, Eqs. (7)-(8): channel j attends to channel i with
    softmax_i(I_i . I_j) over the C channels; ``O_j = alpha * sum_i A_ji I_i + I_j``."""
    b, c, h, w = x.shape
    xf = x.flatten(2).unsqueeze(1)  # (B, 1, C, HW)
    out = _attend(xf, xf, xf).reshape(b, c, h, w)
    return alpha * out + x


def hyper_attention_core(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Type I hyper attention map applied to V, Eq. (9).

    Every one of the C'HW locations is a scalar, so the logits are the outer product
    ``E_ji = K_i * Q_j`` and ``out_j = sum_i softmax_i(E_ji) V_i``. Returns (B, C', H, W); the
    module then maps C' back to C with a 1x1 conv and adds the scaled residual.
    """
    shape = v.shape
    as_tokens = lambda t: t.reshape(t.shape[0], 1, -1, 1)  # noqa: E731  (B, 1, C'HW, 1)
    return _attend_streaming(as_tokens(q), as_tokens(k), as_tokens(v)).reshape(shape)


def batch_attention(x: Tensor, alpha: Tensor) -> Tensor:
    """Type I batch attention, Eqs. (10)-(11): sample j attends to every sample i of the batch
    with softmax_i(F_i . F_j); ``O_j = alpha * sum_i A_ji F_i + F_j``."""
    flat = x.reshape(1, 1, x.shape[0], -1)  # (1, 1, B, CHW)
    out = _attend(flat, flat, flat).reshape(x.shape)
    return alpha * out + x


def spatial_gate(logits: Tensor) -> Tensor:
    """Type II spatial map, Eq. (12): softmax of a (B, 1, H, W) map over all H*W positions."""
    b, _, h, w = logits.shape
    return torch.softmax(logits.reshape(b, 1, h * w), dim=-1).reshape(b, 1, h, w)


def channel_gate(logits: Tensor) -> Tensor:
    """Type II channel map, Eq. (13): softmax of (B, C) logits over C, shaped (B, C, 1, 1)."""
    return torch.softmax(logits, dim=1)[:, :, None, None]


def hyper_gate(x: Tensor) -> Tensor:
    """Type II hyper map, Eq. (14): softmax of the input itself over all C*H*W entries."""
    return torch.softmax(x.flatten(1), dim=1).reshape(x.shape)
