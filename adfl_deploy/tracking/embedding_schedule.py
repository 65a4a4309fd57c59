"""When to embed a track: not every box every frame. A track is embedded when it is first
confirmed, then every ``every_n_frames`` frames or sooner when its box is clearly better
(bigger, more confident, not cut by the image border, not overlapped). Each track keeps a
small gallery of its best embeddings; its descriptor is their normalised mean. It also counts
the embeddings of crops that showed the person whole, the evidence a new track waits for
before it is linked to a global identity (``AssociationConfig.evidence``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from adfl_deploy.errors import ConfigError
from adfl_deploy.tracking.detections import Detections, max_overlap


@dataclass(frozen=True)
class ScheduleConfig:
    every_n_frames: int = 10
    quality_gain: float = 1.3  # re-embed early when the box is this much better
    gallery_size: int = 5

    def __post_init__(self) -> None:
        if self.every_n_frames < 1 or self.gallery_size < 1 or not self.quality_gain >= 1.0:
            raise ConfigError(
                f"schedule: every_n_frames ({self.every_n_frames}) and gallery_size ({self.gallery_size}) must be >= 1, "
                f"quality_gain ({self.quality_gain}) >= 1"
            )


#: a box overlapping another by more than this IoU does not show its person whole
WHOLE_MAX_OVERLAP = 0.1


def at_border(dets: Detections, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Per box: does it touch the image border (the person is probably cut off)?"""
    h, w = frame_shape[:2]
    x1, y1, x2, y2 = dets.xyxy.T
    return (x1 <= 1) | (y1 <= 1) | (x2 >= w - 1) | (y2 >= h - 1)


def box_quality(dets: Detections, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Height x confidence, halved when touching the border, reduced by overlap with others."""
    if len(dets) == 0:
        return np.zeros(0)
    return dets.height * dets.confidence * np.where(at_border(dets, frame_shape), 0.5, 1.0) * (1 - max_overlap(dets.xyxy))


def whole_view(dets: Detections, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Per box: is the person seen whole - not cut by the image border, not behind or in front
    of anyone else? A crop of a person half out of the picture or half someone else is poor
    evidence for who they are."""
    if len(dets) == 0:
        return np.zeros(0, bool)
    return ~at_border(dets, frame_shape) & (max_overlap(dets.xyxy) <= WHOLE_MAX_OVERLAP)


@dataclass
class _TrackState:
    last_frame: int = -(10**9)
    best_quality: float = 0.0
    gallery: list = field(default_factory=list)  # (quality, embedding)
    #: embeddings of crops that showed the person whole (``whole_view``)
    whole: int = 0


class DueCrop(NamedTuple):
    """A crop the scheduler wants embedded: whose, the pixels, how good, and whether it shows
    the person whole (``whole_view``)."""

    key: tuple[str, int]
    crop: np.ndarray
    quality: float
    whole: bool


class EmbeddingScheduler:
    def __init__(self, config: ScheduleConfig = ScheduleConfig()) -> None:
        self.config = config
        self.tracks: dict[tuple[str, int], _TrackState] = {}

    def due(self, camera: str, frame_index: int, tracked: Detections, image: np.ndarray) -> list[DueCrop]:
        """The crops of this frame's tracks that should be embedded now."""
        out = []
        quality = box_quality(tracked, image.shape)
        whole = whole_view(tracked, image.shape)
        for i, tid in enumerate(tracked.tracker_id):
            key = (camera, int(tid))
            st = self.tracks.setdefault(key, _TrackState())
            stale = frame_index - st.last_frame >= self.config.every_n_frames
            better = quality[i] > st.best_quality * self.config.quality_gain
            if stale or better:
                x1, y1, x2, y2 = np.round(tracked.xyxy[i]).astype(int)
                crop = image[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)]
                if crop.size:
                    out.append(DueCrop(key, crop, float(quality[i]), bool(whole[i])))
                    st.last_frame = frame_index
        return out

    def add(self, key: tuple[str, int], embedding: np.ndarray, quality: float, whole: bool = False) -> np.ndarray:
        """Store an embedding (``whole``: its crop showed the person whole); returns the
        track's descriptor (normalised mean of its gallery)."""
        st = self.tracks[key]
        st.whole += bool(whole)
        st.best_quality = max(st.best_quality, quality)
        st.gallery = sorted(st.gallery + [(quality, embedding)], key=lambda qe: -qe[0])[: self.config.gallery_size]
        return self.descriptor(key)

    def evidence(self, key: tuple[str, int], whole_only: bool) -> int:
        """How many embeddings the track has gathered (only of whole views, with ``whole_only``)."""
        st = self.tracks.get(key)
        if st is None:
            return 0
        return st.whole if whole_only else len(st.gallery)

    def descriptor(self, key: tuple[str, int]) -> np.ndarray | None:
        """The track's current descriptor (normalised mean of its gallery), None without one."""
        st = self.tracks.get(key)
        if st is None or not st.gallery:
            return None
        mean = np.mean([e for _, e in st.gallery], axis=0)
        return mean / max(np.linalg.norm(mean), 1e-12)

    def forget(self, key: tuple[str, int]) -> None:
        self.tracks.pop(key, None)
