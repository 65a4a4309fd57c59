"""The generated scene: deterministic, physically consistent, made of held-out people, and its
ground truth agrees with what was drawn."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from adfl_deploy.errors import ConfigError
from adfl_deploy.evaluation.mtmc import read_mot
from adfl_deploy.scene import SceneConfig, generate, load_scene
from adfl_deploy.scene.people import load_people, strip_padding
from adfl_deploy.scene.plan import CameraLook, Visit
from adfl_deploy.scene.render import render_frame


def test_same_config_same_scene_and_another_seed_another(scene, tmp_path):
    again = generate(scene.config, tmp_path / "again", progress=False)
    for cam in scene.cameras:
        assert again.gt(cam).read_text() == scene.gt(cam).read_text()
    other = generate(SceneConfig(cameras=2, seconds=20, people=5, seed=2), tmp_path / "other", progress=False)
    assert other.gt("cam1").read_text() != scene.gt("cam1").read_text()


def test_an_existing_scene_is_reused_and_a_different_one_is_not_overwritten(scene, tmp_path):
    assert generate(scene.config, scene.root, progress=False).root == scene.root
    with pytest.raises(ConfigError, match="--force"):
        generate(SceneConfig(cameras=2, seconds=5), scene.root, progress=False)
    with pytest.raises(ConfigError, match="not a generated scene"):
        load_scene(tmp_path)


def test_videos_match_seqinfo_and_gt_ids_are_global(scene):
    for cam in scene.cameras:
        cap = cv2.VideoCapture(str(scene.video(cam)))
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, image = cap.read()
        assert ok and image.shape == (scene.config.height, scene.config.width, 3)
        info = dict(line.split("=", 1) for line in (scene.root / cam / "seqinfo.ini").read_text().splitlines()[1:])
        assert int(info["seqLength"]) == frames == 200 and info["frameRate"] == "10"
    identities = json.loads((scene.root / "identities.json").read_text())
    ids = {int(r[1]) for cam in scene.cameras for r in read_mot(scene.gt(cam))}
    assert ids <= {int(g) for g in identities}


def test_nobody_is_in_two_cameras_at_once(scene):
    seen = {}
    for cam in scene.cameras:
        for frame, gid in read_mot(scene.gt(cam))[:, :2].astype(int):
            assert seen.setdefault((frame, gid), cam) == cam


def test_people_are_held_out_and_each_camera_shows_another_real_camera(scene, shared):
    split = json.loads((shared / "data" / "con-reid" / "split_ids.json").read_text())
    identities = json.loads((scene.root / "identities.json").read_text())
    assert not {e["con_reid_id"] for e in identities.values()} & set(split["train"])
    assert set(load_people()) & set(split["train"]) == set()
    for entry in identities.values():
        real = {}
        for visit in entry["visits"]:
            assert real.setdefault(visit["camera"], visit["real_camera"]) == visit["real_camera"]
        assert len(set(real.values())) == len(real)  # different simulated camera -> different real camera


def test_the_default_scene_has_re_entries_cross_camera_walks_and_occlusion():
    from adfl_deploy.scene.people import load_rooms
    from adfl_deploy.scene.plan import camera_looks, plan_visits

    config = SceneConfig()
    rng = np.random.default_rng(config.seed)
    looks = camera_looks(config, [room for _, room in load_rooms()], rng)
    assert len({look.background for look in looks}) == 3  # three cameras, three different rooms
    visits = plan_visits(config, looks, load_people(), rng)
    by_person = {}
    for v in visits:
        by_person.setdefault(v.global_id, []).append(v.camera)
    assert len(by_person) == config.people
    assert sum(len(set(c)) > 1 for c in by_person.values()) >= config.people // 2  # walk between cameras
    assert any(len(c) != len(set(c)) for c in by_person.values())  # come back to a camera


LOOK = CameraLook(0, False, 1.0, (0.0, 0.0), 100.0, 100.0, 0.5, (1.0, 1.0, 1.0), 0.0, 0.0)  # everyone 100 px tall


def _half_person():
    """A 100x50 crop whose person (alpha 1) is its left half only; its right half is the crop's
    own background (white), which must never reach the frame."""
    crop = np.full((100, 50, 3), 255, np.uint8)
    crop[:, :25] = (200, 40, 40)
    alpha = np.zeros((100, 50), np.float32)
    alpha[:, :25] = 1.0
    return crop, alpha


def test_visibility_is_the_uncovered_share_of_the_persons_own_matte():
    """Hand case: two people whose mattes are 25x100 columns; the nearer one covers part of the
    farther one's matte. Rectangles would say something else (the crops overlap more)."""
    config = SceneConfig(cameras=1, width=400, height=200, fps=1.0, seconds=1)
    crop, alpha = _half_person()
    people, mattes = {"far": {1: [crop]}, "near": {1: [crop]}}, {"far": {1: [alpha]}, "near": {1: [alpha]}}
    # matte centre at x, feet at y -> crop's left = x - 12.5, top = y - 100
    # far: matte x 100..125, y 50..150; near (feet lower, drawn later): matte x 110..135, y 60..160
    # far's matte under near's matte: x 110..125 (15) x y 60..150 (90) = 1350 of 25 x 100 = 2500 -> 0.46
    far = Visit(1, "far", 0, 1, 0.0, 1.0, (112.5, 112.5), (150.0, 150.0), 1.0)
    near = Visit(2, "near", 0, 1, 0.0, 1.0, (122.5, 122.5), (160.0, 160.0), 1.0)
    background = np.zeros((200, 400, 3), np.uint8)
    image, truth = render_frame(0, 0, config, LOOK, background, [near, far], people, np.zeros((200, 400, 3), np.float32), mattes)
    vis = {t.global_id: t.visibility for t in truth}
    assert vis[2] == pytest.approx(1.0)
    assert vis[1] == pytest.approx(1 - 15 * 90 / 2500)
    boxes = {t.global_id: t.box for t in truth}
    assert boxes[1] == pytest.approx((100.0, 50.0, 25.0, 100.0))  # the matte's extent, not the crop's
    assert boxes[2] == pytest.approx((110.0, 60.0, 25.0, 100.0))
    assert image[100, 105].tolist() == [200, 40, 40]  # far person where only they are
    assert image[100, 140].tolist() == [0, 0, 0]  # the crops' white backgrounds are cut away
    assert image[100, 300].tolist() == [0, 0, 0]


def test_feet_stand_on_the_floor_at_the_planned_height_and_nearer_people_are_drawn_over_farther():
    """Scripted plan on a ground plane: 50 px tall at the floor line (y 100), 150 px at the bottom
    (y 200); the person lower in the frame is nearer, taller, and drawn on top."""
    config = SceneConfig(cameras=1, width=400, height=200, fps=1.0, seconds=1)
    look = CameraLook(0, False, 1.0, (0.0, 0.0), 50.0, 150.0, 0.5, (1.0, 1.0, 1.0), 0.0, 0.0)
    red, alpha = _half_person()
    blue = red.copy()
    blue[:, :25] = (40, 40, 200)
    people, mattes = {"a": {1: [red]}, "b": {1: [blue]}}, {"a": {1: [alpha]}, "b": {1: [alpha]}}
    far = Visit(1, "a", 0, 1, 0.0, 1.0, (200.0, 200.0), (150.0, 150.0), 1.0)  # feet y 150 -> 100 px tall
    near = Visit(2, "b", 0, 1, 0.0, 1.0, (205.0, 205.0), (190.0, 190.0), 1.0)  # feet y 190 -> 140 px tall
    background = np.zeros((200, 400, 3), np.uint8)
    image, truth = render_frame(0, 0, config, look, background, [near, far], people, np.zeros((200, 400, 3), np.float32), mattes)
    boxes = {t.global_id: t.box for t in truth}
    for gid, feet, tall in ((1, 150.0, 100.0), (2, 190.0, 140.0)):
        left, top, width, height = boxes[gid]
        assert top + height == pytest.approx(feet, abs=1.0) and height == pytest.approx(tall, abs=1.0)
    assert image[120, 205].tolist() == [40, 40, 200]  # where both are, the nearer (blue) one shows
    vis = {t.global_id: t.visibility for t in truth}
    assert vis[2] == pytest.approx(1.0) and vis[1] < 1.0


def test_same_seed_same_frames(scene, tmp_path):
    again = generate(scene.config, tmp_path / "again", progress=False)
    for cam in scene.cameras:
        first, second = cv2.VideoCapture(str(scene.video(cam))), cv2.VideoCapture(str(again.video(cam)))
        for _ in range(30):
            (ok1, a), (ok2, b) = first.read(), second.read()
            assert ok1 and ok2 and np.array_equal(a, b)


def test_a_scene_from_the_older_renderer_is_regenerated_even_with_the_same_config(scene, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(scene.root, old)
    (old / ".adfl-scene").write_text("generated by adfl scene; adfl scene --force may replace this folder\n")
    (old / "cam1" / "gt" / "gt.txt").write_text("1,1,0,0,10,10,1,1,1.0\n")
    again = generate(scene.config, old, progress=False)
    assert again.gt("cam1").read_text() == scene.gt("cam1").read_text()
    assert "format" in (old / ".adfl-scene").read_text()


def test_strip_padding_removes_letterbox_columns():
    crop = np.zeros((128, 64, 3), np.uint8)
    crop[:, 10:50] = 120
    assert strip_padding(crop).shape == (128, 40, 3)


@pytest.mark.parametrize("changes, match", [({"cameras": 7}, "1-6"), ({"width": 100}, "too small"), ({"fps": 0}, "fps")])
def test_bad_scene_configs_fail_in_one_line(tmp_path, changes, match):
    with pytest.raises(ConfigError, match=match):
        generate(SceneConfig(**changes), tmp_path / "s", progress=False)
