"""How a detected box becomes the network's input: stretched, or letterboxed as Con-ReID's
training crops are (a narrow person between black bars)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adfl_deploy import config
from adfl_deploy.assets import ASSETS
from adfl_deploy.errors import ConfigError
from adfl_deploy.model.artifact import ArtifactInfo, load_artifact
from adfl_deploy.model.preprocess import Preprocessing, fit_crop, resize_batch


def solid(h: int, w: int, bgr=(10, 200, 30)) -> np.ndarray:
    return np.tile(np.array(bgr, np.uint8), (h, w, 1))


def test_a_tall_box_is_letterboxed_between_black_columns():
    # a 40x10 box (4:1) into a 16x8 input: scale min(16/40, 8/10) = 0.4 -> 16x4 inside,
    # centred: columns 2-5 hold the person, columns 0-1 and 6-7 are black
    out = fit_crop(solid(40, 10), 16, 8, "letterbox")
    assert out.shape == (16, 8, 3)
    assert (out[:, 2:6] == (10, 200, 30)).all()
    assert (out[:, :2] == 0).all() and (out[:, 6:] == 0).all()


def test_a_wide_box_is_letterboxed_between_black_rows():
    # 5x20 into 16x8: scale min(16/5, 8/20) = 0.4 -> 2x8 inside, top (16 - 2) // 2 = 7
    out = fit_crop(solid(5, 20), 16, 8, "letterbox")
    assert (out[7:9] == (10, 200, 30)).all()
    assert (out[:7] == 0).all() and (out[9:] == 0).all()


def test_a_crop_already_at_the_input_shape_is_the_same_either_way():
    # Con-ReID's 128x64 crops: letterboxing changes nothing, so its scores cannot move
    crop = np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(fit_crop(crop, 128, 64, "letterbox"), crop)
    np.testing.assert_array_equal(fit_crop(crop, 128, 64, "stretch"), crop)


def test_stretch_fills_the_input_and_the_batch_follows_the_preprocessing():
    crops = [solid(40, 10), solid(40, 10, (1, 2, 3))]
    stretched = resize_batch(crops, Preprocessing(16, 8))
    assert (stretched[0] == (10, 200, 30)).all() and (stretched[1] == (1, 2, 3)).all()
    boxed = resize_batch(crops, Preprocessing(16, 8, fit="letterbox"))
    assert (boxed[:, :, :2] == 0).all() and (boxed[1, :, 2:6] == (1, 2, 3)).all()


def test_an_unknown_fit_is_refused_in_one_line():
    with pytest.raises(ValueError, match="preprocessing.fit.*stretch, letterbox"):
        Preprocessing(16, 8, fit="crop")


def test_the_shipped_models_frame_boxes_as_their_training_crops_and_old_sidecars_stretch():
    for folder in ("edge_model", "baseline_model"):
        assert load_artifact(ASSETS / folder).preprocessing.fit == "letterbox", folder
    data = json.loads((ASSETS / "edge_model" / "adfl.json").read_text())
    del data["preprocessing"]["fit"]  # a sidecar written before the field existed
    assert config.from_dict(ArtifactInfo, data).preprocessing.fit == "stretch"
    data["preprocessing"]["fit"] = "crop"
    with pytest.raises(ConfigError, match="preprocessing.fit"):
        config.from_dict(ArtifactInfo, data)
