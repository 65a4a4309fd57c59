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
from adfl_deploy.tracking.detectors import (
    DetectionFilter,
    FastestDet,
    MotDetections,
    YoloOnnx,
    decode_yolo,
    letterbox,
    pad_geometry,
)


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


def test_fastestdet_pad_geometry_by_hand():
    # a 768x432 (16:9) frame into the 352x352 input
    assert pad_geometry(768, 432, 352, None) == (352, 352, 0, 0)  # squeezed: 352/768 across, 352/432 down
    # padded to 4:3 = 768x576: 352/576 down, so 432 rows -> 264, the 88 spare rows split 44/44
    assert pad_geometry(768, 432, 352, 4 / 3) == (352, 264, 0, 44)
    assert pad_geometry(768, 432, 352, 4 / 3, centre=False) == (352, 264, 0, 0)
    # padded to 1:1 = 768x768: 432 rows -> 198, 154 spare rows split 77/77
    assert pad_geometry(768, 432, 352, 1.0) == (352, 198, 0, 77)
    # a portrait 432x768 frame padded to 1:1 gets its padding beside it
    assert pad_geometry(432, 768, 352, 1.0) == (198, 352, 77, 0)
    with pytest.raises(ConfigError, match="pad_to_aspect"):
        pad_geometry(768, 432, 352, 0.0)


def _fastestdet_map(cells: list[tuple[int, int, float, float]], grid: int = 22) -> np.ndarray:
    """A FastestDet output ``[85, G, G]`` with a confident person at each (gx, gy, w, h): w and h
    fractions of the input, the box centred on the cell's corner (tanh(0) = 0 offsets)."""
    out = np.zeros((85, grid, grid), np.float32)
    for gx, gy, w, h in cells:
        out[0, gy, gx] = 1.0  # objectness
        out[3, gy, gx] = np.log(w / (1 - w))  # sigmoid -> w
        out[4, gy, gx] = np.log(h / (1 - h))
        out[5, gy, gx] = 1.0  # class 0, the person
    return out


def test_fastestdet_maps_an_input_box_back_through_the_padding_by_hand():
    frame = np.zeros((432, 768, 3), np.uint8)
    # cell (11, 11) of the 22x22 map: centre (176, 176) input px; 0.125 x 352 = 44 wide, 0.25 x 352 = 88 tall
    out = _fastestdet_map([(11, 11, 0.125, 0.25)])
    loose = DetectionFilter(min_confidence=0.5, min_height=1, min_width=1)
    pad43 = FastestDet(filters=loose, pad_to_aspect=4 / 3, input_size=None)
    blob, meta = pad43.prepare(frame)
    assert blob.shape == (352, 352, 3) and meta == pytest.approx((352 / 768, 264 / 432, 0, 44))
    # x: 176 / (352/768) = 384, width 44 / (352/768) = 96; y: (176 - 44) / (264/432) = 216, height 88 * 432/264 = 144
    np.testing.assert_allclose(pad43.finish(out, frame.shape, meta, None).xyxy, [[336, 144, 432, 288]], atol=1e-3)
    # full letterbox, black padding: the frame occupies rows 77..275; y = (176 - 77) * 768/352 = 216, height 192
    square = FastestDet(filters=loose, pad_to_aspect=1.0, pad_value=0, input_size=None)
    blob, meta = square.prepare(np.full((432, 768, 3), 200, np.uint8))
    assert (blob[:77] == 0).all() and (blob[275:] == 0).all() and (blob[77:275] == 200).all()  # uint8 HWC
    np.testing.assert_allclose(square.finish(out, frame.shape, meta, None).xyxy, [[336, 120, 432, 312]], atol=1e-3)
    # no padding, as before the option: x 176 * 768/352 = 384 +- 48, y 176 * 432/352 = 216 +- 54
    stretch = FastestDet(filters=loose, pad_to_aspect=None, input_size=None)
    blob, meta = stretch.prepare(frame)
    np.testing.assert_allclose(stretch.finish(out, frame.shape, meta, None).xyxy, [[336, 162, 432, 270]], atol=1e-3)


@pytest.mark.parametrize("aspect", [1.0, 4 / 3, None])
def test_fastestdet_padding_keeps_a_person_shaped_box_through_the_round_trip(aspect):
    """A 48x144 person (w/h 1/3) in a 768x432 frame: put into input pixels the way the frame is,
    written into a network output, decoded by the detector: the same box, the same 1/3. In the
    input, a full letterbox keeps the 1/3; 4:3 makes it 0.75x as wide, no padding 0.5625x."""
    detector = FastestDet(
        filters=DetectionFilter(min_confidence=0.5, min_height=1, min_width=1), pad_to_aspect=aspect, input_size=None
    )
    _, meta = detector.prepare(np.zeros((432, 768, 3), np.uint8))
    sx, sy, left, top = meta
    # a box centred on input pixel (176, 176) (cell 11, 11): where is it in the frame, how big
    cx, cy = (176 - left) / sx, (176 - top) / sy
    w_in, h_in = 48 * sx, 144 * sy  # the person's size in input pixels
    assert (w_in / h_in) / (1 / 3) == pytest.approx({1.0: 1.0, 4 / 3: 0.75, None: 432 / 768}[aspect], rel=1e-9)
    out = _fastestdet_map([(11, 11, w_in / 352, h_in / 352)])
    ((x1, y1, x2, y2),) = detector.finish(out, (432, 768, 3), meta, None).xyxy
    np.testing.assert_allclose([x1, y1, x2, y2], [cx - 24, cy - 72, cx + 24, cy + 72], atol=1e-3)
    assert (x2 - x1) / (y2 - y1) == pytest.approx(1 / 3, rel=1e-4)


def test_fastestdet_on_a_16_by_9_input_maps_a_box_back_by_hand():
    # 640x352 input, 40x22 map (stride 16). A 768x432 frame letterboxed into it: padded to
    # 640/352 = 1.818 it is 785.45 wide, so it lands 626 x 352 at left (640 - 626) // 2 = 7
    frame = np.zeros((432, 768, 3), np.uint8)
    detector = FastestDet(filters=DetectionFilter(min_confidence=0.5, min_height=1, min_width=1), input_size=(640, 352))
    blob, meta = detector.prepare(frame)
    assert blob.shape == (352, 640, 3) and meta == pytest.approx((626 / 768, 352 / 432, 7, 0))
    # cell (20, 11): centre (320, 176) input px; sizes are fractions of 352 (the trained side),
    # not of 640: 0.125 x 352 = 44 wide, 0.25 x 352 = 88 tall
    out = _fastestdet_map([(20, 11, 0.125, 0.25)], grid=22)
    out = np.concatenate([out, np.zeros((85, 22, 18), np.float32)], axis=2)  # 22 rows x 40 columns
    x, w = (320 - 7) * 768 / 626, 44 * 768 / 626
    y, h = 176 * 432 / 352, 88 * 432 / 352
    np.testing.assert_allclose(
        detector.finish(out, frame.shape, meta, None).xyxy, [[x - w / 2, y - h / 2, x + w / 2, y + h / 2]], atol=1e-3
    )


def test_fastestdet_at_640x352_finds_the_same_one_person_on_real_footage(shared):
    square, wide = FastestDet(input_size=None), FastestDet(input_size=(640, 352))
    assert len(wide(video_frame(shared, 0))) == 0  # the empty room
    (a,), (b,) = square(video_frame(shared, 348)).xyxy, wide(video_frame(shared, 348)).xyxy
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    iou = inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter)
    assert iou > 0.7, (a, b)


def test_fastestdet_area_and_linear_resizing_find_the_same_person_on_real_footage(shared):
    """The letterbox resize is what the interpolation says (against OpenCV called directly), and
    both find the one person of the real clip in the same place."""
    frame = video_frame(shared, 348)
    boxes = {}
    for name, flag in (("area", cv2.INTER_AREA), ("linear", cv2.INTER_LINEAR)):
        detector = FastestDet(interpolation=name)
        blob, _ = detector.prepare(frame)
        assert np.array_equal(blob, cv2.resize(frame, (512, 288), interpolation=flag))  # 16:9 fills 512x288
        (boxes[name],) = detector(frame).xyxy
    a, b = boxes["area"], boxes["linear"]
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    assert inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter) > 0.9, (a, b)
    with pytest.raises(ConfigError, match="interpolation"):
        FastestDet(interpolation="cubic")
    assert FastestDet().interpolation == cv2.INTER_LINEAR  # the default since 2026-12-02


@pytest.mark.parametrize("size", [(352, 200), (641, 352), (0, 352)])
def test_fastestdet_input_size_not_a_multiple_of_32_is_one_line(size):
    with pytest.raises(ConfigError, match="multiples of 32"):
        FastestDet(input_size=size)


def test_fastestdet_at_another_size_by_name():
    from adfl_deploy.tracking.detectors import create_detector, is_detector

    detector = create_detector("fastestdet@640x352")
    assert (detector.input_w, detector.input_h) == (640, 352)
    assert detector.session.get_inputs()[0].shape[1:3] == [352, 640]  # [N, H, W, 3] uint8
    assert (create_detector("fastestdet").input_w, create_detector("fastestdet").input_h) == (512, 288)
    assert is_detector("fastestdet@576x320") and not is_detector("fastestdet@big") and not is_detector("fastestdet@576")
    with pytest.raises(ConfigError, match="multiples of 32"):
        create_detector("fastestdet@641x352")
    with pytest.raises(ConfigError, match="NAME@WIDTHxHEIGHT"):
        create_detector("fastestdet@640")


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
