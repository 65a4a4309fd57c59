"""The motion detector on a hand-made video: a static background and one walking rectangle."""

from __future__ import annotations

import numpy as np

from adfl_deploy.tracking.detectors import MotionDetector


def test_a_moving_upright_blob_is_found_where_it_is():
    rng = np.random.default_rng(0)
    background = rng.integers(60, 90, (240, 320, 3)).astype(np.uint8)
    person = rng.integers(150, 255, (120, 40, 3)).astype(np.uint8)  # a textured 40 x 120 "person"
    detector = MotionDetector()
    for _ in range(30):  # the empty scene first, as a camera sees it before anyone walks in
        detector(background)
    found = []
    for t in range(40):
        frame = background.copy()
        x = 20 + 6 * t
        frame[80:200, x : x + 40] = person
        found.append((detector(frame), x))
    hits = 0
    for dets, x in found:
        if len(dets) == 1:
            x1, y1, x2, y2 = dets.xyxy[0]
            hits += abs(x1 - x) <= 6 and abs(x2 - (x + 40)) <= 6 and abs(y1 - 80) <= 6 and abs(y2 - 200) <= 6
    assert hits >= 0.9 * len(found)


def test_a_static_scene_gives_no_detections_and_flat_blobs_are_ignored():
    background = np.full((240, 320, 3), 80, np.uint8)
    detector = MotionDetector()
    for _ in range(20):
        assert len(detector(background)) == 0
    frame = background.copy()
    frame[100:120, 50:250] = 220  # wide and flat: a car or a shadow, not a person
    assert len(detector(frame)) == 0


def test_each_camera_gets_its_own_background_model_but_networks_are_shared():
    from adfl_deploy.pipeline.core import PipelineConfig, camera_detectors

    motion = camera_detectors(PipelineConfig(detector="motion"), ["a", "b", "c"])
    assert len({id(d) for d in motion.values()}) == 3
    network = camera_detectors(PipelineConfig(detector="fastestdet"), ["a", "b", "c"])
    assert len({id(d) for d in network.values()}) == 1
