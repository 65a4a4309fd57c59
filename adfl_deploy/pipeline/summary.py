"""``Summary``: what a run did, as a dataclass (``summary.json`` is its ``to_dict``), so the CLI,
the scene evaluation and the benchmarks read fields, not dictionary keys."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from adfl_deploy.errors import OutputError, one_line


@dataclass(frozen=True)
class CameraSummary:
    frames: int
    #: running, ended (the file finished) or dropped (it failed and was given up)
    state: str
    skipped_frames: int = 0
    dropped_frames: int = 0
    reconnects: int = 0
    fps: float = 0.0
    #: BGR gains the camera's crops are scaled by before embedding (``white_balance``); null
    #: without white balance. Gains at 1.5 or 0.67 are clipped: the camera's view is far from grey
    white_balance: list[float] | None = None


@dataclass(frozen=True)
class Summary:
    run_id: str
    cameras: dict[str, CameraSummary]
    global_ids: list[int]
    events: int
    seconds: float
    ticks: int
    stage_ms_p50: dict[str, float]
    stage_ms_p99: dict[str, float]
    embedder: dict[str, str]
    association: dict
    #: true only once the run closed every output (a killed run leaves false)
    finished: bool = False
    #: why the run ended: sources-ended, max-frames, signal name, or error
    ended_by: str = ""
    outputs: list[str] = field(default_factory=list)
    #: sink name -> what that sink reports about itself (the store: ticks written and dropped)
    sinks: dict[str, dict] = field(default_factory=dict)

    @property
    def fps_per_camera(self) -> dict[str, float]:
        return {name: cam.fps for name, cam in self.cameras.items()}

    @property
    def median_fps(self) -> float:
        """Median frames per second over the cameras that delivered frames (a dead camera's 0
        does not hide how fast the others ran)."""
        rates = sorted(c.fps for c in self.cameras.values() if c.frames)
        if not rates:
            return 0.0
        mid = len(rates) // 2
        return rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2

    @property
    def live_cameras(self) -> list[str]:
        return [name for name, cam in self.cameras.items() if cam.state != "dropped" and cam.frames]

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["fps_per_camera"] = self.fps_per_camera
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        values = _known_fields(cls, data)
        values["cameras"] = {name: CameraSummary(**_known_fields(CameraSummary, cam)) for name, cam in data["cameras"].items()}
        return cls(**values)


def _known_fields(cls, data: dict) -> dict:
    """The entries of ``data`` that are fields of dataclass ``cls`` (a newer file's extra keys
    are left out, so an older reader still reads it)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def read_summary(path: str | Path) -> Summary:
    """``summary.json`` of a run; a missing or damaged file is one line naming it."""
    path = Path(path)
    try:
        return Summary.from_dict(json.loads(path.read_text()))
    except OSError as exc:
        raise OutputError(f"{path}: cannot read the run's summary ({exc.strerror or exc}); was the run started?") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OutputError(
            f"{path}: not a summary.json of adfl track ({one_line(exc)}); re-run adfl track into that folder"
        ) from None
