"""The multi-camera pipeline as a library: sources -> detect -> track -> embed -> associate,
one tick at a time, publishing typed events (``adfl_deploy.events``) to subscribers; every
output is a subscriber (``sinks``).

- ``config``: ``PipelineConfig`` (every field of a run, range-checked);
- ``sources``: cameras (files, folders, RTSP/HTTP, webcams) read in threads;
- ``core``: ``Pipeline`` (``step``/``run``) and ``run(config)``, the whole of ``adfl track``;
- ``sinks``: events.jsonl, MOT files, videos, mosaic, summary.json, registered by name;
- ``output``: the run folder (lock, run id, earlier runs moved aside);
- ``summary``: the ``Summary`` dataclass.
"""

from adfl_deploy.pipeline.config import DEFAULT_SINKS, PipelineConfig, parse_sources
from adfl_deploy.pipeline.core import Camera, Pipeline, camera_detectors, run
from adfl_deploy.pipeline.sinks import SINKS
from adfl_deploy.pipeline.sources import CameraSource, SourceConfig
from adfl_deploy.pipeline.summary import CameraSummary, Summary, read_summary

__all__ = [
    "DEFAULT_SINKS",
    "SINKS",
    "Camera",
    "CameraSource",
    "CameraSummary",
    "Pipeline",
    "PipelineConfig",
    "SourceConfig",
    "Summary",
    "camera_detectors",
    "parse_sources",
    "read_summary",
    "run",
]
