"""Crop preprocessing shared by every backend: resize, BGR->RGB, scale, mean/std normalise.

OpenCV hands out BGR uint8 frames; the network was trained on RGB images normalised with the
ImageNet statistics. Keeping this in one NumPy function means PyTorch, ONNX Runtime and
TensorRT all see bit-identical inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How a crop becomes a network input; stored in every artefact's sidecar."""

    height: int = 384
    width: int = 128
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: channel order the network expects; crops always arrive as BGR (OpenCV)
    channel_order: str = "RGB"


def check_crop(crop: object, index: int = 0) -> np.ndarray:
    """Validate one crop: a non-empty HxWx3 uint8 array. Errors say which crop and what to do."""
    if not isinstance(crop, np.ndarray):
        raise ValueError(f"crop {index}: expected a numpy array (H, W, 3) uint8, got {type(crop).__name__}")
    if crop.dtype != np.uint8:
        raise ValueError(f"crop {index}: expected dtype uint8 (BGR image), got {crop.dtype}; convert with .astype(np.uint8)")
    if crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"crop {index}: expected shape (H, W, 3) BGR, got {crop.shape}")
    if crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ValueError(f"crop {index}: zero-size crop {crop.shape[:2]}; drop boxes with no area before embedding")
    return crop


def to_blob(crops: list[np.ndarray], prep: Preprocessing) -> np.ndarray:
    """BGR uint8 crops of any size -> (N, 3, H, W) float32, normalised, C-contiguous."""
    if len(crops) == 0:
        raise ValueError("no crops given: pass a non-empty list of (H, W, 3) uint8 BGR images")
    mean = np.asarray(prep.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(prep.std, dtype=np.float32) * 255.0)
    blob = np.empty((len(crops), 3, prep.height, prep.width), dtype=np.float32)
    for i, crop in enumerate(crops):
        img = cv2.resize(check_crop(crop, i), (prep.width, prep.height), interpolation=cv2.INTER_LINEAR)
        if prep.channel_order == "RGB":
            img = img[:, :, ::-1]
        blob[i] = ((img.astype(np.float32) - mean) * inv_std).transpose(2, 0, 1)
    return blob


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation; cosine similarity becomes a dot product."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)
