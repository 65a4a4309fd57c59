"""Pictures for a human: ranked retrieval lists and attention heat maps (matplotlib, torch-free)."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from adfl_deploy.evaluation.datasets import ReidDataset  # noqa: E402
from adfl_deploy.files import atomic_file  # noqa: E402

GREEN, RED = (0.1, 0.7, 0.2), (0.85, 0.1, 0.1)


def _rgb(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return np.zeros((128, 64, 3), np.uint8) if img is None else img[:, :, ::-1]


def _save(fig, path: str | Path) -> Path:
    try:
        with atomic_file(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


def ranked_lists_png(dataset: ReidDataset, distance: np.ndarray, queries: list[int], path: str | Path, top: int = 10) -> Path:
    """One row per query: the query, then its top gallery matches (same-camera same-id removed,
    as in scoring) framed green (true match) or red (wrong)."""
    fig, axes = plt.subplots(len(queries), top + 1, figsize=(1.1 * (top + 1), 2.3 * len(queries)), squeeze=False)
    for row, qi in zip(axes, queries):
        q = dataset.query[qi]
        order = [
            g
            for g in np.argsort(distance[qi], kind="stable")
            if not (dataset.gallery[g].pid == q.pid and dataset.gallery[g].camid == q.camid)
        ]
        row[0].imshow(_rgb(q.path))
        row[0].set_title(f"query {q.pid}\ncam {q.camid}", fontsize=8)
        for ax, g in zip(row[1:], order[:top]):
            s = dataset.gallery[g]
            ax.imshow(_rgb(s.path))
            colour = GREEN if s.pid == q.pid else RED
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(4)
            ax.set_title(f"{s.pid} c{s.camid}\n{distance[qi, g]:.2f}", fontsize=7, color=colour)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    return _save(fig, path)


def heatmap_overlay(image_bgr: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Blend a (h, w) heat map in [0, 1] over an image (RGB out)."""
    heat = cv2.resize(heat.astype(np.float32), (image_bgr.shape[1], image_bgr.shape[0]), interpolation=cv2.INTER_LINEAR)
    coloured = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)
    return cv2.addWeighted(image_bgr, 0.5, coloured, 0.5, 0)[:, :, ::-1]


def attention_png(images_bgr: list[np.ndarray], heats: list[np.ndarray], titles: list[str], path: str | Path) -> Path:
    fig, axes = plt.subplots(2, len(images_bgr), figsize=(1.3 * len(images_bgr), 5.2), squeeze=False)
    for col, (img, heat, title) in enumerate(zip(images_bgr, heats, titles)):
        axes[0, col].imshow(img[:, :, ::-1])
        axes[0, col].set_title(title, fontsize=7)
        axes[1, col].imshow(heatmap_overlay(img, heat))
        for ax in axes[:, col]:
            ax.set_xticks([])
            ax.set_yticks([])
    return _save(fig, path)
