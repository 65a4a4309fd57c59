"""Per-camera perception: detections and detectors, the ByteTrack-style tracker with its
Kalman filter, and when to embed a track."""
