"""The multi-camera re-identification pipeline, one direction per tick:

    sources -> detect -> track (per camera) -> embed (one batch for all cameras) -> associate -> sinks

``run(config)`` reads every camera until all sources end (or ``max_frames``), and writes into
``config.out``: ``events.jsonl``, ``mot/<camera>.txt`` (global ids as track ids),
``video/<camera>.avi`` and ``mosaic.avi`` (when ``write_videos``), ``summary.json`` and the
resolved ``config.yaml``. Torch-free.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from adfl_deploy import config as config_io
from adfl_deploy.assets import EDGE_MODEL
from adfl_deploy.association.associator import AssociationConfig, Associator, Tracklet
from adfl_deploy.association.calibration import match_threshold
from adfl_deploy.errors import ConfigError
from adfl_deploy.files import atomic_write_text
from adfl_deploy.pipeline.sinks import EventLog, MotWriter, VideoSink, annotate, mosaic, remove_partial_videos
from adfl_deploy.pipeline.sources import CameraSource, SourceConfig
from adfl_deploy.runtime.colour_histogram import ColourHistogramEmbedder
from adfl_deploy.runtime.embedder import Embedder
from adfl_deploy.timing import latency_window
from adfl_deploy.tracking.detectors import DetectionFilter, FastestDet, MotDetections, MotionDetector, YoloOnnx
from adfl_deploy.tracking.embedding_schedule import EmbeddingScheduler, ScheduleConfig
from adfl_deploy.tracking.tracker import ByteTracker, TrackerConfig

log = logging.getLogger(__name__)


@dataclass
class PipelineConfig:
    #: "name=uri" per camera: video file, image folder, rtsp/http URL or webcam index
    sources: list[str] = field(default_factory=list)
    #: exported artefact folder; empty = the shipped edge model; "colour-histogram" = no network
    model: str = ""
    backend: str = "auto"
    #: "fastestdet" (shipped COCO network), "motion" (background subtraction, fixed cameras)
    #: or the path of a YOLOv5/v8-style ONNX
    detector: str = "fastestdet"
    min_confidence: float = 0.5
    min_height: int = 24
    #: camera -> MOTChallenge det.txt with precomputed detections (replaces the detector there)
    detections: dict[str, str] = field(default_factory=dict)
    #: camera -> mask image (non-zero = watched); people whose feet fall outside are ignored
    roi_masks: dict[str, str] = field(default_factory=dict)
    out: str = "out/track"
    write_videos: bool = True
    #: show the mosaic in a window (needs a display and an OpenCV build with GUI support)
    show: bool = False
    max_frames: int = 0  # per camera; 0 = until the sources end
    source: SourceConfig = field(default_factory=SourceConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)


def parse_sources(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        name, sep, uri = spec.partition("=")
        if not sep or not name or not uri:
            raise ConfigError(f"source {spec!r}: expected NAME=PATH_OR_URL, e.g. cam1=videos/door.mp4")
        out.append((name, uri))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"camera names must be unique, got {names}")
    if not out:
        raise ConfigError("no sources: pass --source NAME=PATH_OR_URL (one per camera)")
    return out


def _detector(cfg: PipelineConfig):
    filters = DetectionFilter(min_confidence=cfg.min_confidence, min_height=cfg.min_height)
    if cfg.detector == "fastestdet":
        return FastestDet(filters=filters)
    if cfg.detector == "motion":
        return MotionDetector(filters=filters)
    return YoloOnnx(cfg.detector, filters)


def camera_detectors(cfg: PipelineConfig, cameras: list[str]) -> dict:
    """camera -> detector: one shared network for stateless detectors, one each for detectors
    that model a camera (``per_camera``, e.g. the motion detector's background)."""
    first = _detector(cfg)
    if not getattr(first, "per_camera", False):
        return dict.fromkeys(cameras, first)
    return {name: first if i == 0 else _detector(cfg) for i, name in enumerate(cameras)}


def _embedder(cfg: PipelineConfig):
    if cfg.model == "colour-histogram":
        return ColourHistogramEmbedder()
    return Embedder.from_artifact(cfg.model or EDGE_MODEL, backend=cfg.backend)


def _roi_mask(camera: str, path: str) -> np.ndarray:
    import cv2

    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ConfigError(f"camera {camera}: region-of-interest mask {path} is missing or not an image")
    return mask


def _fit(mask: np.ndarray | None, image: np.ndarray) -> np.ndarray | None:
    """The mask at the frame's size (cameras may change resolution)."""
    if mask is None or mask.shape[:2] == image.shape[:2]:
        return mask
    import cv2

    return cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)


@dataclass
class _Camera:
    source: CameraSource
    detector: object  # callable(image, roi) -> Detections; one per camera when it has state
    tracker: ByteTracker
    mot: MotWriter
    video: VideoSink | None
    precomputed: MotDetections | None = None
    roi: np.ndarray | None = None
    live_tracks: set = field(default_factory=set)
    frames: int = 0
    last_annotated: np.ndarray | None = None


def _show(grid: np.ndarray) -> bool:
    """Show the mosaic; False (with one warning) where no window can be opened."""
    import cv2

    try:
        cv2.imshow("adfl track", grid)
        cv2.waitKey(1)
        return True
    except cv2.error:
        log.warning("no display window: this OpenCV build has no GUI support (opencv-python-headless) or there is no display")
        return False


def prepare_output(out: Path) -> None:
    """Make ``out`` ready for a new run without losing an earlier one: its event log is kept
    under a timestamped name (a restart after a crash starts a fresh, complete log), and video
    files a killed run left half-written (``.NAME.partial.avi``) are removed."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".adfl-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"output folder {out} is not writable ({exc.strerror or exc}); pass another --out") from None
    events = out / "events.jsonl"
    if events.exists():
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(events.stat().st_mtime))
        events.rename(out / f"events.{stamp}.jsonl")
    remove_partial_videos(out)


def run(cfg: PipelineConfig, progress: bool = True) -> dict:
    out = Path(cfg.out)
    prepare_output(out)
    config_io.save(cfg, out / "config.yaml")
    embedder = _embedder(cfg)
    association = cfg.association
    if association.match_threshold is None:
        association = dataclasses.replace(association, match_threshold=match_threshold(embedder.embed))
        log.info("association: match threshold %.3f calibrated for %s", association.match_threshold, embedder.name)
    cameras: dict[str, _Camera] = {}
    sources = parse_sources(cfg.sources)
    unknown = sorted((set(cfg.detections) | set(cfg.roi_masks)) - {n for n, _ in sources})
    if unknown:
        raise ConfigError(f"detections/roi_masks name camera {unknown[0]!r}, which is not among the sources")
    detectors = camera_detectors(cfg, [n for n, _ in sources])
    for name, uri in sources:
        source = CameraSource(name, uri, cfg.source)
        video = VideoSink(out / "video" / f"{name}.avi", fps=10) if cfg.write_videos else None
        precomputed = MotDetections(cfg.detections[name], DetectionFilter(min_confidence=cfg.min_confidence, min_height=cfg.min_height)) if name in cfg.detections else None
        roi = _roi_mask(name, cfg.roi_masks[name]) if name in cfg.roi_masks else None
        cameras[name] = _Camera(source, detectors[name], ByteTracker(cfg.tracker), MotWriter(out / "mot" / f"{name}.txt"), video, precomputed, roi)
    scheduler = EmbeddingScheduler(cfg.schedule)
    associator = Associator(association)
    events = EventLog(out / "events.jsonl")
    mosaic_sink = VideoSink(out / "mosaic.avi", fps=10) if cfg.write_videos else None
    stage_ms = {k: latency_window() for k in ("detect", "track", "embed", "associate", "sink")}
    seen_events = 0
    started = time.perf_counter()
    show = cfg.show
    for cam in cameras.values():
        cam.source.start()
    bar = tqdm(desc="tracking", unit="tick", disable=not progress, mininterval=1.0)
    try:
        while True:
            active = [c for c in cameras.values() if not c.source.finished and not (cfg.max_frames and c.frames >= cfg.max_frames)]
            if not active:
                break
            frames = [(c, c.source.get(timeout=0.0 if c.source.live else 0.2)) for c in active]
            frames = [(c, f) for c, f in frames if f is not None]
            if not frames:
                continue
            tick = []
            for cam, frame in frames:
                t0 = time.perf_counter()
                roi = _fit(cam.roi, frame.image)
                dets = cam.precomputed(frame.index + 1, roi) if cam.precomputed else cam.detector(frame.image, roi)
                t1 = time.perf_counter()
                tracked = cam.tracker.update(dets)
                current = {int(i) for i in tracked.tracker_id}
                boxes = {int(t): b for t, b in zip(tracked.tracker_id, tracked.xyxy.round(1).tolist())}
                for tid in sorted(current - cam.live_tracks):
                    events.write({"event": "track_started", "camera": cam.source.name, "track_id": tid, "frame": frame.index, "time": frame.timestamp, "box": boxes[tid]})
                alive = {t.track_id for t in cam.tracker.tracks}
                for tid in sorted(cam.live_tracks - alive):
                    events.write({"event": "track_ended", "camera": cam.source.name, "track_id": tid, "frame": frame.index, "time": frame.timestamp})
                    associator.end_track(cam.source.name, tid, frame.timestamp)
                    scheduler.forget((cam.source.name, tid))
                cam.live_tracks = (cam.live_tracks | current) & alive
                stage_ms["detect"].append(1000 * (t1 - t0))
                stage_ms["track"].append(1000 * (time.perf_counter() - t1))
                tick.append((cam, frame, tracked, scheduler.due(cam.source.name, frame.index, tracked, frame.image)))
                cam.frames += 1
            # one embedding batch for every camera's due crops
            t0 = time.perf_counter()
            jobs = [(cam, frame, job) for cam, frame, _, due in tick for job in due]
            tracklets = []
            where = {(cam.source.name, int(t)): (frame.index, b) for cam, frame, tracked, _ in tick for t, b in zip(tracked.tracker_id, tracked.xyxy.round(1).tolist())}
            if jobs:
                embeddings = embedder.embed([job[1] for _, _, job in jobs])
                for (cam, frame, (key, _, quality)), emb in zip(jobs, embeddings):
                    tracklets.append(Tracklet(key[0], key[1], scheduler.add(key, emb, quality), frame.timestamp))
            t1 = time.perf_counter()
            if tracklets:
                associator.associate(tracklets)
            t2 = time.perf_counter()
            for record in associator.events[seen_events:]:
                if "camera" in record:  # assignments: add the frame and box they refer to
                    frame_index, box = where.get((record["camera"], record["track_id"]), (None, None))
                    record = {**record, "frame": frame_index, "box": box}
                events.write(record)
            seen_events = len(associator.events)
            for cam, frame, tracked, _ in tick:
                gids = [associator.assignment.get((cam.source.name, int(t))) for t in tracked.tracker_id]
                known = [i for i, g in enumerate(gids) if g is not None]
                cam.mot.add(frame.index, np.array([gids[i] for i in known]), tracked.xyxy[known], tracked.confidence[known])
                if cam.video is not None or show:
                    fps = cam.frames / max(time.perf_counter() - started, 1e-9)
                    cam.last_annotated = annotate(frame.image, tracked.xyxy, tracked.tracker_id, gids, f"{cam.source.name} #{frame.index}  {fps:.1f} FPS")
                    if cam.video is not None:
                        cam.video.write(cam.last_annotated)
            if mosaic_sink is not None or show:
                grid = mosaic([c.last_annotated for c in cameras.values() if c.last_annotated is not None])
                if mosaic_sink is not None:
                    mosaic_sink.write(grid)
                show = show and _show(grid)
            stage_ms["embed"].append(1000 * (t1 - t0))
            stage_ms["associate"].append(1000 * (t2 - t1))
            stage_ms["sink"].append(1000 * (time.perf_counter() - t2))
            bar.update(1)
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix_str(
                " | ".join(f"{n} {c.frames}f {c.frames / elapsed:.0f}fps {len(c.live_tracks)}t" for n, c in cameras.items())
                + f" | {len(set(associator.assignment.values()))} global ids"
            )
    finally:
        bar.close()
        for cam in cameras.values():
            cam.source.stop()
        closers = [cam.mot.flush for cam in cameras.values()] + [cam.video.close for cam in cameras.values() if cam.video is not None]
        closers += ([mosaic_sink.close] if mosaic_sink is not None else []) + [events.close]
        for close in closers:  # every sink gets its chance even when one fails (e.g. a full disk)
            try:
                close()
            except OSError as exc:
                log.warning("could not finish an output: %s", exc)
    seconds = time.perf_counter() - started
    stage_ms = {"decode": [ms for c in cameras.values() for ms in c.source.decode_ms], **stage_ms}
    summary = {
        "cameras": {n: {"frames": c.frames, "state": c.source.state, "skipped_frames": c.source.skipped, "dropped_frames": c.source.dropped_frames, "reconnects": c.source.reconnects} for n, c in cameras.items()},
        "global_ids": sorted(set(associator.assignment.values())),
        "events": events.count,
        "seconds": seconds,
        "fps_per_camera": {n: c.frames / seconds for n, c in cameras.items()},
        "stage_ms_p50": {k: float(np.median(v)) if v else 0.0 for k, v in stage_ms.items()},
        "stage_ms_p99": {k: float(np.percentile(v, 99)) if v else 0.0 for k, v in stage_ms.items()},
        "embedder": {"model": embedder.name, "backend": embedder.backend, "precision": embedder.precision},
        "association": {"match_threshold": associator.match_threshold, "merge_threshold": associator.merge_threshold},
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
