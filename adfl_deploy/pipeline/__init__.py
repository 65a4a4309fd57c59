"""The multi-camera pipeline as a library: sources -> detect -> track -> embed -> associate ->
sinks, one tick at a time, publishing typed events to subscribers."""

from adfl_deploy.pipeline.core import PipelineConfig, camera_detectors, parse_sources, run

__all__ = ["PipelineConfig", "camera_detectors", "parse_sources", "run"]
