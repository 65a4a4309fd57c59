"""The output folder of one run: claimed with a lock, earlier results moved aside, every file
tied to a run id.

- Nothing here runs until everything else about the run has been checked (sources, model,
  detector, config), so a run that cannot start leaves an existing folder as it was.
- ``.adfl-track.lock`` is held with ``flock`` for the whole run (the kernel releases it when the
  process dies, even by ``kill -9``), so a second run into the same folder is refused in one
  line instead of both corrupting each other's files.
- An earlier run's outputs move to ``previous/RUN_ID/`` (the last ``keep`` are kept), so the
  folder only ever holds one run's files and a scorer cannot mix two runs.
- ``run.json`` names the run id, the cameras and the files the run writes; ``summary.json``
  repeats the id, and ``adfl mtmc`` refuses MOT files the run did not write.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from adfl_deploy import __version__
from adfl_deploy.errors import OutputError
from adfl_deploy.files import atomic_write_text
from adfl_deploy.pipeline.sinks import remove_partial_videos

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
LOCK_FILE = ".adfl-track.lock"
PREVIOUS = "previous"
#: what a run of adfl track (and its scoring) writes into its folder
RUN_OUTPUTS = (
    "run.json",
    "config.yaml",
    "events.jsonl",
    "mot",
    "video",
    "mosaic.avi",
    "summary.json",
    "mtmc.json",
    "adfl.db",
    "adfl.db-wal",
    "adfl.db-shm",
)


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


@dataclass
class RunFolder:
    path: Path
    run_id: str
    _lock_fd: int = -1

    @classmethod
    def claim(cls, path: str | Path, run_id: str | None = None, keep_previous: int = 3) -> RunFolder:
        """Create/lock ``path`` for a new run and move an earlier run's outputs aside."""
        folder = cls(Path(path), run_id or new_run_id())
        folder._lock()
        try:
            folder._archive_previous(keep_previous)
        except BaseException:
            folder.release()
            raise
        return folder

    def _lock(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"output folder {self.path} is not writable ({exc.strerror or exc}); pass another --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(
                f"output folder {self.path} is in use by another adfl track run (pid {holder}); wait for it or pass another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _archive_previous(self, keep: int) -> None:
        remove_partial_videos(self.path)  # a killed run's half-written videos are not results
        present = [name for name in RUN_OUTPUTS if (self.path / name).exists()]
        if not present:
            return
        old_id = _previous_run_id(self.path)
        target = self.path / PREVIOUS / old_id
        target.mkdir(parents=True, exist_ok=True)
        for name in present:
            os.replace(self.path / name, target / name)
        log.warning("output folder %s held run %s: moved to %s", self.path, old_id, target)
        runs = sorted(p for p in (self.path / PREVIOUS).iterdir() if p.is_dir())
        for stale in runs[: max(0, len(runs) - keep)]:
            shutil.rmtree(stale)
            log.warning("removed the oldest kept run %s (keep_previous_runs=%d)", stale, keep)

    def write_manifest(self, cameras: list[str], outputs: list[str], settings: dict | None = None) -> None:
        """``run.json``; ``settings``: camera -> what the run resolved where ``config.yaml``
        leaves a field unset (the detector's own detect_every and tracker settings)."""
        manifest = {
            "run_id": self.run_id,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "pid": os.getpid(),
            "toolkit_version": __version__,
            "cameras": cameras,
            "outputs": outputs,
        }
        if settings is not None:
            manifest["settings"] = settings
        atomic_write_text(self.path / RUN_FILE, json.dumps(manifest, indent=2) + "\n")

    def release(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1


def _previous_run_id(path: Path) -> str:
    try:
        return str(json.loads((path / RUN_FILE).read_text())["run_id"])
    except (OSError, ValueError, KeyError, TypeError):  # a run from before run ids, or a damaged manifest
        newest = max((path / name).stat().st_mtime for name in RUN_OUTPUTS if (path / name).exists())
        return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(newest)) + "-unknown"


def read_manifest(path: str | Path) -> dict | None:
    """The ``run.json`` of a run folder, or None for a folder from before run ids."""
    path = Path(path)
    try:
        return json.loads((path / RUN_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise OutputError(f"{path / RUN_FILE}: unreadable ({exc}); is this an adfl track output folder?") from None


__all__ = ["LOCK_FILE", "PREVIOUS", "RUN_FILE", "RunFolder", "new_run_id", "read_manifest"]
