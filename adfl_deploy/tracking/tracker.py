"""Per-camera multi-object tracking, ByteTrack-style: Kalman prediction, then two assignment
rounds on IoU - confident detections first, then the low-confidence ones (often occluded
people) against the tracks left over - with the Hungarian algorithm from SciPy.

Written here rather than taken from ``supervision``: that package depends on the GUI build of
OpenCV (``opencv-python``), which cannot share an environment with the headless build this
runtime uses; the tracker is ~100 lines over SciPy's assignment.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from adfl_deploy.errors import ConfigError
from adfl_deploy.tracking import appearance, kalman
from adfl_deploy.tracking.detections import Detections, iou_matrix, max_overlap

#: an unmatched box starts a track only if this confident, unless the detector says otherwise
NEW_TRACK_CONFIDENCE = 0.6
#: a box overlapping no other this much shows one person: it may update a track's signature
UNOVERLAPPED_IOU = 0.1
#: the colour term's weight unless the detector or the config says otherwise (since 2026-12-03;
#: 0 before, and only FastestDet asked for 2.0): fewer swaps between overlapping people on
#: ground-truth boxes - tuning seeds 5-12 MTMC IDF1 +0.014 +- 0.034, purity +0.013,
#: fragmentation 1.55 -> 1.38; check seeds 13-20 +0.019 +- 0.028, fragmentation never worse -
#: and with the motion detector (+0.010 +- 0.051, fragmentation -0.16; README, tracker)
APPEARANCE_WEIGHT = 2.0


@dataclass(frozen=True)
class TrackerConfig:
    high_confidence: float = 0.5  # first-round detections
    low_confidence: float = 0.1  # second round; below this a box is ignored
    #: an unmatched box starts a track only if this confident; None: the detector's own
    #: ``new_track_confidence`` (confidence scales differ: FastestDet's score, motion's fill
    #: ratio), else ``NEW_TRACK_CONFIDENCE``
    new_track_confidence: float | None = None
    match_iou: float = 0.2  # minimum IoU to match (first round)
    low_match_iou: float = 0.5  # second round, stricter: low boxes are less reliable
    confirm_hits: int = 3  # a track is confirmed (reported) after this many matches
    #: then a lost track is removed; like confirm_hits, counted in frames the detector saw (3 s
    #: at 10 FPS when it sees every frame, 6 s with FastestDet's one frame in two)
    max_lost_frames: int = 30
    #: weight of the colour-histogram distance (``appearance``) added to 1 - IoU in both rounds,
    #: so that overlapping people are told apart by what they wear; 0 = IoU alone; None: the
    #: detector's own ``appearance_weight``, else ``APPEARANCE_WEIGHT`` (2.0; README, tracker)
    appearance_weight: float | None = None
    #: a track's signature moves this far towards each new unoverlapped box's
    appearance_update: float = 0.1

    def __post_init__(self) -> None:
        for name in ("high_confidence", "low_confidence", "new_track_confidence", "match_iou", "low_match_iou"):
            value = getattr(self, name)
            if value is None and name == "new_track_confidence":
                continue
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"tracker.{name}: {value} is not in [0, 1]")
        weight = self.appearance_weight
        if (weight is not None and not (math.isfinite(weight) and weight >= 0)) or not 0.0 <= self.appearance_update <= 1.0:
            raise ConfigError(
                f"tracker: appearance_weight ({self.appearance_weight}) must be >= 0 and appearance_update "
                f"({self.appearance_update}) in [0, 1]"
            )
        if self.confirm_hits < 1 or self.max_lost_frames < 0:
            raise ConfigError(
                f"tracker: confirm_hits ({self.confirm_hits}) must be >= 1 and max_lost_frames ({self.max_lost_frames}) >= 0"
            )

    def for_detector(self, detector) -> TrackerConfig:
        """This config with the fields left unset (None) filled in from ``detector``'s own
        ``new_track_confidence`` and ``appearance_weight``, else ``NEW_TRACK_CONFIDENCE`` and
        ``APPEARANCE_WEIGHT``, and checked like the config's own (a detector with an
        out-of-range value is a one-line ``ConfigError``); for a fused pair (``helper_cap``), also
        that its helper boxes reach the second round only, so they never lead or start a track."""
        resolved = replace(
            self,
            new_track_confidence=self.new_track_confidence
            if self.new_track_confidence is not None
            else getattr(detector, "new_track_confidence", NEW_TRACK_CONFIDENCE),
            appearance_weight=self.appearance_weight
            if self.appearance_weight is not None
            else getattr(detector, "appearance_weight", APPEARANCE_WEIGHT),
        )
        cap = getattr(detector, "helper_cap", None)  # a fused pair's helper boxes: only to carry tracks
        if cap is not None and not (
            resolved.low_confidence <= cap < min(resolved.high_confidence, resolved.new_track_confidence)
        ):
            raise ConfigError(
                f"tracker: with a fused detector, low_confidence ({resolved.low_confidence}) must be at most its helper boxes' "
                f"confidence cap ({cap}), and high_confidence ({resolved.high_confidence}) and new_track_confidence "
                f"({resolved.new_track_confidence}) above it, so helper boxes carry tracks but never lead or start one"
            )
        return resolved


@dataclass
class Track:
    track_id: int
    mean: np.ndarray
    cov: np.ndarray
    hits: int = 1
    lost: int = 0
    confirmed: bool = False
    last_confidence: float = 0.0
    signature: np.ndarray | None = None  # colour signature (appearance), when used

    @property
    def xyxy(self) -> np.ndarray:
        return kalman.xyah_to_xyxy(self.mean)


class ByteTracker:
    """``tracker.update(detections) -> detections`` of confirmed tracks, with ``tracker_id``."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config.for_detector(None)  # unset fields: the defaults, resolved once
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def reset(self) -> None:
        self.tracks.clear()
        self._ids = itertools.count(1)

    def _assign(
        self, tracks: list[Track], boxes: np.ndarray, min_iou: float, signatures: np.ndarray | None = None
    ) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """Pairs (track, box) from the Hungarian algorithm on 1 - IoU (plus the weighted
        appearance distance when ``signatures`` are given); a pair needs IoU >= ``min_iou``."""
        if not tracks or len(boxes) == 0:
            return [], list(range(len(tracks))), list(range(len(boxes)))
        iou = iou_matrix(np.stack([t.xyxy for t in tracks]), boxes)
        cost = 1.0 - iou
        if signatures is not None:
            blank = np.zeros(signatures.shape[1], np.float32)
            known = np.array([t.signature is not None for t in tracks])[:, None]  # a new track has none yet
            mine = np.stack([blank if t.signature is None else t.signature for t in tracks])
            cost = cost + self.config.appearance_weight * np.where(known, appearance.distances(mine, signatures), 0.0)
        # No penalty on pairs below min_iou: the solver may choose one (then dropped) rather than
        # force every track onto some box - forcing them cost 0.026 MTMC IDF1 on the tuning scenes.
        # With the colour term this also works as a veto: a track whose only overlapping box
        # wears other colours than it (but a look-alike elsewhere does) stays unmatched this
        # frame. Pricing the gated pairs at the farthest colour instead (so the colour term
        # could never make them the cheaper choice) cost about 0.04 on the tuning scenes.
        rows, cols = linear_sum_assignment(cost)
        pairs = [(r, c) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]
        matched_t, matched_d = {r for r, _ in pairs}, {c for _, c in pairs}
        return pairs, [i for i in range(len(tracks)) if i not in matched_t], [j for j in range(len(boxes)) if j not in matched_d]

    def _hit(self, track: Track, box: np.ndarray, confidence: float, signature: np.ndarray | None = None) -> None:
        track.mean, track.cov = kalman.update(track.mean, track.cov, kalman.xyxy_to_xyah(box))
        if signature is not None:
            if track.signature is None:
                track.signature = signature
            else:
                mixed = (1 - self.config.appearance_update) * track.signature + self.config.appearance_update * signature
                track.signature = mixed / max(float(np.linalg.norm(mixed)), 1e-12)
        track.hits += 1
        track.lost = 0
        track.last_confidence = confidence
        track.confirmed = track.confirmed or track.hits >= self.config.confirm_hits

    def coast(self) -> Detections:
        """A frame the detector skipped (``detect_every``): every track moves on by its Kalman
        prediction; the confirmed tracks matched on the last detected frame are reported at their
        predicted boxes (with their last confidence). Nothing is lost, started or ended here:
        ``max_lost_frames`` counts detected frames."""
        for t in self.tracks:
            t.mean, t.cov = kalman.predict(t.mean, t.cov)
        shown = [t for t in self.tracks if t.confirmed and t.lost == 0]
        if not shown:
            return replace(Detections.empty(), tracker_id=np.zeros(0, np.int64))
        return Detections(
            np.stack([t.xyxy for t in shown]).astype(np.float32),
            np.array([t.last_confidence for t in shown], np.float32),
            np.zeros(len(shown), np.int64),
            tracker_id=np.array([t.track_id for t in shown], np.int64),
        )

    def update(self, dets: Detections, image: np.ndarray | None = None) -> Detections:
        """Tracks after this frame's detections; ``image`` (the frame, BGR) is needed only for
        the appearance term (``appearance_weight`` > 0)."""
        cfg = self.config
        sigs = appearance.signatures(image, dets.xyxy) if cfg.appearance_weight > 0 and image is not None else None
        # a box overlapped by another shows part of someone else: it does not update a signature
        clean = None if sigs is None else max_overlap(dets.xyxy) < UNOVERLAPPED_IOU
        learn = lambda d: sigs[d] if sigs is not None and clean[d] else None  # noqa: E731
        for t in self.tracks:
            t.mean, t.cov = kalman.predict(t.mean, t.cov)
        high = np.flatnonzero(dets.confidence >= cfg.high_confidence)
        low = np.flatnonzero((dets.confidence >= cfg.low_confidence) & (dets.confidence < cfg.high_confidence))
        assigned: dict[int, int] = {}  # detection index -> track id

        pick = lambda idx: None if sigs is None else sigs[idx]  # noqa: E731
        pairs, left_tracks, left_high = self._assign(self.tracks, dets.xyxy[high], cfg.match_iou, pick(high))
        for ti, di in pairs:
            self._hit(self.tracks[ti], dets.xyxy[high[di]], float(dets.confidence[high[di]]), learn(high[di]))
            assigned[int(high[di])] = self.tracks[ti].track_id
        remaining = [self.tracks[i] for i in left_tracks]
        pairs, still_lost, _ = self._assign(remaining, dets.xyxy[low], cfg.low_match_iou, pick(low))
        for ti, di in pairs:
            self._hit(remaining[ti], dets.xyxy[low[di]], float(dets.confidence[low[di]]), learn(low[di]))
            assigned[int(low[di])] = remaining[ti].track_id
        for i in still_lost:
            remaining[i].lost += 1
        for di in left_high:
            d = int(high[di])
            if dets.confidence[d] >= cfg.new_track_confidence:
                mean, cov = kalman.initiate(kalman.xyxy_to_xyah(dets.xyxy[d]))
                track = Track(next(self._ids), mean, cov, last_confidence=float(dets.confidence[d]))
                track.signature = None if sigs is None else sigs[d]  # its first box, overlapped or not
                self.tracks.append(track)
                assigned[d] = track.track_id
        self.tracks = [t for t in self.tracks if t.lost <= cfg.max_lost_frames]

        confirmed = {t.track_id for t in self.tracks if t.confirmed}
        keep = np.array(sorted(d for d, tid in assigned.items() if tid in confirmed), dtype=np.int64)
        ids = np.array([assigned[d] for d in keep], dtype=np.int64)
        out = dets[keep]
        return replace(out, tracker_id=ids)
