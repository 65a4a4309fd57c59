"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), written from the paper's equations.

Builds, for every probe and gallery image, a k-reciprocal neighbour set (Eq. 6), expands it
with the neighbours' half-size sets (Eq. 8), encodes it as a Gaussian-weighted vector (Eq. 9),
averages over the k2 nearest (local query expansion, Eq. 11), and mixes the Jaccard distance
of the encodings (Eq. 12) with the original distance: d* = (1 - lambda) d_J + lambda d (Eq. 13).
"""

from __future__ import annotations

import numpy as np


def _reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = initial_rank[i, : k + 1]
    backward = initial_rank[forward, : k + 1]
    return forward[np.any(backward == i, axis=1)]


def k_reciprocal_rerank(
    q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3
) -> np.ndarray:
    """Re-ranked (Q, G) distance from query-gallery, query-query and gallery-gallery distances."""
    nq = q_g.shape[0]
    full = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float64)
    full = np.maximum(full, 0.0)
    full = full / np.maximum(full.max(axis=1, keepdims=True), 1e-12)  # each row scaled to max 1
    n = full.shape[0]
    k1 = min(k1, n - 1)
    initial_rank = np.argsort(full, axis=1, kind="stable")
    V = np.zeros((n, n))
    for i in range(n):
        r = _reciprocal(initial_rank, i, k1)
        expanded = r
        for j in r:
            half = _reciprocal(initial_rank, j, int(round(k1 / 2)))
            if len(np.intersect1d(half, r)) > 2.0 / 3.0 * len(half):
                expanded = np.union1d(expanded, half)
        weights = np.exp(-full[i, expanded])
        V[i, expanded] = weights / weights.sum()
    if k2 > 1:
        V = np.stack([V[initial_rank[i, :k2]].mean(axis=0) for i in range(n)])
    vq, vg = V[:nq], V[nq:]
    overlap = np.empty((nq, n - nq))
    for i in range(nq):  # sum_k min(V_pk, V_gk), only over the probe's non-zero k
        nz = np.flatnonzero(vq[i])
        overlap[i] = np.minimum(vq[i, nz][None, :], vg[:, nz]).sum(axis=1)
    jaccard = 1.0 - overlap / (2.0 - overlap)  # rows sum to 1, so sum max = 2 - sum min
    return (1.0 - lambda_value) * jaccard + lambda_value * full[:nq, nq:]
