"""Crop preprocessing shared by every backend: resize, BGR->RGB, scale, mean/std normalise.

OpenCV hands out BGR uint8 frames; the network was trained on RGB images normalised with the
ImageNet statistics. Two steps, so that a model with the normalisation folded into its graph
(input format ``uint8-nhwc-bgr``, the export's default) gets only the first:

- ``resize_batch``: validate and fit to the input size -> (N, H, W, 3) uint8 BGR (always the
  caller's side), either stretched or letterboxed, as the model's training crops framed people
  (``Preprocessing.fit``);
- ``normalise``: -> (N, 3, H, W) float32 RGB, mean/std normalised (NumPy here, or in the graph).

``to_blob`` is both; every backend of a float-input model sees bit-identical inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from adfl_deploy.errors import ConfigError

#: what a model takes: normalised float32 NCHW ("images"), or resized uint8 BGR crops ("crops")
#: with the normalisation folded into the graph (``export.uint8_input``)
FLOAT_NCHW = "float32-nchw"
UINT8_NHWC = "uint8-nhwc-bgr"
INPUT_FORMATS = (UINT8_NHWC, FLOAT_NCHW)
FLOAT_INPUT = "images"
UINT8_INPUT = "crops"

#: how a box of any shape becomes the network's input: "stretch" resizes it to the input size
#: (Market-1501's crops are stretched boxes), "letterbox" keeps its aspect and pads with black
#: (Con-ReID's crops are letterboxed: a narrow person between black bars)
CROP_FITS = ("stretch", "letterbox")
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
    #: how a box is framed into the input, as in the training data (``CROP_FITS``): a model
    #: trained on letterboxed crops sees a stretched person as someone else
    fit: Literal["stretch", "letterbox"] = "stretch"

    def __post_init__(self) -> None:
        if self.fit not in CROP_FITS:
            raise ConfigError(f"preprocessing.fit: {self.fit!r} is not one of {', '.join(CROP_FITS)}")


def _uint8_hint(crop: np.ndarray) -> str:
    """How to make ``crop`` uint8 without blackening it: a float image in 0-1 must be scaled to
    0-255 first (a bare ``.astype(np.uint8)`` turns it to zeros)."""
    scaled = "(crop * 255).clip(0, 255).astype(np.uint8)"
    if np.issubdtype(crop.dtype, np.floating) and crop.size and np.isfinite(crop).any():
        if float(np.abs(crop[np.isfinite(crop)]).max()) <= 1.0:
            return f"its values are in 0-1: scale them to 0-255 first, {scaled} (a bare .astype(np.uint8) makes it black)"
    return f"convert it with crop.clip(0, 255).astype(np.uint8) if its values are 0-255, or {scaled} if they are 0-1"


def check_crop(crop: object, index: int = 0) -> np.ndarray:
    """Validate one crop: a non-empty HxWx3 uint8 array. Errors say which crop and what to do."""
    if not isinstance(crop, np.ndarray):
        raise ValueError(f"crop {index}: expected a numpy array (H, W, 3) uint8, got {type(crop).__name__}")
    if crop.dtype != np.uint8:
        raise ValueError(f"crop {index}: expected dtype uint8 (BGR image, 0-255), got {crop.dtype}; {_uint8_hint(crop)}")
    if crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"crop {index}: expected shape (H, W, 3) BGR, got {crop.shape}")
    if crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ValueError(f"crop {index}: zero-size crop {crop.shape[:2]}; drop boxes with no area before embedding")
    return crop


def fit_crop(crop: np.ndarray, height: int, width: int, fit: str = "stretch", out: np.ndarray | None = None) -> np.ndarray:
    """One BGR uint8 crop -> (height, width, 3): stretched to the size, or letterboxed (aspect
    kept, scaled to touch two sides, centred, black around it). Written into ``out`` if given."""
    if out is None:
        out = np.empty((height, width, 3), np.uint8)
    if fit == "stretch":
        out[:] = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
        return out
    h, w = crop.shape[:2]
    scale = min(height / h, width / w)
    inner_h, inner_w = min(height, max(1, round(h * scale))), min(width, max(1, round(w * scale)))
    top, left = (height - inner_h) // 2, (width - inner_w) // 2
    out[:] = 0
    out[top : top + inner_h, left : left + inner_w] = cv2.resize(crop, (inner_w, inner_h), interpolation=cv2.INTER_LINEAR)
    return out


def resize_batch(crops: list[np.ndarray], prep: Preprocessing) -> np.ndarray:
    """BGR uint8 crops of any size -> (N, H, W, 3) uint8 BGR at the network's input size,
    framed as ``prep.fit`` says."""
    if len(crops) == 0:
        raise ValueError("no crops given: pass a non-empty list of (H, W, 3) uint8 BGR images")
    batch = np.empty((len(crops), prep.height, prep.width, 3), dtype=np.uint8)
    for i, crop in enumerate(crops):
        fit_crop(check_crop(crop, i), prep.height, prep.width, prep.fit, out=batch[i])
    return batch


def normalisation_constants(prep: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    """(mean * 255, 1 / (std * 255)) as float32, in the network's channel order; the graph
    folded by ``export.uint8_input`` uses these same float32 values."""
    mean = np.asarray(prep.mean, dtype=np.float32) * np.float32(255.0)
    inv_std = np.float32(1.0) / (np.asarray(prep.std, dtype=np.float32) * np.float32(255.0))
    return mean, inv_std


def normalise(batch: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR -> (N, 3, H, W) float32, channel order and mean/std applied."""
    mean, inv_std = normalisation_constants(prep)
    if prep.channel_order == "RGB":
        batch = batch[..., ::-1]
    return np.ascontiguousarray(((batch.astype(np.float32) - mean) * inv_std).transpose(0, 3, 1, 2))


def to_blob(crops: list[np.ndarray], prep: Preprocessing) -> np.ndarray:
    """BGR uint8 crops of any size -> (N, 3, H, W) float32, normalised, C-contiguous."""
    return normalise(resize_batch(crops, prep), prep)


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise (last-axis) L2 normalisation; cosine similarity becomes a dot product. Zero rows
    stay zero."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def prepare(crops: list[np.ndarray], prep: Preprocessing, input_format: str) -> np.ndarray:
    """Crops -> the batch a model of ``input_format`` takes."""
    batch = resize_batch(crops, prep)
    return batch if input_format == UINT8_NHWC else normalise(batch, prep)


def input_shape(input_format: str, batch: int, prep: Preprocessing) -> tuple[int, int, int, int]:
    """The model input's shape for ``batch`` crops (TensorRT profiles, trtexec lines, buffers)."""
    return (batch, prep.height, prep.width, 3) if input_format == UINT8_NHWC else (batch, 3, prep.height, prep.width)
