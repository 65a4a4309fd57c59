"""``StoreWriter``: the pipeline subscriber that fills the identity store (sink ``store``).

The camera loop never waits for SQLite. ``on_event`` (on the pipeline's thread) only copies
what it needs of an event - a crop is copied because the event holds a view into the frame -
and gathers one tick's worth; at ``TickStats`` the tick goes into a bounded queue with
``put_nowait``. A writer thread applies each tick in one transaction (tracklets, identities,
merges, embeddings, the best crops as JPEG thumbnails, the tick's stage latencies, the live
mosaic at most ``live_fps`` times a second). When the queue is full the tick's crops and
embeddings are dropped (counted) and its journal events (tracks, ids, merges: small) wait for
the next tick, up to ``max_held`` of them, beyond which they are dropped too (counted). The
counts and the writer's own cost per tick are in ``stats()`` (``summary.json`` under
``sinks.store``) and logged at the end when anything was dropped. ``close()`` waits at most
``close_timeout`` seconds for the writer to finish (a hung disk or a dead writer thread must not
hang the end of the run): what was committed by then stays, the rest is reported as lost.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from adfl_deploy.events import (
    JOURNAL,
    CropEmbedded,
    FrameTracked,
    GlobalIdAssigned,
    GlobalIdMerged,
    RunStarted,
    TickStats,
    TrackEnded,
    TrackStarted,
)
from adfl_deploy.pipeline.sinks import fitted_tile, mosaic
from adfl_deploy.store.model import ModelFingerprint
from adfl_deploy.store.schema import SCHEMA_VERSION, open_writer
from adfl_deploy.timing import latency_window

log = logging.getLogger(__name__)

THUMBNAIL_HEIGHT = 128
LIVE_TILE = (216, 384)  # the live mosaic's tile (h, w): a quarter of the video mosaic's area
#: the live mosaic's widest: with many cameras its tiles shrink (40 cameras: 274 x 154 each)
LIVE_MAX_WIDTH = 1920


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise ValueError("could not encode a JPEG")
    return data.tobytes()


def thumbnail(crop: np.ndarray, height: int = THUMBNAIL_HEIGHT) -> bytes:
    """A crop as a small JPEG (at most ``height`` pixels high, aspect kept)."""
    h, w = crop.shape[:2]
    if h > height:
        crop = cv2.resize(crop, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)
    return encode_jpeg(crop)


def vector_blob(vector: np.ndarray) -> bytes:
    """float32 little-endian bytes: the layout the store reads back (and sqlite-vec's)."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


class StoreWriter:
    name = "store"

    def __init__(
        self,
        path: str | Path,
        cameras: list[str],
        model: ModelFingerprint,
        queue_ticks: int = 64,
        thumbnails_per_tracklet: int = 3,
        live_fps: float = 5.0,
        max_held: int = 10_000,
        close_timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):  # the run folder moved an earlier run's store aside
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.conn = open_writer(self.path)
        self.model = model
        self.cameras = list(cameras)
        with self._transaction():
            meta = {"schema_version": str(SCHEMA_VERSION), "created": _utc_now(), "finished": "0", **model.as_meta()}
            meta["cameras"] = json.dumps(self.cameras)
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
            self.conn.executemany("INSERT OR IGNORE INTO cameras (name) VALUES (?)", [(c,) for c in self.cameras])
        self.queue: queue.Queue = queue.Queue(maxsize=queue_ticks)
        self.thumbnails_per_tracklet = thumbnails_per_tracklet
        self.live_interval = 1.0 / live_fps if live_fps > 0 else float("inf")
        self.live_tile = fitted_tile(len(self.cameras), LIVE_TILE, LIVE_MAX_WIDTH)
        self.max_held = max_held
        self.close_timeout = close_timeout
        # gathered on the pipeline's thread for the current tick
        self._journal: list = []
        self._crops: list = []
        self._seen: list = []
        self._live: dict[str, FrameTracked] = {}
        self._last_live = 0.0
        # counts (pipeline thread) and costs (writer thread)
        self.ticks_queued = 0
        self.ticks_dropped = 0
        self.crops_dropped = 0
        self.journal_dropped = 0
        self.ticks_written = 0
        self.embeddings_written = 0
        self.write_ms = latency_window()
        self.error: str | None = None
        # writer thread state
        self._tracklet_ids: dict[tuple[str, int], int] = {}
        self._thumbs: dict[int, list[tuple[float, int]]] = {}
        self._ended: list[tuple[str, int]] = []  # tracks that ended in the tick being written
        self._last_tick = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="adfl-store-writer", daemon=True)
        self._thread.start()

    # -- pipeline thread ----------------------------------------------------------------------
    def on_event(self, event) -> None:
        if self._closed:
            return
        if isinstance(event, CropEmbedded):
            self._crops.append(
                (
                    event.camera,
                    event.track_id,
                    event.frame,
                    event.time,
                    event.crop.copy(),
                    np.array(event.embedding, np.float32),
                    event.quality,
                    np.array(event.descriptor, np.float32),
                )
            )
        elif isinstance(event, FrameTracked):
            self._seen.append((event.camera, event.frame, event.time, event.track_ids.copy(), event.boxes.copy()))
            self._live[event.camera] = event  # its annotated frame is drawn only when the live view is due
        elif isinstance(event, JOURNAL):
            self._journal.append(event)
        elif isinstance(event, TickStats):
            self._end_tick(event)

    def _end_tick(self, stats: TickStats) -> None:
        live = None
        now = time.monotonic()
        if self._live and now - self._last_live >= self.live_interval:
            live, self._last_live = self._live_frames(), now
        batch = (self._journal, self._seen, self._crops, stats, live)
        try:
            self.queue.put_nowait(batch)
            self.ticks_queued += 1
            self._journal = []
        except queue.Full:
            self.ticks_dropped += 1
            self.crops_dropped += len(self._crops)
            if len(self._journal) > self.max_held:  # the writer is stuck: keep memory bounded
                self.journal_dropped += len(self._journal)
                self._journal = []
        self._seen, self._crops = [], []

    def _live_frames(self) -> dict[str, np.ndarray]:
        """Each camera's latest frame as a live-mosaic tile: shrunk first, then annotated (on the
        pipeline's thread, so the writer never holds whole frames; about 0.2 ms a camera)."""
        return {camera: event.annotated_tile(self.live_tile) for camera, event in self._live.items()}

    def stats(self) -> dict:
        ms = list(self.write_ms)
        return {
            "path": str(self.path),
            "ticks_written": self.ticks_written,
            "ticks_dropped": self.ticks_dropped,
            "crops_dropped": self.crops_dropped,
            "journal_events_dropped": self.journal_dropped,
            "embeddings": self.embeddings_written,
            "write_ms_p50": float(np.median(ms)) if ms else 0.0,
            "write_ms_p99": float(np.percentile(ms, 99)) if ms else 0.0,
            "error": self.error,
        }

    def _put_before(self, item, deadline: float) -> bool:
        """Queue ``item`` for the writer unless the writer is gone or ``deadline`` passes."""
        while self._thread.is_alive():
            try:
                self.queue.put(item, timeout=max(0.0, min(0.1, deadline - time.monotonic())))
                return True
            except queue.Full:
                if time.monotonic() >= deadline:
                    return False
        return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + self.close_timeout
        if self._journal or self._live:  # decisions made while the run closed; the last frames for the live view
            if not self._put_before((self._journal, [], [], None, self._live_frames() or None), deadline):
                self.journal_dropped += len(self._journal)
            self._journal = []
        if not self._put_before(None, deadline) and not self._thread.is_alive() and self.error is None:
            self.error = "the writer thread ended early"
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():  # stuck in SQLite: leave it the connection (it is a daemon thread)
            left = self.queue.qsize()
            self.error = self.error or f"the writer did not finish within {self.close_timeout:g} s ({left} ticks not written)"
            log.warning("identity store %s: %s; what was committed before stays readable", self.path, self.error)
            return
        try:
            if self.error is None:
                with self._transaction():
                    self.conn.executemany(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                        [("finished", "1"), ("ended", _utc_now()), ("store_stats", json.dumps(self.stats()))],
                    )
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except Exception as exc:  # the disk filled up at the very end: the ticks written stay, the run ends normally
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.conn.close()
        dropped = self.ticks_dropped + self.journal_dropped
        if dropped or self.error:
            log.warning(
                "identity store %s: %d ticks dropped (%d crops), %d journal events dropped%s",
                self.path,
                self.ticks_dropped,
                self.crops_dropped,
                self.journal_dropped,
                f"; stopped writing: {self.error}" if self.error else "",
            )

    # -- writer thread ------------------------------------------------------------------------
    def _transaction(self):
        conn = self.conn

        class _Tx:
            def __enter__(self):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind, *_):
                conn.execute("COMMIT" if kind is None else "ROLLBACK")

        return _Tx()

    def _loop(self) -> None:
        while True:
            batch = self.queue.get()
            if batch is None:
                return
            if self.error is not None:
                continue  # keep draining so the pipeline never blocks on a dead writer
            started = time.perf_counter()
            try:
                with self._transaction():
                    self._apply(*batch, started=started)
            except Exception as exc:  # a full disk, a removed folder: stop writing, never the run
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("identity store %s: %s; the run goes on without it", self.path, self.error)
                continue
            finally:
                self._forget_ended()
            self.write_ms.append(1000 * (time.perf_counter() - started))

    def _apply(self, journal, seen, crops, stats: TickStats | None, live, started: float) -> None:
        c = self.conn
        for event in journal:
            if isinstance(event, RunStarted):
                c.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [("run_id", event.run_id), ("started", event.started)])
            elif isinstance(event, TrackStarted):
                self._tracklet(event.camera, event.track_id, event.frame, event.time, event.box)
            elif isinstance(event, TrackEnded):
                c.execute(
                    "UPDATE tracklets SET ended = 1, end_frame = MAX(COALESCE(end_frame, ?), ?), "
                    "end_time = MAX(COALESCE(end_time, ?), ?) WHERE camera = ? AND track_id = ?",
                    (event.frame, event.frame, event.time, event.time, event.camera, event.track_id),
                )
                self._ended.append((event.camera, int(event.track_id)))  # forgotten after this tick's crops
            elif isinstance(event, GlobalIdAssigned):
                tid = self._tracklet(event.camera, event.track_id, event.frame, event.time, event.box)
                c.execute(
                    "INSERT OR IGNORE INTO identities (global_id, created_time) VALUES (?, ?)", (event.global_id, event.time)
                )
                c.execute("UPDATE tracklets SET global_id = ? WHERE id = ?", (event.global_id, tid))
            elif isinstance(event, GlobalIdMerged):
                c.execute(
                    "INSERT INTO merges (kept, merged, distance, time) VALUES (?, ?, ?, ?)",
                    (event.kept, event.merged, event.distance, event.time),
                )
                c.execute("UPDATE tracklets SET global_id = ? WHERE global_id = ?", (event.kept, event.merged))
                c.execute(
                    "UPDATE identities SET merged_into = ? WHERE global_id = ? OR merged_into = ?",
                    (event.kept, event.merged, event.merged),
                )
        for camera, frame, t, track_ids, boxes in seen:
            c.execute(
                "UPDATE cameras SET frames = frames + 1, first_time = COALESCE(first_time, ?), last_time = ? WHERE name = ?",
                (t, t, camera),
            )
            for tid, box in zip(track_ids.tolist(), boxes.tolist()):
                row = self._tracklet(camera, tid, frame, t, box)
                c.execute(
                    "UPDATE tracklets SET end_frame = MAX(COALESCE(end_frame, ?), ?), end_time = MAX(COALESCE(end_time, ?), ?), "
                    "last_box = ?, boxes = boxes + 1, "
                    "mean_width = (COALESCE(mean_width, 0) * boxes + ?) / (boxes + 1), "
                    "mean_height = (COALESCE(mean_height, 0) * boxes + ?) / (boxes + 1) WHERE id = ?",
                    (frame, frame, t, t, _box_text(box), box[2] - box[0], box[3] - box[1], row),
                )
        descriptors = {}
        for camera, track_id, frame, t, crop, embedding, quality, descriptor in crops:
            row = self._tracklet(camera, track_id, frame, t, None)
            c.execute(
                "INSERT INTO embeddings (tracklet_id, frame, time, quality, vector) VALUES (?, ?, ?, ?, ?)",
                (row, frame, t, quality, vector_blob(embedding)),
            )
            self.embeddings_written += 1
            descriptors[row] = descriptor
            self._keep_thumbnail(row, frame, t, quality, crop)
            if not self.model.dim:
                self.model = ModelFingerprint(**{**self.model.__dict__, "dim": int(embedding.shape[0])})
                c.execute("INSERT OR REPLACE INTO meta VALUES ('model_dim', ?)", (str(self.model.dim),))
        c.executemany("UPDATE tracklets SET descriptor = ? WHERE id = ?", [(vector_blob(d), r) for r, d in descriptors.items()])
        if live:
            order = [cam for cam in self.cameras if cam in live]
            image = mosaic([live[cam] for cam in order], tile=self.live_tile)
            tick = stats.tick if stats is not None else self._last_tick + 1
            c.execute("INSERT OR REPLACE INTO live (id, tick, jpeg) VALUES (1, ?, ?)", (tick, encode_jpeg(image, 75)))
        if stats is not None:
            ms = stats.stage_ms
            c.execute(
                "INSERT OR REPLACE INTO ticks (tick, detect, track, embed, associate, sink, live_tracks, global_ids, store) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stats.tick,
                    ms.get("detect"),
                    ms.get("track"),
                    ms.get("embed"),
                    ms.get("associate"),
                    ms.get("sink"),
                    stats.live_tracks,
                    stats.global_ids,
                    1000 * (time.perf_counter() - started),
                ),
            )
            self.ticks_written += 1
            self._last_tick = stats.tick

    def _forget_ended(self) -> None:
        """Drop the bookkeeping of tracks that ended (memory stays flat on long runs). Done after
        the whole tick, so a crop embedded in the tick its track ended still counts against the
        track's best ``thumbnails_per_tracklet``."""
        for key in self._ended:
            self._thumbs.pop(self._tracklet_ids.pop(key, None), None)
        self._ended = []

    def _tracklet(self, camera: str, track_id: int, frame: int | None, t: float | None, box) -> int:
        key = (camera, int(track_id))
        row = self._tracklet_ids.get(key)
        if row is None:  # a track this run has not seen, or one that ended (an id decided at its end)
            found = self.conn.execute("SELECT id FROM tracklets WHERE camera = ? AND track_id = ?", key).fetchone()
            if found is not None:
                return int(found[0])
            self.conn.execute("INSERT OR IGNORE INTO cameras (name) VALUES (?)", (camera,))
            cur = self.conn.execute(
                "INSERT INTO tracklets (camera, track_id, start_frame, end_frame, start_time, end_time, first_box, last_box) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (camera, int(track_id), frame, frame, t, t, _box_text(box), _box_text(box)),
            )
            row = self._tracklet_ids[key] = int(cur.lastrowid)
        return row

    def _keep_thumbnail(self, row: int, frame: int, t: float, quality: float, crop: np.ndarray) -> None:
        """Keep the tracklet's ``thumbnails_per_tracklet`` best crops by quality."""
        kept = self._thumbs.setdefault(row, [])
        if len(kept) >= self.thumbnails_per_tracklet:
            worst = min(kept)
            if quality <= worst[0]:
                return
            self.conn.execute("DELETE FROM thumbnails WHERE id = ?", (worst[1],))
            kept.remove(worst)
        cur = self.conn.execute(
            "INSERT INTO thumbnails (tracklet_id, frame, time, quality, jpeg) VALUES (?, ?, ?, ?, ?)",
            (row, frame, t, quality, thumbnail(crop)),
        )
        kept.append((quality, int(cur.lastrowid)))


def _box_text(box) -> str | None:
    return None if box is None else json.dumps([round(float(v), 1) for v in box])


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


__all__ = ["StoreWriter", "encode_jpeg", "thumbnail", "vector_blob"]
