"""A network's boxes plus a per-camera motion detector's (``fastestdet+motion-half``): which
helper boxes are kept and at what confidence, worked by hand; that kept helper boxes carry an
existing track but never start one; that the shared network still gets every camera's frame
in one call; and how the names resolve."""

from __future__ import annotations

import numpy as np
import pytest

from adfl_deploy.errors import ConfigError
from adfl_deploy.tracking.detections import Detections
from adfl_deploy.tracking.detectors import FastestDet, MotionDetector, create_detector, detect_frames, is_detector
from adfl_deploy.tracking.fusion import HELPER_CONFIDENCE, FusedDetector, fuse
from adfl_deploy.tracking.tracker import ByteTracker, TrackerConfig


def dets(boxes, conf) -> Detections:
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(conf, np.float32), np.zeros(len(conf), np.int64))


def test_helper_boxes_are_kept_only_away_from_network_boxes_and_capped():
    network = dets([[0, 0, 10, 10], [100, 0, 110, 20]], [0.9, 0.6])
    helper = dets(
        [
            [0, 0, 10, 20],  # IoU with [0,0,10,10]: 100 / 200 = 0.5 -> the same person, dropped
            [8, 0, 18, 10],  # IoU 20 / 180 = 0.11 -> kept
            [50, 50, 60, 80],  # overlaps nothing -> kept
        ],
        [0.9, 0.3, 0.8],
    )
    out = fuse(network, helper, max_iou=0.3, cap=0.45)
    np.testing.assert_array_equal(out.xyxy, [[0, 0, 10, 10], [100, 0, 110, 20], [8, 0, 18, 10], [50, 50, 60, 80]])
    np.testing.assert_allclose(out.confidence, [0.9, 0.6, 0.3, 0.45])  # network's untouched, helper's capped
    # a looser overlap limit keeps the half-overlapping box too; a stricter one drops the 0.11 one
    assert len(fuse(network, helper, max_iou=0.6)) == 5
    assert len(fuse(network, helper, max_iou=0.1)) == 3


def test_fusing_with_nothing_on_either_side():
    some = dets([[0, 0, 10, 20]], [0.8])
    assert len(fuse(some, Detections.empty())) == 1
    alone = fuse(Detections.empty(), some)
    np.testing.assert_allclose(alone.confidence, [HELPER_CONFIDENCE])  # capped even with no network box
    assert len(fuse(Detections.empty(), Detections.empty())) == 0


def test_a_capped_helper_box_carries_a_track_but_never_starts_one():
    tracker = ByteTracker(TrackerConfig(new_track_confidence=0.7, appearance_weight=0.0))
    person = np.array([100, 100, 140, 220], np.float32)
    for k in range(4):  # the network sees the person: a confirmed track
        out = tracker.update(fuse(dets([person + [2 * k, 0, 2 * k, 0]], [0.9]), Detections.empty()))
    assert len(out) == 1
    track = int(out.tracker_id[0])
    stranger = [400, 100, 440, 220]
    for k in range(4, 10):  # then only the motion detector sees them, and a stranger elsewhere
        fused = fuse(Detections.empty(), dets([person + [2 * k, 0, 2 * k, 0], stranger], [0.95, 0.95]))
        out = tracker.update(fused)
        assert out.tracker_id.tolist() == [track]  # the person keeps their track; no track for the stranger
    assert len(tracker.tracks) == 1


class FakeNetwork:
    """Boxes from a frame's pixel values; counts its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, frame, roi_mask=None):
        return self.detect_batch([frame], [roi_mask])[0]

    def detect_batch(self, frames, rois):
        self.calls.append(len(frames))
        return [dets([[f[0, 0, 0], 0, f[0, 0, 0] + 10, 30]], [0.8]) for f in frames]


class FakeMotion:
    per_camera = True

    def __init__(self, offset):
        self.offset = offset

    def __call__(self, frame, roi_mask=None):
        x = float(frame[0, 0, 0]) + self.offset
        return dets([[x, 0, x + 10, 30]], [0.9])


def test_fused_detectors_of_several_cameras_share_one_network_call_per_tick():
    network = FakeNetwork()
    offsets = iter([0.0, 50.0, 200.0])
    first = FusedDetector(network, lambda: FakeMotion(next(offsets)))
    cameras = [first, first.for_another_camera(), first.for_another_camera()]
    assert len({id(c.primary) for c in cameras}) == 1 and len({id(c.helper) for c in cameras}) == 3
    frames = [np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30)]
    got = detect_frames([(c, f, None) for c, f in zip(cameras, frames)])
    assert network.calls == [3]  # the three cameras' frames in one network call
    # camera 1's helper box sits on the network's (dropped); cameras 2 and 3's are 50 and 200 px away
    assert [len(d) for d in got] == [1, 2, 2]
    np.testing.assert_allclose(got[1].xyxy[1], [70, 0, 80, 30])
    np.testing.assert_allclose(got[2].confidence, [0.8, HELPER_CONFIDENCE])
    one_by_one = [c(f) for c, f in zip(cameras, frames)]
    for a, b in zip(got, one_by_one):
        np.testing.assert_array_equal(a.xyxy, b.xyxy)


def test_names_resolve_to_a_shared_network_and_a_motion_model_per_camera():
    from adfl_deploy.pipeline.core import PipelineConfig, camera_detectors

    assert is_detector("fastestdet+motion-half") and is_detector("fastestdet@384x224+motion")
    assert not is_detector("fastestdet+nothing")
    made = camera_detectors(PipelineConfig(detector="fastestdet+motion-half"), ["a", "b", "c"])
    assert len({id(d) for d in made.values()}) == 3
    assert len({id(d.primary) for d in made.values()}) == 1 and len({id(d.helper) for d in made.values()}) == 3
    first = made["a"]
    assert isinstance(first.primary, FastestDet) and isinstance(first.helper, MotionDetector)
    assert first.helper.scale == 0.5
    # the tracker's settings and the detection rate are the network's
    assert (first.detect_every, first.new_track_confidence) == (FastestDet.detect_every, FastestDet.new_track_confidence)
    assert TrackerConfig().for_detector(first).new_track_confidence == FastestDet.new_track_confidence


def test_a_per_camera_detector_first_or_an_unknown_part_is_one_line():
    with pytest.raises(ConfigError, match="put it second"):
        create_detector("motion+fastestdet")
    with pytest.raises(ConfigError, match="unknown detector 'nothing'"):
        create_detector("fastestdet+nothing")


def test_tracker_settings_that_would_let_helper_boxes_start_tracks_are_one_line():
    fused = FusedDetector(FakeNetwork(), lambda: FakeMotion(0.0))
    assert TrackerConfig().for_detector(fused).new_track_confidence == 0.6  # the fake network has none: the default
    for bad in (
        TrackerConfig(new_track_confidence=0.4),  # a capped box (0.45) would start a track
        TrackerConfig(high_confidence=0.45),  # it would lead a track in the first round
        TrackerConfig(low_confidence=0.5),  # it would be ignored altogether
    ):
        with pytest.raises(ConfigError, match="helper boxes carry tracks but never lead or start one"):
            bad.for_detector(fused)


def test_a_stateless_helper_is_made_once_and_shared_by_every_camera():
    made = []

    def make():
        made.append(FakeNetwork())  # a network keeps nothing about a camera
        return made[-1]

    first = FusedDetector(FakeNetwork(), make)
    second = first.for_another_camera()
    assert second.helper is first.helper and len(made) == 1
    assert first.name == "FakeNetwork+FakeNetwork"


def test_a_network_path_with_a_plus_in_it_and_names_with_two_pluses(tmp_path):
    folder = tmp_path / "cameras+lobby"
    folder.mkdir()
    (folder / "my+net.onnx").write_bytes(b"")
    assert is_detector(f"{folder / 'my+net.onnx'}+motion-quarter")  # split at the last '+'
    assert not is_detector("fastestdet+motion+motion")
    with pytest.raises(ConfigError, match="one '\\+'"):
        create_detector("fastestdet+motion+motion")
