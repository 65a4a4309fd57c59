"""Detectors: the shipped FastestDet on real footage, YOLO decoding and letterboxing on
hand-made tensors, MOTChallenge det.txt, filters and NMS."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from adfl_deploy.errors import ConfigError
from adfl_deploy.tracking.detections import Detections, nms
from adfl_deploy.tracking.detectors import DetectionFilter, FastestDet, MotDetections, YoloOnnx, decode_yolo, letterbox


def video_frame(shared, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(shared / "data" / "videos" / "one-by-one-person-detection.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_fastestdet_finds_the_one_person_and_nobody_in_the_empty_room(shared):
    detector = FastestDet()
    assert len(detector(video_frame(shared, 0))) == 0  # the room is empty at the start
    dets = detector(video_frame(shared, 348))
    assert len(dets) == 1 and dets.class_id[0] == 0
    (x1, y1, x2, y2), h = dets.xyxy[0], 432
    assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= h
    assert (y2 - y1) > 0.6 * h and (y2 - y1) > 1.5 * (x2 - x1)  # a standing person, most of the frame tall


def _candidates(rows: list[list[float]], width: int, n: int = 12) -> np.ndarray:
    """Real heads have many more candidates than channels; pad with empty (all-zero) ones.
    Zero scores give class 0 at confidence 0, which the decoder keeps and the filters drop."""
    out = np.zeros((n, width), np.float32)
    out[: len(rows)] = rows
    return out


def test_yolo_decoding_v5_and_v8():
    # a person (class 0) and a car (class 2); v5 rows are cx, cy, w, h, obj, classes
    v5 = _candidates([[50, 40, 20, 60, 0.9, 0.8, 0.1, 0.1], [10, 10, 4, 4, 0.9, 0.1, 0.1, 0.8]], 8)
    d = decode_yolo(v5)
    d = d[np.flatnonzero(d.confidence > 0)]
    np.testing.assert_allclose(d.xyxy, [[40, 10, 60, 70]])
    np.testing.assert_allclose(d.confidence, [0.72])
    v8 = _candidates([[50, 40, 20, 60, 0.8, 0.1, 0.1], [10, 10, 4, 4, 0.1, 0.1, 0.8]], 7).T  # (4 + C, N)
    d = decode_yolo(v8)
    d = d[np.flatnonzero(d.confidence > 0)]
    np.testing.assert_allclose(d.xyxy, [[40, 10, 60, 70]])
    np.testing.assert_allclose(d.confidence, [0.8])


def test_letterbox_keeps_the_aspect_ratio():
    img, scale, (px, py) = letterbox(np.zeros((100, 200, 3), np.uint8), (320, 320))
    assert img.shape == (320, 320, 3) and scale == pytest.approx(1.6) and (px, py) == (0, 80)
    assert (img[:80] == 114).all() and (img[80:240] == 0).all()


def test_yolo_onnx_end_to_end_maps_boxes_back_to_the_frame(tmp_path):
    # a stand-in YOLOv8 head: a constant (1, 4 + 3, 12) output for a 64x64 input
    head = np.zeros((1, 7, 12), np.float32)
    head[0, :, 0] = [32, 32, 20, 10, 0.9, 0.0, 0.0]  # person at the centre
    head[0, :, 1] = [5, 5, 2, 2, 0.0, 0.0, 0.9]  # something else
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["out"], value=numpy_helper.from_array(head))],
        "fake_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 7, 12])],
    )
    path = tmp_path / "yolo.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    detector = YoloOnnx(path, DetectionFilter(min_confidence=0.5, min_height=1, min_width=1))
    dets = detector(np.zeros((32, 64, 3), np.uint8))  # letterboxed with 16 px of padding above
    np.testing.assert_allclose(dets.xyxy, [[22, 11, 42, 21]])


def test_mot_det_txt(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,60,0.9,-1,-1,-1\n1,-1,100,20,30,60,0.3,-1,-1,-1\n3,-1,5,5,20,40,0.8,-1,-1,-1\n")
    dets = MotDetections(path, DetectionFilter(min_confidence=0.5))
    np.testing.assert_allclose(dets(1).xyxy, [[10, 20, 40, 80]])
    assert len(dets(2)) == 0 and len(dets(3)) == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2,3\n")
    with pytest.raises(ConfigError, match="at least 7 columns"):
        MotDetections(bad)


def test_filters_size_and_region_of_interest():
    dets = Detections(
        np.array([[0, 0, 10, 50], [0, 0, 10, 10], [50, 0, 60, 50]], np.float32),
        np.array([0.9, 0.9, 0.9], np.float32),
        np.zeros(3, np.int64),
    )
    mask = np.zeros((100, 100), np.uint8)
    mask[:, :30] = 1  # only the left of the image counts
    kept = DetectionFilter(min_height=20, min_width=5).apply(dets, mask)
    np.testing.assert_array_equal(kept.xyxy, [[0, 0, 10, 50]])


def test_nms_keeps_the_most_confident_of_overlapping_boxes():
    dets = Detections(
        np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32),
        np.array([0.6, 0.9, 0.5], np.float32),
        np.zeros(3, np.int64),
    )
    kept = nms(dets, 0.5)
    np.testing.assert_allclose(kept.confidence, [0.9, 0.5])
