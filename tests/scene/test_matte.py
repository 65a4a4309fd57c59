"""Matting people out of their crops: a hand-made crop whose person mask is known, the checks
that reject bad mattes, and the fallback."""

from __future__ import annotations

import numpy as np
import pytest

from adfl_deploy.scene import matte


def _person_crop(seed: int, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 128x64 crop: a cluttered green-grey background and a standing figure (skin head, orange
    vest, dark blue trousers, two legs to the bottom) whose mask is known exactly."""
    rng = np.random.default_rng(seed)
    crop = np.empty((128, 64, 3), np.uint8)
    crop[:] = (90, 140, 110)
    crop[:, ::6] = (60, 90, 70)  # a fence
    crop = np.clip(crop + rng.normal(0, 6, crop.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((128, 64), bool)
    yy, xx = np.mgrid[0:128, 0:64]
    cx = 32 + shift
    head = (yy - 14) ** 2 + (xx - cx) ** 2 <= 8**2
    torso = (yy >= 22) & (yy < 70) & (np.abs(xx - cx) <= 13)
    legs = (yy >= 70) & (yy < 128) & ((np.abs(xx - (cx - 6)) <= 4) | (np.abs(xx - (cx + 6)) <= 4))
    for part, colour in ((head, (120, 160, 220)), (torso, (20, 110, 250)), (legs, (90, 30, 20))):
        crop[part] = np.clip(np.asarray(colour) + rng.normal(0, 5, (int(part.sum()), 3)), 0, 255).astype(np.uint8)
        mask |= part
    return crop, mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_the_matte_of_a_hand_made_person_matches_its_known_mask():
    crops, masks = zip(*(_person_crop(seed, shift) for seed, shift in ((0, 0), (1, -3), (2, 3), (3, 1))))
    alphas = matte.person_mattes(list(crops))
    for alpha, mask in zip(alphas, masks):
        assert alpha.shape == mask.shape and alpha.dtype == np.float32
        assert 0.0 <= alpha.min() and alpha.max() <= 1.0
        assert _iou(alpha >= 0.5, mask) >= 0.8
        assert 0.0 < alpha[alpha > 0.02].min() < 0.5  # soft edge, not a hard cut


def test_mattes_are_deterministic():
    crops = [_person_crop(seed)[0] for seed in range(3)]
    first, second = matte.person_mattes(crops), matte.person_mattes(crops)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def _whole_crop(m):
    m[:] = 1


def _no_feet(m):
    m[100:] = 0


def _detached_blob(m):
    m[2:60, 0:10] = 1  # a fifth of the person's size, apart from them


@pytest.mark.parametrize("spoil, reason", [(_whole_crop, "area"), (_no_feet, "bottom"), (_detached_blob, "part")])
def test_checks_reject_a_matte_that_is_not_one_whole_standing_person(spoil, reason):
    _, mask = _person_crop(0)
    good = mask.astype(np.uint8)
    assert matte.check(good).ok
    spoil(good)
    result = matte.check(good)
    assert not result.ok and reason in result.reason


def test_when_grabcut_fails_every_time_the_crop_gets_the_body_prior(monkeypatch):
    monkeypatch.setattr(matte, "grabcut", lambda crop, prior: np.zeros(crop.shape[:2], np.uint8))
    (alpha,) = matte.person_mattes([_person_crop(0)[0]])
    prior = matte.body_prior(128, 64) >= 0.5
    assert _iou(alpha >= 0.5, prior) >= 0.95
    assert matte.check((alpha >= 0.5).astype(np.uint8)).ok


def test_the_cache_returns_what_was_computed(tmp_path, monkeypatch):
    monkeypatch.setenv("ADFL_CACHE", str(tmp_path))
    crops = [_person_crop(seed)[0] for seed in range(2)]
    fresh = matte.cached_person_mattes(crops)
    assert len(list((tmp_path / "mattes").glob("*.npz"))) == 1
    again = matte.cached_person_mattes(crops)
    assert all(np.array_equal(a, b) for a, b in zip(fresh, again))
