"""Put a training person in front of another background, so the embedding learns the person
and not the wall behind them.

Every crop of one real camera shares that camera's background, and Con-ReID's people mostly
stay in front of the same few walls: a network trained on them can separate people partly by
where they stood. Another camera, or the generated scene where people are matted into other
rooms, shows the same person in front of something else. So, with probability
``camera_shift.background``, a training crop keeps its person (cut out with the scene's own
matting, ``adfl_deploy.scene.matte``: GrabCut refined over each person's crops, no downloaded
weights) and gets the picture of another training crop behind them - flipped half the time,
zoomed into and sometimes blurred; that crop's own person often stays visible behind this one,
shifted or cut (as in a crowd), and the draw may pick the same person. Only training images are
used: no room of the generated scenes, whose numbers must stay those of unseen places.
"""

from __future__ import annotations

from collections import defaultdict

import cv2
import numpy as np
import torch

from adfl_deploy.model.preprocess import fit_crop
from adfl_deploy.scene.matte import cached_person_mattes
from adfl_deploy.scene.people import content_box


def keep_masks(crops: list[np.ndarray], pids: list[int], height: int, width: int, fit: str) -> list[np.ndarray]:
    """Per crop, a (height, width) uint8 map framed like the network's input (``fit_crop``):
    255 where the crop's own pixels stay (its person, and its black bars, which the runtime's
    letterbox shows too), 0 where another background may show (8 bits: a quarter of the memory
    of floats, for datasets of tens of thousands of crops)."""
    by_person: dict[int, list[int]] = defaultdict(list)
    for i, pid in enumerate(pids):
        by_person[pid].append(i)
    out: list[np.ndarray | None] = [None] * len(crops)
    for indices in by_person.values():
        boxes = [content_box(crops[i]) for i in indices]
        alphas = cached_person_mattes([crops[i][t:b, left:right] for i, (t, b, left, right) in zip(indices, boxes)])
        for i, (t, b, left, right), alpha in zip(indices, boxes, alphas):
            keep = np.ones(crops[i].shape[:2], np.float32)
            keep[t:b, left:right] = alpha
            framed = fit_crop(np.repeat((keep * 255).round().astype(np.uint8)[:, :, None], 3, axis=2), height, width, fit)
            # the network input's own letterbox bars (if its aspect differs) stay as they are too
            inside = fit_crop(np.full_like(crops[i], 255), height, width, fit)[:, :, 0] > 127
            out[i] = np.where(inside, framed[:, :, 0], 255).astype(np.uint8)
    return out  # type: ignore[return-value]


def other_background(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another training crop (H, W, 3 uint8) turned into a background: flipped at random, a
    window of 50-100% of it zoomed to full size, blurred one time in three."""
    h, w = image.shape[:2]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    s = rng.uniform(0.5, 1.0)
    ch, cw = max(4, round(h * s)), max(4, round(w * s))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = cv2.resize(np.ascontiguousarray(image[top : top + ch, left : left + cw]), (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 1 / 3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(1.0, 3.0))
    return out


def swap_background(image: torch.Tensor, keep: np.ndarray, background: np.ndarray) -> torch.Tensor:
    """``image`` (3, H, W uint8) with ``background`` (H, W, 3 uint8, same channel order) where
    ``keep`` (H, W uint8, ``keep_masks``) is 0, blended by the soft matte."""
    hwc = image.permute(1, 2, 0).numpy().astype(np.float32)
    alpha = keep.astype(np.float32)[:, :, None] / 255.0
    mixed = hwc * alpha + background.astype(np.float32) * (1.0 - alpha)
    return torch.from_numpy(np.ascontiguousarray(mixed.round().clip(0, 255).astype(np.uint8).transpose(2, 0, 1)))
