"""Simulated camera changes for training: off by default (the paper's recipe unchanged), and
each change does what it models, measured on hand-made images."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adfl_deploy.errors import ConfigError  # noqa: E402
from adfl_deploy.train.camera_augment import ColourCast, LowResolution, SensorNoise  # noqa: E402
from adfl_deploy.train.config import CameraShiftConfig, DataConfig  # noqa: E402
from adfl_deploy.train.data import train_transform  # noqa: E402


def crop() -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.integers(0, 256, (3, 128, 64), dtype=np.uint8))


def test_off_by_default_the_transform_is_the_papers():
    plain = DataConfig(height=128, width=64)
    assert plain.camera_shift.prob == 0.0
    explicit_off = DataConfig(height=128, width=64, camera_shift=CameraShiftConfig(prob=0.0, step_prob=1.0, occlusion=1.0))
    for seed in range(5):
        torch.manual_seed(seed)
        a = train_transform(plain)(crop())
        torch.manual_seed(seed)
        b = train_transform(explicit_off)(crop())
        assert torch.equal(a, b)


def test_colour_cast_scales_each_channel_within_its_range():
    grey = torch.full((3, 16, 8), 100, dtype=torch.uint8)
    means = []
    for seed in range(20):
        torch.manual_seed(seed)
        out = ColourCast(0.2)(grey).float()
        per_channel = out.mean(dim=(1, 2))
        assert torch.all(per_channel >= 80 - 0.5) and torch.all(per_channel <= 120 + 0.5)
        assert torch.all(out == out[:, :1, :1])  # one gain per channel, the same everywhere
        means.append(per_channel)
    spread = torch.stack(means).std(dim=0)
    assert torch.all(spread > 3)  # channels really move, independently


def laplacian_energy(img: torch.Tensor) -> float:
    x = img.float().mean(0)
    lap = x[1:-1, 1:-1] * 4 - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return float(lap.pow(2).mean())


def test_low_resolution_removes_fine_detail_and_keeps_the_size():
    checker = (torch.arange(128)[:, None] + torch.arange(64)[None, :]) % 2 * 255
    img = checker.to(torch.uint8).expand(3, 128, 64).clone()
    torch.manual_seed(0)
    out = LowResolution((0.4, 0.5))(img)
    assert out.shape == img.shape and out.dtype == torch.uint8
    assert laplacian_energy(out) < 0.05 * laplacian_energy(img)


def test_sensor_noise_is_zero_mean_and_bounded_by_its_std():
    flat = torch.full((3, 128, 64), 128, dtype=torch.uint8)
    torch.manual_seed(1)
    diff = SensorNoise(0.03)(flat).float() - 128
    assert abs(float(diff.mean())) < 0.5 and 0 < float(diff.std()) <= 0.03 * 255 * 1.05


def test_every_change_together_keeps_a_valid_training_tensor():
    cfg = DataConfig(height=128, width=64, camera_shift=CameraShiftConfig(prob=1.0, step_prob=1.0, occlusion=1.0))
    torch.manual_seed(0)
    changed = train_transform(cfg)(crop())
    torch.manual_seed(0)
    again = train_transform(cfg)(crop())
    torch.manual_seed(0)
    paper = train_transform(DataConfig(height=128, width=64))(crop())
    assert changed.shape == (3, 128, 64) and torch.isfinite(changed).all()
    assert torch.equal(changed, again) and not torch.equal(changed, paper)


@pytest.mark.parametrize(
    "field, value", [("prob", 1.5), ("occlusion", -0.1), ("background", 1.2), ("scale", (0.9, 0.4)), ("jpeg_quality", (0, 90))]
)
def test_out_of_range_values_are_refused(field, value):
    with pytest.raises(ConfigError, match="camera_shift"):
        CameraShiftConfig(**{field: value})


def test_compression_loses_detail_more_at_low_quality():
    import cv2

    from adfl_deploy.assets import load_sample_crops
    from adfl_deploy.train.camera_augment import Compression

    bgr = cv2.resize(load_sample_crops()[0], (64, 128))
    img = torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1)))  # a real person, RGB
    errors = {}
    for q in (20, 95):
        torch.manual_seed(0)
        out = Compression((q, q))(img)
        assert out.shape == img.shape and out.dtype == torch.uint8
        errors[q] = float((out.float() - img.float()).abs().mean())
    assert errors[20] > 1.5 * errors[95] > 0
