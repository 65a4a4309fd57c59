"""Two detectors as one (``"fastestdet+motion-quarter"``, the default): a person network's boxes, plus a
per-camera motion detector's boxes where the network has none, at a confidence that can keep a
track alive but never start one.

Why: on the generated scenes FastestDet misses about a quarter of fully visible people at its
operating point, a few frames at a time, and the motion detector finds most of them (four tuning
scenes: recall 0.71 alone, 0.89 for the union) while it merges people who walk side by side.
Taking motion boxes only where the network found nobody, and capping their confidence below
``tracker.high_confidence``, uses them as ByteTrack uses low-confidence boxes: the tracker's
second round matches them to tracks that exist (IoU >= ``tracker.low_match_iou``), so a person
the network loses for a few frames keeps their track, and a merged blob starts nothing
(README, detectors: end-to-end MTMC IDF1 +0.04 on the tuning scenes).

The network is shared by every camera (one batched call per tick for all of them, as alone);
each camera has its own motion detector (it models that camera's background):
``detect_frames`` runs the ``parts`` and ``combine`` puts each frame's results together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from adfl_deploy.errors import ConfigError
from adfl_deploy.tracking.detections import Detections, iou_matrix

#: a helper box overlapping a network box this much (IoU) or more is the same person: dropped
MAX_IOU = 0.3
#: helper boxes' confidence is capped here, below ``TrackerConfig.high_confidence`` (0.5): they
#: extend tracks in the tracker's second round and never start one (uncapped: the same mean gain
#: on the tuning scenes with 2.6x the spread, README)
HELPER_CONFIDENCE = 0.45


def fuse(primary: Detections, helper: Detections, max_iou: float = MAX_IOU, cap: float = HELPER_CONFIDENCE) -> Detections:
    """``primary``'s boxes as they are, then ``helper``'s boxes whose IoU with every primary box
    is below ``max_iou``, with their confidence capped at ``cap``."""
    if len(helper) and len(primary):
        helper = helper[np.flatnonzero(iou_matrix(helper.xyxy, primary.xyxy).max(axis=1) < max_iou)]
    return Detections(  # boxes only: a tracker_id of either side means nothing for the fused set
        np.concatenate([primary.xyxy, helper.xyxy]).astype(np.float32).reshape(-1, 4),
        np.concatenate([primary.confidence, np.minimum(helper.confidence, cap)]).astype(np.float32),
        np.concatenate([primary.class_id, helper.class_id]).astype(np.int64),
    )


class FusedDetector:
    """``primary`` (a network every camera shares) + ``helper`` (this camera's own detector, made
    by ``make_helper``; shared too when it keeps no state about a camera), fused by ``fuse``. The
    tracker's settings and how often to detect (``new_track_confidence``, ``appearance_weight``,
    ``detect_every``) are the primary's; ``helper_cap`` tells the tracker config (``for_detector``)
    that boxes up to it must neither lead nor start tracks."""

    #: the helper models one camera: the pipeline asks ``for_another_camera`` for each camera
    per_camera = True

    def __init__(
        self,
        primary,
        make_helper: Callable[[], object],
        max_iou: float = MAX_IOU,
        cap: float = HELPER_CONFIDENCE,
    ) -> None:
        if getattr(primary, "per_camera", False):
            raise ConfigError(
                f"{type(primary).__name__} models one camera, so it cannot be the shared first detector of a "
                "fused pair: put it second (e.g. fastestdet+motion)"
            )
        if not (0.0 < max_iou <= 1.0 and 0.0 <= cap <= 1.0):
            raise ConfigError(f"fused detector: max_iou ({max_iou}) must be in (0, 1] and cap ({cap}) in [0, 1]")
        self.primary, self.make_helper = primary, make_helper
        self.helper = make_helper()
        #: helper boxes' confidence cap; the tracker config (``for_detector``) checks against it
        self.max_iou, self.helper_cap = max_iou, cap
        #: recorded in run.json: which network and which helper
        self.name = f"{type(primary).__name__}+{type(self.helper).__name__}"
        for name in ("new_track_confidence", "appearance_weight", "detect_every"):
            if hasattr(primary, name):
                setattr(self, name, getattr(primary, name))

    @property
    def parts(self) -> tuple:
        """The detectors to run on each frame; ``combine`` takes their results in this order."""
        return self.primary, self.helper

    def combine(self, found: Sequence[Detections]) -> Detections:
        return fuse(found[0], found[1], self.max_iou, self.helper_cap)

    def __call__(self, frame: np.ndarray, roi_mask: np.ndarray | None = None) -> Detections:
        return self.combine([part(frame, roi_mask) for part in self.parts])

    def for_another_camera(self) -> FusedDetector:
        """The same shared network with a new helper of its own (the same helper when it keeps no
        state about a camera: a second network is made once, not once per camera)."""
        make = self.make_helper if getattr(self.helper, "per_camera", False) else (lambda: self.helper)
        return FusedDetector(self.primary, make, self.max_iou, self.helper_cap)
