"""NumPy model of the CUDA kernels' tiling and online-softmax recurrences, in float32.

Same tile sizes, loop order and update rules as ``cuda_kernels/*/*Kernel.cu``, so the
algorithms are checked against the float64 oracle on machines without a GPU. Constants are
parsed from the CUDA sources so the model cannot silently drift from them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

KERNELS = Path(__file__).resolve().parents[2] / "cuda_kernels"
FLT_MAX = np.float32(np.finfo(np.float32).max)


def _constant(path: str, name: str) -> int:
    match = re.search(rf"constexpr int {name} = (\d+);", (KERNELS / path).read_text())
    assert match, f"{name} not found in {path}"
    return int(match.group(1))


KEY_TILE = _constant("row_attention/rowAttentionKernel.cu", "kKeyTile")
HYPER_THREADS = _constant("hyper_attention/hyperAttentionKernel.cu", "kThreads")
GATE_CHUNK = _constant("softmax_gate/softmaxGateKernel.cu", "kChunk")
GATE_THREADS = _constant("softmax_gate/softmaxGateKernel.cu", "kThreads")
f32 = np.float32


def _exp(v):
    return np.exp(np.float32(v), dtype=np.float32)


def row_attention(qrows: np.ndarray, krows: np.ndarray, vrows: np.ndarray, xrows: np.ndarray, alpha: float) -> np.ndarray:
    """One sample: rows (R, D) of q/k and (R, E) of v/x; a warp per query row, key tiles of
    KEY_TILE, one online-softmax update per tile."""
    rows = qrows.shape[0]
    out = np.empty_like(xrows, dtype=np.float32)
    for j in range(rows):
        m, s = -FLT_MAX, f32(0)
        o = np.zeros(vrows.shape[1], np.float32)
        for key0 in range(0, rows, KEY_TILE):
            keys = range(key0, min(key0 + KEY_TILE, rows))
            logits = [f32(np.dot(qrows[j], krows[i])) for i in keys]
            m_new = max(m, max(logits))
            rescale = _exp(m - m_new)
            s, o = s * rescale, o * rescale
            for i, logit in zip(keys, logits):
                p = _exp(logit - m_new)
                s = f32(s + p)
                o = (o + p * vrows[i]).astype(np.float32)
            m = m_new
        out[j] = f32(alpha) / s * o + xrows[j]
    return out


def spatial_attention(q, k, v, x, alpha):
    """1s: rows are positions; (B, C', H, W) / (B, C, H, W) -> (B, C, H, W)."""
    b, c, h, w = v.shape
    out = np.empty(v.shape, np.float32)
    for n in range(b):
        rows = lambda t: t[n].reshape(t.shape[1], h * w).T  # noqa: E731  (HW, dims)
        out[n] = row_attention(rows(q), rows(k), rows(v), rows(x), float(alpha[0])).T.reshape(c, h, w)
    return out


def channel_attention(x, alpha):
    """1c: rows are channels, q = k = v = x."""
    b, c, h, w = x.shape
    out = np.empty(x.shape, np.float32)
    for n in range(b):
        rows = x[n].reshape(c, h * w)
        out[n] = row_attention(rows, rows, rows, rows, float(alpha[0])).reshape(c, h, w)
    return out


def hyper_attention(q, k, v):
    """1h: thread per query location, keys in tiles of HYPER_THREADS staged in shared memory."""
    b = q.shape[0]
    qf, kf, vf = (t.reshape(b, -1).astype(np.float32) for t in (q, k, v))
    m_total = qf.shape[1]
    out = np.empty_like(qf)
    for n in range(b):
        m = np.full(m_total, -FLT_MAX, np.float32)
        s = np.zeros(m_total, np.float32)
        o = np.zeros(m_total, np.float32)
        for key0 in range(0, m_total, HYPER_THREADS):
            ks, vs = kf[n, key0 : key0 + HYPER_THREADS], vf[n, key0 : key0 + HYPER_THREADS]
            logits = qf[n][:, None] * ks[None, :]  # every thread (query) x the staged keys
            m_new = np.maximum(m, logits.max(axis=1))
            rescale = np.exp(m - m_new, dtype=np.float32)
            p = np.exp(logits - m_new[:, None], dtype=np.float32)
            s = s * rescale + p.sum(axis=1, dtype=np.float32)
            o = o * rescale + (p * vs[None, :]).sum(axis=1, dtype=np.float32)
            m = m_new
        out[n] = o / s
    return out.reshape(v.shape)


def _merge(a, b):
    m = max(a[0], b[0])
    scaled = lambda st: f32(0) if st[1] == 0 else f32(st[1] * _exp(st[0] - m))  # noqa: E731
    return (m, f32(scaled(a) + scaled(b)))


def _chunk_stats(logits: np.ndarray) -> tuple:
    """One block's statistics: each thread walks its strided entries, then a tree merge."""
    per_thread = []
    for t in range(GATE_THREADS):
        acc = (-FLT_MAX, f32(0))
        for value in logits[t::GATE_THREADS]:
            acc = _merge(acc, (f32(value), f32(1)))
        per_thread.append(acc)
    while len(per_thread) > 1:  # butterfly within warps, then across warps: a tree of merges
        per_thread = [_merge(per_thread[i], per_thread[i + 1]) for i in range(0, len(per_thread), 2)]
    return per_thread[0]


def _softmax_stats(row: np.ndarray) -> tuple:
    stats = [_chunk_stats(row[i : i + GATE_CHUNK]) for i in range(0, len(row), GATE_CHUNK)]
    total = (-FLT_MAX, f32(0))
    for st in stats:  # pass 2 merges the chunk statistics in order
        total = _merge(total, st)
    return total


def softmax_gate(kind: str, logits, x):
    b, c, h, w = x.shape
    out = np.empty(x.shape, np.float32)
    for n in range(b):
        row = (x[n] if kind == "hyper" else logits[n]).reshape(-1).astype(np.float32)
        m, s = _softmax_stats(row)
        weights = np.exp(row - m, dtype=np.float32) / s
        shape = {"spatial": (1, h, w), "channel": (c, 1, 1), "hyper": (c, h, w)}[kind]
        out[n] = weights.reshape(shape) * x[n]
    return out


OPS = {
    "spatial_attention": spatial_attention,
    "channel_attention": channel_attention,
    "hyper_attention": hyper_attention,
    "spatial_gate": lambda logits, x: softmax_gate("spatial", logits, x),
    "channel_gate": lambda logits, x: softmax_gate("channel", logits, x),
    "hyper_gate": lambda x: softmax_gate("hyper", None, x),
}
