"""Re-ID retrieval metrics: CMC rank-k and mAP (torch-free).

Protocol (Market-1501 / DukeMTMC-reID, also used for MSMT17): for each query, gallery images of
the same identity *from the same camera* are removed before ranking; junk images were already
dropped by the dataset reader. Queries left with no true match are skipped and counted. Ties in
distance are ranked in gallery order (stable sort), so results are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankingResult:
    cmc: np.ndarray  # cmc[k-1] = fraction of valid queries with a true match in the top k
    mAP: float
    num_valid: int
    num_skipped: int

    def as_dict(self, ranks=(1, 5, 10)) -> dict[str, float]:
        out = {f"rank{k}": float(self.cmc[k - 1]) for k in ranks if k <= len(self.cmc)}
        out.update(mAP=self.mAP, valid_queries=self.num_valid, skipped_queries=self.num_skipped)
        return out


def cosine_distance(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """1 - cosine similarity, (Q, D) x (G, D) -> (Q, G)."""
    q = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    return 1.0 - q @ g.T


def rank_metrics(
    dist: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 10,
) -> RankingResult:
    """CMC and mAP of a (Q, G) distance matrix under the same-id-same-camera exclusion."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    order = np.argsort(dist, axis=1, kind="stable")
    ranked_pids, ranked_cams = g_pids[order], g_camids[order]
    cmcs, aps = [], []
    for i in range(len(q_pids)):
        keep = ~((ranked_pids[i] == q_pids[i]) & (ranked_cams[i] == q_camids[i]))
        hits = (ranked_pids[i][keep] == q_pids[i]).astype(np.float64)
        if not hits.any():
            continue
        cmc = np.zeros(max_rank)
        first = int(np.argmax(hits))
        cmc[first:] = 1.0  # rank positions beyond the gallery stay as 1 once matched
        cmcs.append(cmc)
        precision_at_hit = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float((precision_at_hit * hits).sum() / hits.sum()))
    if not aps:
        raise ValueError("no query has a valid gallery match (same id from another camera); check the split")
    return RankingResult(
        cmc=np.mean(cmcs, axis=0), mAP=float(np.mean(aps)), num_valid=len(aps), num_skipped=len(q_pids) - len(aps)
    )
