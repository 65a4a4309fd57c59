"""Background swap for training: the person's pixels stay, another picture shows behind them,
blended by the matte; the crop's own black bars stay black (the runtime letterboxes too). Checked
on hand-made crops with a known person and a known mask."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adfl_deploy.train.background_swap import keep_masks, other_background, swap_background  # noqa: E402
from adfl_deploy.train.config import CameraShiftConfig, DataConfig  # noqa: E402


def test_swap_blends_by_the_matte():
    image = torch.full((3, 8, 4), 200, dtype=torch.uint8)
    background = np.full((8, 4, 3), 40, np.uint8)
    keep = np.zeros((8, 4), np.uint8)
    keep[:, :2] = 255  # the person: left half
    keep[:, 2] = 128  # their soft edge
    out = swap_background(image, keep, background).numpy()
    assert (out[:, :, :2] == 200).all()
    assert (out[:, :, 2] == 120).all()  # 128/255 of the way from 40 to 200, rounded
    assert (out[:, :, 3] == 40).all()


def test_other_background_keeps_the_size_and_is_seeded():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)
    a = other_background(picture, np.random.default_rng(3))
    b = other_background(picture, np.random.default_rng(3))
    assert a.shape == picture.shape and a.dtype == np.uint8 and np.array_equal(a, b)


def test_keep_mask_holds_the_person_and_the_black_bars(monkeypatch):
    """A letterboxed crop (black bars left and right) of a plain-coloured standing figure on a
    textured wall, twice the network's size (so the mask goes through the same resize as the
    image): the mask keeps the figure and the bars, and frees the wall."""
    monkeypatch.setenv("ADFL_CACHE", "")  # no matte cache written by the test
    rng = np.random.default_rng(1)
    crops = []
    for k in range(3):
        crop = np.zeros((256, 128, 3), np.uint8)
        wall = rng.integers(0, 120, (256, 96, 3), dtype=np.uint8)
        wall[:, :, 0] = 110 + 10 * k  # a blue-ish wall
        crop[:, 16:112] = wall
        crop[28:256, 44:84] = (30, 60, 220)  # a red-clad person down to the feet
        crops.append(crop)
    masks = keep_masks(crops, [7, 7, 7], 128, 64, "letterbox")
    for keep in masks:
        assert keep.shape == (128, 64) and keep.dtype == np.uint8
        assert (keep[:, :8] == 255).all() and (keep[:, 56:] == 255).all()  # the bars stay
        assert keep[20:120, 24:40].mean() > 0.8 * 255  # the person stays
        wall = np.concatenate([keep[:, 10:18], keep[:, 46:54]], axis=1)
        assert wall.mean() < 0.3 * 255  # most of the wall may be replaced


def test_background_is_off_by_default():
    assert DataConfig().camera_shift.background == 0.0
    assert CameraShiftConfig(background=0.5).background == 0.5


def test_training_images_swap_only_the_background(tmp_path, monkeypatch):
    """TrainImages with background swap always on and no other augmentation: the framed
    training image keeps every pixel the mask keeps (its person, its bars) and the rest comes
    from elsewhere; the mask list lines up with the images."""
    import cv2

    from adfl_deploy.evaluation.datasets import Sample
    from adfl_deploy.train.data import TrainImages

    monkeypatch.setenv("ADFL_CACHE", "")
    rng = np.random.default_rng(2)
    samples = []
    for pid in (1, 2):
        for k in range(2):
            crop = rng.integers(0, 120, (128, 64, 3), dtype=np.uint8)
            crop[14:128, 22:42] = (30, 60, 220) if pid == 1 else (200, 200, 40)
            path = tmp_path / f"{pid:04d}_c{k + 1}s1_00000{k}.jpg"
            cv2.imwrite(str(path), crop)
            samples.append(Sample(str(path), pid, k + 1))
    cfg = DataConfig(
        height=128, width=64, crop_fit="letterbox", pad=0, flip_prob=0.0, camera_shift=CameraShiftConfig(background=1.0)
    )
    images = TrainImages(tuple(samples), cfg)
    assert len(images.keep) == len(images.images)
    images.transform = lambda x: x  # look at the swap alone
    torch.manual_seed(0)
    for index in range(len(samples)):
        swapped, label = images[index]
        kept = images.keep[index] == 255
        assert kept.mean() > 0.2 and label == index // 2
        assert torch.equal(swapped[:, torch.from_numpy(kept)], images.images[index][:, torch.from_numpy(kept)])
        assert not torch.equal(swapped, images.images[index])  # the wall did change
