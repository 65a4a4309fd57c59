"""A float32 NumPy re-statement of the CUDA kernels' algorithms and index arithmetic.

What it is, and what it is not:
- It is written by hand from ``cuda_kernels/*/*Kernel.cu``; it is not generated from them and
  shares no code with them, so it cannot catch a bug that exists only in the CUDA source. The
  kernels themselves are checked on a GPU (``test_cuda_kernels.py``, ``-m gpu``).
- Online softmax is exact for any tiling, so tile and chunk sizes change nothing but rounding:
  they are parameters here (defaults: the kernels' 8 / 256 / 8192 / 256, copied for realism,
  not parsed), and ``test_tiling_model.py`` runs several tilings, degenerate ones included.
- What it does check, against the float64 oracle, is the part of each kernel that can be wrong
  independently of tiling, written the way the kernels write it: the per-tile online-softmax
  update (``rescale``, partial last tile masked), the row kernel's flat-buffer addressing
  (``RowLayout`` strides of 1s and 1c), lane slicing (element d = lane + 32 t, masked d < dim),
  the xor-butterfly reductions of partial dot products and of softmax statistics (warp, then
  block), the merge of empty statistics, and the gates' chunking and logit index (i % HW for 2s,
  i / HW for 2c, i for 2h). ``test_tiling_model.py`` mutates each of these (module attributes
  below, patched) and requires the mutant to fail, so the model's tests have teeth; if a kernel
  is changed in one of these places, change the model the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLT_MAX = np.float32(np.finfo(np.float32).max)
WARP = 32
# the kernels' values (rowAttentionKernel.cu kKeyTile, hyperAttentionKernel.cu kThreads,
# softmaxGateKernel.cu kChunk/kThreads); any positive values give the same results up to rounding
KEY_TILE = 8
HYPER_THREADS = 256
GATE_CHUNK = 8192
GATE_THREADS = 256
f32 = np.float32


def _exp(v):
    return np.exp(np.float32(v), dtype=np.float32)


def rescale(m: np.ndarray, m_new: np.ndarray) -> np.ndarray:
    """The online-softmax correction of the running (s, o) when the max grows from m to m_new."""
    return np.exp(m - m_new, dtype=np.float32)


@dataclass(frozen=True)
class RowLayout:
    """Element (sample b, row r, dim d) lives at b * sample + r * row + d * dim (flat NCHW)."""

    sample: int
    row: int
    dim: int


def spatial_layouts(channels: int, reduced: int, positions: int) -> tuple[RowLayout, RowLayout]:
    """launchSpatialAttention: rows = positions (stride 1), dims = channels (stride H*W)."""
    return RowLayout(reduced * positions, 1, positions), RowLayout(channels * positions, 1, positions)


def channel_layout(channels: int, positions: int) -> RowLayout:
    """launchChannelAttention: rows = channels (stride H*W), dims = positions (stride 1)."""
    return RowLayout(channels * positions, positions, 1)


def lane_dims(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Lane slicing: lane l holds elements l, l + 32, ...; (indices (32, T), valid mask)."""
    per_lane = (dim + WARP - 1) // WARP
    d = np.arange(WARP)[:, None] + WARP * np.arange(per_lane)[None, :]
    return np.where(d < dim, d, 0), d < dim


def butterfly_sum(partial: np.ndarray) -> np.ndarray:
    """__shfl_xor_sync reduction over the last axis (32 lanes), offsets 16, 8, 4, 2, 1; every
    lane ends with the total, summed in the butterfly's order."""
    lanes = np.arange(WARP)
    for offset in (16, 8, 4, 2, 1):
        partial = (partial + partial[..., lanes ^ offset]).astype(np.float32)
    return partial


def _load(buf: np.ndarray, layout: RowLayout, b: int, rows: np.ndarray, dims: np.ndarray) -> np.ndarray:
    return buf[b * layout.sample + rows * layout.row + dims * layout.dim]


def row_attention(q, k, v, x, alpha, batch, rows, q_dim, v_dim, q_layout, v_layout, key_tile=None) -> np.ndarray:
    """rowAttention on flat buffers: a warp per query row (all rows at once here), lanes slice
    the dims, keys in tiles, one online-softmax update per tile; y = alpha * o / s + x."""
    key_tile = key_tile or KEY_TILE
    y = np.zeros_like(x, dtype=np.float32)
    qd, qmask = lane_dims(q_dim)
    vd, vmask = lane_dims(v_dim)
    all_rows = np.arange(rows)[:, None, None]
    for b in range(batch):
        qr = np.where(qmask, _load(q, q_layout, b, all_rows, qd), 0).astype(np.float32)  # (rows, 32, T)
        m = np.full(rows, -FLT_MAX, np.float32)
        s = np.zeros(rows, np.float32)
        o = np.zeros((rows, WARP, vd.shape[1]), np.float32)
        for key0 in range(0, rows, key_tile):
            keys = range(key0, min(key0 + key_tile, rows))
            logits = []
            for key in keys:
                kr = np.where(qmask, _load(k, q_layout, b, np.array(key), qd), 0).astype(np.float32)
                partial = np.zeros((rows, WARP), np.float32)
                for t in range(qd.shape[1]):  # fmaf over the lane's values in order
                    partial = (partial + qr[:, :, t] * kr[None, :, t]).astype(np.float32)
                logits.append(butterfly_sum(partial)[:, 0])
            logits = np.stack(logits, axis=1)  # (rows, tile)
            m_new = np.maximum(m, logits.max(axis=1))
            factor = rescale(m, m_new)
            s = s * factor
            o = o * factor[:, None, None]
            for u, key in enumerate(keys):
                p = np.exp(logits[:, u] - m_new, dtype=np.float32)
                s = (s + p).astype(np.float32)
                vr = np.where(vmask, _load(v, v_layout, b, np.array(key), vd), 0).astype(np.float32)
                o = (o + p[:, None, None] * vr[None]).astype(np.float32)
            m = m_new
        a = (f32(alpha) / s)[:, None, None]
        at = b * v_layout.sample + all_rows * v_layout.row + vd * v_layout.dim  # (rows, 32, T)
        value = (a * o + np.where(vmask, x[np.where(vmask, at, 0)], 0)).astype(np.float32)
        y[at[:, vmask]] = value[:, vmask]
    return y


def spatial_attention(q, k, v, x, alpha, key_tile=None):
    """1s as launchSpatialAttention calls the row kernel."""
    b, c, h, w = v.shape
    reduced = q.shape[1]
    q_layout, v_layout = spatial_layouts(c, reduced, h * w)
    flat = [np.ascontiguousarray(t, np.float32).reshape(-1) for t in (q, k, v, x)]
    y = row_attention(*flat, float(alpha[0]), b, h * w, reduced, c, q_layout, v_layout, key_tile)
    return y.reshape(v.shape)


def channel_attention(x, alpha, key_tile=None):
    """1c as launchChannelAttention calls the row kernel (q = k = v = x)."""
    b, c, h, w = x.shape
    layout = channel_layout(c, h * w)
    flat = np.ascontiguousarray(x, np.float32).reshape(-1)
    y = row_attention(flat, flat, flat, flat, float(alpha[0]), b, c, h * w, h * w, layout, layout, key_tile)
    return y.reshape(x.shape)


def hyper_attention(q, k, v, threads=None):
    """1h: thread per query location, keys in tiles of `threads` staged in shared memory."""
    threads = threads or HYPER_THREADS
    b = q.shape[0]
    qf, kf, vf = (t.reshape(b, -1).astype(np.float32) for t in (q, k, v))
    m_total = qf.shape[1]
    out = np.empty_like(qf)
    for n in range(b):
        m = np.full(m_total, -FLT_MAX, np.float32)
        s = np.zeros(m_total, np.float32)
        o = np.zeros(m_total, np.float32)
        for key0 in range(0, m_total, threads):
            ks, vs = kf[n, key0 : key0 + threads], vf[n, key0 : key0 + threads]
            logits = qf[n][:, None] * ks[None, :]  # every thread (query) x the staged keys
            m_new = np.maximum(m, logits.max(axis=1))
            factor = rescale(m, m_new)
            p = np.exp(logits - m_new[:, None], dtype=np.float32)
            s = s * factor + p.sum(axis=1, dtype=np.float32)
            o = o * factor + (p * vs[None, :]).sum(axis=1, dtype=np.float32)
            m = m_new
        out[n] = o / s
    return out.reshape(v.shape)


EMPTY = (-FLT_MAX, f32(0))


def merge(a, b):
    """mergeStats: an empty side (s == 0) contributes nothing, whatever its m."""
    m = max(a[0], b[0])
    scaled = lambda st: f32(0) if st[1] == 0 else f32(st[1] * _exp(st[0] - m))  # noqa: E731
    return (m, f32(scaled(a) + scaled(b)))


def warp_merge(stats: list) -> list:
    """warpMergeStats: xor butterfly over 32 lanes; every lane ends with the warp's total."""
    for offset in (16, 8, 4, 2, 1):
        stats = [merge(stats[lane], stats[lane ^ offset]) for lane in range(WARP)]
    return stats


def block_merge(stats: list) -> tuple:
    """blockMergeStats: each warp's butterfly, lane 0 of each warp to shared memory, then warp 0
    merges those (lanes beyond the warp count hold empty statistics)."""
    warps = len(stats) // WARP
    per_warp = [warp_merge(stats[w * WARP : (w + 1) * WARP])[0] for w in range(warps)]
    return warp_merge(per_warp + [EMPTY] * (WARP - warps))[0]


def chunk_stats(logits: np.ndarray, threads: int) -> tuple:
    """gateStats, one block: thread t walks entries t, t + threads, ... of its chunk."""
    per_thread = []
    for t in range(threads):
        acc = EMPTY
        for value in logits[t::threads]:
            acc = merge(acc, (f32(value), f32(1)))
        per_thread.append(acc)
    return block_merge(per_thread)


def logit_index(kind: str, i: np.ndarray, positions: int) -> np.ndarray:
    """gateApply's logit for output element i of a sample (i = c * positions + p)."""
    return {"hyper": i, "spatial": i % positions, "channel": i // positions}[kind]


def softmax_gate(kind: str, logits, x, chunk=None, threads=None):
    """Two passes per sample: chunk statistics, then the in-order merge and the gated write."""
    chunk = chunk or GATE_CHUNK
    threads = threads or GATE_THREADS
    assert threads % WARP == 0
    b, c, h, w = x.shape
    xf = np.ascontiguousarray(x, np.float32).reshape(b, -1)
    lf = xf if kind == "hyper" else np.ascontiguousarray(logits, np.float32).reshape(b, -1)
    out = np.empty_like(xf)
    for n in range(b):
        stats = [chunk_stats(lf[n, i : i + chunk], threads) for i in range(0, lf.shape[1], chunk)]
        total = EMPTY
        for st in stats:  # pass 2: thread 0 merges the chunk statistics in order
            total = merge(total, st)
        m, s = total
        i = np.arange(c * h * w)
        weights = np.exp(lf[n, logit_index(kind, i, h * w)] - m, dtype=np.float32) * (f32(1) / s)
        out[n] = weights * xf[n]
    return out.reshape(x.shape)


OPS = {
    "spatial_attention": spatial_attention,
    "channel_attention": channel_attention,
    "hyper_attention": hyper_attention,
    "spatial_gate": lambda logits, x: softmax_gate("spatial", logits, x),
    "channel_gate": lambda logits, x: softmax_gate("channel", logits, x),
    "hyper_gate": lambda x: softmax_gate("hyper", None, x),
}
