"""Outputs of the pipeline, written so that a crash never leaves a half-written file:

- ``EventLog``: JSONL, one ``os.write`` of a whole line per record on an ``O_APPEND`` file
  descriptor (a killed process leaves whole records only) and fsync on flush;
- ``MotWriter``: MOTChallenge result rows (global ids as track ids), rewritten atomically
  (temp file + rename) on every flush;
- ``VideoSink``: an annotated video written under a temporary name and renamed when closed;
- ``annotate`` / ``mosaic``: boxes coloured by global id with track and global labels, FPS.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from adfl_deploy.files import atomic_write_text


class EventLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.count = 0

    def write(self, record: dict) -> None:
        line = (json.dumps(record, default=_plain) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):  # pragma: no cover - disk full mid-record
            raise OSError(f"{self.path}: short write ({written} of {len(line)} bytes); is the disk full?")
        self.count += 1

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        self.flush()
        os.close(self._fd)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


class MotWriter:
    """Rows ``frame, id, left, top, width, height, conf, -1, -1, -1`` (frames 1-based)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: list[str] = []

    def add(self, frame_index: int, ids: np.ndarray, xyxy: np.ndarray, confidence: np.ndarray) -> None:
        for gid, (x1, y1, x2, y2), conf in zip(ids, xyxy, confidence):
            self.rows.append(f"{frame_index + 1},{int(gid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.4f},-1,-1,-1")

    def flush(self) -> None:
        atomic_write_text(self.path, "\n".join(self.rows) + ("\n" if self.rows else ""))


def colour(global_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per id (golden-ratio hues)."""
    hue = int((global_id * 0.61803398875 % 1.0) * 179)
    hsv = np.uint8([[[hue, 220, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def annotate(image: np.ndarray, xyxy: np.ndarray, track_ids: np.ndarray, global_ids: list[int | None], title: str) -> np.ndarray:
    out = image.copy()
    for (x1, y1, x2, y2), tid, gid in zip(xyxy.astype(int), track_ids, global_ids):
        c = colour(gid) if gid is not None else (200, 200, 200)
        cv2.rectangle(out, (x1, y1), (x2, y2), c, 2)
        label = f"G{gid} T{tid}" if gid is not None else f"T{tid}"
        cv2.putText(out, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, c, 1, cv2.LINE_AA)
    cv2.putText(out, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def mosaic(images: list[np.ndarray], tile: tuple[int, int] = (432, 768)) -> np.ndarray:
    """All cameras side by side in a grid of equal tiles (h, w); empty slots stay black."""
    cols = int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / cols))
    grid = np.zeros((rows * tile[0], cols * tile[1], 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * tile[0] : (r + 1) * tile[0], c * tile[1] : (c + 1) * tile[1]] = cv2.resize(img, (tile[1], tile[0]))
    return grid


PARTIAL_GLOB = ".*.partial.avi"


def remove_partial_videos(folder: str | Path) -> None:
    """Delete the half-written videos a killed run left anywhere under ``folder``."""
    for partial in Path(folder).rglob(PARTIAL_GLOB):
        partial.unlink()


class VideoSink:
    """MJPG AVI written as ``.NAME.partial.avi`` (``PARTIAL_GLOB``) and renamed to NAME on ``close``."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.partial.avi")
        self.fps = fps
        self._writer = None
        self.size: tuple[int, int] | None = None

    def write(self, image: np.ndarray) -> None:
        if self._writer is None:
            self.size = (image.shape[1], image.shape[0])
            self._writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, self.size)
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size)  # a camera that changed resolution mid-stream
        self._writer.write(image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            os.replace(self.tmp, self.path)
