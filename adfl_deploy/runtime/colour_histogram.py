"""Appearance descriptors without a network, to show what a learned embedding adds.

``colour_histogram`` is the classic re-ID baseline: a joint HSV histogram per horizontal stripe
(head / torso / legs), concatenated and L2-normalised. On Con-ReID it already ranks the right
person first for almost every query, so compare models by mAP.
"""

from __future__ import annotations

import cv2
import numpy as np

from adfl_deploy.model.preprocess import check_crop, l2_normalise


def colour_histogram(crops: list[np.ndarray], stripes: int = 3, bins: tuple[int, int, int] = (8, 4, 4)) -> np.ndarray:
    """(N, stripes * prod(bins)) float32 descriptors of BGR uint8 crops."""
    feats = []
    for i, crop in enumerate(crops):
        hsv = cv2.cvtColor(cv2.resize(check_crop(crop, i), (64, 128)), cv2.COLOR_BGR2HSV)
        parts = np.array_split(hsv, stripes, axis=0)
        hists = [cv2.calcHist([p], [0, 1, 2], None, list(bins), [0, 180, 0, 256, 0, 256]).ravel() for p in parts]
        feats.append(np.sqrt(np.concatenate(hists)))  # Hellinger: sqrt then L2 = Bhattacharyya-like
    return l2_normalise(np.asarray(feats, dtype=np.float32))


class ColourHistogramEmbedder:
    """The colour histogram behind the ``Embedder`` interface (``embed``, ``name``, ``backend``,
    ``precision``), so the pipeline can run with it in place of a network: the baseline a learned
    model has to beat on the same scene (``adfl track --model colour-histogram``)."""

    name = "colour-histogram"
    backend = "opencv"
    precision = "-"
    #: its calibrated threshold's operating point (``association.calibration``): its distances
    #: between people overlap more than a learned model's, and at the learned models' 1% it
    #: hardly links across cameras (2% on sixteen tuning scenes: +0.17 MTMC IDF1, 16 of 16)
    false_match_rate = 0.02

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        return colour_histogram(list(crops))
