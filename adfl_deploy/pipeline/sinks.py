"""Outputs of the pipeline. Each sink is a subscriber to the pipeline's typed events
(``adfl_deploy.events``), registered by name in ``SINKS`` so a run's config picks them and a user
adds one with a class and one registration line. Written so that a crash never leaves a
half-written record:

- ``events``: ``EventLog``, JSONL of the journal events, one ``os.write`` of a whole line per
  record on an ``O_APPEND`` file descriptor (a killed process leaves whole records only);
- ``mot``: ``MotWriter`` per camera, MOTChallenge rows (global ids as track ids) appended as
  whole lines, so a run killed after N ticks has N ticks of rows;
- both written with ``os.write`` (in the kernel's hands at once: a killed process loses none of
  it) and fsynced on the first tick at least ``SYNC_SECONDS`` after the last sync and when
  closed, so a power cut loses about that much (more if the ticks stop coming), like the store's
  ``synchronous=NORMAL`` - not one disk round trip per camera per tick in the camera loop (40
  cameras on an SD card would wait for 40 of them every tick); files opened together sync in
  staggered turns, not all in one tick;
- ``videos`` / ``mosaic``: annotated videos written under a temporary name, renamed when closed;
- ``summary``: ``summary.json`` rewritten atomically every ``summary_seconds`` and at the end;
- ``store``: ``adfl.db``, the identity store (``adfl_deploy.store``): SQLite in WAL mode, one
  transaction per tick from a writer thread behind a bounded queue.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from adfl_deploy.events import (
    JOURNAL,
    FrameTracked,
    GlobalIdAssigned,
    RunEnded,
    SummaryUpdated,
    TickStats,
    TrackEnded,
    record,
)
from adfl_deploy.files import atomic_write_text
from adfl_deploy.registry import Registry

log = logging.getLogger(__name__)

#: sink name -> factory(out_folder, cameras, config) -> subscriber; entry-point group
#: "adfl_deploy.sinks" for sinks that live in other packages
SINKS: Registry[Callable] = Registry("sink", "adfl_deploy.sinks")


#: an append-only output is fsynced at most this often (and when closed): what a power cut may
#: lose; a killed process loses nothing that was written
SYNC_SECONDS = 2.0
#: files opened together start their sync clocks this many phases apart, so 40 cameras' MOT
#: files do not all fsync in the same tick
SYNC_PHASES = 8
#: the clock the syncs follow (replaceable in tests)
_clock = time.monotonic


class _AppendFile:
    """An ``O_APPEND`` file written by whole ``os.write`` calls (a killed process leaves whole
    lines only), fsynced by ``flush`` when ``SYNC_SECONDS`` have passed since the last sync
    (``flush(force=True)`` and ``close`` always); ``truncate`` starts it empty. The n-th file
    opened starts its clock n/``SYNC_PHASES`` of the period early (modulo), staggering syncs."""

    _opened = 0

    def __init__(self, path: str | Path, truncate: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if truncate else 0)
        self._fd = os.open(self.path, flags, 0o644)
        phase = _AppendFile._opened % SYNC_PHASES
        _AppendFile._opened += 1
        self._synced = _clock() - SYNC_SECONDS * phase / SYNC_PHASES

    def _append(self, text: str) -> None:
        data = text.encode()
        written = os.write(self._fd, data)
        if written != len(data):  # pragma: no cover - disk full mid-record
            raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes); is the disk full?")

    def flush(self, force: bool = False) -> None:
        now = _clock()
        if self._fd >= 0 and (force or now - self._synced >= SYNC_SECONDS):
            os.fsync(self._fd)
            self._synced = now

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.flush(force=True)
        finally:
            os.close(self._fd)
            self._fd = -1


class EventLog(_AppendFile):
    """The journal events as JSONL (``{"event": kind, ...}`` per line)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.count = 0

    def write(self, data: dict) -> None:
        self._append(json.dumps(data, default=_plain) + "\n")
        self.count += 1

    def on_event(self, event) -> None:
        if isinstance(event, JOURNAL):
            self.write(record(event))
        elif isinstance(event, TickStats):
            self.flush()


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def mot_rows(frame_index: int, ids, xyxy: np.ndarray, confidence: np.ndarray) -> str:
    """MOTChallenge rows ``frame, id, left, top, width, height, conf, -1, -1, -1`` (frames
    1-based) for one frame's boxes."""
    return "".join(
        f"{frame_index + 1},{int(gid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.4f},-1,-1,-1\n"
        for gid, (x1, y1, x2, y2), conf in zip(ids, xyxy, confidence)
    )


class MotWriter(_AppendFile):
    """One camera's MOTChallenge file, appended a frame's rows at a time (one ``os.write``
    each, so every line is whole) and synced to disk every ``SYNC_SECONDS``: memory stays flat on
    cameras that run for days, and a killed run keeps every finished tick."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, truncate=True)
        self.rows = 0

    def add(self, frame_index: int, ids, xyxy: np.ndarray, confidence: np.ndarray) -> None:
        text = mot_rows(frame_index, ids, xyxy, confidence)
        if text:
            self._append(text)
            self.rows += text.count("\n")


class MotSink:
    """``mot/CAMERA.txt`` for every camera: rows of the tracks that have a global id. Rows of a
    track still waiting for its id (the association's delayed decision) are held and written
    with the id once it is decided, or dropped if the track ends first; at most
    ``max_pending`` rows per track are held. ``keep_ended`` (an edge node, whose ids come
    back from a central associator after a round trip): rows of a track that ended undecided
    wait for its id too, for at most ``max_ended`` such tracks (oldest dropped first)."""

    def __init__(
        self, folder: Path, cameras: list[str], max_pending: int = 600, keep_ended: bool = False, max_ended: int = 2000
    ) -> None:
        self.writers = {cam: MotWriter(folder / f"{cam}.txt") for cam in cameras}
        self.pending: dict[tuple[str, int], list[tuple[int, np.ndarray, float]]] = {}
        self.max_pending = max_pending
        self.keep_ended = keep_ended
        self.max_ended = max_ended
        self._ended: dict[tuple[str, int], None] = {}  # ended tracks whose rows wait, oldest first

    def on_event(self, event) -> None:
        if isinstance(event, FrameTracked):
            known = [i for i, g in enumerate(event.global_ids) if g is not None]
            if known:
                ids = [event.global_ids[i] for i in known]
                self.writers[event.camera].add(event.frame, ids, event.boxes[known], event.confidences[known])
            for i, gid in enumerate(event.global_ids):
                if gid is None:
                    held = self.pending.setdefault((event.camera, int(event.track_ids[i])), [])
                    held.append((event.frame, event.boxes[i], float(event.confidences[i])))
                    del held[: max(0, len(held) - self.max_pending)]
        elif isinstance(event, GlobalIdAssigned):
            held = self.pending.pop((event.camera, event.track_id), [])
            self._ended.pop((event.camera, event.track_id), None)
            writer = self.writers[event.camera]
            for frame, box, conf in held:
                writer.add(frame, [event.global_id], box[None], np.array([conf]))
        elif isinstance(event, TrackEnded):
            key = (event.camera, event.track_id)
            if not self.keep_ended:
                self.pending.pop(key, None)
            elif key in self.pending:
                self._ended[key] = None
                while len(self._ended) > self.max_ended:
                    self.pending.pop(next(iter(self._ended)), None)
                    del self._ended[next(iter(self._ended))]
        elif isinstance(event, TickStats):
            for writer in self.writers.values():
                writer.flush()

    def close(self) -> None:
        _close_all(w.close for w in self.writers.values())


def _close_all(closers) -> None:
    """Call every closer even when one fails (a full disk); re-raise the first failure."""
    first = None
    for close in closers:
        try:
            close()
        except OSError as exc:
            first = first or exc
    if first is not None:
        raise first


class CameraVideos:
    """``video/CAMERA.avi``: each camera's annotated frames."""

    def __init__(self, folder: Path, cameras: list[str], fps: float = 10.0) -> None:
        self.videos = {cam: VideoSink(folder / f"{cam}.avi", fps) for cam in cameras}

    def on_event(self, event) -> None:
        if isinstance(event, FrameTracked):
            self.videos[event.camera].write(event.annotated())

    def close(self) -> None:
        _close_all(v.close for v in self.videos.values())


class MosaicVideo:
    """``mosaic.avi``: every camera's latest annotated frame in one grid, once per tick."""

    def __init__(self, path: Path, cameras: list[str], fps: float = 10.0, show: bool = False, write: bool = True) -> None:
        self.video = VideoSink(path, fps) if write else None
        self.latest: dict[str, np.ndarray] = {}
        self.order = list(cameras)
        self.show = show

    def on_event(self, event) -> None:
        if isinstance(event, FrameTracked):
            self.latest[event.camera] = event.annotated()
        elif isinstance(event, TickStats) and self.latest:
            grid = mosaic([self.latest[c] for c in self.order if c in self.latest])
            if self.video is not None:
                self.video.write(grid)
            if self.show:
                self.show = show_window(grid)

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


def show_window(grid: np.ndarray) -> bool:
    """Show the mosaic; False (with one warning) where no window can be opened."""
    try:
        cv2.imshow("adfl track", grid)
        cv2.waitKey(1)
        return True
    except cv2.error:
        log.warning("no display window: this OpenCV build has no GUI support (opencv-python-headless) or there is no display")
        return False


class SummaryFile:
    """``summary.json``, rewritten atomically on every ``SummaryUpdated`` and at ``RunEnded``
    (``finished: true`` only then)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_event(self, event) -> None:
        if isinstance(event, (SummaryUpdated, RunEnded)):
            atomic_write_text(self.path, json.dumps(event.summary.to_dict(), indent=2) + "\n")


def colour(global_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per id (golden-ratio hues)."""
    hue = int((global_id * 0.61803398875 % 1.0) * 179)
    hsv = np.uint8([[[hue, 220, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def annotate(
    image: np.ndarray,
    xyxy: np.ndarray,
    track_ids: np.ndarray,
    global_ids: list[int | None],
    title: str,
    font_scale: float = 0.5,
    copy: bool = True,
) -> np.ndarray:
    """Boxes, ``G<global id> T<track id>`` labels and a title drawn on (a copy of) ``image``."""
    out = image.copy() if copy else image
    for (x1, y1, x2, y2), tid, gid in zip(xyxy.astype(int), track_ids, global_ids):
        c = colour(gid) if gid is not None else (200, 200, 200)
        cv2.rectangle(out, (x1, y1), (x2, y2), c, 2 if font_scale >= 0.5 else 1)
        label = f"G{gid} T{tid}" if gid is not None else f"T{tid}"
        cv2.putText(out, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, font_scale, c, 1, cv2.LINE_AA)
    cv2.putText(out, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 1.2 * font_scale, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def annotate_tile(
    image: np.ndarray,
    xyxy: np.ndarray,
    track_ids: np.ndarray,
    global_ids: list[int | None],
    title: str,
    tile: tuple[int, int],
) -> np.ndarray:
    """``image`` shrunk to ``tile`` (h, w) and annotated there, boxes scaled to match."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (tile[1], tile[0]), interpolation=cv2.INTER_LINEAR)
    scale = np.array([tile[1] / w, tile[0] / h] * 2, np.float32)
    font = float(np.clip(0.5 * tile[1] / w, 0.3, 0.5))
    boxes = np.asarray(xyxy, np.float32).reshape(-1, 4) * scale
    return annotate(small, boxes, track_ids, global_ids, title, font, copy=False)


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, columns) of the most nearly square grid that holds ``count`` tiles."""
    cols = int(np.ceil(np.sqrt(max(count, 1))))
    return int(np.ceil(max(count, 1) / cols)), cols


def fitted_tile(count: int, tile: tuple[int, int], max_width: int) -> tuple[int, int]:
    """``tile`` (h, w), shrunk with its aspect kept so that ``count`` tiles side by side in
    ``grid_shape`` columns are at most ``max_width`` pixels wide."""
    cols = grid_shape(count)[1]
    if cols * tile[1] <= max_width:
        return tile
    w = max(16, max_width // cols)
    return max(9, round(tile[0] * w / tile[1])), w


def mosaic(images: list[np.ndarray], tile: tuple[int, int] = (432, 768)) -> np.ndarray:
    """All cameras side by side in a grid of equal tiles (h, w); empty slots stay black."""
    rows, cols = grid_shape(len(images))
    grid = np.zeros((rows * tile[0], cols * tile[1], 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        if img.shape[:2] != tuple(tile):
            img = cv2.resize(img, (tile[1], tile[0]))
        grid[r * tile[0] : (r + 1) * tile[0], c * tile[1] : (c + 1) * tile[1]] = img
    return grid


PARTIAL_GLOB = ".*.partial.avi"


def remove_partial_videos(folder: str | Path) -> None:
    """Delete the half-written videos a killed run left anywhere under ``folder``."""
    for partial in Path(folder).rglob(PARTIAL_GLOB):
        partial.unlink()


class VideoSink:
    """MJPG AVI written as ``.NAME.partial.avi`` (``PARTIAL_GLOB``) and renamed to NAME on
    ``close``; a video that could not be finished (a full disk) is removed, never left under
    its final name."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial.avi")
        self.fps = fps
        self._writer = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            self.size = (image.shape[1], image.shape[0])
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, self.size)
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)  # a camera that changed resolution mid-stream
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.release()
        if _frame_count(self.tmp) != self.frames:  # OpenCV's writer reports no write errors
            self.tmp.unlink(missing_ok=True)
            raise OSError(f"{self.path}: the video could not be written completely; is the disk full?")
        os.replace(self.tmp, self.path)


def _frame_count(path: Path) -> int:
    """Frames in a finished AVI according to its index (0 when unreadable)."""
    if not path.is_file():
        return 0
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


@SINKS.register("events")
def _events_sink(out: Path, cameras: list[str], config) -> EventLog:
    return EventLog(out / "events.jsonl")


@SINKS.register("mot")
def _mot_sink(out: Path, cameras: list[str], config) -> MotSink:
    publish = getattr(config, "publish", None)
    return MotSink(out / "mot", cameras, keep_ended=bool(publish is not None and publish.url))


@SINKS.register("videos")
def _videos_sink(out: Path, cameras: list[str], config) -> CameraVideos:
    return CameraVideos(out / "video", cameras)


@SINKS.register("mosaic")
def _mosaic_sink(out: Path, cameras: list[str], config) -> MosaicVideo:
    return MosaicVideo(out / "mosaic.avi", cameras)


@SINKS.register("summary")
def _summary_sink(out: Path, cameras: list[str], config) -> SummaryFile:
    return SummaryFile(out / "summary.json")


@SINKS.register("store")
def _store_sink(out: Path, cameras: list[str], config) -> object:
    from adfl_deploy.store.model import fingerprint
    from adfl_deploy.store.schema import DB_NAME
    from adfl_deploy.store.writer import StoreWriter

    return StoreWriter(out / DB_NAME, cameras, fingerprint(getattr(config, "model", "") or ""))
