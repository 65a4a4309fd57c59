"""Detection in batches (issue 16): one call for every camera's frame gives each frame what it
gets alone, box for box; the dynamic-batch copy of a batch-1 file and the FLOP count on
hand-made graphs; a YOLO ONNX whose output is known by hand; the INT8 guard refusing a copy
that no longer finds what FP32 finds."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from adfl_deploy.errors import ConfigError
from adfl_deploy.tracking import onnx_detector as ox
from adfl_deploy.tracking.detectors import (
    FASTESTDET,
    DetectionFilter,
    FastestDet,
    MotionDetector,
    YoloOnnx,
    create_detector,
    detect_frames,
)

VIDEO = ("data", "videos", "one-by-one-person-detection.mp4")


def video_frames(shared, indexes) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(shared.joinpath(*VIDEO)))
    frames, wanted, i = [], set(indexes), 0
    while len(frames) < len(wanted):
        ok, frame = cap.read()
        assert ok
        if i in wanted:
            frames.append(frame)
        i += 1
    cap.release()
    return frames


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert len(x) == len(y)
        np.testing.assert_allclose(x.xyxy, y.xyxy, atol=1e-3)
        np.testing.assert_allclose(x.confidence, y.confidence, atol=1e-5)


def _model(nodes, inputs, outputs, initializers=(), opset=13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "hand_made", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# -- FastestDet: batched == per frame, on real frames ---------------------------------------


@pytest.fixture(scope="module")
def frames(shared):
    # empty room, the person walking in, standing, leaving: some frames with one box, some none
    return video_frames(shared, [0, 120, 200, 260, 300, 348, 400, 520, 700, 900])


def test_fastestdet_network_outputs_of_a_batch_equal_the_shipped_file_frame_by_frame(frames):
    shipped = ort.InferenceSession(str(FASTESTDET), providers=["CPUExecutionProvider"])  # batch 1, as shipped
    detector = FastestDet(max_batch=8, input_size=None)
    assert detector.batched  # the dynamic copy agreed with the file at load
    images = np.stack([cv2.resize(f, (352, 352), interpolation=cv2.INTER_AREA) for f in frames])
    together = detector.infer(images)  # two calls: 8 frames, then 2 (uint8 HWC: the graph scales)
    assert together.shape == (10, 85, 22, 22)
    blobs = np.ascontiguousarray((images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2))
    for i, blob in enumerate(blobs):
        alone = shipped.run(None, {shipped.get_inputs()[0].name: blob[None]})[0][0]
        np.testing.assert_allclose(together[i], alone, atol=1e-4, rtol=1e-4)


def test_fastestdet_batched_detection_equals_per_frame_detection_box_for_box(frames):
    one_by_one = FastestDet(threads=1, max_batch=1)
    batched = FastestDet(threads=2, max_batch=4)
    alone = [one_by_one(f) for f in frames]
    assert sum(len(d) for d in alone) >= 4  # the person is found in several frames
    assert_same(batched.detect_batch(frames), alone)
    # with regions of interest: each frame keeps its own mask
    masks = [np.zeros(f.shape[:2], np.uint8) if i % 2 else None for i, f in enumerate(frames)]
    with_masks = batched.detect_batch(frames, masks)
    for i, (d, a) in enumerate(zip(with_masks, alone)):
        assert len(d) == (0 if i % 2 else len(a))


def test_detect_frames_runs_one_call_per_detector_and_keeps_the_order(frames):
    class Counting:
        def __init__(self, inner):
            self.inner, self.calls = inner, []

        def detect_batch(self, images, rois):
            self.calls.append(len(images))
            return self.inner.detect_batch(images, rois)

    shared_net = Counting(FastestDet())
    jobs = [(shared_net, f, None) for f in frames[:6]]
    found = detect_frames(jobs)
    assert shared_net.calls == [6]  # every camera's frame in one call
    assert_same(found, [FastestDet(threads=1)(f) for f in frames[:6]])


def test_motion_detectors_side_by_side_give_what_they_give_one_after_the_other(shared):
    # two cameras, each with its own background model, fed the same sequence on a pool and in turn
    seq = video_frames(shared, range(300, 360, 2))
    in_turn = [MotionDetector(), MotionDetector()]
    side_by_side = [MotionDetector(), MotionDetector()]
    boxes = 0
    with ThreadPoolExecutor(2) as pool:
        for i, frame in enumerate(seq):
            other = seq[-1 - i]
            expected = [in_turn[0](frame), in_turn[1](other)]
            got = detect_frames([(side_by_side[0], frame, None), (side_by_side[1], other, None)], pool)
            assert_same(got, expected)
            boxes += sum(len(d) for d in expected)
    assert boxes > 0  # the walking person was found


# -- the dynamic-batch copy and the FLOP count on hand-made graphs --------------------------------


def test_dynamic_batch_copy_of_a_channel_shuffle_baked_at_batch_1():
    # ShuffleNet's channel shuffle as exported at batch 1: [1, 4, 2, 2] -> [2, 2, 4] -> swap -> [2, -1, 2, 2, 2]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2])
    shapes = [
        numpy_helper.from_array(np.array([2, 2, 4], np.int64), "s1"),
        numpy_helper.from_array(np.array([2, -1, 2, 2, 2], np.int64), "s2"),
        numpy_helper.from_array(np.array(1, np.int64), "one"),
    ]
    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["a"]),
        helper.make_node("Transpose", ["a"], ["b"], perm=[1, 0, 2]),
        helper.make_node("Reshape", ["b", "s2"], ["c"]),
        helper.make_node("Gather", ["c", "one"], ["y"], axis=0),  # the odd channels
    ]
    model = _model(nodes, [x], [y], shapes)
    assert ox.batch_size(model) == 1
    dynamic = ox.with_dynamic_batch(model)
    assert ox.batch_size(dynamic) is None
    batch = np.arange(3 * 16, dtype=np.float32).reshape(3, 4, 2, 2)
    out = ort.InferenceSession(dynamic.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": batch})[0]
    np.testing.assert_array_equal(out, batch[:, 1::2])  # by hand: channels 1 and 3 of every image
    fixed = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert ox.batch_check(fixed, ort.InferenceSession(dynamic.SerializeToString()), batch) is None


def _shuffle(src: str, dst: str, channels: int, side: int, tag: str) -> tuple[list, list]:
    """ShuffleNet's channel shuffle as exported for a square ``side``: [1, C, s, s] -> [C/2, 2,
    s*s] -> swap -> [2, -1, C/2, s, s] -> the odd channels (Gather 1)."""
    shapes = [
        numpy_helper.from_array(np.array([channels // 2, 2, side * side], np.int64), f"{tag}_s1"),
        numpy_helper.from_array(np.array([2, -1, channels // 2, side, side], np.int64), f"{tag}_s2"),
    ]
    nodes = [
        helper.make_node("Reshape", [src, f"{tag}_s1"], [f"{tag}_a"]),
        helper.make_node("Transpose", [f"{tag}_a"], [f"{tag}_b"], perm=[1, 0, 2]),
        helper.make_node("Reshape", [f"{tag}_b", f"{tag}_s2"], [f"{tag}_c"]),
        helper.make_node("Gather", [f"{tag}_c", "one"], [dst], axis=0),
    ]
    return nodes, shapes


def test_input_size_copy_of_channel_shuffles_baked_at_two_scales():
    # a 64x64 graph: shuffle at 64, 2x2 max pool, shuffle at 32; rewritten for 96 wide x 64 tall
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 64, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 32, 32])
    first, s1 = _shuffle("x", "p", 4, 64, "full")
    second, s2 = _shuffle("q", "y", 2, 32, "half")
    pool = helper.make_node("MaxPool", ["p"], ["q"], kernel_shape=[2, 2], strides=[2, 2])
    one = numpy_helper.from_array(np.array(1, np.int64), "one")
    model = _model([*first, pool, *second], [x], [y], [*s1, *s2, one])
    wide = ox.with_input_size(model, 96, 64)
    assert [d.dim_value for d in wide.graph.output[0].type.tensor_type.shape.dim] == [1, 1, 32, 48]
    image = np.random.default_rng(0).normal(size=(1, 4, 64, 96)).astype(np.float32)
    out = ort.InferenceSession(wide.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": image})[0]
    # by hand: odd channels (1, 3), 2x2 max, then the odd one of those two (channel 3)
    odd = image[:, 1::2]
    pooled = odd.reshape(1, 2, 32, 2, 48, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(out, pooled[:, 1::2])
    # and then any batch
    both = ox.with_dynamic_batch(wide)
    batch = np.concatenate([image, -image])
    out = ort.InferenceSession(both.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": batch})[0]
    np.testing.assert_array_equal(out[0], pooled[0, 1::2])
    with pytest.raises(ConfigError, match="multiples of 32"):
        ox.with_input_size(model, 80, 64)


def test_batch_check_refuses_a_copy_that_mixes_frames():
    # a "model" that subtracts the batch mean: each frame's output depends on the others
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[0], keepdims=1), helper.make_node("Sub", ["x", "m"], ["y"])]
    session = ort.InferenceSession(_model(nodes, [x], [y]).SerializeToString(), providers=["CPUExecutionProvider"])
    reason = ox.batch_check(session, session, np.array([[1, 2], [3, 5]], np.float32))
    assert reason is not None and "differs" in reason


def test_flop_count_of_convolutions_and_a_matmul_by_hand():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 5, 7])
    weights = [
        numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w1"),  # 3 -> 8, 3x3, pad 1: 10x10 out
        numpy_helper.from_array(np.zeros((8, 1, 3, 3), np.float32), "w2"),  # depthwise 3x3, stride 2: 5x5 out
        numpy_helper.from_array(np.zeros((5, 7), np.float32), "m"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w2"], ["b"], group=8, strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("MatMul", ["b", "m"], ["y"]),
    ]
    model = _model(nodes, [x], [y], weights)
    macs = 8 * 10 * 10 * 3 * 9 + 8 * 5 * 5 * 9 + 8 * 5 * 7 * 5  # out elements x (inputs per output)
    assert ox.forward_flops(model) == 2 * macs
    assert ox.forward_flops(model, batch=4) == 8 * macs


# -- a YOLO ONNX whose output is known by hand --------------------------------------------------------


def _tiny_yolo(layout: str, tmp_path, batch="N"):
    """Input [B, 3, 64, 64]; one person candidate whose centre x is 20 + 20 x (mean of the red
    input channel) with cy 30, w 10, h 20, score 0.9 (v8) or objectness 0.9 x class 0.8 (v5);
    the other 11 candidates empty."""
    n, c = 12, 2  # candidates, classes
    base = np.zeros((n, 5 + c if layout == "v5" else 4 + c), np.float32)
    base[0, :4] = [20, 30, 10, 20]
    base[0, 4:] = [0.9, 0.8, 0.1] if layout == "v5" else [0.9, 0.1]
    slope = np.zeros_like(base)
    slope[0, 0] = 20
    if layout == "v8":
        base, slope = base.T, slope.T
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 64, 64])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, *base.shape])
    init = [
        numpy_helper.from_array(base[None], "base"),
        numpy_helper.from_array(slope[None], "slope"),
        numpy_helper.from_array(np.array([0], np.int64), "c0"),
        numpy_helper.from_array(np.array([1], np.int64), "c1"),
        numpy_helper.from_array(np.array([1], np.int64), "axis"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "column"),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], axes=[2, 3], keepdims=1),  # [B, 3, 1, 1]
        helper.make_node("Slice", ["mean", "c0", "c1", "axis"], ["red"]),  # [B, 1, 1, 1]
        helper.make_node("Reshape", ["red", "column"], ["r"]),  # [B, 1, 1]
        helper.make_node("Mul", ["r", "slope"], ["moved"]),
        helper.make_node("Add", ["base", "moved"], ["out"]),
    ]
    path = tmp_path / f"yolo-{layout}.onnx"
    onnx.save(_model(nodes, [x], [y], init), path)
    return path


@pytest.mark.parametrize("layout", ["v5", "v8"])
def test_yolo_onnx_layout_read_from_the_file_and_boxes_by_hand(layout, tmp_path):
    detector = YoloOnnx(_tiny_yolo(layout, tmp_path), DetectionFilter(min_confidence=0.5, min_height=1, min_width=1))
    assert detector.layout == layout and detector.size == (64, 64) and detector.batched
    red, blue = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
    red[..., 2] = 255  # BGR: the model sees red = 1.0 -> cx = 40
    blue[..., 0] = 255  # red = 0 -> cx = 20
    score = 0.9 * 0.8 if layout == "v5" else 0.9
    found = detector.detect_batch([red, blue, red])
    for dets, cx in zip(found, [40, 20, 40]):
        np.testing.assert_allclose(dets.xyxy, [[cx - 5, 20, cx + 5, 40]], atol=1e-4)
        np.testing.assert_allclose(dets.confidence, [score], atol=1e-6)
    # a 128x64 frame is letterboxed to 64x64 at scale 0.5 with 16 px of grey on each side
    tall = np.zeros((128, 64, 3), np.uint8)
    tall[..., 2] = 255
    mean_red = (32 * 64 * 1.0 + 32 * 64 * 114 / 255) / (64 * 64)  # picture half, grey half
    cx = 20 + 20 * mean_red  # network pixels; the picture sits at x 16..48 -> frame x = (cx - 16) / 0.5
    np.testing.assert_allclose(detector(tall).xyxy, [[(cx - 5 - 16) * 2, 40, (cx + 5 - 16) * 2, 80]], atol=1e-3)


def test_yolo_onnx_of_batch_1_gets_a_batched_copy(tmp_path):
    detector = YoloOnnx(_tiny_yolo("v8", tmp_path, batch=1), DetectionFilter(min_confidence=0.5, min_height=1, min_width=1))
    assert detector.batched  # the Reshape [-1, 1, 1] already follows the batch; the copy agreed
    frames = [np.full((64, 64, 3), v, np.uint8) for v in (0, 128, 255)]
    assert_same(detector.detect_batch(frames), [detector(f) for f in frames])


def test_yolo_onnx_that_is_not_a_yolo_head_is_one_line(tmp_path):
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])
    nodes = [helper.make_node("ReduceMean", ["images"], ["out"], axes=[2, 3], keepdims=0)]
    path = tmp_path / "classifier.onnx"
    onnx.save(_model(nodes, [x], [y]), path)
    with pytest.raises(ConfigError, match=r"expected one float32 input") as err:
        create_detector(str(path))
    assert "\n" not in str(err.value)


# -- INT8 behind its guard ----------------------------------------------------------------------------


@pytest.mark.slow
def test_int8_guard_keeps_a_good_calibration_and_refuses_a_bad_one(shared):
    frames = video_frames(shared, range(0, 1390, 10))
    calibration, held_out = frames[0::2][:24], frames[1::2]
    detector = FastestDet()
    reference = detector.detect_batch(held_out)
    assert sum(len(d) for d in reference) >= 20  # the person is there in many held-out frames
    int8 = detector.quantized(calibration, held_out, tolerance=0.05)
    assert int8.precision == "int8" and int8.int8_report["agreement"] >= 0.95
    # what the guard measured, checked on its own: the INT8 copy's boxes against FP32's
    found = int8.detect_batch(held_out)
    assert ox.match_rate(reference, found)["recall"] == int8.int8_report["recall"]
    # calibrated on black frames, every activation range collapses: the copy finds nothing
    with pytest.raises(ox.AccuracyError, match="INT8 refused") as err:
        detector.quantized([np.zeros_like(frames[0])] * 8, held_out, tolerance=0.05)
    assert "\n" not in str(err.value)
    # no tolerance at all cannot be met by a copy that loses even one box; a full one always is
    detector.quantized(calibration, held_out[:3], tolerance=1.0)


def test_match_rate_by_hand():
    from adfl_deploy.tracking.detections import Detections

    def d(*boxes):
        return Detections(
            np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.float32), np.zeros(len(boxes), np.int64)
        )

    reference = [d([0, 0, 10, 10], [20, 20, 30, 30]), d(), d([0, 0, 10, 10])]
    candidate = [d([1, 0, 11, 10]), d([5, 5, 9, 9]), d([50, 50, 60, 60])]  # IoU 9/11 match; a miss; wrong place
    rate = ox.match_rate(reference, candidate)
    assert rate["recall"] == pytest.approx(1 / 3) and rate["precision"] == pytest.approx(1 / 3)
    assert rate["agreement"] == pytest.approx(1 / (3 + 3 - 1))


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_motion_detector_boxes_in_frame_pixels_at_any_scale(scale):
    # a textured static background, then a bright upright block appears at a known place
    rng = np.random.default_rng(1)
    background = cv2.GaussianBlur(rng.integers(0, 120, (432, 768, 3), dtype=np.uint8), (7, 7), 0)
    detector = MotionDetector(DetectionFilter(min_confidence=0.3, min_height=10, min_width=4), scale=scale)
    for _ in range(30):
        assert len(detector(background)) == 0
    frame = background.copy()
    frame[100:220, 300:340] = 255  # x 300..340, y 100..220
    dets = detector(frame)
    assert len(dets) == 1
    np.testing.assert_allclose(dets.xyxy[0], [300, 100, 340, 220], atol=2.0 / scale)


def test_motion_detector_scale_out_of_range_is_one_line():
    with pytest.raises(ConfigError, match="scale"):
        MotionDetector(scale=0.0)


def test_fastestdet_scales_the_frame_inside_its_graph_exactly_as_numpy_did(shared):
    """The shipped detector takes uint8 HWC frames and converts them in the graph; on real
    frames its network output equals the float graph fed ``frame.astype(float32) / 255`` laid
    out channel first (the preprocessing it replaced)."""
    detector = FastestDet()
    assert detector.session.get_inputs()[0].type == "tensor(uint8)"
    reference = ort.InferenceSession(
        ox.with_input_size(ox.load_model(FASTESTDET), 512, 288).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for frame in video_frames(shared, [0, 348]):
        image, _ = detector.prepare(frame)
        assert image.dtype == np.uint8 and image.shape == (288, 512, 3)
        blob = (image.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        expected = reference.run(None, {reference.get_inputs()[0].name: blob})[0][0]
        np.testing.assert_array_equal(detector.infer(image[None])[0], expected)
    with pytest.raises(ConfigError, match="not a float"):
        ox.with_uint8_input(ox.with_uint8_input(ox.load_model(FASTESTDET)))
