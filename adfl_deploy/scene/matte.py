"""Cut a person out of a re-ID crop, without downloaded weights: OpenCV's GrabCut seeded by the
crop's border (background) and a standing-body prior (probably foreground), refined over the
several crops of one person, with checks and a fallback.

Con-ReID crops are tight, low-resolution and cluttered, so a single GrabCut is often wrong: it
eats a helmet, keeps a scaffold pole, or loses the legs. So:

1. Pass 1, per crop: border rows/columns -> background, a narrow core down the middle ->
   foreground, the body prior -> probably foreground, the rest -> probably background.
2. The person's shape prior: the mean of the pass-1 mattes that pass the checks (each resized
   to a common size). Pass 2 seeds GrabCut with it instead of the generic body prior.
3. A matte is accepted when it covers a plausible share of the crop (``MIN_AREA``-``MAX_AREA``),
   is one piece (the largest connected part holds ``MIN_CONNECTED`` of it) and touches the
   bottom of the crop (feet). Otherwise the crop gets the person's shape prior, or the generic
   body prior when the person has none - never nothing.

The result is a soft alpha (0..1, feathered edge) per crop. GrabCut's colour models are
initialised with k-means, which uses OpenCV's global random generator: it is re-seeded before
every call, so the same crops always give the same mattes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from adfl_deploy.files import atomic_file

#: plausible share of a person crop that is the person
MIN_AREA, MAX_AREA = 0.22, 0.85
#: the largest connected part must hold this share of the matte
MIN_CONNECTED = 0.9
#: the matte must reach into this bottom share of the crop (the feet)
BOTTOM = 0.08
#: the common size (w, h) at which one person's mattes are averaged into a shape prior
PRIOR_SIZE = (32, 64)
#: bumped whenever the matting changes, so that scenes made with other mattes are not reused
VERSION = 1


def body_prior(height: int, width: int, scale: float = 1.0) -> np.ndarray:
    """(h, w) float32 in [0, 1]: where a standing person usually is in a re-ID crop - head,
    shoulders and legs around the middle column, wider at the torso; ``scale`` widens or
    narrows it."""
    y = (np.arange(height, dtype=np.float32) + 0.5) / height
    x = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
    half = scale * np.interp(y, [0.0, 0.04, 0.14, 0.2, 0.55, 0.62, 1.0], [0.07, 0.13, 0.14, 0.3, 0.3, 0.24, 0.26])
    return np.clip((half[:, None] - np.abs(x)[None, :]) * width / 2.0 + 0.5, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str = ""


def check(mask: np.ndarray) -> Check:
    """Does a binary matte look like one whole standing person? (area, one piece, feet)"""
    h = mask.shape[0]
    area = float(mask.mean())
    if not MIN_AREA <= area <= MAX_AREA:
        return Check(False, f"area {area:.2f} outside {MIN_AREA}-{MAX_AREA}")
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    largest = stats[1:, cv2.CC_STAT_AREA].max() if n > 1 else 0
    if largest < MIN_CONNECTED * mask.sum():
        return Check(False, f"largest part {largest / max(mask.sum(), 1):.2f} of the matte")
    if not mask[int(h * (1 - BOTTOM)) :].any():
        return Check(False, "does not reach the bottom (no feet)")
    return Check(True)


def _largest_part(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(np.uint8)
    return (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)


def _seeds(prior: np.ndarray) -> np.ndarray:
    """GrabCut's initial labels from a [0, 1] prior: sure person well inside it, sure background
    well outside it and on the crop border, GrabCut's colour models decide the band between."""
    h, w = prior.shape
    seeds = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    seeds[prior >= 0.5] = cv2.GC_PR_FGD
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(1, round(0.08 * w)) + 1,) * 2)
    sure = cv2.erode((prior >= 0.5).astype(np.uint8), kernel)
    seeds[sure > 0] = cv2.GC_FGD
    seeds[cv2.dilate((prior >= 0.5).astype(np.uint8), kernel) == 0] = cv2.GC_BGD
    border = max(1, round(0.03 * w))
    seeds[:, :border] = cv2.GC_BGD
    seeds[:, w - border :] = cv2.GC_BGD
    seeds[:1, :] = cv2.GC_BGD
    core = np.zeros((h, w), bool)  # a narrow strip of chest and hips is the person in any crop
    core[int(0.3 * h) : int(0.7 * h), int(0.45 * w) : max(int(0.55 * w), int(0.45 * w) + 1)] = True
    seeds[core] = cv2.GC_FGD
    return seeds


def grabcut(crop: np.ndarray, prior: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Binary (h, w) uint8 matte of ``crop`` (BGR) seeded by ``prior``; deterministic."""
    seeds = _seeds(prior)
    cv2.setRNGSeed(0)  # k-means inside GrabCut draws from OpenCV's global generator
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(crop), seeds, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # e.g. a single-colour crop: no colour model to fit
        return (prior >= 0.5).astype(np.uint8)
    mask = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    return _largest_part(mask)


def soften(mask: np.ndarray, edge: float = 0.8) -> np.ndarray:
    """Binary matte -> float32 alpha in [0, 1] with a feathered edge (``edge``: blur sigma, px)."""
    alpha = mask.astype(np.float32)
    if edge > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), edge)
    return np.clip(alpha, 0.0, 1.0)


def _resized(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def person_mattes(crops: list[np.ndarray]) -> list[np.ndarray]:
    """Soft alpha (h, w) float32 per crop of ONE person (any real cameras), refined over the crops."""
    first = [grabcut(c, body_prior(*c.shape[:2])) for c in crops]
    good = [m for m in first if check(m).ok]
    shape = np.mean([_resized(m, PRIOR_SIZE) for m in good], axis=0) if good else None
    out = []
    for crop, mask in zip(crops, first):
        h, w = crop.shape[:2]
        prior = body_prior(h, w) if shape is None else cv2.resize(shape, (w, h), interpolation=cv2.INTER_LINEAR)
        if shape is not None:
            prior = np.maximum(prior, 0.5 * body_prior(h, w) * (prior > 0.2))
            refined = grabcut(crop, prior)
            if check(refined).ok:
                mask = refined
        if not check(mask).ok:
            mask = (prior >= 0.5).astype(np.uint8)
        out.append(soften(mask))
    return out


def alpha_box(alpha: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int, int]:
    """(x1, y1, x2, y2), exclusive, of the matte's pixels above ``threshold`` (the whole crop if none)."""
    rows, cols = np.flatnonzero((alpha >= threshold).any(axis=1)), np.flatnonzero((alpha >= threshold).any(axis=0))
    if len(rows) == 0:
        return 0, 0, alpha.shape[1], alpha.shape[0]
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def cache_dir() -> Path | None:
    """Where computed mattes are kept between runs: $ADFL_CACHE, else ~/.cache/adfl-deploy
    ("" in $ADFL_CACHE turns the cache off)."""
    root = os.environ.get("ADFL_CACHE", str(Path.home() / ".cache" / "adfl-deploy"))
    return Path(root) / "mattes" if root else None


def _key(crops: list[np.ndarray]) -> str:
    digest = hashlib.sha1(f"v{VERSION}".encode())
    for crop in crops:
        digest.update(str(crop.shape).encode())
        digest.update(np.ascontiguousarray(crop).tobytes())
    return digest.hexdigest()


def cached_person_mattes(crops: list[np.ndarray]) -> list[np.ndarray]:
    """``person_mattes(crops)``, read from the cache when these exact crops were matted before
    (with this matting ``VERSION``), else computed and cached; a cache that cannot be read or
    written is ignored (the mattes are deterministic, so it only saves time)."""
    folder = cache_dir()
    path = folder / f"{_key(crops)}.npz" if folder else None
    if path is not None and path.is_file():
        try:
            with np.load(path) as stored:
                alphas = [stored[f"a{i}"].astype(np.float32) / 255.0 for i in range(len(crops))]
            if all(a.shape == c.shape[:2] for a, c in zip(alphas, crops)):
                return alphas
        except (OSError, ValueError, KeyError):
            pass
    alphas = person_mattes(crops)
    # stored as 8-bit, and returned as stored, so a cached and a fresh run draw the same pixels
    quantised = [np.round(a * 255.0).astype(np.uint8) for a in alphas]
    if path is not None:
        try:
            with atomic_file(path, "wb") as fh:
                np.savez_compressed(fh, **{f"a{i}": q for i, q in enumerate(quantised)})
        except OSError:
            pass
    return [q.astype(np.float32) / 255.0 for q in quantised]


def scene_mattes(people: dict[str, dict[int, list[np.ndarray]]], ids) -> dict[str, dict[int, list[np.ndarray]]]:
    """Soft alphas shaped like ``people`` (person -> real camera -> crops) for the persons in ``ids``;
    each person's crops from every real camera are matted together."""
    out = {}
    for pid in sorted(set(ids)):
        cams = sorted(people[pid])
        crops = [c for cam in cams for c in people[pid][cam]]
        alphas = iter(cached_person_mattes(crops))
        out[pid] = {cam: [next(alphas) for _ in people[pid][cam]] for cam in cams}
    return out
