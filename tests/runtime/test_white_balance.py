"""Grey-world white balance: gains against hand-computed cases, a known cast undone, the
running mean's window, and inputs it must leave alone."""

from __future__ import annotations

import numpy as np
import pytest

from adfl_deploy.runtime.white_balance import MAX_GAIN, REFRESH, WhiteBalance, apply_gains, grey_world_gains


def neutral_frame() -> np.ndarray:
    """Three stripes whose colours are rotations of one another: every channel averages 120
    exactly, also on the every-8th-pixel grid (stripes 32 px wide)."""
    frame = np.zeros((48, 96, 3), np.uint8)
    for k, colour in enumerate([(60, 120, 180), (120, 180, 60), (180, 60, 120)]):
        frame[:, 32 * k : 32 * (k + 1)] = colour
    return frame


def test_gains_make_the_mean_grey_and_are_clipped():
    # mean of (50, 100, 150) is 100: gains 2 (clipped to MAX_GAIN), 1, 2/3
    np.testing.assert_allclose(grey_world_gains(np.array([50.0, 100.0, 150.0])), [MAX_GAIN, 1.0, 100 / 150])
    np.testing.assert_allclose(grey_world_gains(np.array([90.0, 100.0, 110.0])), [100 / 90, 1.0, 100 / 110])
    np.testing.assert_allclose(grey_world_gains(np.zeros(3)), np.ones(3))  # black: nothing to go by
    np.testing.assert_allclose(grey_world_gains(np.array([np.nan, 1.0, 1.0])), np.ones(3))


def test_a_cameras_cast_is_undone_in_its_crops():
    cast = np.array([0.8, 1.0, 1.2])
    neutral = neutral_frame()
    tinted = np.clip(neutral * cast + 0.5, 0, 255).astype(np.uint8)
    wb = WhiteBalance()
    wb.observe("cam", tinted)
    np.testing.assert_allclose(wb.gains("cam"), 1.0 / cast * cast.mean(), rtol=0.01)
    crop = tinted[8:40, 20:60]
    corrected = wb.correct("cam", crop)
    assert corrected.dtype == np.uint8 and corrected.shape == crop.shape
    # the neutral frame's channels average equally, so undoing the cast gives it back up to
    # the cast's mean (1.0 here) and rounding
    assert np.abs(corrected.astype(int) - neutral[8:40, 20:60]).max() <= 2
    assert np.abs(crop.astype(int) - neutral[8:40, 20:60]).max() >= 30  # what the cast did


def test_cameras_are_balanced_separately():
    wb = WhiteBalance()
    wb.observe("red", np.full((16, 16, 3), (100, 100, 140), np.uint8))
    wb.observe("grey", np.full((16, 16, 3), 100, np.uint8))
    np.testing.assert_allclose(wb.gains("grey"), np.ones(3))
    assert wb.gains("red")[2] < 1.0 < wb.gains("red")[0]
    np.testing.assert_allclose(wb.gains("never-seen"), np.ones(3))


def test_the_mean_is_plain_then_follows_the_light_after_the_window():
    wb = WhiteBalance(window=10)
    a, b = np.full((8, 8, 3), (100, 100, 100), np.uint8), np.full((8, 8, 3), (50, 100, 150), np.uint8)
    wb.observe("cam", a)
    wb.observe("cam", b)
    np.testing.assert_allclose(wb.colour("cam"), [75, 100, 125])  # two frames: their plain mean
    for _ in range(200):
        wb.observe("cam", b)
    # 200 frames later the first two weigh (1 - 1/10)^192 of their share: gone
    np.testing.assert_allclose(wb.colour("cam"), [50, 100, 150], atol=1e-6)


def test_grey_scale_and_odd_images_pass_unchanged():
    wb = WhiteBalance()
    wb.observe("cam", np.full((8, 8), 77, np.uint8))  # not a colour frame: ignored
    wb.observe("cam", np.zeros((0, 0, 3), np.uint8))
    assert wb.colour("cam") is None
    crop = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert wb.correct("cam", crop) is crop
    flat = crop[..., 0]
    assert apply_gains(flat, np.array([1.2, 1.0, 0.8])) is flat  # a 2-D crop: returned as is
    with pytest.raises(ValueError):
        WhiteBalance(window=0)


def test_the_gains_follow_every_frame_at_first_then_every_refresh():
    """A camera's first REFRESH frames each move its gains (a start from one frame is rough);
    after that they are recomputed on every REFRESH-th frame, and ``gains`` reports the ones
    the crops get."""
    grey, red = np.full((8, 8, 3), 100, np.uint8), np.full((8, 8, 3), (100, 100, 200), np.uint8)
    crop = np.full((4, 4, 3), 100, np.uint8)
    wb = WhiteBalance(window=10**6)
    wb.observe("cam", grey)
    np.testing.assert_allclose(wb.gains("cam"), 1.0)
    assert wb.correct("cam", crop) is crop  # neutral: nothing to do
    wb.observe("cam", red)  # frame 2: mean (100, 100, 150) -> gains (7/6, 7/6, 7/9)
    np.testing.assert_allclose(wb.gains("cam"), [350 / 300, 350 / 300, 350 / 450])
    assert wb.correct("cam", crop)[0, 0].tolist() == [117, 117, 78]  # 100 x gain, rounded
    for _ in range(REFRESH - 2):  # frames 3..REFRESH, each one refreshes
        wb.observe("cam", red)
    at_refresh = wb.gains("cam")
    np.testing.assert_allclose(at_refresh, grey_world_gains(wb.colour("cam")))
    for _ in range(REFRESH - 1):  # frames REFRESH+1 .. 2 REFRESH - 1: held
        wb.observe("cam", red)
        np.testing.assert_allclose(wb.gains("cam"), at_refresh)
    wb.observe("cam", red)  # frame 2 REFRESH: refreshed again
    np.testing.assert_allclose(wb.gains("cam"), grey_world_gains(wb.colour("cam")))
    assert not np.allclose(wb.gains("cam"), at_refresh)


@pytest.mark.parametrize(
    "written, meant", [("off", "none"), ("no", "none"), ("false", "none"), ("on", "grey-world"), ("none", "none")]
)
def test_yaml_off_and_on_name_the_choices(written, meant):
    """YAML 1.1 reads an unquoted off/on as a boolean: a config saying ``white_balance: off``
    means no correction, not an error about types."""
    from adfl_deploy.config import loads
    from adfl_deploy.pipeline import PipelineConfig

    cfg = loads(PipelineConfig, f"white_balance: {written}\n")
    assert cfg.white_balance == meant


def test_a_boolean_in_a_text_field_says_to_quote_it():
    from adfl_deploy.config import loads
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.pipeline import PipelineConfig

    with pytest.raises(ConfigError, match="quote it"):
        loads(PipelineConfig, "detector: no\n")
