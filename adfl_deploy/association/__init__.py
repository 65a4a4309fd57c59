"""Cross-camera identity: tracklets get global ids (``associator``), with the match threshold
calibrated per embedding (``calibration``)."""
