"""Per-camera perception: detections and detectors, the ByteTrack-style tracker with its
Kalman filter, and when to embed a track."""

from adfl_deploy.tracking.detections import Detections
from adfl_deploy.tracking.detectors import DETECTORS, DetectionFilter, Detector, create_detector
from adfl_deploy.tracking.tracker import ByteTracker, TrackerConfig

__all__ = ["DETECTORS", "ByteTracker", "DetectionFilter", "Detections", "Detector", "TrackerConfig", "create_detector"]
