"""Float64 NumPy oracle of the fused-op contracts (cuda_kernels/README.md), written from the
paper's equations independently of the production code. Shapes: NCHW; alpha is a scalar."""

from __future__ import annotations

import numpy as np

#: arithmetic precision of the oracle; tests switch it to float32 to measure the error any
#: straightforward fp32 implementation has (the flash-attention criterion)
DTYPE = np.float64


def _in_dtype(fn):
    """Evaluate ``fn`` with every input cast to the module's current ``DTYPE``."""

    def wrapped(*inputs):
        return fn(*(np.asarray(t).astype(DTYPE) for t in inputs))

    wrapped.__doc__ = fn.__doc__
    return wrapped


def softmax(e: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.exp(e - e.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


@_in_dtype
def spatial_attention(q, k, v, x, alpha):
    """Eqs. (5)-(6): out[c, j] = sum_i softmax_i(K_i . Q_j) V[c, i]; y = alpha * out + x."""
    b, c, h, w = v.shape
    qf, kf, vf = (t.reshape(b, t.shape[1], h * w) for t in (q, k, v))
    a = softmax(np.einsum("bdj,bdi->bji", qf, kf))
    return alpha * np.einsum("bci,bji->bcj", vf, a).reshape(b, c, h, w) + x


@_in_dtype
def channel_attention(x, alpha):
    """Eqs. (7)-(8): out_j = sum_i softmax_i(I_i . I_j) I_i; y = alpha * out + x."""
    b, c, h, w = x.shape
    xf = x.reshape(b, c, h * w)
    a = softmax(np.einsum("bjn,bin->bji", xf, xf))
    return alpha * np.einsum("bji,bin->bjn", a, xf).reshape(x.shape) + x


@_in_dtype
def hyper_attention(q, k, v):
    """Eq. (9) over the C'HW scalar locations: out_j = sum_i softmax_i(K_i Q_j) V_i."""
    b = q.shape[0]
    qf, kf, vf = (t.reshape(b, -1) for t in (q, k, v))
    a = softmax(qf[:, :, None] * kf[:, None, :])
    return np.einsum("bji,bi->bj", a, vf).reshape(v.shape)


@_in_dtype
def spatial_gate(logits, x):
    """Eq. (12): softmax over the H*W positions of a (B, 1, H, W) map, times x."""
    b = logits.shape[0]
    return softmax(logits.reshape(b, -1)).reshape(logits.shape) * x


@_in_dtype
def channel_gate(logits, x):
    """Eq. (13): softmax over C of (B, C) logits, broadcast over H, W, times x."""
    return softmax(logits)[:, :, None, None] * x


@_in_dtype
def hyper_gate(x):
    """Eq. (14): softmax of x over all C*H*W entries, times x."""
    b = x.shape[0]
    return softmax(x.reshape(b, -1)).reshape(x.shape) * x


OPS = {
    "spatial_attention": spatial_attention,
    "channel_attention": channel_attention,
    "hyper_attention": hyper_attention,
    "spatial_gate": spatial_gate,
    "channel_gate": channel_gate,
    "hyper_gate": hyper_gate,
}


def random_inputs(op: str, b: int, c: int, h: int, w: int, rng: np.random.Generator, scale: float = 1.0) -> list[np.ndarray]:
    """Inputs of ``op`` for a (b, c, h, w) feature map; C' = c/8 for 1s, c/64 (>= 1) for 1h."""
    f32 = lambda *s: (scale * rng.standard_normal(s)).astype(np.float32)  # noqa: E731
    alpha = np.array([0.7], np.float32)
    if op == "spatial_attention":
        return [f32(b, c // 8, h, w), f32(b, c // 8, h, w), f32(b, c, h, w), f32(b, c, h, w), alpha]
    if op == "channel_attention":
        return [f32(b, c, h, w), alpha]
    if op == "hyper_attention":
        inner = max(1, c // 64)
        return [f32(b, inner, h, w) for _ in range(3)]
    if op == "spatial_gate":
        return [f32(b, 1, h, w), f32(b, c, h, w)]
    if op == "channel_gate":
        return [f32(b, c), f32(b, c, h, w)]
    return [f32(b, c, h, w)]
