"""The association threshold of an embedding, calibrated instead of guessed.

Cosine distances mean different things for different models (and for a colour histogram), so
one fixed ``match_threshold`` would favour one method over another. ``match_threshold`` picks,
for a given embedding function, the cosine distance under which only a small share of
different-person pairs seen by different cameras fall (a verification operating point, the
"false match rate", ``AssociationConfig.false_match_rate``), measured on the shipped calibration
crops: 15 held-out Con-ReID identities that are neither training identities of the shipped
models nor people of the generated scene.

The rate is 1% of crop pairs. Con-ReID's cameras see near-duplicate crops, so its distances are
short: 1e-3 (used until 2026-12-01) put the shipped model's threshold at 0.29, where on the
generated scenes (new rooms, matted people, colour casts) most people's second sightings were
farther than that and started new ids; 2% served the edge model trained without background
swap (until 2026-12-02); the model shipped since links best at 1% (chosen on tuning scenes,
checked on fresh ones: README, "Cross-camera identity settings"). Matches are also made on tracklet descriptors (means of
several crops), which sit closer together than single crops. Merges stay stricter
(``MERGE_FRACTION``): a false merge joins two people for good.

The rate is a property of the embedding, not one number for all: an embedder may name its own
(``false_match_rate`` attribute, used when ``AssociationConfig.false_match_rate`` is null). The
colour histogram's distances overlap far more between people, so at 1% it hardly links across
cameras at all; it names 2% (chosen on the tuning scenes, README).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from adfl_deploy.assets import ASSETS
from adfl_deploy.association.camera_centring import centre_per_camera
from adfl_deploy.errors import ConfigError

CALIBRATION_CROPS = ASSETS / "calibration_crops"
#: share of different-person cross-camera pairs allowed under the threshold
FALSE_MATCH_RATE = 0.01


def load_calibration_crops() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(BGR crops, person ids, camera ids) from Market-style file names."""
    paths = sorted(CALIBRATION_CROPS.glob("*.jpg"))
    crops = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    if not crops or any(c is None for c in crops):
        raise FileNotFoundError(f"calibration crops missing or unreadable in {CALIBRATION_CROPS}; reinstall the package")
    return crops, np.array([int(p.name[:4]) for p in paths]), np.array([int(p.name[6]) for p in paths])


def threshold_at_false_match_rate(distances: np.ndarray, same: np.ndarray, rate: float) -> float:
    """The distance t below which only ``rate`` of different-person pairs fall (match when d < t)."""
    negatives = np.sort(distances[~same])
    if len(negatives) == 0 or not same.any():
        raise ValueError("calibration needs both same-person and different-person pairs")
    return float(negatives[min(int(rate * len(negatives)), len(negatives) - 1)])


def cross_camera_pairs(embeddings: np.ndarray, people: np.ndarray, cameras: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances and same-person flags of every pair of crops from different cameras."""
    i, j = np.triu_indices(len(embeddings), k=1)
    keep = cameras[i] != cameras[j]
    i, j = i[keep], j[keep]
    return 1.0 - np.sum(embeddings[i] * embeddings[j], axis=1), people[i] == people[j]


def match_threshold(
    embed: Callable[[list[np.ndarray]], np.ndarray], false_match_rate: float = FALSE_MATCH_RATE, centred: bool = False
) -> float:
    """The calibrated cosine-distance threshold for ``embed`` (unit-norm embeddings);
    ``centred``: for embeddings compared with their camera's mean taken out
    (``AssociationConfig.camera_centring``)."""
    crops, people, cameras = load_calibration_crops()
    embeddings = np.asarray(embed(crops), np.float64)
    if centred:
        embeddings = centre_per_camera(embeddings, cameras)
    distances, same = cross_camera_pairs(embeddings, people, cameras)
    return threshold_at_false_match_rate(distances, same, false_match_rate)


def false_match_rate_for(embedder, configured: float | None = None) -> float:
    """The operating point for ``embedder``: the configured rate, else the embedder's own
    (``false_match_rate`` attribute), else ``FALSE_MATCH_RATE``."""
    if configured is not None:
        return float(configured)
    own = getattr(embedder, "false_match_rate", None)
    if own is None:
        return FALSE_MATCH_RATE
    if not 0.0 < float(own) < 1.0:
        name = getattr(embedder, "name", type(embedder).__name__)
        raise ConfigError(f"embedder {name}: its false_match_rate {own} is not in (0, 1); set association.false_match_rate")
    return float(own)


def calibrated_associator(embedder, config=None):
    """An ``Associator`` whose match threshold is calibrated for ``embedder`` (anything with
    ``embed``) unless ``config`` sets one; the config it keeps names the rate it calibrated at
    (left as given when the threshold is set by hand)."""
    import dataclasses

    from adfl_deploy.association.associator import AssociationConfig, Associator

    config = config or AssociationConfig()
    if config.match_threshold is None:  # a threshold set by hand has no rate behind it
        rate = false_match_rate_for(embedder, config.false_match_rate)
        config = dataclasses.replace(
            config, false_match_rate=rate, match_threshold=match_threshold(embedder.embed, rate, config.camera_centring)
        )
    return Associator(config)
