"""Darknet ``.cfg`` + ``.weights`` -> an ONNX graph, read here, so Darknet detectors (the
person-only Yolo-Fastest v1.1 body) run on ONNX Runtime - and through it on every backend -
now that OpenCV 5 has dropped its Darknet importer.

The graph is made for one input size (any multiple of the network's stride, so a 16:9 camera
frame need not be squeezed into the square it was trained at), with batch normalisation folded
into the convolutions and the YOLO heads decoded inside the graph into the YOLOv5 layout that
``detectors.YoloOnnx`` reads: ``[B, N, 5 + C]`` rows of centre x, centre y, width, height (input
pixels), objectness and class scores.

Layers read: ``convolutional`` (groups, batch norm; linear, leaky, relu, logistic, mish, swish),
``maxpool``, ``route`` (with ``groups``/``group_id``), ``shortcut`` (equal shapes),
``upsample``, ``dropout`` (nothing at inference) and ``yolo``. Anything else is refused in one
line rather than converted wrongly. The layer semantics follow the Darknet sources' definitions
(AlexeyAB's fork, which Yolo-Fastest uses); tests check them against a float64 NumPy reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adfl_deploy.errors import ConfigError, one_line

#: Darknet folds batch norm as (x - mean) / sqrt(var + eps)
BN_EPSILON = 1e-5
LEAKY_SLOPE = 0.1
OPSET = 13
SUPPORTED = ("net", "network", "convolutional", "maxpool", "route", "shortcut", "upsample", "dropout", "yolo")


@dataclass
class Section:
    kind: str
    options: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def int(self, key: str, default: int | None = None) -> int:
        return self._number(key, default, int)

    def float(self, key: str, default: float | None = None) -> float:
        return self._number(key, default, float)

    def ints(self, key: str, default: str = "") -> list[int]:
        text = self.options.get(key, default)
        try:
            return [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(
                f"darknet cfg line {self.line}: [{self.kind}] {key}={text} is not a list of whole numbers"
            ) from None

    def _number(self, key: str, default, kind):
        value = self._get(key, default)
        try:
            return kind(value)
        except ValueError:
            raise ConfigError(f"darknet cfg line {self.line}: [{self.kind}] {key}={value} is not a number") from None

    def _get(self, key: str, default):
        if key in self.options:
            return self.options[key]
        if default is None:
            raise ConfigError(f"darknet cfg line {self.line}: [{self.kind}] needs {key}=")
        return default


def parse_cfg(text: str) -> list[Section]:
    """Sections of a Darknet cfg in order, ``[net]`` first; comments (``#``, ``;``) dropped."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.split(r"[#;]", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(f"darknet cfg line {number}: {raw.strip()!r} is not a [section]")
            sections.append(Section(line[1:-1].strip().lower(), line=number))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].options[key.strip()] = value.strip()
        else:
            raise ConfigError(f"darknet cfg line {number}: {raw.strip()!r} is neither [section] nor key=value")
    if not sections or sections[0].kind not in ("net", "network"):
        raise ConfigError("darknet cfg: the first section must be [net]")
    for s in sections[1:]:
        if s.kind not in SUPPORTED[2:]:
            raise ConfigError(f"darknet cfg line {s.line}: layer [{s.kind}] is not supported ({', '.join(SUPPORTED[2:])})")
    return sections


class _Weights:
    """The ``.weights`` file after its header, read in layer order; ``done`` checks that every
    value was used (a cfg that does not match its weights fails here, not with wrong boxes)."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        if len(data) < 20 or len(data) % 4:
            raise ConfigError(
                f"{path}: not a Darknet .weights file ({len(data)} bytes: too short or not whole 4-byte values; "
                "a Git LFS pointer instead of the file?)"
            )
        major, minor, _ = np.frombuffer(data[:12], np.int32)
        seen_bytes = 8 if major * 10 + minor >= 2 and major < 1000 and minor < 1000 else 4
        self.values = np.frombuffer(data[12 + seen_bytes :], np.float32)
        self.at = 0
        self.path = path

    def take(self, count: int) -> np.ndarray:
        if self.at + count > len(self.values):
            raise ConfigError(f"{self.path}: ends before the cfg's layers do; use the .weights made for this .cfg")
        out = self.values[self.at : self.at + count].astype(np.float64)
        self.at += count
        return out

    def done(self) -> None:
        if self.at != len(self.values):
            raise ConfigError(
                f"{self.path}: {len(self.values) - self.at} values left after the cfg's last layer; "
                "use the .weights made for this .cfg"
            )


@dataclass
class _Tensor:
    name: str
    channels: int
    height: int
    width: int


class _Graph:
    """Nodes and initialisers of the ONNX graph under construction, with unique names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        from onnx import helper

        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _activation(g: _Graph, x: str, kind: str, where: str) -> str:
    if kind == "linear":
        return x
    if kind == "leaky":
        return g.op("LeakyRelu", [x], alpha=LEAKY_SLOPE)
    if kind == "relu":
        return g.op("Relu", [x])
    if kind == "logistic":
        return g.op("Sigmoid", [x])
    if kind == "mish":
        return g.op("Mul", [x, g.op("Tanh", [g.op("Softplus", [x])])])
    if kind in ("swish", "silu"):
        return g.op("Mul", [x, g.op("Sigmoid", [x])])
    raise ConfigError(f"{where}: activation={kind} is not supported (linear, leaky, relu, logistic, mish, swish)")


def _convolutional(g: _Graph, s: Section, x: _Tensor, weights: _Weights, where: str) -> _Tensor:
    filters, size, stride = s.int("filters", 1), s.int("size", 1), s.int("stride", 1)
    groups = s.int("groups", 1)
    padding = size // 2 if s.int("pad", 0) else s.int("padding", 0)
    if x.channels % groups or filters % groups:
        raise ConfigError(f"{where}: groups={groups} does not divide {x.channels} input / {filters} output channels")
    bias = weights.take(filters)
    if s.int("batch_normalize", 0):
        gamma, mean, var = weights.take(filters), weights.take(filters), weights.take(filters)
        scale = gamma / np.sqrt(var + BN_EPSILON)
        bias = bias - mean * scale
    else:
        scale = np.ones(filters)
    kernel = weights.take(filters * (x.channels // groups) * size * size).reshape(filters, x.channels // groups, size, size)
    kernel = kernel * scale[:, None, None, None]
    y = g.op(
        "Conv",
        [x.name, g.const("w", kernel.astype(np.float32)), g.const("b", bias.astype(np.float32))],
        kernel_shape=[size, size],
        strides=[stride, stride],
        pads=[padding] * 4,
        group=groups,
    )
    y = _activation(g, y, s.options.get("activation", "logistic"), where)
    out = lambda n: (n + 2 * padding - size) // stride + 1  # noqa: E731
    return _Tensor(y, filters, out(x.height), out(x.width))


def _maxpool(g: _Graph, s: Section, x: _Tensor, where: str) -> _Tensor:
    stride = s.int("stride", 1)
    size = s.int("size", stride)  # Darknet's defaults: stride 1, size the stride
    padding = s.int("padding", size - 1)
    if any(k in s.options for k in ("stride_x", "stride_y", "maxpool_depth")):
        raise ConfigError(f"{where}: maxpool with stride_x/stride_y/maxpool_depth is not supported")
    begin, end = padding // 2, padding - padding // 2  # Darknet offsets the window by -padding/2
    y = g.op("MaxPool", [x.name], kernel_shape=[size, size], strides=[stride, stride], pads=[begin, begin, end, end])
    out = lambda n: (n + padding - size) // stride + 1  # noqa: E731
    return _Tensor(y, x.channels, out(x.height), out(x.width))


def _earlier(ref: int, index: int, outputs: list[_Tensor], where: str) -> _Tensor:
    """The output of the layer ``ref`` names from layer ``index``: relative when negative."""
    at = ref if ref >= 0 else index + ref
    if not 0 <= at < index:
        raise ConfigError(f"{where}: layer {ref} is not an earlier layer (this is layer {index})")
    return outputs[at]


def _route(g: _Graph, s: Section, index: int, outputs: list[_Tensor], where: str) -> _Tensor:
    sources = [_earlier(i, index, outputs, where) for i in s.ints("layers")]
    if not sources or len({(t.height, t.width) for t in sources}) != 1:
        raise ConfigError(f"{where}: route layers={s.options.get('layers')} name no layers, or layers of different sizes")
    groups, group_id = s.int("groups", 1), s.int("group_id", 0)
    parts = []
    for t in sources:
        if groups == 1:
            parts.append(t.name)
            continue
        step = t.channels // groups
        bounds = [
            g.const(n, np.array([v], np.int64))
            for n, v in (("starts", group_id * step), ("ends", (group_id + 1) * step), ("axes", 1))
        ]
        parts.append(g.op("Slice", [t.name, *bounds]))
    name = parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=1)
    return _Tensor(name, sum(t.channels // groups for t in sources), sources[0].height, sources[0].width)


def _shortcut(g: _Graph, s: Section, index: int, outputs: list[_Tensor], x: _Tensor, where: str) -> _Tensor:
    if "weights_type" in s.options or "," in s.options.get("from", ""):
        raise ConfigError(f"{where}: weighted or multi-input shortcuts are not supported")
    other = _earlier(s.int("from"), index, outputs, where)
    if (other.channels, other.height, other.width) != (x.channels, x.height, x.width):
        raise ConfigError(f"{where}: shortcut of differently shaped layers is not supported")
    y = _activation(g, g.op("Add", [x.name, other.name]), s.options.get("activation", "linear"), where)
    return _Tensor(y, x.channels, x.height, x.width)


def _upsample(g: _Graph, s: Section, x: _Tensor, where: str) -> _Tensor:
    stride = s.int("stride", 2)
    if stride < 1 or s.float("scale", 1.0) != 1.0:
        raise ConfigError(f"{where}: only upsampling by a positive stride without scale is supported")
    scales = g.const("scales", np.array([1, 1, stride, stride], np.float32))
    y = g.op("Resize", [x.name, "", scales], mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return _Tensor(y, x.channels, x.height * stride, x.width * stride)


def _yolo(g: _Graph, s: Section, x: _Tensor, input_w: int, input_h: int, where: str) -> tuple[str, int]:
    """A YOLO head, decoded: ``[B, A * H * W, 5 + C]`` rows in input pixels (anchors are input
    pixels in Darknet too, so they keep their size at another input size)."""
    classes = s.int("classes", 20)
    anchors = np.array(s.ints("anchors"), np.float32).reshape(-1, 2)
    mask = s.ints("mask") or list(range(len(anchors)))
    scale_xy = s.float("scale_x_y", 1.0)
    if s.int("new_coords", 0):
        raise ConfigError(f"{where}: yolo new_coords=1 (scaled-YOLOv4 decoding) is not supported")
    a, h, w, k = len(mask), x.height, x.width, 5 + classes
    if x.channels != a * k:
        raise ConfigError(f"{where}: the layer before [yolo] has {x.channels} channels, expected {a} x (5 + {classes})")
    shape = lambda *d: g.const("shape", np.array(d, np.int64))  # noqa: E731
    rows = g.op("Reshape", [x.name, shape(-1, a, k, h, w)])
    rows = g.op("Transpose", [rows], perm=[0, 1, 3, 4, 2])
    rows = g.op("Reshape", [rows, shape(-1, a * h * w, k)])
    split = g.const("split", np.array([2, 2, k - 4], np.int64))
    outs = [g.name("xy"), g.name("wh"), g.name("scores")]
    from onnx import helper

    g.nodes.append(helper.make_node("Split", [rows, split], outs, axis=2))
    xy, wh, scores = outs
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    grid = np.broadcast_to(np.stack([xs, ys], -1)[None], (a, h, w, 2)).reshape(1, -1, 2).astype(np.float32)
    cell = np.array([input_w / w, input_h / h], np.float32)
    xy = g.op("Sigmoid", [xy])
    if scale_xy != 1.0:
        xy = g.op("Mul", [xy, g.const("sxy", np.float32(scale_xy))])
        xy = g.op("Add", [xy, g.const("oxy", np.float32(-0.5 * (scale_xy - 1)))])
    xy = g.op("Mul", [g.op("Add", [xy, g.const("grid", grid)]), g.const("cell", cell)])
    sizes = np.repeat(anchors[mask][:, None, :], h * w, axis=1).reshape(1, -1, 2).astype(np.float32)
    wh = g.op("Mul", [g.op("Exp", [wh]), g.const("anchors", sizes)])
    return g.op("Concat", [xy, wh, g.op("Sigmoid", [scores])], axis=2, hint="head"), a * h * w


def darknet_to_onnx(cfg: str | Path, weights: str | Path | None = None, input_size: tuple[int, int] | None = None):
    """The ONNX model (``onnx.ModelProto``) of a Darknet detector: input ``images`` [B, 3, H, W]
    float32 RGB 0..1, output ``detections`` [B, N, 5 + C] (YOLOv5 layout, input pixels).
    ``weights`` defaults to the ``.weights`` beside ``cfg``; ``input_size`` (width, height) to
    the cfg's own. A cfg or weights file that cannot be converted is one ``ConfigError`` line."""
    import onnx
    from onnx import TensorProto, helper

    cfg = Path(cfg)
    weights = Path(weights) if weights else cfg.with_suffix(".weights")
    for path in (cfg, weights):
        if not path.is_file():
            raise ConfigError(f"{path}: not found; a Darknet detector needs its .cfg and the .weights made for it")
    sections = parse_cfg(cfg.read_text(errors="replace"))
    net = sections[0]
    input_w, input_h = input_size or (net.int("width", 416), net.int("height", 416))
    if net.int("channels", 3) != 3:
        raise ConfigError(f"{cfg}: channels={net.int('channels')}; only 3-channel (RGB) networks are supported")
    reader = _Weights(weights)
    g = _Graph()
    x = _Tensor("images", 3, input_h, input_w)
    outputs: list[_Tensor] = []
    heads: list[tuple[str, int]] = []  # (decoded rows, row count)
    for index, s in enumerate(sections[1:]):
        where = f"{cfg.name} line {s.line} [{s.kind}]"
        if s.kind == "convolutional":
            x = _convolutional(g, s, x, reader, where)
        elif s.kind == "maxpool":
            x = _maxpool(g, s, x, where)
        elif s.kind == "route":
            x = _route(g, s, index, outputs, where)
        elif s.kind == "shortcut":
            x = _shortcut(g, s, index, outputs, x, where)
        elif s.kind == "upsample":
            x = _upsample(g, s, x, where)
        elif s.kind == "yolo":
            heads.append(_yolo(g, s, x, input_w, input_h, where))
        if x.height < 1 or x.width < 1:
            raise ConfigError(f"{where}: input {input_w}x{input_h} is too small for this network")
        outputs.append(x)
    reader.done()
    if not heads:
        raise ConfigError(f"{cfg}: no [yolo] layer, so no detections to read")
    g.nodes.append(helper.make_node("Concat", [name for name, _ in heads], ["detections"], axis=1))
    classes = {s.int("classes", 20) for s in sections if s.kind == "yolo"}
    if len(classes) != 1:
        raise ConfigError(f"{cfg}: its [yolo] layers have different class counts {sorted(classes)}")
    classes = classes.pop()
    graph = helper.make_graph(
        g.nodes,
        cfg.stem,
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, input_h, input_w])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["batch", sum(n for _, n in heads), 5 + classes])],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="adfl_deploy.darknet")
    model.ir_version = 8
    try:
        onnx.checker.check_model(model)
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:  # noqa: BLE001 - any checker failure: this cfg does not convert
        raise ConfigError(f"{cfg}: the converted graph does not check ({one_line(exc)})") from None
