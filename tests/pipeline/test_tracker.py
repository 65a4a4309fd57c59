"""The per-camera tracker on scripted boxes with known identities."""

from __future__ import annotations

import numpy as np

from adfl_deploy.tracking import kalman
from adfl_deploy.tracking.detections import Detections, iou_matrix
from adfl_deploy.tracking.tracker import ByteTracker, TrackerConfig


def box(cx: float, cy: float = 200, w: float = 40, h: float = 120) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def far(cx: float) -> list[float]:
    return box(cx, cy=175, w=32, h=96)


def frame(boxes: list[list[float]], conf: list[float]) -> Detections:
    n = len(boxes)
    return Detections(np.asarray(boxes, np.float32).reshape(n, 4), np.asarray(conf, np.float32), np.zeros(n, np.int64))


def test_iou_hand_case():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0]])


def test_kalman_learns_a_constant_velocity():
    mean, cov = kalman.initiate(kalman.xyxy_to_xyah(np.array(box(100), np.float32)))
    for t in range(1, 15):
        mean, cov = kalman.predict(mean, cov)
        mean, cov = kalman.update(mean, cov, kalman.xyxy_to_xyah(np.array(box(100 + 5 * t), np.float32)))
    predicted, _ = kalman.predict(mean, cov)
    assert abs(predicted[0] - (100 + 5 * 15)) < 1.0 and abs(predicted[4] - 5) < 0.5


def test_two_people_crossing_with_an_occlusion_keep_their_ids():
    """A walks right, B walks left a little farther from the camera (higher and smaller); they
    overlap mid-way, where B is occluded: detected with low confidence for 4 frames and missed
    for 3. Each person must keep one track id."""
    rng = np.random.default_rng(0)
    tracker = ByteTracker()
    ids_of = {"A": set(), "B": set()}
    for t in range(60):
        a, b = 100 + 6 * t, 460 - 6 * t
        boxes, conf, who = [box(a + rng.normal(0, 1))], [0.9], ["A"]
        if 26 <= t < 30:
            boxes.append(far(b + rng.normal(0, 1)))
            conf.append(0.3)  # occluded: a weak detection
            who.append("B")
        elif not 30 <= t < 33:  # fully hidden for 3 frames
            boxes.append(far(b + rng.normal(0, 1)))
            conf.append(0.9)
            who.append("B")
        if t == 40:
            boxes.append(box(700, 50, 20, 20))  # a one-frame false positive
            conf.append(0.95)
            who.append("FP")
        out = tracker.update(frame(boxes, conf))
        for tid, xyxy in zip(out.tracker_id, out.xyxy):
            match = int(np.argmax(iou_matrix(xyxy[None], np.asarray(boxes, np.float32))[0]))
            ids_of.setdefault(who[match], set()).add(int(tid))
    assert len(ids_of["A"]) == 1 and len(ids_of["B"]) == 1, ids_of
    assert ids_of["A"] != ids_of["B"]
    assert "FP" not in ids_of  # never confirmed, never reported


def test_new_tracks_are_confirmed_after_three_hits():
    tracker = ByteTracker()
    reported = [len(tracker.update(frame([box(100 + t)], [0.9]))) for t in range(4)]
    assert reported == [0, 0, 1, 1]


def test_a_track_starts_only_above_the_new_track_confidence_of_the_detector():
    from adfl_deploy.tracking.tracker import NEW_TRACK_CONFIDENCE, TrackerConfig

    class Scored:  # a detector whose scores run higher: it asks for 0.7
        new_track_confidence = 0.7

    default = TrackerConfig()
    assert default.for_detector(Scored()).new_track_confidence == 0.7
    assert default.for_detector(object()).new_track_confidence == NEW_TRACK_CONFIDENCE == 0.6
    assert TrackerConfig(new_track_confidence=0.5).for_detector(Scored()).new_track_confidence == 0.5  # set wins

    def started(config: TrackerConfig, confidence: float) -> int:
        tracker = ByteTracker(config)
        for _ in range(5):  # one person standing still, confirmed after 3 hits
            tracker.update(frame([box(300)], [confidence]))
        return len(tracker.tracks)

    assert started(default, 0.65) == 1  # 0.65 >= 0.6
    assert started(default.for_detector(Scored()), 0.65) == 0  # 0.65 < 0.7: never starts
    assert started(default.for_detector(Scored()), 0.72) == 1


def test_fastestdet_asks_the_tracker_for_a_higher_new_track_confidence_than_motion():
    from adfl_deploy.tracking.detectors import FastestDet, MotionDetector
    from adfl_deploy.tracking.tracker import TrackerConfig

    assert TrackerConfig().for_detector(FastestDet).new_track_confidence == 0.7
    assert TrackerConfig().for_detector(MotionDetector()).new_track_confidence == 0.6


def test_the_colour_term_is_on_unless_the_detector_or_the_config_says_otherwise():
    from adfl_deploy.tracking.detectors import FastestDet, MotionDetector

    class IouOnly:
        appearance_weight = 0.0

    assert TrackerConfig().for_detector(FastestDet).appearance_weight == 2.0
    assert TrackerConfig().for_detector(MotionDetector()).appearance_weight == 2.0
    assert TrackerConfig().for_detector(IouOnly()).appearance_weight == 0.0  # a detector's own word
    assert TrackerConfig(appearance_weight=0.0).for_detector(FastestDet).appearance_weight == 0.0  # the config's
    assert ByteTracker().config.appearance_weight == 2.0  # no detector (ground-truth boxes): the default


def _draw(people: list[tuple[float, tuple, tuple]]) -> np.ndarray:
    """A grey frame with people drawn back to front: (centre x, shirt BGR, trousers BGR)."""
    image = np.full((400, 500, 3), 128, np.uint8)
    for cx, shirt, trousers in people:
        x1, y1, x2, y2 = (int(v) for v in box(cx))
        image[y1 : (y1 + y2) // 2, x1:x2] = shirt
        image[(y1 + y2) // 2 : y2, x1:x2] = trousers
    return image


def test_colour_signatures_are_near_for_the_same_clothes_and_far_for_others():
    from adfl_deploy.tracking import appearance

    red_blue, green_yellow = ((0, 0, 200), (200, 0, 0)), ((0, 200, 0), (0, 220, 220))
    image = _draw([(100, *red_blue), (250, *green_yellow), (400, *red_blue)])
    sig = appearance.signatures(image, np.array([box(100), box(250), box(400), [600, 0, 650, 50]], np.float32))
    d = appearance.distances(sig[:3], sig)
    assert d[0, 2] < 1e-6 and d[0, 1] > 0.99  # same clothes elsewhere: 0; no colour in common: 1
    np.testing.assert_allclose(np.linalg.norm(sig[:3], axis=1), 1.0, atol=1e-6)
    assert not sig[3].any() and d[0, 3] == 1.0  # a box outside the frame: no signature, far from all


def test_appearance_keeps_ids_where_two_people_meet_and_turn_back():
    """A (red/blue) walks right, B (green/yellow) walks left; they meet, stand together two
    frames (A in front), then each turns back the way they came. The Kalman filter still
    carries each track's old velocity, so IoU alone gives A's id to the box moving on to the
    right (B); with the colour term each id stays with its clothes. Signatures are learnt only
    from boxes nobody overlaps, so the two frames together teach neither track the other's."""
    a_clothes, b_clothes = ((0, 0, 200), (200, 0, 0)), ((0, 200, 0), (0, 220, 220))
    path_a = [100 + 10 * t for t in range(10)] + [200, 200] + [190 - 10 * t for t in range(8)]
    path_b = [300 - 10 * t for t in range(10)] + [200, 200] + [210 + 10 * t for t in range(8)]

    def run(config: TrackerConfig) -> dict[str, set]:
        tracker = ByteTracker(config)
        ids_of: dict[str, set] = {"A": set(), "B": set()}
        for xa, xb in zip(path_a, path_b):
            image = _draw([(xb, *b_clothes), (xa, *a_clothes)])
            out = tracker.update(frame([box(xa), box(xb)], [0.9, 0.9]), image)
            if xa == xb:  # standing together: the boxes cannot say who is who
                continue
            for tid, xyxy in zip(out.tracker_id, out.xyxy):
                who = "A" if abs((xyxy[0] + xyxy[2]) / 2 - xa) <= abs((xyxy[0] + xyxy[2]) / 2 - xb) else "B"
                ids_of[who].add(int(tid))
        return ids_of

    iou_only = run(TrackerConfig(appearance_weight=0.0))
    assert len(iou_only["A"]) > 1 or iou_only["A"] & iou_only["B"], iou_only  # the hard case: IoU swaps them
    # the first frame apart, A's track has IoU 1.0 with B's box (half of it A's colours) and 0.33
    # with A's: the colour term must outweigh 0.67 of IoU with half a colour distance
    with_colour = run(TrackerConfig(appearance_weight=2.0))
    assert len(with_colour["A"]) == 1 and len(with_colour["B"]) == 1 and with_colour["A"] != with_colour["B"], with_colour


def test_appearance_settings_out_of_range_are_one_line_errors():
    import pytest

    from adfl_deploy.errors import ConfigError

    with pytest.raises(ConfigError, match="appearance_weight"):
        TrackerConfig(appearance_weight=-1.0)
    with pytest.raises(ConfigError, match="appearance_update"):
        TrackerConfig(appearance_update=1.5)


def test_coasting_reports_predicted_boxes_and_loses_nothing():
    """Detections on even frames only, a person walking 4 px a frame: on odd frames ``coast``
    reports the track where the motion model puts it (within a pixel of the truth once the
    velocity is learnt), under the same id; a missing detection counts as lost, coasting not."""
    tracker = ByteTracker(TrackerConfig(max_lost_frames=2))
    ids = set()
    for t in range(40):
        x = 100 + 4 * t
        out = tracker.update(frame([box(x)], [0.9])) if t % 2 == 0 else tracker.coast()
        if t >= 20:
            assert len(out) == 1
            ids.add(int(out.tracker_id[0]))
            assert abs((out.xyxy[0, 0] + out.xyxy[0, 2]) / 2 - x) < 1.0, t
    assert len(ids) == 1
    for _ in range(10):
        tracker.coast()
    assert tracker.tracks and tracker.tracks[0].lost == 0  # coasted frames are not misses
    for _ in range(3):
        tracker.update(frame([], []))
    assert not tracker.tracks  # three detected frames without it: gone (max_lost_frames 2)
