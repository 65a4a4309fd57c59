"""Darknet cfg + weights -> ONNX (issue 16: Yolo-Fastest without OpenCV's Darknet importer).

A small network that uses every layer kind the converter reads is given random weights in
Darknet's file layout; ONNX Runtime's output of the converted graph must equal a float64 NumPy
forward pass written here from Darknet's layer definitions (batch norm not folded, max pooling
by its window offset, YOLO decoding by its formula). Then: files that do not match, refused in
one line; and the real Yolo-Fastest body finding the person in the shared video."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from adfl_deploy.errors import ConfigError
from adfl_deploy.tracking.darknet import darknet_to_onnx
from adfl_deploy.tracking.detectors import DarknetYolo, create_detector, is_detector

CFG = """
[net]
width=64
height=32
channels=3

[convolutional]      # 0: 8 x 16 x 32
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[convolutional]      # 1: depthwise
batch_normalize=1
groups=8
filters=8
size=3
stride=1
pad=1
activation=relu

[convolutional]      # 2
batch_normalize=1
filters=8
size=1
stride=1
pad=0
activation=linear

[shortcut]           # 3 = 2 + 0
from=-3
activation=linear

[maxpool]            # 4: 8 x 8 x 16
size=2
stride=2

[maxpool]            # 5: same size, window offset by -padding/2
size=3
stride=1

[route]              # 6: 16 channels
layers=-1,-2

[route]              # 7: second half of layer 6's channels
layers=-1
groups=2
group_id=1

[convolutional]      # 8: head 1, 2 anchors x (5 + 2 classes)
filters=14
size=1
stride=1
pad=1
activation=linear

[yolo]               # 9
mask=2,3
anchors=4,8, 6,12, 10,20, 16,30
classes=2
num=4
scale_x_y=1.1

[route]              # 10: layer 7
layers=-3

[upsample]           # 11: 16 x 32
stride=2

[route]              # 12: 8 + 8 channels
layers=-1,0

[convolutional]      # 13
batch_normalize=1
filters=14
size=3
stride=1
pad=1
activation=logistic

[convolutional]      # 14: head 2
filters=14
size=1
stride=1
pad=1
activation=linear

[yolo]               # 15
mask=0,1
anchors=4,8, 6,12, 10,20, 16,30
classes=2
num=4
"""

# (filters, input channels, size, groups, batch norm) of the convolutions, in file order
CONVS = [
    (8, 3, 3, 1, True),
    (8, 8, 3, 8, True),
    (8, 8, 1, 1, True),
    (14, 8, 1, 1, False),
    (14, 16, 3, 1, True),
    (14, 14, 1, 1, False),
]


def _write(folder, rng) -> tuple:
    """The cfg and a weights file of random values in Darknet's order; returns the per-layer parameters."""
    params, values = [], []
    for filters, channels, size, groups, bn in CONVS:
        p = {"bias": rng.normal(0, 0.1, filters)}
        if bn:
            p["gamma"], p["mean"] = rng.uniform(0.5, 1.5, filters), rng.normal(0, 0.1, filters)
            p["var"] = rng.uniform(0.5, 2, filters)
        p["w"] = rng.normal(0, 0.4, (filters, channels // groups, size, size))
        values += [p["bias"]] + ([p["gamma"], p["mean"], p["var"]] if bn else []) + [p["w"].ravel()]
        params.append(p)
    cfg = folder / "tiny.cfg"
    cfg.write_text(CFG)
    header = np.array([0, 2, 5], np.int32).tobytes() + np.array([123456], np.int64).tobytes()
    (folder / "tiny.weights").write_bytes(header + np.concatenate(values).astype(np.float32).tobytes())
    return cfg, params


# -- the float64 reference, from Darknet's definitions -------------------------------------------


def conv(x, p, stride, pad, groups, activation):
    filters, per_group, k, _ = p["w"].shape
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    out = np.zeros((filters, oh, ow))
    for f in range(filters):
        g = f // (filters // groups)
        src = xp[g * per_group : (g + 1) * per_group]
        for i in range(oh):
            for j in range(ow):
                out[f, i, j] = np.sum(src[:, i * stride : i * stride + k, j * stride : j * stride + k] * p["w"][f])
    if "gamma" in p:  # Darknet: normalise, scale, then add the bias
        out = (out - p["mean"][:, None, None]) / np.sqrt(p["var"][:, None, None] + 1e-5) * p["gamma"][:, None, None]
    out = out + p["bias"][:, None, None]
    return {
        "leaky": np.where(out > 0, out, 0.1 * out),
        "relu": np.maximum(out, 0),
        "linear": out,
        "logistic": 1 / (1 + np.exp(-out)),
    }[activation]


def maxpool(x, size, stride):
    padding = size - 1
    c, h, w = x.shape
    oh, ow = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
    out = np.full((c, oh, ow), -np.inf)
    for i in range(oh):
        for j in range(ow):
            for di in range(size):
                for dj in range(size):
                    y, xx = i * stride + di - padding // 2, j * stride + dj - padding // 2
                    if 0 <= y < h and 0 <= xx < w:
                        out[:, i, j] = np.maximum(out[:, i, j], x[:, y, xx])
    return out


def yolo(x, anchors, net_w, net_h, classes, scale_xy=1.0):
    rows = []
    a = len(anchors)
    _, h, w = x.shape
    t = x.reshape(a, 5 + classes, h, w)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for n in range(a):
        for i in range(h):
            for j in range(w):
                tx, ty, tw, th = t[n, :4, i, j]
                cx = (j + sig(tx) * scale_xy - 0.5 * (scale_xy - 1)) / w * net_w
                cy = (i + sig(ty) * scale_xy - 0.5 * (scale_xy - 1)) / h * net_h
                rows.append([cx, cy, np.exp(tw) * anchors[n][0], np.exp(th) * anchors[n][1], *sig(t[n, 4:, i, j])])
    return np.array(rows)


def reference(image, params):
    net_h, net_w = image.shape[1:]
    l0 = conv(image, params[0], 2, 1, 1, "leaky")
    l1 = conv(l0, params[1], 1, 1, 8, "relu")
    l2 = conv(l1, params[2], 1, 0, 1, "linear")
    l3 = l2 + l0
    l4 = maxpool(l3, 2, 2)
    l5 = maxpool(l4, 3, 1)
    l6 = np.concatenate([l5, l4])
    l7 = l6[8:]
    head1 = yolo(conv(l7, params[3], 1, 0, 1, "linear"), [(10, 20), (16, 30)], net_w, net_h, 2, 1.1)
    l11 = l7.repeat(2, axis=1).repeat(2, axis=2)
    l12 = np.concatenate([l11, l0])
    l13 = conv(l12, params[4], 1, 1, 1, "logistic")
    head2 = yolo(conv(l13, params[5], 1, 0, 1, "linear"), [(4, 8), (6, 12)], net_w, net_h, 2)
    return np.concatenate([head1, head2])


def test_converted_graph_equals_a_float64_darknet_forward_pass(tmp_path):
    rng = np.random.default_rng(7)
    cfg, params = _write(tmp_path, rng)
    model = darknet_to_onnx(cfg)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    images = rng.uniform(0, 1, (2, 3, 32, 64))
    out = session.run(None, {"images": images.astype(np.float32)})[0]
    assert out.shape == (2, 2 * 8 * 16 + 2 * 16 * 32, 7)  # 2 anchors on an 8x16 and a 16x32 grid
    for image, rows in zip(images, out):
        np.testing.assert_allclose(rows, reference(image, params), rtol=1e-4, atol=1e-4)


def test_another_input_size_keeps_anchors_in_pixels(tmp_path):
    """At 128x64 the grids double; cells keep their size in pixels and so do the anchors."""
    rng = np.random.default_rng(8)
    cfg, params = _write(tmp_path, rng)
    model = darknet_to_onnx(cfg, input_size=(128, 64))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    image = rng.uniform(0, 1, (3, 64, 128))
    out = session.run(None, {"images": image[None].astype(np.float32)})[0][0]
    np.testing.assert_allclose(out, reference(image, params), rtol=1e-4, atol=1e-4)


def test_weights_that_do_not_match_the_cfg_are_refused_in_one_line(tmp_path):
    cfg, _ = _write(tmp_path, np.random.default_rng(0))
    weights = tmp_path / "tiny.weights"
    data = weights.read_bytes()
    weights.write_bytes(data[:-40])
    with pytest.raises(ConfigError, match="ends before") as err:
        darknet_to_onnx(cfg)
    assert "\n" not in str(err.value)
    weights.write_bytes(data + np.zeros(3, np.float32).tobytes())
    with pytest.raises(ConfigError, match="3 values left"):
        darknet_to_onnx(cfg)


def test_unknown_layers_and_missing_files_are_refused_in_one_line(tmp_path):
    cfg, _ = _write(tmp_path, np.random.default_rng(0))
    cfg.write_text(CFG.replace("[upsample]", "[reorg]"))
    with pytest.raises(ConfigError, match=r"\[reorg\] is not supported"):
        darknet_to_onnx(cfg)
    cfg.write_text(CFG.replace("layers=-1,0", "layers=-1,40"))
    with pytest.raises(ConfigError, match="layer 40 is not an earlier layer"):
        darknet_to_onnx(cfg)
    cfg.write_text(CFG.replace("filters=14\nsize=1", "filters=fourteen\nsize=1", 1))
    with pytest.raises(ConfigError, match="filters=fourteen is not a number"):
        darknet_to_onnx(cfg)
    cfg.write_text(CFG)
    (tmp_path / "tiny.weights").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    with pytest.raises(ConfigError, match="Git LFS pointer"):
        darknet_to_onnx(cfg)
    with pytest.raises(ConfigError, match="not found"):
        darknet_to_onnx(tmp_path / "missing.cfg")
    with pytest.raises(ConfigError, match="multiples of 32"):
        DarknetYolo(cfg, input_size=(100, 64))


def test_yolo_fastest_finds_the_person_in_real_footage(shared, monkeypatch):
    import cv2

    monkeypatch.setenv("ADFL_YOLO_FASTEST", str(shared / "data" / "detectors" / "yolo-fastest-1.1_body"))
    cap = cv2.VideoCapture(str(shared / "data" / "videos" / "one-by-one-person-detection.mp4"))
    frames = {}
    for i in range(349):
        ok, frame = cap.read()
        assert ok
        if i in (0, 348):
            frames[i] = frame
    cap.release()
    assert is_detector("yolo-fastest@320x320") and not is_detector("yolo-fastest@320")
    for name in ("yolo-fastest", "yolo-fastest@320x320"):
        detector = create_detector(name)
        assert len(detector(frames[0])) == 0  # the empty corridor
        person = detector(frames[348])
        assert len(person) == 1
        x1, y1, x2, y2 = person.xyxy[0]
        assert y2 - y1 > 1.5 * (x2 - x1)  # standing: taller than wide
