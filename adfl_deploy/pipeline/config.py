"""``PipelineConfig``: every field of a run, checked when it is built (a wrong type or an
out-of-range value is one line naming the field), serialised next to the run's outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from adfl_deploy.association.associator import AssociationConfig
from adfl_deploy.broker.config import PublishConfig
from adfl_deploy.errors import ConfigError
from adfl_deploy.files import safe_name
from adfl_deploy.pipeline.sources import SourceConfig
from adfl_deploy.tracking.embedding_schedule import ScheduleConfig
from adfl_deploy.tracking.tracker import TrackerConfig

#: what a run writes unless told otherwise (names in ``adfl_deploy.pipeline.sinks.SINKS``);
#: ``write_videos: false`` leaves out the two video sinks
DEFAULT_SINKS = ("events", "mot", "videos", "mosaic", "summary", "store")
#: ``white_balance`` choices
WHITE_BALANCE = ("grey-world", "none")


@dataclass
class PipelineConfig:
    #: "name=uri" per camera: video file, image folder, rtsp/http URL or webcam index
    sources: list[str] = field(default_factory=list)
    #: exported artefact folder; empty or "edge" = the shipped edge model, "baseline" = the shipped
    #: attention-free baseline; "colour-histogram" = no network
    model: str = ""
    backend: str = "auto"
    #: "fastestdet+motion-quarter" (the default: the shipped COCO network, plus a motion detector's
    #: boxes where it finds nobody, to carry tracks through its misses - end to end MTMC IDF1
    #: +0.018 over the eight report scenes (HOTA +0.030) at 1.09x the CPU per frame; README, detectors),
    #: "fastestdet" (the network alone; "fastestdet@640x352" at another input size), "motion"
    #: (background subtraction, fixed cameras), "yolo-fastest" (person-only Darknet, converted to
    #: ONNX when loaded; "yolo-fastest@WxH" too), "A+B" for any two of these,
    #: any name registered in adfl_deploy.tracking.detectors.DETECTORS, or a YOLOv5/v8 ONNX path
    detector: str = "fastestdet+motion-quarter"
    #: boxes down to this confidence reach the tracker: its second (ByteTrack) round keeps tracks
    #: alive through them (often a half-hidden person); only boxes above
    #: ``tracker.new_track_confidence`` start tracks. 0.2 gave +0.017 MTMC IDF1 with the motion
    #: detector and +0.034 with FastestDet over 0.5 on four tuning scenes (README, detectors)
    min_confidence: float = 0.2
    min_height: int = 24
    #: colour correction of the crops before they are embedded: "grey-world" scales each
    #: camera's channels so its frames average to grey (its colour cast out; the events and the
    #: store keep the crops as seen; ``adfl_deploy.runtime.white_balance``), "none" leaves them;
    #: YAML's unquoted on/off (booleans) mean "grey-world"/"none"
    white_balance: str | bool = "grey-world"
    #: run the detector on one frame in this many per camera (cameras take turns); the tracker
    #: carries tracks through the others on its motion model: detector work / N. None: the
    #: detector's own (FastestDet 2 - fewer boxes hopping between overlapping people, MTMC IDF1
    #: 0.415 -> 0.491 on five scenes; motion 1), precomputed detections 1 (README, detectors)
    detect_every: int | None = None
    #: camera -> MOTChallenge det.txt with precomputed detections (replaces the detector there)
    detections: dict[str, str] = field(default_factory=dict)
    #: camera -> mask image (non-zero = watched); people whose feet fall outside are ignored
    roi_masks: dict[str, str] = field(default_factory=dict)
    out: str = "out/track"
    #: outputs, by name in adfl_deploy.pipeline.sinks.SINKS (a user's registered sinks too)
    sinks: list[str] = field(default_factory=lambda: list(DEFAULT_SINKS))
    write_videos: bool = True
    #: rewrite summary.json this often (seconds), so a run that is killed still has one
    summary_seconds: float = 10.0
    #: show the mosaic in a window (needs a display and an OpenCV build with GUI support)
    show: bool = False
    max_frames: int = 0  # per camera; 0 = until the sources end
    source: SourceConfig = field(default_factory=SourceConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)
    #: an edge node: send tracklets to a central associator (``adfl associate``) over a broker
    #: instead of associating here (``publish.url`` empty = this process associates)
    publish: PublishConfig = field(default_factory=PublishConfig)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence: {self.min_confidence} is not a confidence in [0, 1]")
        if self.detect_every is not None:
            check_detect_every(self.detect_every)
        if isinstance(self.white_balance, bool):  # YAML reads an unquoted off/on/no/yes as a boolean
            self.white_balance = "grey-world" if self.white_balance else "none"
        if self.white_balance not in WHITE_BALANCE:
            raise ConfigError(f"white_balance: {self.white_balance!r}; use one of {', '.join(WHITE_BALANCE)}")
        if self.min_height < 0:
            raise ConfigError(f"min_height: {self.min_height}; use pixels >= 0")
        if self.max_frames < 0:
            raise ConfigError(f"max_frames: {self.max_frames}; use a frame count >= 0 (0 = until the sources end)")
        if not (self.summary_seconds > 0 and math.isfinite(self.summary_seconds)):
            raise ConfigError(f"summary_seconds: {self.summary_seconds}; use seconds > 0")
        if not self.out:
            raise ConfigError("out: empty; name an output folder")
        for name in list(self.detections) + list(self.roi_masks):
            safe_name(name, "camera name")

    @property
    def active_sinks(self) -> list[str]:
        return [s for s in self.sinks if self.write_videos or s not in ("videos", "mosaic")]


def check_detect_every(value, where: str = "detect_every") -> int:
    """``value`` when it is a whole number of frames >= 1, else one ``ConfigError`` line
    naming ``where`` (the config field, a camera, a command-line option)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where} {value!r}: use a whole number of frames, 1 (every frame) or more")
    return value


def parse_sources(specs: list[str]) -> list[tuple[str, str]]:
    """``["cam1=door.mp4", ...]`` -> ``[("cam1", "door.mp4"), ...]``; camera names become file
    names (``mot/cam1.txt``), so they must be plain words (``files.safe_name``)."""
    out = []
    for spec in specs:
        name, sep, uri = spec.partition("=")
        if not sep or not name or not uri:
            raise ConfigError(f"source {spec!r}: expected NAME=PATH_OR_URL, e.g. cam1=videos/door.mp4")
        out.append((safe_name(name, "camera name"), uri))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"camera names must be unique, got {names}")
    if not out:
        raise ConfigError("no sources: pass --source NAME=PATH_OR_URL (one per camera)")
    return out
