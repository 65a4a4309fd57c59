"""The multi-camera re-identification pipeline, one direction per tick:

    sources -> detect -> track (per camera) -> embed (one batch for all cameras) -> associate -> events

``Pipeline`` holds the parts (given, or built from a ``PipelineConfig`` through the registries)
and publishes typed events (``adfl_deploy.events``) to its subscribers; it writes nothing
itself. ``step()`` runs one tick, ``run()`` a whole session. Every output (``events.jsonl``,
MOT files, videos, mosaic, ``summary.json``) is a subscriber from ``adfl_deploy.pipeline.sinks``.

``run(config)`` is the whole of ``adfl track``: check every input, claim the output folder,
subscribe the configured sinks, run until the sources end, ``max_frames``, SIGINT or SIGTERM,
then close every sink and write the summary. Torch-free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adfl_deploy import config as config_io
from adfl_deploy.association.associator import Associator, Tracklet
from adfl_deploy.association.calibration import calibrated_associator
from adfl_deploy.errors import ConfigError
from adfl_deploy.events import (
    JOURNAL,
    CropEmbedded,
    Event,
    FrameTracked,
    GlobalIdAssigned,
    RunEnded,
    RunStarted,
    SummaryUpdated,
    TickStats,
    TrackEnded,
    TrackStarted,
)
from adfl_deploy.pipeline.config import PipelineConfig, check_detect_every, parse_sources
from adfl_deploy.pipeline.output import RunFolder, new_run_id
from adfl_deploy.pipeline.sinks import SINKS
from adfl_deploy.pipeline.sources import CameraSource
from adfl_deploy.pipeline.summary import CameraSummary, Summary
from adfl_deploy.runtime.embedder import EmbedderLike, create_embedder
from adfl_deploy.runtime.white_balance import WhiteBalance
from adfl_deploy.stop_signals import on_stop_signals
from adfl_deploy.timing import latency_window
from adfl_deploy.tracking.detections import Detections
from adfl_deploy.tracking.detectors import DetectionFilter, Detector, MotDetections, create_detector, detect_frames
from adfl_deploy.tracking.embedding_schedule import EmbeddingScheduler, ScheduleConfig
from adfl_deploy.tracking.tracker import ByteTracker, TrackerConfig

log = logging.getLogger(__name__)

STAGES = ("detect", "track", "embed", "associate", "sink")
#: how long the loop sleeps waiting for any live camera's next frame (it wakes on arrival)
IDLE_WAIT_SECONDS = 0.1
#: how long it waits for each file camera's next frame, to keep files in step
FILE_WAIT_SECONDS = 0.2


@dataclass
class Camera:
    """One camera's parts and state inside the pipeline."""

    source: CameraSource
    detector: Detector
    tracker: ByteTracker
    precomputed: MotDetections | None = None
    roi: np.ndarray | None = None
    live_tracks: set = field(default_factory=set)
    frames: int = 0
    last_frame: object = None  # the latest Frame, for decisions made when the run ends

    @property
    def name(self) -> str:
        return self.source.name


def _fit(mask: np.ndarray | None, image: np.ndarray) -> np.ndarray | None:
    """The mask at the frame's size (cameras may change resolution)."""
    if mask is None or mask.shape[:2] == image.shape[:2]:
        return mask
    import cv2

    return cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)


class Pipeline:
    """Cameras in, typed events out.

    ``detector`` is one detector shared by every camera, or a camera -> detector mapping (a
    detector that models one camera, ``per_camera``, needs one each: ``camera_detectors``).
    ``precomputed`` replaces the detector of a camera with MOTChallenge detections;
    ``roi_masks`` ignores people whose feet fall outside a camera's mask. ``white_balance``
    corrects each camera's colour cast in the crops it embeds (True: grey world, as
    ``PipelineConfig``'s default; False: crops as they are; or a ``WhiteBalance`` of your own).
    """

    def __init__(
        self,
        sources: list[CameraSource],
        detector: Detector | dict[str, Detector],
        embedder: EmbedderLike,
        associator: Associator | None = None,
        tracker: TrackerConfig = TrackerConfig(),
        schedule: ScheduleConfig = ScheduleConfig(),
        precomputed: dict[str, MotDetections] | None = None,
        roi_masks: dict[str, np.ndarray] | None = None,
        max_frames: int = 0,
        summary_seconds: float = 10.0,
        run_id: str | None = None,
        detect_threads: int | None = None,
        detect_every: int | None = None,
        white_balance: WhiteBalance | bool = True,
    ) -> None:
        names = [s.name for s in sources]
        if not sources or len(set(names)) != len(names):
            raise ConfigError(f"a pipeline needs at least one camera and unique camera names, got {names}")
        detectors = detector if isinstance(detector, dict) else dict.fromkeys(names, detector)
        self.wakeup = threading.Event()
        for s in sources:
            s.wakeup = self.wakeup
        self.cameras = {
            s.name: Camera(
                s,
                detectors[s.name],
                ByteTracker(tracker.for_detector(detectors[s.name])),
                (precomputed or {}).get(s.name),
                (roi_masks or {}).get(s.name),
            )
            for s in sources
        }
        self.embedder = embedder
        self.associator = associator or Associator()
        self.scheduler = EmbeddingScheduler(schedule)
        self.white_balance = (WhiteBalance() if white_balance else None) if isinstance(white_balance, bool) else white_balance
        self.max_frames = max_frames
        self.summary_seconds = summary_seconds
        self.run_id = run_id or new_run_id()
        self.subscribers: list[Callable[[Event], None]] = []
        self._closers: list[Callable[[], None]] = []
        #: sink name -> its ``stats()``, reported in the summary
        self._sink_stats: dict[str, Callable[[], dict]] = {}
        self.stage_ms = {k: latency_window() for k in STAGES}
        self.ticks = 0
        self.journal_events = 0
        self.outputs: list[str] = []
        self._started: float | None = None
        self._last_summary = 0.0
        self._stop_reason: str | None = None
        #: (camera, track) -> when the track started, for the decision delay
        self._started_at: dict[tuple[str, int], float] = {}
        #: (camera, track id) -> when the track was last reported (its latest row)
        self._seen_at: dict[tuple[str, int], float] = {}
        #: seconds from a track's start to its global id
        self.decision_delay_s = latency_window()
        #: workers for detectors that model one camera each (default: one per core)
        self.detect_threads = detect_threads or min(len(sources), os.cpu_count() or 1)
        #: camera -> the detector sees one of its frames in this many; the tracker carries its
        #: tracks through the others. None: the detector's own ``detect_every`` (FastestDet 2),
        #: else 1. Cameras take turns (camera i detects when its frame count + i is a multiple),
        #: so every tick has about the same detector work
        self.detect_every = {
            s.name: detect_every or (1 if s.name in (precomputed or {}) else getattr(detectors[s.name], "detect_every", 1))
            for s in sources
        }
        for name, every in self.detect_every.items():
            check_detect_every(every, f"camera {name}: detect_every")
        self._turn = {name: i % self.detect_every[name] for i, name in enumerate(names)}
        self._pool: ThreadPoolExecutor | None = None
        self._cv2_threads: int | None = None

    # -- subscribers -------------------------------------------------------------------------
    def subscribe(self, subscriber) -> object:
        """Add a subscriber: an object with ``on_event(event)`` (and ``close()``, called when
        the run ends, and ``stats()``, a dict reported in the summary under its ``name``), or a
        callable taking the event. Returns it."""
        handler = subscriber.on_event if hasattr(subscriber, "on_event") else subscriber
        if not callable(handler):
            raise TypeError(f"{subscriber!r} is neither callable nor has on_event(event)")
        self.subscribers.append(handler)
        if hasattr(subscriber, "close"):
            self._closers.append(subscriber.close)
        if callable(getattr(subscriber, "stats", None)):
            self._sink_stats[getattr(subscriber, "name", type(subscriber).__name__)] = subscriber.stats
        return subscriber

    def _emit(self, event: Event) -> None:
        if isinstance(event, JOURNAL):
            self.journal_events += 1
        for handler in self.subscribers:
            handler(event)

    # -- the loop -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._started is None:
            self._started = time.perf_counter()
            self._last_summary = self._started
            self._emit(RunStarted(self.run_id, tuple(self.cameras), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            for cam in self.cameras.values():
                cam.source.start()

    def request_stop(self, reason: str) -> None:
        """End the run after the current tick (a signal handler calls this)."""
        self._stop_reason = self._stop_reason or reason

    def _active(self) -> list[Camera]:
        return [
            c for c in self.cameras.values() if not c.source.finished and not (self.max_frames and c.frames >= self.max_frames)
        ]

    def _read(self, active: list[Camera]) -> list[tuple[Camera, object]]:
        """This tick's frames: each file camera's next frame (waited for, so files stay in
        step), whatever live cameras have; if nothing came, sleep until a source wakes us."""
        self.wakeup.clear()
        frames = [(c, c.source.get(timeout=0.0 if c.source.live else FILE_WAIT_SECONDS)) for c in active]
        frames = [(c, f) for c, f in frames if f is not None]
        if not frames:
            self.wakeup.wait(IDLE_WAIT_SECONDS)
        return frames

    def step(self) -> bool:
        """One tick; False once every camera has ended (or reached ``max_frames``) or a stop
        was requested."""
        self.start()
        if self._stop_reason:
            return False
        active = self._active()
        if not active:
            return False
        frames = self._read(active)
        if not frames:
            return True
        ms = dict.fromkeys(STAGES, 0.0)
        tick = []
        detected = [(cam.frames + self._turn[cam.name]) % self.detect_every[cam.name] == 0 for cam, _ in frames]
        t0 = time.perf_counter()
        found = iter(self._detect([f for f, d in zip(frames, detected) if d]))
        ms["detect"] = 1000 * (time.perf_counter() - t0)
        for (cam, frame), with_boxes in zip(frames, detected):
            t1 = time.perf_counter()
            if with_boxes:
                tracked = cam.tracker.update(next(found), frame.image)
            else:  # predicted boxes, kept inside the picture like detected ones
                tracked = cam.tracker.coast().clipped(frame.image.shape[1], frame.image.shape[0])
            t2 = time.perf_counter()
            self._track_events(cam, frame, tracked)
            # crops are cut only from detected boxes: a predicted box may be off the person
            due = self.scheduler.due(cam.name, frame.index, tracked, frame.image) if with_boxes else []
            if self.white_balance is not None and with_boxes:
                self.white_balance.observe(cam.name, frame.image)
            tick.append((cam, frame, tracked, due))
            cam.frames += 1
            cam.last_frame = frame
            self.stage_ms["detect"].append(ms["detect"] / len(frames))  # per frame: the tick's share
            self.stage_ms["track"].append(1000 * (t2 - t1))
            ms["track"] += 1000 * (t2 - t1)
        t0 = time.perf_counter()
        tracklets = self._embed(tick)
        t1 = time.perf_counter()
        decisions = self.associator.associate(tracklets) if tracklets else []
        t2 = time.perf_counter()
        for decision in decisions:
            self._publish_decision(decision)
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        assignment = self.associator.assignment
        for cam, frame, tracked, _ in tick:
            gids = [assignment.get((cam.name, int(t))) for t in tracked.tracker_id]
            self._emit(
                FrameTracked(
                    cam.name,
                    frame.index,
                    frame.timestamp,
                    frame.image,
                    tracked.xyxy,
                    tracked.tracker_id,
                    tracked.confidence,
                    gids,
                    cam.frames / elapsed,
                )
            )
        self.ticks += 1
        ms.update(embed=1000 * (t1 - t0), associate=1000 * (t2 - t1))
        ms["sink"] = 1000 * (time.perf_counter() - t2)
        for stage in ("embed", "associate", "sink"):
            self.stage_ms[stage].append(ms[stage])
        live = sum(len(c.live_tracks) for c in self.cameras.values())
        self._emit(
            TickStats(self.ticks, ms, {n: c.frames for n, c in self.cameras.items()}, live, len(self.associator.global_ids))
        )
        if time.perf_counter() - self._last_summary >= self.summary_seconds:
            self._last_summary = time.perf_counter()
            self._emit(SummaryUpdated(self.summary()))
        return True

    def _detect(self, frames: list[tuple[Camera, object]]) -> list[Detections]:
        """Every frame's detections, in the frames' order: precomputed ones looked up, the rest in
        one ``detect_batch`` call per detector (``detect_frames``); detectors that model one camera
        each (``motion``) run side by side on ``detect_threads`` workers, with OpenCV on one thread
        per worker while they do (restored by ``close``). No events: the order of what the tick
        publishes does not change."""
        jobs, where = [], []
        found: list[Detections | None] = [None] * len(frames)
        for i, (cam, frame) in enumerate(frames):
            roi = _fit(cam.roi, frame.image)
            if cam.precomputed:
                found[i] = cam.precomputed(frame.index + 1, roi)
            else:
                jobs.append((cam.detector, frame.image, roi))
                where.append(i)
        if jobs:
            pool = self._detect_pool() if len({id(d) for d, _, _ in jobs}) > 1 else None
            for i, dets in zip(where, detect_frames(jobs, pool)):
                found[i] = dets
        return found  # type: ignore[return-value]

    def settings(self) -> dict[str, dict]:
        """camera -> the settings this run resolved for it (detector, how often it detects, the
        tracker's config with the detector's own values filled in): recorded in ``run.json``,
        since ``config.yaml`` keeps unset fields as null."""
        return {
            name: {
                "detector": "precomputed" if cam.precomputed else getattr(cam.detector, "name", type(cam.detector).__name__),
                "detect_every": self.detect_every[name],
                "white_balance": "grey-world" if self.white_balance is not None else "none",
                "tracker": dataclasses.asdict(cam.tracker.config),
            }
            for name, cam in self.cameras.items()
        }

    def _detect_pool(self):
        if self._pool is None and self.detect_threads > 1:
            import cv2

            self._cv2_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)  # two workers x OpenCV's own threads would oversubscribe the cores
            self._pool = ThreadPoolExecutor(self.detect_threads, thread_name_prefix="detect")
        return self._pool

    def _track_events(self, cam: Camera, frame, tracked) -> None:
        current = {int(i) for i in tracked.tracker_id}
        boxes = {int(t): tuple(b) for t, b in zip(tracked.tracker_id, tracked.xyxy.round(1).tolist())}
        for tid in sorted(current - cam.live_tracks):
            self._started_at[(cam.name, tid)] = frame.timestamp
            self._emit(TrackStarted(cam.name, tid, frame.index, frame.timestamp, boxes[tid]))
        for tid in current:
            self._seen_at[(cam.name, tid)] = frame.timestamp
        alive = {t.track_id for t in cam.tracker.tracks}
        for tid in sorted(cam.live_tracks - alive):
            self._decide_before_end(cam.name, tid, frame)
            self._emit(TrackEnded(cam.name, tid, frame.index, frame.timestamp))
            self.associator.end_track(cam.name, tid, frame.timestamp)
            self.scheduler.forget((cam.name, tid))
            self._started_at.pop((cam.name, tid), None)
            self._seen_at.pop((cam.name, tid), None)
        cam.live_tracks = (cam.live_tracks | current) & alive

    def _decide_before_end(self, camera: str, tid: int, frame) -> None:
        """A track that ends while still waiting for evidence is linked with what it has, so
        its rows and its sighting are not lost."""
        key = (camera, tid)
        descriptor = self.scheduler.descriptor(key)
        if self.associator.assignment.get(key) is not None or descriptor is None:
            return  # decided (a remote associator's answer may still be on its way: it ignores this)
        since, until = self._started_at.get(key), self._seen_at.get(key)  # when it was first and last reported
        ending = [Tracklet(camera, tid, descriptor, frame.timestamp, frame.index, since=since, until=until)]
        # a remote associator (adfl_deploy.broker) sends these apart from the tick's batch
        remote = getattr(self.associator, "associate_ending", None)
        for decision in remote(ending) if remote else self.associator.associate(ending, final=True):
            self._publish_decision(decision)

    def _publish_decision(self, decision) -> None:
        if isinstance(decision, GlobalIdAssigned):
            started = self._started_at.get((decision.camera, decision.track_id))
            if started is not None:
                self.decision_delay_s.append(decision.time - started)
        self._emit(decision)

    def _embed(self, tick) -> list[Tracklet]:
        """One embedding batch for every camera's due crops -> tracklets with their evidence."""
        jobs = [(cam, frame, tracked, job) for cam, frame, tracked, due in tick for job in due]
        if not jobs:
            return []
        crops = [job.crop for *_, job in jobs]
        if self.white_balance is not None:  # the events keep the crops as the camera saw them
            crops = [self.white_balance.correct(cam.name, crop) for (cam, *_), crop in zip(jobs, crops)]
        embeddings = self.embedder.embed(crops)
        tracklets = []
        for (cam, frame, tracked, (key, crop, quality, whole)), emb in zip(jobs, embeddings):
            row = np.flatnonzero(tracked.tracker_id == key[1])
            box = tuple(tracked.xyxy[row[0]].round(1).tolist()) if len(row) else None
            descriptor = self.scheduler.add(key, emb, quality, whole)
            gains = tuple(self.white_balance.gains(cam.name).tolist()) if self.white_balance is not None else None
            self._emit(
                CropEmbedded(key[0], key[1], frame.index, frame.timestamp, box, crop, emb, float(quality), descriptor, gains)
            )
            if self._ready(key, frame.timestamp):
                since = self._started_at.get(key)
                tracklets.append(Tracklet(key[0], key[1], descriptor, frame.timestamp, frame.index, box, since))
        return tracklets

    def _ready(self, key: tuple[str, int], now: float) -> bool:
        """A track without a global id is linked once it has ``min_evidence`` embeddings (of
        crops that show the person whole, with ``evidence: whole``) or has waited
        ``max_delay_seconds``; one that has an id adds evidence every time."""
        if key in self.associator.assignment:
            return True
        cfg = self.associator.config
        gathered = self.scheduler.evidence(key, whole_only=cfg.evidence == "whole")
        return gathered >= cfg.min_evidence or now - self._started_at.get(key, now) >= cfg.max_delay_seconds

    def run(self, progress: bool = False, handle_signals: bool = True) -> Summary:
        """Tick until the end; SIGINT and SIGTERM end the run after the current tick (a second
        one interrupts at once). Every subscriber is closed, then ``RunEnded`` carries the
        summary. Returns it."""
        from tqdm import tqdm

        bar = tqdm(desc="tracking", unit="tick", disable=not progress, mininterval=1.0)
        ended_by = "error"
        try:
            with self._signals() if handle_signals else contextlib.nullcontext():
                while self.step():
                    bar.update(1)
                    if progress:
                        bar.set_postfix_str(self._progress_line(), refresh=False)
            ended_by = self._stop_reason or self._end_reason()
        finally:
            bar.close()
            summary = self.close(ended_by)
        return summary

    def _end_reason(self) -> str:
        if self.max_frames and any(c.frames >= self.max_frames for c in self.cameras.values()):
            return "max-frames"
        return "sources-ended"

    def _progress_line(self) -> str:
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        cams = " | ".join(f"{n} {c.frames}f {c.frames / elapsed:.0f}fps {len(c.live_tracks)}t" for n, c in self.cameras.items())
        return f"{cams} | {len(self.associator.global_ids)} global ids"

    def _signals(self):
        """SIGINT/SIGTERM -> stop after this tick; a second signal interrupts at once."""

        def handler(signum, _frame):
            name = signal.Signals(signum).name
            if self._stop_reason:
                raise KeyboardInterrupt(name)
            log.warning("%s: finishing the current tick, then closing every output (again to interrupt at once)", name)
            self.request_stop(name)
            self.wakeup.set()

        return on_stop_signals(handler)

    def close(self, ended_by: str = "") -> Summary:
        """Stop the sources, close every subscriber (each gets its chance even when one fails,
        e.g. on a full disk; the first failure is raised after), and publish ``RunEnded``."""
        for cam in self.cameras.values():
            cam.source.stop()
        if self._pool is not None:
            import cv2

            self._pool.shutdown()
            self._pool = None
            cv2.setNumThreads(self._cv2_threads)
        failure = None
        try:  # tracks still waiting for evidence when the run ends are linked with what they have
            for cam in self.cameras.values():
                for tid in sorted(cam.live_tracks):
                    if cam.last_frame is not None:
                        self._decide_before_end(cam.name, tid, cam.last_frame)
            settle = getattr(self.associator, "settle", None)
            if settle is not None:  # a remote associator: the decisions still on their way
                for decision in settle():
                    self._publish_decision(decision)
        except OSError as exc:
            failure = exc
        for close in self._closers:
            try:
                close()
            except OSError as exc:
                log.warning("could not finish an output: %s", exc)
                failure = failure or exc
        ok = failure is None and ended_by != "error"
        summary = self.summary(finished=ok, ended_by=ended_by if failure is None else "error")
        try:
            self._emit(RunEnded(summary))
        except OSError as exc:
            failure = failure or exc
        if failure is not None:
            raise failure
        return summary

    def summary(self, finished: bool = False, ended_by: str = "") -> Summary:
        seconds = time.perf_counter() - self._started if self._started is not None else 0.0
        stage_ms = {"decode": [ms for c in self.cameras.values() for ms in c.source.decode_ms], **self.stage_ms}
        cameras = {
            n: CameraSummary(
                c.frames,
                c.source.state,
                c.source.skipped,
                c.source.dropped_frames,
                c.source.reconnects,
                c.frames / max(seconds, 1e-9),
                self.white_balance.gains(n).round(3).tolist() if self.white_balance else None,
            )
            for n, c in self.cameras.items()
        }
        return Summary(
            run_id=self.run_id,
            cameras=cameras,
            global_ids=sorted(self.associator.global_ids),
            events=self.journal_events,
            seconds=seconds,
            ticks=self.ticks,
            stage_ms_p50={k: float(np.median(v)) if v else 0.0 for k, v in stage_ms.items()},
            stage_ms_p99={k: float(np.percentile(v, 99)) if v else 0.0 for k, v in stage_ms.items()},
            embedder={"model": self.embedder.name, "backend": self.embedder.backend, "precision": self.embedder.precision},
            association={
                "match_threshold": self.associator.match_threshold,
                "false_match_rate": self.associator.config.false_match_rate,
                "merge_threshold": self.associator.merge_threshold,
                "decision_delay_s_p50": float(np.median(self.decision_delay_s)) if self.decision_delay_s else 0.0,
                "decision_delay_s_p99": float(np.percentile(self.decision_delay_s, 99)) if self.decision_delay_s else 0.0,
                "learned_transitions": self.associator.transit_model.as_dict(),
            },
            finished=finished,
            ended_by=ended_by,
            outputs=list(self.outputs),
            sinks={name: stats() for name, stats in self._sink_stats.items()},
        )

    # -- building from a config -----------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: PipelineConfig, run_id: str | None = None) -> Pipeline:
        """Build every part from ``cfg`` through the registries, checking every input (sources,
        masks, detections, model, detector) - without writing anything."""
        sources = parse_sources(cfg.sources)
        names = [n for n, _ in sources]
        unknown = sorted((set(cfg.detections) | set(cfg.roi_masks)) - set(names))
        if unknown:
            raise ConfigError(f"detections/roi_masks name camera {unknown[0]!r}, which is not among the sources")
        unknown_sinks = [s for s in cfg.active_sinks if s not in SINKS]
        if unknown_sinks:
            raise ConfigError(f"unknown sink {unknown_sinks[0]!r}; choose from {', '.join(SINKS.names())}")
        cameras = [CameraSource(name, uri, cfg.source) for name, uri in sources]
        filters = DetectionFilter(min_confidence=cfg.min_confidence, min_height=cfg.min_height)
        precomputed = {cam: MotDetections(path, filters) for cam, path in cfg.detections.items()}
        roi = {cam: _roi_mask(cam, path) for cam, path in cfg.roi_masks.items()}
        detectors = camera_detectors(cfg, [n for n in names if n not in precomputed]) if len(precomputed) < len(names) else {}
        detectors.update(dict.fromkeys(precomputed, None))
        # one call a tick: its threads sleep between calls and leave the cores to the camera
        # readers and detector workers (README, capacity: 17 streams kept real time against 16)
        embedder = create_embedder(cfg.model, cfg.backend, spinning=False)
        associator = calibrated_associator(embedder, cfg.association)
        log.info("association: match threshold %.3f for %s", associator.match_threshold, embedder.name)
        return cls(
            cameras,
            detectors,
            embedder,
            associator,
            cfg.tracker,
            cfg.schedule,
            precomputed,
            roi,
            cfg.max_frames,
            cfg.summary_seconds,
            run_id,
            detect_every=cfg.detect_every,
            white_balance=cfg.white_balance == "grey-world",
        )


def _roi_mask(camera: str, path: str) -> np.ndarray:
    import cv2

    mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ConfigError(f"camera {camera}: region-of-interest mask {path} is missing or not an image")
    return mask


def camera_detectors(cfg: PipelineConfig, cameras: list[str]) -> dict[str, Detector]:
    """camera -> detector: one shared network for stateless detectors, one each for detectors
    that model a camera (``per_camera``, e.g. the motion detector's background; a fused pair's
    ``for_another_camera`` keeps its network shared)."""
    filters = DetectionFilter(min_confidence=cfg.min_confidence, min_height=cfg.min_height)
    first = create_detector(cfg.detector, filters)
    if not getattr(first, "per_camera", False):
        return dict.fromkeys(cameras, first)
    another = getattr(first, "for_another_camera", None) or (lambda: create_detector(cfg.detector, filters))
    return {name: first if i == 0 else another() for i, name in enumerate(cameras)}


def run(cfg: PipelineConfig, progress: bool = True) -> Summary:
    """``adfl track``: build and check everything, then claim ``cfg.out``, subscribe the
    configured sinks and run. A run that cannot start leaves ``cfg.out`` untouched."""
    pipeline = Pipeline.from_config(cfg)
    remote = None
    if cfg.publish.url:  # an edge node: a central associator (adfl associate) decides; the broker must answer now
        from adfl_deploy.broker.edge import RemoteAssociator

        local = pipeline.associator
        remote = RemoteAssociator(
            cfg.publish,
            list(pipeline.cameras),
            pipeline.run_id,
            local.config,
            local.match_threshold,
            local.merge_threshold,
            pipeline.embedder.name,
            cfg.out,
            white_balance=cfg.white_balance,
        )
        pipeline.associator = remote
    out = Path(cfg.out)
    folder = RunFolder.claim(out, pipeline.run_id, keep_previous=3)
    try:
        cameras = list(pipeline.cameras)
        sinks = cfg.active_sinks
        pipeline.outputs = sinks
        folder.write_manifest(cameras, sinks, pipeline.settings())
        config_io.save(cfg, out / "config.yaml")
        try:
            if remote is not None:
                pipeline.subscribe(remote)
            for name in sinks:
                pipeline.subscribe(SINKS.get(name)(out, cameras, cfg))
            if cfg.show:
                from adfl_deploy.pipeline.sinks import MosaicVideo

                pipeline.subscribe(MosaicVideo(out / "mosaic.avi", cameras, show=True, write=False))
        except BaseException:
            pipeline.close("error")
            raise
        return pipeline.run(progress=progress)
    finally:
        folder.release()


__all__ = ["Camera", "Pipeline", "PipelineConfig", "STAGES", "camera_detectors", "parse_sources", "run"]
