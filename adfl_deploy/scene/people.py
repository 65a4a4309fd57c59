"""The real people the generated scene is made of: Con-ReID crops shipped in
``adfl_deploy/assets/scene/people`` (held-out test identities, never training ids), grouped by
identity and by the real camera that took them, with the crops' zero padding removed.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from adfl_deploy.assets import SCENE_ASSETS

_NAME = re.compile(r"^(\d{4})_c(\d)s")

#: identities by look, so that groups can share workwear (hard cases for a re-ID model):
#: high-visibility vests, dark clothes with helmets, light or patterned shirts
WORKWEAR = {
    "hi-vis": ["0049", "0072", "0082", "0094", "0106", "0125"],
    "dark": ["0019", "0022", "0028", "0075", "0107"],
    "light": ["0020", "0045", "0108", "0113", "0145"],
}


def content_box(crop: np.ndarray, threshold: int = 8) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the picture inside a crop's black letterbox bars; the whole
    crop when nothing is brighter than ``threshold``."""
    content = crop.max(axis=2) > threshold
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    if len(rows) == 0 or len(cols) == 0:
        return 0, crop.shape[0], 0, crop.shape[1]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def strip_padding(crop: np.ndarray, threshold: int = 8) -> np.ndarray:
    """Con-ReID crops are letterboxed with black columns/rows; keep the picture only."""
    top, bottom, left, right = content_box(crop, threshold)
    return crop[top:bottom, left:right]


def load_people(folder: Path | None = None) -> dict[str, dict[int, list[np.ndarray]]]:
    """``{person id: {real camera: [BGR crops in frame order]}}`` from Market-style file names."""
    folder = Path(folder or SCENE_ASSETS / "people")
    people: dict[str, dict[int, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(folder.glob("*.jpg")):
        match = _NAME.match(path.name)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if match is None or image is None:
            raise FileNotFoundError(f"scene person crop {path} is unreadable or misnamed; reinstall the package")
        people[match.group(1)][int(match.group(2))].append(strip_padding(image))
    if not people:
        raise FileNotFoundError(f"no scene person crops in {folder}; reinstall the package")
    return {pid: dict(cams) for pid, cams in people.items()}


@dataclass(frozen=True)
class Room:
    """A real empty room and its ground plane, as fractions of the image height: the floor starts
    at ``floor``; a person with feet at y is ``ratio * (y - vanish)`` tall (``vanish``: the
    horizon line, where people would shrink to nothing)."""

    floor: float
    vanish: float
    ratio: float


def load_rooms(folder: Path | None = None) -> list[tuple[np.ndarray, Room]]:
    """The real empty rooms (``backgrounds/backgrounds.json``: file, provenance, licence and
    ground-plane geometry of each) as (BGR image, Room), in the listing's order."""
    folder = Path(folder or SCENE_ASSETS / "backgrounds")
    try:
        listing = json.loads((folder / "backgrounds.json").read_text())["rooms"]
        rooms = [
            (cv2.imread(str(folder / r["file"]), cv2.IMREAD_COLOR), Room(r["floor"], r["vanish"], r["ratio"])) for r in listing
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FileNotFoundError(f"scene backgrounds unreadable in {folder} ({exc}); reinstall the package") from None
    if not rooms or any(image is None for image, _ in rooms):
        raise FileNotFoundError(f"scene backgrounds missing in {folder}; reinstall the package")
    return rooms
