"""Augmentations that model what changes between cameras, so the embedding survives the change.

The same person seen by another camera differs in white balance and colour cast, exposure and
contrast, focus (blur), sensor noise, compression, resolution (a far or low-resolution camera)
and what stands in front of them. ``camera_shift(cfg)`` returns those as torchvision v2 steps
applied to the uint8 crop before normalisation, each with its own probability, the whole group
with probability ``cfg.prob`` (0 = the paper's recipe, nothing added).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.transforms import v2

from .config import CameraShiftConfig


class ColourCast:
    """White balance off: each RGB channel scaled by a gain in ``[1 - strength, 1 + strength]``."""

    def __init__(self, strength: float) -> None:
        self.strength = strength

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        gains = 1.0 + (torch.rand(3, 1, 1) * 2 - 1) * self.strength
        return (img.float() * gains).round().clamp(0, 255).to(img.dtype)


class LowResolution:
    """A farther or lower-resolution camera: down to ``scale`` of the size, back up again."""

    def __init__(self, scale: tuple[float, float]) -> None:
        self.scale = scale

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        s = float(torch.empty(1).uniform_(*self.scale))
        small = v2.functional.resize(img, [max(8, round(h * s)), max(4, round(w * s))], antialias=True)
        return v2.functional.resize(small, [h, w], antialias=True)


class Compression:
    """JPEG at a random quality in ``quality`` (through OpenCV, as cameras' encoders would)."""

    def __init__(self, quality: tuple[int, int]) -> None:
        self.quality = quality

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        q = int(torch.randint(self.quality[0], self.quality[1] + 1, (1,)))
        hwc = np.ascontiguousarray(img.permute(1, 2, 0).numpy()[:, :, ::-1])  # RGB CHW -> BGR HWC
        ok, data = cv2.imencode(".jpg", hwc, [cv2.IMWRITE_JPEG_QUALITY, q])
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(decoded.transpose(2, 0, 1)))


class SensorNoise:
    """Gaussian sensor noise of standard deviation up to ``std`` (of the 0..255 range)."""

    def __init__(self, std: float) -> None:
        self.std = std

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        sigma = float(torch.empty(1).uniform_(0, self.std)) * 255
        return (img.float() + torch.randn(img.shape) * sigma).round().clamp(0, 255).to(img.dtype)


def camera_shift(cfg: CameraShiftConfig) -> list:
    """The uint8 steps (empty when ``cfg.prob`` is 0)."""
    if cfg.prob <= 0:
        return []
    each = [
        v2.RandomApply([ColourCast(cfg.colour_cast)], p=cfg.step_prob),
        v2.RandomApply(
            [v2.ColorJitter(brightness=cfg.brightness, contrast=cfg.contrast, saturation=cfg.saturation)], p=cfg.step_prob
        ),
        v2.RandomApply([LowResolution(tuple(cfg.scale))], p=cfg.step_prob),
        v2.RandomApply([v2.GaussianBlur(kernel_size=5, sigma=tuple(cfg.blur_sigma))], p=cfg.step_prob),
        v2.RandomApply([SensorNoise(cfg.noise_std)], p=cfg.step_prob),
        v2.RandomApply([Compression(tuple(cfg.jpeg_quality))], p=cfg.step_prob),
    ]
    return [v2.RandomApply([v2.Compose(each)], p=cfg.prob)]


def occlusion(cfg: CameraShiftConfig) -> list:
    """Something in front of the person (a random-coloured block), on the normalised tensor."""
    if cfg.prob <= 0 or cfg.occlusion <= 0:
        return []
    return [v2.RandomErasing(p=cfg.occlusion, scale=(0.05, 0.25), value="random")]
