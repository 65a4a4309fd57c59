"""Cross-camera identity: tracklets get global ids (``associator``), with the match threshold
calibrated per embedding (``calibration``)."""

from adfl_deploy.association.associator import AssociationConfig, Associator, Tracklet
from adfl_deploy.association.calibration import calibrated_associator

__all__ = ["AssociationConfig", "Associator", "Tracklet", "calibrated_associator"]
