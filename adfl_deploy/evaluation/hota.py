"""HOTA, DetA and AssA (Luiten et al. 2021, "HOTA: A Higher Order Metric for Evaluating
Multi-Object Tracking", IJCV 129), computed as TrackEval - the MOTChallenge reference
implementation - computes them.

Why not ``import trackeval``: TrackEval 1.3.0 (PyPI) imports and runs with this project's NumPy 2,
but its package requires ``opencv-python``, the GUI build of OpenCV, and ``pycocotools``. The GUI
build and the ``opencv-python-headless`` this runtime installs both provide the ``cv2`` module and
cannot share an environment (the same reason the tracker is not ``supervision``), so TrackEval
cannot be a dependency. Its HOTA itself is NumPy and SciPy only; this module is that
computation, written from the paper's definition and following ``trackeval/metrics/hota.py``
step by step. ``tests/scene/test_hota.py`` checks it against a case worked by hand and, where
TrackEval is importable (``pip install --no-deps trackeval``), against TrackEval's own
``HOTA.eval_sequence`` on random sequences.

The definition, for one localisation threshold alpha:

- Detections: per frame, ground-truth and predicted boxes are matched one to one (Hungarian)
  maximising ``A(g, p) * IoU(g, p)``, where ``A`` is the global alignment of the two *ids* over
  the sequence (Jaccard of their frames, each frame's overlap weighted by its soft IoU share);
  a match counts as a true positive (TP) when its IoU >= alpha. Unmatched ground truth is FN,
  unmatched predictions FP. ``DetA = |TP| / (|TP| + |FN| + |FP|)``.
- Association: for a TP ``c`` between ids ``g`` and ``p``, ``A(c) = |TPA| / (|TPA| + |FNA| +
  |FPA|)``: TPA the TPs between ``g`` and ``p``, FNA the other detections of ``g`` (missed, or
  matched to another id), FPA the other detections of ``p``. ``AssA`` is the mean of ``A(c)``
  over all TPs.
- ``HOTA_alpha = sqrt(DetA_alpha * AssA_alpha)``.

HOTA, DetA and AssA are each averaged over alpha = 0.05, 0.10, ..., 0.95 (19 values), so HOTA
is not ``sqrt(DetA * AssA)`` of the averages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

#: TrackEval's localisation thresholds: np.arange(0.05, 0.99, 0.05) = 0.05 ... 0.95
ALPHAS = np.arange(0.05, 0.99, 0.05)
_EPS = np.finfo("float").eps


@dataclass(frozen=True)
class HotaScore:
    hota: float
    deta: float  # detection accuracy
    assa: float  # association accuracy
    detre: float  # detection recall
    detpr: float  # detection precision
    loca: float  # localisation accuracy (mean IoU of the TPs)


def hota_from_similarity(frames: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> HotaScore:
    """HOTA of a sequence given per frame ``(gt_ids, predicted_ids, similarity)``, similarity a
    (len(gt_ids), len(predicted_ids)) array in [0, 1] (IoU for boxes). Ids are any integers, each
    at most once per frame. A sequence with neither ground truth nor predictions scores nan."""
    frames = [
        (np.asarray(g, np.int64).reshape(-1), np.asarray(p, np.int64).reshape(-1), np.asarray(s, float)) for g, p, s in frames
    ]
    gt_labels = np.unique(np.concatenate([g for g, _, _ in frames])) if frames else np.zeros(0, np.int64)
    pr_labels = np.unique(np.concatenate([p for _, p, _ in frames])) if frames else np.zeros(0, np.int64)
    num_gt = sum(len(g) for g, _, _ in frames)
    num_pr = sum(len(p) for _, p, _ in frames)
    if num_gt == 0 and num_pr == 0:
        nan = float("nan")
        return HotaScore(nan, nan, nan, nan, nan, nan)
    if num_gt == 0 or num_pr == 0:  # TrackEval's early returns: all FN or all FP, LocA 1
        return HotaScore(0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    # contiguous indices, as TrackEval relabels ids per sequence
    frames = [(np.searchsorted(gt_labels, g), np.searchsorted(pr_labels, p), s) for g, p, s in frames]

    # 1. global alignment between ids: soft per-frame IoU shares, summed over the sequence
    potential = np.zeros((len(gt_labels), len(pr_labels)))
    gt_count = np.zeros((len(gt_labels), 1))
    pr_count = np.zeros((1, len(pr_labels)))
    for g, p, sim in frames:
        denom = sim.sum(0)[np.newaxis, :] + sim.sum(1)[:, np.newaxis] - sim
        share = np.zeros_like(sim)
        mask = denom > _EPS
        share[mask] = sim[mask] / denom[mask]
        potential[g[:, None], p[None, :]] += share
        np.add.at(gt_count, (g, 0), 1)
        np.add.at(pr_count, (0, p), 1)
    alignment = potential / (gt_count + pr_count - potential)

    # 2. per frame: one Hungarian matching maximising alignment x similarity, counted per alpha
    tp, fn, fp, loc = (np.zeros(len(ALPHAS)) for _ in range(4))
    matches = np.zeros((len(ALPHAS), len(gt_labels), len(pr_labels)))
    for g, p, sim in frames:
        if len(g) == 0 or len(p) == 0:
            fp += len(p)
            fn += len(g)
            continue
        rows, cols = linear_sum_assignment(-(alignment[g[:, None], p[None, :]] * sim))
        matched_sim = sim[rows, cols]
        for a, alpha in enumerate(ALPHAS):
            ok = matched_sim >= alpha - _EPS
            n = int(ok.sum())
            tp[a] += n
            fn[a] += len(g) - n
            fp[a] += len(p) - n
            loc[a] += matched_sim[ok].sum()
            np.add.at(matches[a], (g[rows[ok]], p[cols[ok]]), 1)

    # 3. association: per TP, the Jaccard of its two ids' detections; averaged over the TPs
    assa = np.array([np.sum(m * (m / np.maximum(1, gt_count + pr_count - m))) / max(1.0, t) for m, t in zip(matches, tp)])
    deta = tp / np.maximum(1, tp + fn + fp)
    detre = tp / np.maximum(1, tp + fn)
    detpr = tp / np.maximum(1, tp + fp)
    loca = np.maximum(1e-10, loc) / np.maximum(1e-10, tp)
    hota = np.sqrt(deta * assa)
    return HotaScore(*(float(np.mean(v)) for v in (hota, deta, assa, detre, detpr, loca)))


def hota(frames: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], iou) -> HotaScore:
    """HOTA of a box sequence: per frame ``(gt_ids, gt_boxes, predicted_ids, predicted_boxes)``,
    similarity ``iou(gt_boxes, predicted_boxes)``."""
    return hota_from_similarity(
        (g, p, iou(gb, pb) if len(g) and len(p) else np.zeros((len(g), len(p)))) for g, gb, p, pb in frames
    )
