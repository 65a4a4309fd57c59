"""Camera sources: video files, image folders, RTSP/HTTP URLs and webcam indices through
OpenCV, each read in its own thread into a bounded queue.

Live streams (URLs, webcams) drop the oldest frame when the consumer falls behind; files and
folders never drop (the reader waits). A dead or stalled live stream is reopened with
exponential backoff and, after ``reconnect_attempts``, dropped with a warning while the other
cameras continue. Unreadable frames are skipped and counted, never fatal.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from adfl_deploy.errors import ConfigError
from adfl_deploy.evaluation.datasets import IMAGE_SUFFIXES
from adfl_deploy.timing import latency_window

log = logging.getLogger(__name__)


#: a live connection that delivered frames for this many stall periods is healthy again
HEALTHY_STALLS = 10


@dataclass(frozen=True)
class Frame:
    camera: str
    index: int  # 0-based frame number in this source
    timestamp: float  # seconds: position in a file, or wall clock for live streams
    image: np.ndarray


@dataclass(frozen=True)
class SourceConfig:
    queue_size: int = 8
    #: play files at their frame rate instead of as fast as possible
    realtime: bool = False
    reconnect_attempts: int = 3
    backoff_seconds: float = 0.5
    #: a live stream that delivers nothing for this long counts as dead (a stall counts as a
    #: failed attempt towards ``reconnect_attempts``; also OpenCV's open and read timeouts)
    stall_seconds: float = 5.0
    #: FFmpeg decoder threads per file or stream; 0 = FFmpeg's choice (about one per core).
    #: Every camera is read on its own thread already, so with several cameras one decoder
    #: thread each keeps the cores busy with less overhead (README, capacity)
    decode_threads: int = 1

    def __post_init__(self) -> None:
        if self.decode_threads < 0:
            raise ConfigError(f"source.decode_threads: {self.decode_threads}; use 0 (FFmpeg's choice) or a count >= 1")
        if self.queue_size < 1:
            raise ConfigError(f"source.queue_size: {self.queue_size}; a camera needs a queue of at least 1 frame")
        if self.reconnect_attempts < 0:
            raise ConfigError(f"source.reconnect_attempts: {self.reconnect_attempts}; use a count >= 0")
        for name in ("backoff_seconds", "stall_seconds"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)) or (name == "stall_seconds" and value == 0):
                raise ConfigError(f"source.{name}: {value}; use seconds > 0")


def parse_uri(uri: str) -> tuple[str, object]:
    """(kind, target): ``webcam`` (int), ``url`` (str), ``folder`` or ``file`` (Path)."""
    if uri.isdigit():
        return "webcam", int(uri)
    if "://" in uri:
        return "url", uri
    path = Path(uri)
    if path.is_dir():
        return "folder", path
    if path.is_file():
        return "file", path
    raise ConfigError(f"source {uri!r}: no such file or folder, and not a URL or webcam index")


class CameraSource:
    """One camera; ``start()`` spawns the reader thread, ``get(timeout)`` returns the next frame
    (or None), ``state`` is ``running``, ``ended`` (file finished) or ``dropped``."""

    def __init__(
        self,
        name: str,
        uri: str,
        config: SourceConfig = SourceConfig(),
        opener: Callable[[object], object] | None = None,
        wakeup: threading.Event | None = None,
    ) -> None:
        """``opener(target)`` returns a ``cv2.VideoCapture``-like object (read, release,
        isOpened); a custom one makes the source a live stream (tests use fakes). ``wakeup``
        is set whenever a frame arrives or the source ends, so a consumer of several cameras
        can sleep until one has something instead of polling."""
        self.name = name
        self.kind, self.target = parse_uri(uri) if opener is None else ("url", uri)
        self.live = self.kind in ("url", "webcam")
        self.config = config
        self.opener = opener or (lambda target: open_capture(target, config.stall_seconds, config.decode_threads))
        self.wakeup = wakeup or threading.Event()
        self.frames: queue.Queue[Frame] = queue.Queue(maxsize=config.queue_size)
        self.state = "running"
        self.read_count = 0
        self.skipped = 0  # unreadable frames / files
        self.dropped_frames = 0  # live frames discarded because the consumer was behind
        self.reconnects = 0
        self.decode_ms = latency_window()  # time to read and decode each recent frame
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"source-{name}", daemon=True)
        if self.kind == "folder":
            self._images = sorted(p for p in Path(self.target).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise ConfigError(f"source {name}: folder {self.target} has no images ({', '.join(IMAGE_SUFFIXES)})")

    def start(self) -> CameraSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def finished(self) -> bool:
        return self.state != "running" and self.frames.empty()

    def get(self, timeout: float = 0.0) -> Frame | None:
        try:
            return self.frames.get(timeout=timeout) if timeout > 0 else self.frames.get_nowait()
        except queue.Empty:
            return None

    def _put(self, frame: Frame) -> None:
        try:
            self._enqueue(frame)
        finally:
            self.wakeup.set()

    def _enqueue(self, frame: Frame) -> None:
        if self.live:
            while True:
                try:
                    self.frames.put_nowait(frame)
                    return
                except queue.Full:
                    try:
                        self.frames.get_nowait()
                        self.dropped_frames += 1
                    except queue.Empty:
                        pass
        while not self._stop.is_set():
            try:
                self.frames.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def _emit(self, image: np.ndarray | None, timestamp: float) -> None:
        if image is None or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
            self.skipped += 1
            return
        self._put(Frame(self.name, self.read_count, timestamp, image))
        self.read_count += 1

    def _run(self) -> None:
        try:
            if self.kind == "folder":
                self._run_folder()
            elif self.live:
                self._run_live()
            else:
                self._run_file()
        except Exception as exc:  # a source must never take the pipeline down
            log.warning("source %s stopped: %s", self.name, exc)
            self.state = "dropped"
        finally:
            self.wakeup.set()  # the consumer notices the end without waiting for a frame

    def _run_folder(self) -> None:
        for index, path in enumerate(self._images):
            if self._stop.is_set():
                break
            t0 = time.perf_counter()
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            self.decode_ms.append(1000 * (time.perf_counter() - t0))
            if image is None:
                log.warning("source %s: skipping unreadable image %s", self.name, path.name)
            self._emit(image, float(index))
        self.state = "ended"

    def _run_file(self) -> None:
        cap = self.opener(self.target)
        fps = cap.get(cv2.CAP_PROP_FPS) if hasattr(cap, "get") else 0.0
        fps = fps if fps and fps > 0 else 10.0
        start = time.monotonic()
        while not self._stop.is_set():
            t0 = time.perf_counter()
            ok, image = cap.read()
            if not ok:
                break  # end of file, or the rest of a truncated file is unreadable
            self.decode_ms.append(1000 * (time.perf_counter() - t0))
            timestamp = self.read_count / fps
            if self.config.realtime:
                time.sleep(max(0.0, start + timestamp - time.monotonic()))
            self._emit(image, timestamp)
        cap.release()
        if self.read_count == 0 and not self._stop.is_set():
            log.warning("source %s: no frame could be decoded from %s; dropped", self.name, self.target)
            self.state = "dropped"
            return
        self.state = "ended"

    def _run_live(self) -> None:
        """Read until the stream stalls for ``stall_seconds`` or closes, then reopen with
        backoff. Every stall or failed open counts towards ``reconnect_attempts``; the count
        starts again only after a connection stayed healthy for ``HEALTHY_STALLS`` stall
        periods, so a stream that delivers a few frames and stalls each time is dropped."""
        attempts = 0
        healthy = HEALTHY_STALLS * self.config.stall_seconds
        while not self._stop.is_set():
            cap = self.opener(self.target)
            opened = last_frame = time.monotonic()
            while not self._stop.is_set():
                t0 = time.perf_counter()
                ok, image = cap.read()
                if ok:
                    self.decode_ms.append(1000 * (time.perf_counter() - t0))
                    last_frame = time.monotonic()
                    if last_frame - opened >= healthy:
                        attempts = 0
                    self._emit(image, last_frame)
                elif time.monotonic() - last_frame > self.config.stall_seconds or not _is_open(cap):
                    break
                else:
                    time.sleep(min(0.05, self.config.stall_seconds / 10))  # a hiccup: retry until the stall timeout
            cap.release()
            if self._stop.is_set():
                break
            attempts += 1
            if attempts > self.config.reconnect_attempts:
                log.warning("source %s: dropped after %d failed reconnects", self.name, self.config.reconnect_attempts)
                self.state = "dropped"
                return
            self.reconnects += 1
            log.warning("source %s: stream lost, reconnecting (%d/%d)", self.name, attempts, self.config.reconnect_attempts)
            time.sleep(self.config.backoff_seconds * 2 ** (attempts - 1))
        self.state = "ended"


def open_capture(target: object, timeout_seconds: float, decode_threads: int = 0):
    """``cv2.VideoCapture`` for a file, URL or webcam, with OpenCV's open and read timeouts set
    to the stall timeout (FFmpeg's own default blocks a read for ~30 s) and ``decode_threads``
    decoder threads (0: FFmpeg's choice)."""
    if isinstance(target, int):
        return cv2.VideoCapture(target)
    ms = int(max(1.0, timeout_seconds * 1000))
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    if decode_threads:
        params += [cv2.CAP_PROP_N_THREADS, decode_threads]
    return cv2.VideoCapture(str(target), cv2.CAP_ANY, params)


def _is_open(cap) -> bool:
    return cap.isOpened() if hasattr(cap, "isOpened") else True
