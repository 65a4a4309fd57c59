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
    from adfl_deploy.scene.people import load_backgrounds
    from adfl_deploy.scene.plan import camera_looks, plan_visits

    config = SceneConfig()
    rng = np.random.default_rng(config.seed)
    looks = camera_looks(config, len(load_backgrounds()), rng)
    visits = plan_visits(config, looks, load_people(), rng)
    by_person = {}
    for v in visits:
        by_person.setdefault(v.global_id, []).append(v.camera)
    assert len(by_person) == config.people
    assert sum(len(set(c)) > 1 for c in by_person.values()) >= config.people // 2  # walk between cameras
    assert any(len(c) != len(set(c)) for c in by_person.values())  # come back to a camera


def test_visibility_is_the_uncovered_share_of_the_box():
    """Hand case: a near person covers the right half of a far person's box, except its top 10 rows."""
    config = SceneConfig(cameras=1, width=400, height=200, fps=1.0, seconds=1)
    look = CameraLook(0, False, 1.0, (0.0, 0.0), 100.0, 100.0, 0.5, (1.0, 1.0, 1.0), 0.0, 0.0)
    crop = np.full((100, 50, 3), 200, np.uint8)
    people = {"far": {1: [crop]}, "near": {1: [crop]}}
    # far: box x 100..150, y 50..150; near (drawn later): x 125..175, y 60..160
    # covered: x 125..150 (25) x y 60..150 (90) = 2250 of 50 x 100 = 5000 pixels -> visible 0.55
    far = Visit(1, "far", 0, 1, 0.0, 1.0, (125.0, 125.0), (150.0, 150.0), 1.0)
    near = Visit(2, "near", 0, 1, 0.0, 1.0, (150.0, 150.0), (160.0, 160.0), 1.0)
    background = np.zeros((200, 400, 3), np.uint8)
    image, truth = render_frame(0, 0, config, look, background, [far, near], people, np.zeros((200, 400, 3), np.float32))
    vis = {t.global_id: t.visibility for t in truth}
    assert vis[2] == pytest.approx(1.0)
    assert vis[1] == pytest.approx(1 - 25 * 90 / 5000)
    boxes = {t.global_id: t.box for t in truth}
    assert boxes[1] == (100.0, 50.0, 50.0, 100.0)
    assert image[100, 110].mean() > 150 and image[100, 300].mean() == 0  # drawn where the box says, nowhere else


def test_strip_padding_removes_letterbox_columns():
    crop = np.zeros((128, 64, 3), np.uint8)
    crop[:, 10:50] = 120
    assert strip_padding(crop).shape == (128, 40, 3)


@pytest.mark.parametrize("changes, match", [({"cameras": 7}, "1-6"), ({"width": 100}, "too small"), ({"fps": 0}, "fps")])
def test_bad_scene_configs_fail_in_one_line(tmp_path, changes, match):
    with pytest.raises(ConfigError, match=match):
        generate(SceneConfig(**changes), tmp_path / "s", progress=False)
