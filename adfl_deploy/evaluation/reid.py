"""Evaluate any embedding function on a re-ID test split (torch-free).

``embed`` maps a list of BGR crops to (N, D) features: an ``Embedder`` (ONNX/TensorRT) or a
PyTorch model wrapped by ``adfl_deploy.train.features``. The same code therefore scores a
checkpoint, its ONNX export and its INT8 engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from adfl_deploy.evaluation.datasets import ReidDataset, Sample
from adfl_deploy.evaluation.metrics import RankingResult, cosine_distance, rank_metrics
from adfl_deploy.evaluation.rerank import k_reciprocal_rerank
from adfl_deploy.model.preprocess import l2_normalise

EmbedFn = Callable[[list[np.ndarray]], np.ndarray]


@dataclass
class Evaluation:
    metrics: dict[str, float]
    ranking: RankingResult
    distance: np.ndarray  # (Q, G) distances used for ranking


def read_crops(samples: Sequence[Sample]) -> list[np.ndarray]:
    crops = []
    for s in samples:
        img = cv2.imread(s.path, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"{s.path}: cannot read image")
        crops.append(img)
    return crops


def extract(embed: EmbedFn, samples: Sequence[Sample], batch: int = 64, flip: bool = False, desc: str = "") -> np.ndarray:
    """L2-normalised features; with ``flip`` the features of the mirrored crops are added first."""
    out = []
    for start in tqdm(range(0, len(samples), batch), desc=desc, leave=False, disable=not desc):
        crops = read_crops(samples[start : start + batch])
        feats = np.asarray(embed(crops), dtype=np.float32)
        if flip:
            feats = l2_normalise(feats) + l2_normalise(np.asarray(embed([c[:, ::-1].copy() for c in crops]), np.float32))
        out.append(l2_normalise(feats))
    return np.concatenate(out)


def evaluate(
    embed: EmbedFn, dataset: ReidDataset, flip: bool = False, rerank: bool = False, batch: int = 64, progress: bool = False
) -> Evaluation:
    q = extract(embed, dataset.query, batch, flip, "query" if progress else "")
    g = extract(embed, dataset.gallery, batch, flip, "gallery" if progress else "")
    dist = cosine_distance(q, g)
    if rerank:
        dist = k_reciprocal_rerank(dist, cosine_distance(q, q), cosine_distance(g, g))
    pids = lambda ss: np.array([s.pid for s in ss])  # noqa: E731
    cams = lambda ss: np.array([s.camid for s in ss])  # noqa: E731
    ranking = rank_metrics(dist, pids(dataset.query), pids(dataset.gallery), cams(dataset.query), cams(dataset.gallery))
    metrics = {"dataset": dataset.name, "flip": flip, "rerank": rerank, **ranking.as_dict()}
    return Evaluation(metrics=metrics, ranking=ranking, distance=dist)
