"""Files that ship with the package: sample crops, the trained models and the scene's images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

ASSETS = Path(__file__).resolve().parent
SAMPLE_CROPS = ASSETS / "sample_crops"
#: the project's trained edge model (INT8 ONNX artefact; see its MODEL_CARD.md)
EDGE_MODEL = ASSETS / "edge_model"
#: the paper's attention-free ``baseline@resnet18`` trained with the same recipe and seed
#: (INT8 ONNX): what the attention model is compared with on the generated scene
BASELINE_MODEL = ASSETS / "baseline_model"
#: real person crops and empty backgrounds the generated demo scene is made of
SCENE_ASSETS = ASSETS / "scene"


def sample_crop_labels() -> list[tuple[int, int]]:
    """(person id, camera) of each sample crop, from its Market-style file name."""
    return [(int(p.name[:4]), int(p.name[6])) for p in sorted(SAMPLE_CROPS.glob("*.jpg"))]


def load_sample_crops() -> list[np.ndarray]:
    """The 12 shipped Con-ReID crops as BGR uint8 arrays, in file-name order."""
    paths = sorted(SAMPLE_CROPS.glob("*.jpg"))
    crops = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    if not crops or any(c is None for c in crops):
        raise FileNotFoundError(f"sample crops missing or unreadable in {SAMPLE_CROPS}; reinstall the package")
    return crops
