"""The per-camera tracker on scripted boxes with known identities."""

from __future__ import annotations

import numpy as np

from adfl_deploy.tracking import kalman
from adfl_deploy.tracking.detections import Detections, iou_matrix
from adfl_deploy.tracking.tracker import ByteTracker


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
