"""Training images: decoded once, resized like the runtime does, augmented as the paper says.

Resize goes through ``fit_crop`` (the runtime's preprocessing, stretched or letterboxed as
``data.crop_fit`` says), so the network trains on exactly the framing and interpolation it will
see when deployed; flip, pad-10-and-crop and optional random
erasing follow (Sec. V-B "Preprocessing"), and optionally simulated camera changes
(``camera_augment``) for an embedding that survives the change from one camera to another.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from adfl_deploy.evaluation.datasets import Sample
from adfl_deploy.model.preprocess import IMAGENET_MEAN, IMAGENET_STD, fit_crop

from .camera_augment import camera_shift, occlusion
from .config import DataConfig


def read_image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"{path}: cannot read image (missing or not an image)")
    return img


def train_transform(cfg: DataConfig) -> v2.Compose:
    """Flip, pad and crop (the paper), simulated camera changes on the uint8 crop (off unless
    ``camera_shift.prob`` > 0), normalisation, then occlusion and random erasing."""
    steps = [
        v2.RandomHorizontalFlip(cfg.flip_prob),
        v2.Pad(cfg.pad),
        v2.RandomCrop((cfg.height, cfg.width)),
        *camera_shift(cfg.camera_shift),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        *occlusion(cfg.camera_shift),
    ]
    if cfg.random_erasing > 0:
        steps.append(v2.RandomErasing(p=cfg.random_erasing, value=0))
    return v2.Compose(steps)


class TrainImages(Dataset):
    """(image tensor, class label) pairs; labels are 0..N-1 in sorted pid order."""

    def __init__(self, samples: tuple[Sample, ...], cfg: DataConfig) -> None:
        self.pids = sorted({s.pid for s in samples})
        label_of = {pid: i for i, pid in enumerate(self.pids)}
        self.labels = [label_of[s.pid] for s in samples]
        self.transform = train_transform(cfg)
        self.background = cfg.camera_shift.background
        # the decoded crops are kept only while background swap needs them for its mattes
        crops = [] if self.background > 0 else None
        self.images = []
        for sample in samples:
            crop = read_image(sample.path)
            self.images.append(self._framed(crop, cfg))
            if crops is not None:
                crops.append(crop)
        self.keep = None
        if crops is not None:
            from .background_swap import keep_masks

            self.keep = keep_masks(crops, [s.pid for s in samples], cfg.height, cfg.width, cfg.crop_fit)

    @staticmethod
    def _load(path: str, cfg: DataConfig) -> torch.Tensor:
        return TrainImages._framed(read_image(path), cfg)

    @staticmethod
    def _framed(crop: np.ndarray, cfg: DataConfig) -> torch.Tensor:
        img = fit_crop(crop, cfg.height, cfg.width, cfg.crop_fit)
        return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))  # RGB uint8 CHW

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = self.images[index]
        if self.keep is not None and float(torch.rand(1)) < self.background:
            from .background_swap import other_background, swap_background

            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
            other = self.images[int(rng.integers(len(self.images)))].permute(1, 2, 0).numpy()
            image = swap_background(image, self.keep[index], other_background(other, rng))
        return self.transform(image), self.labels[index]
