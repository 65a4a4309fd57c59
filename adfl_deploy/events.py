"""Typed events: what the pipeline tells its subscribers, one direction, nothing patched later.

Journal events (``TrackStarted``, ``TrackEnded``, ``GlobalIdAssigned``, ``GlobalIdMerged``) are
the run's decisions: they go to ``events.jsonl`` through ``record`` and would go to a store or a
broker the same way. ``FrameTracked`` carries every live track of one camera frame (the "track
updated" event, in bulk, with the image) for the MOT files, videos and mosaic; ``TickStats``
closes each tick; ``SummaryUpdated`` and ``RunEnded`` carry the run's ``Summary``.

A subscriber is anything with ``on_event(event)`` (and optionally ``close()``), or a plain
callable taking the event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels


@dataclass(frozen=True)
class RunStarted:
    """The first record of every run: its id ties the event log to ``run.json`` and
    ``summary.json``."""

    run_id: str
    cameras: tuple[str, ...]
    started: str  # UTC, ISO 8601
    kind = "run_started"


@dataclass(frozen=True)
class TrackStarted:
    camera: str
    track_id: int
    frame: int
    time: float
    box: Box
    kind = "track_started"


@dataclass(frozen=True)
class TrackEnded:
    camera: str
    track_id: int
    frame: int
    time: float
    kind = "track_ended"


@dataclass(frozen=True)
class GlobalIdAssigned:
    """A track joined a global identity (``new``: one started for it)."""

    camera: str
    track_id: int
    global_id: int
    time: float
    new: bool
    frame: int | None = None
    box: Box | None = None
    kind = "global_id_assigned"


@dataclass(frozen=True)
class GlobalIdMerged:
    """Late evidence showed two identities are one person: ``merged`` lives on as ``kept``."""

    kept: int
    merged: int
    distance: float
    time: float
    kind = "global_id_merged"


Decision = GlobalIdAssigned | GlobalIdMerged
JOURNAL = (RunStarted, TrackStarted, TrackEnded, GlobalIdAssigned, GlobalIdMerged)


@dataclass
class FrameTracked:
    """Every live track of one camera frame, with its global id where it has one."""

    camera: str
    frame: int
    time: float
    image: np.ndarray
    boxes: np.ndarray  # (N, 4) xyxy
    track_ids: np.ndarray  # (N,)
    confidences: np.ndarray  # (N,)
    global_ids: list[int | None]
    fps: float = 0.0  # this camera's frames per second so far
    _annotated: np.ndarray | None = field(default=None, repr=False)
    kind = "frame_tracked"

    @property
    def title(self) -> str:
        return f"{self.camera} #{self.frame}  {self.fps:.1f} FPS"

    def annotated(self) -> np.ndarray:
        """The frame with boxes and labels, drawn once however many sinks want it."""
        if self._annotated is None:
            from adfl_deploy.pipeline.sinks import annotate

            self._annotated = annotate(self.image, self.boxes, self.track_ids, self.global_ids, self.title)
        return self._annotated

    def annotated_tile(self, tile: tuple[int, int]) -> np.ndarray:
        """The frame shrunk to ``tile`` (h, w), then annotated: a live view of many cameras
        costs a fraction of drawing every full frame and shrinking it after."""
        from adfl_deploy.pipeline.sinks import annotate_tile

        return annotate_tile(self.image, self.boxes, self.track_ids, self.global_ids, self.title, tile)


@dataclass
class CropEmbedded:
    """One crop of a track went through the embedder this tick: the raw material of an identity
    store or an edge node's tracklet messages (not journalled: it carries arrays)."""

    camera: str
    track_id: int
    frame: int
    time: float
    box: Box | None  # xyxy in the frame, None when the track has no box this frame
    crop: np.ndarray  # the BGR crop as the camera saw it (a view, not a copy)
    embedding: np.ndarray  # unit vector of this crop (after ``white_balance``)
    quality: float  # the scheduler's crop quality (size x confidence, border and overlap penalties)
    descriptor: np.ndarray  # the track's aggregated unit descriptor after this crop
    #: BGR gains the crop was scaled by before the embedder saw it (``runtime.white_balance``:
    #: ``apply_gains(crop, white_balance)``); None: it saw the crop as it is
    white_balance: tuple[float, float, float] | None = None
    kind = "crop_embedded"


@dataclass(frozen=True)
class TickStats:
    tick: int
    #: stage -> milliseconds this tick (detect/track summed over cameras)
    stage_ms: dict[str, float]
    #: camera -> frames processed so far
    frames: dict[str, int]
    live_tracks: int
    global_ids: int
    kind = "tick_stats"


@dataclass(frozen=True)
class SummaryUpdated:
    """The run so far (sent every ``summary_seconds`` so a run that ends by a kill has one)."""

    summary: Any  # adfl_deploy.pipeline.summary.Summary
    kind = "summary_updated"


@dataclass(frozen=True)
class RunEnded:
    summary: Any  # adfl_deploy.pipeline.summary.Summary
    kind = "run_ended"


Event = (
    RunStarted
    | TrackStarted
    | TrackEnded
    | GlobalIdAssigned
    | GlobalIdMerged
    | FrameTracked
    | CropEmbedded
    | TickStats
    | SummaryUpdated
    | RunEnded
)


@runtime_checkable
class Subscriber(Protocol):
    def on_event(self, event: Event) -> None: ...


def record(event: Event) -> dict:
    """A journal event as the JSON record of ``events.jsonl``: ``{"event": kind, ...fields}``."""
    if not isinstance(event, JOURNAL):
        raise TypeError(f"{type(event).__name__} is not a journal event")
    data = {"event": event.kind}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        data[f.name] = list(value) if isinstance(value, tuple) else value
    return data


__all__ = [
    "Box",
    "Decision",
    "Event",
    "FrameTracked",
    "GlobalIdAssigned",
    "GlobalIdMerged",
    "JOURNAL",
    "RunEnded",
    "RunStarted",
    "Subscriber",
    "SummaryUpdated",
    "TickStats",
    "TrackEnded",
    "TrackStarted",
    "record",
]
