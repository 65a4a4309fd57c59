"""What the ONNX detectors share: a session tuned for a small network on a few cores, a copy of
a fixed-batch model that takes any batch, the arithmetic a forward pass costs, and INT8 with an
accuracy guard.

- ``with_dynamic_batch(model)``: many exports bake batch 1 into the graph (FastestDet's channel
  shuffles reshape to ``[C/2, 2, H*W]``). The copy names the batch axis of the inputs and outputs
  and rewrites constant ``Reshape`` shapes so the leading axis follows the batch; ``batch_check``
  then runs both files on the same frames and the detector only batches when every output agrees.
- ``with_input_size(model, w, h)``: a copy of a square-input detector for a ``w`` x ``h``
  input (constant reshape shapes rewritten per scale), so a 16:9 camera frame fills the input
  instead of being shrunk into a square.
- ``forward_flops(model)``: multiply-adds of every Conv, MatMul and Gemm from ONNX shape
  inference, times two (the rest of a detector - activations, pooling, resize - is memory traffic).
- ``quantize_int8(model, blobs)``: static QDQ quantization with ONNX Runtime's tooling,
  calibrated on the caller's frames; ``int8_guard`` compares the INT8 detector's boxes with the
  FP32 detector's on held-out frames and refuses INT8 (``AccuracyError``) when it loses more than
  the stated tolerance.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
from onnx import numpy_helper

from adfl_deploy.errors import AdflError, ConfigError, one_line
from adfl_deploy.tracking.detections import Detections, iou_matrix

log = logging.getLogger(__name__)

#: worker threads of an ONNX detector's ``detect_batch`` (one frame share and one intra-op
#: thread each): this project's machines have 2 cores
DEFAULT_THREADS = min(2, os.cpu_count() or 1)


class AccuracyError(AdflError):
    """A faster variant (INT8) loses more accuracy than allowed: the caller keeps FP32."""


def load_model(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: detector model not found")
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise ConfigError(f"{path}: not an ONNX model ({one_line(exc)})") from None


def create_session(model: onnx.ModelProto | bytes, threads: int = 1, where: str = "detector"):
    """A CPU session with ``threads`` intra-op threads that sleep instead of spinning between
    calls (ORT's default spins, taking a core from the camera readers and the other worker)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    data = model if isinstance(model, bytes) else model.SerializeToString()
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ConfigError(f"{where}: ONNX Runtime cannot load the detector ({one_line(exc)})") from None


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in value_info.type.tensor_type.shape.dim]


def batch_size(model: onnx.ModelProto) -> int | None:
    """The fixed batch of the model's first input, or None when the axis is already dynamic."""
    first = _dims(model.graph.input[0])[0]
    return first if isinstance(first, int) and first > 0 else None


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Remove the initializers no node reads (the shapes a rewrite replaced)."""
    used = {name for node in graph.node for name in node.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def with_dynamic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose inputs and outputs take any batch ``N``. Constant ``Reshape`` shapes with a
    fixed leading axis get ``-1`` there (no other ``-1``) or ``0`` (copy the batch; when the
    shape already has a ``-1`` and leads with 1). Stale intermediate shapes are dropped. The
    result is checked numerically by ``batch_check``, never trusted on its own."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    for value in list(graph.input) + list(graph.output):
        dim = value.type.tensor_type.shape.dim
        if len(dim):
            dim[0].Clear()
            dim[0].dim_param = "N"
    del graph.value_info[:]
    initializers = {t.name: t for t in graph.initializer}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    users: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            users[name] = users.get(name, 0) + 1
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        name = node.input[1]
        if name in initializers:
            shape = numpy_helper.to_array(initializers[name]).copy()
        elif name in constants:
            shape = numpy_helper.to_array(constants[name].attribute[0].t).copy()
        else:
            continue  # computed at run time from the input's shape: already batch-agnostic
        if shape.ndim != 1 or not len(shape) or shape[0] in (0, -1):
            continue
        if -1 not in shape:
            shape[0] = -1
        elif shape[0] == 1:
            shape[0] = 0
        else:
            continue
        new_name = f"{name}__any_batch_{len(graph.initializer)}"
        graph.initializer.append(numpy_helper.from_array(shape.astype(np.int64), new_name))
        node.input[1] = new_name
    _drop_unused_initializers(graph)
    return model


def with_input_size(model: onnx.ModelProto, width: int, height: int, stride: int = 32) -> onnx.ModelProto:
    """A copy of a square-input, fully convolutional model (``[B, C, S, S]``) that takes a
    ``width`` x ``height`` input, both multiples of ``stride`` (the network's coarsest stride).
    Exports bake the feature-map sides into constant ``Reshape`` shapes (FastestDet's channel
    shuffles reshape to ``[C/2, 2, h*w]`` and back to ``[2, -1, C/2, h, w]``): at every scale
    S/k of the input, trailing ``(S/k, S/k)`` become ``(height/k, width/k)`` and an ``(S/k)^2``
    becomes ``(height/k) * (width/k)``. Outputs and stale intermediate shapes are re-inferred.
    Refuses (``ConfigError``) a model this rewrite does not cover; the tests check the result
    against translation equivariance, which a wrong reshape breaks."""
    dims = _dims(model.graph.input[0])
    if len(dims) != 4 or not isinstance(dims[2], int) or dims[2] != dims[3]:
        raise ConfigError(f"input size: the detector's input {dims} is not a fixed square [B, C, S, S]")
    side = dims[2]
    if width % stride or height % stride or width <= 0 or height <= 0:
        raise ConfigError(f"detector input {width}x{height}: use positive multiples of {stride}, e.g. 640x352")
    if side % stride:
        raise ConfigError(f"input size: the detector's side {side} is not a multiple of {stride}")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    scales = {side // k: (height // k, width // k) for k in range(1, stride + 1) if side % k == 0}
    initializers = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initializers:
            continue
        shape = [int(v) for v in numpy_helper.to_array(initializers[node.input[1]])]
        new = list(shape)
        root = round(shape[-1] ** 0.5) if shape and shape[-1] > 0 else 0
        if len(shape) >= 2 and shape[-1] == shape[-2] and shape[-1] in scales:
            new[-2:] = scales[shape[-1]]
        elif root * root == shape[-1] and root in scales:  # a flattened side x side
            h, w = scales[root]
            new[-1] = h * w
        if new != shape:
            name = f"{node.input[1]}__size_{width}x{height}_{len(graph.initializer)}"
            graph.initializer.append(numpy_helper.from_array(np.array(new, np.int64), name))
            node.input[1] = name
    graph.input[0].type.tensor_type.shape.dim[2].dim_value = height
    graph.input[0].type.tensor_type.shape.dim[3].dim_value = width
    for value in graph.output:
        value.type.tensor_type.ClearField("shape")
    del graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as exc:
        raise ConfigError(f"input size {width}x{height}: the rewritten detector does not check ({one_line(exc)})") from None
    for value, out in zip(graph.output, inferred.graph.output):
        value.type.CopyFrom(out.type)
    _drop_unused_initializers(graph)
    return model


def with_uint8_input(model: onnx.ModelProto, scale: float = 255.0) -> onnx.ModelProto:
    """A copy of a ``[B, C, H, W]`` float32 model that takes the frame as it comes from OpenCV,
    ``[B, H, W, C]`` uint8, and converts it inside the graph (Cast, divide by ``scale``,
    Transpose) - the same float values as ``frame.astype(float32) / scale`` laid out channel
    first, which in NumPy cost 1.4 ms a 512x288 frame on this project's CPU (the channel-first
    copy of floats), in ONNX Runtime 0.26 ms."""
    dims = _dims(model.graph.input[0])
    if len(dims) != 4 or model.graph.input[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ConfigError(f"uint8 input: the detector's input {dims} is not a float [B, C, H, W]")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    old = graph.input[0]
    name = f"{old.name}_uint8_hwc"
    b, c, h, w = (d if isinstance(d, int) else str(d) for d in dims)
    new = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.UINT8, [b, h, w, c])
    divisor = f"{name}_scale"
    graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), divisor))
    nodes = [
        onnx.helper.make_node("Cast", [name], [f"{name}_float"], to=onnx.TensorProto.FLOAT),
        onnx.helper.make_node("Div", [f"{name}_float", divisor], [f"{name}_scaled"]),
        onnx.helper.make_node("Transpose", [f"{name}_scaled"], [old.name], perm=[0, 3, 1, 2]),
    ]
    graph.input.remove(old)
    graph.input.insert(0, new)
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)
    onnx.checker.check_model(model)
    return model


def batch_check(fixed_session, batched_session, blobs: np.ndarray, atol: float = 1e-4) -> str | None:
    """None when the batched model gives every frame of ``blobs`` (N, ...) the same outputs as the
    fixed-batch model run one frame at a time, else the reason (for one log line)."""
    try:
        together = batched_session.run(None, {batched_session.get_inputs()[0].name: blobs})
    except Exception as exc:
        return f"the batched copy does not run ({one_line(exc)})"
    name = fixed_session.get_inputs()[0].name
    for i in range(len(blobs)):
        alone = fixed_session.run(None, {name: blobs[i : i + 1]})
        for a, b in zip(alone, together):
            if b.shape[0] != len(blobs) or a.shape[1:] != b.shape[1:]:
                return f"the batched copy's output has shape {b.shape}, expected ({len(blobs)}, {a.shape[1:]})"
            if not np.allclose(a[0], b[i], atol=atol, rtol=1e-4):
                return f"frame {i} of a batch differs from the same frame alone by {np.abs(a[0] - b[i]).max():.3g}"
    return None


def forward_flops(model: onnx.ModelProto, batch: int = 1) -> float:
    """FLOPs (2 x multiply-adds) of the model's Conv, ConvTranspose, MatMul and Gemm nodes for one
    forward pass of ``batch`` images, from ONNX shape inference on a copy with that batch fixed."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim
        if len(dim):
            dim[0].Clear()
            dim[0].dim_value = batch
    del model.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes = {v.name: _dims(v) for v in [*graph.value_info, *graph.input, *graph.output]}
    shapes.update({t.name: list(t.dims) for t in graph.initializer})
    macs = 0
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            weight, out = shapes.get(node.input[1]), shapes.get(node.output[0])
            if weight and out and all(isinstance(d, int) for d in out):
                # weight (Cout, Cin/group, k...) for Conv; every output element takes Cin/group x k... MACs
                per_output = int(np.prod(weight[1:]))
                if node.op_type == "ConvTranspose":
                    per_output = weight[0] * int(np.prod(weight[2:])) // max(out[1], 1)
                macs += int(np.prod(out)) * per_output
        elif node.op_type in ("MatMul", "Gemm"):
            a, out = shapes.get(node.input[0]), shapes.get(node.output[0])
            if a and out and all(isinstance(d, int) for d in a + out):
                transposed = node.op_type == "Gemm" and any(x.name == "transA" and x.i for x in node.attribute)
                inner = a[-2] if transposed else a[-1]
                macs += int(np.prod(out)) * inner
    return 2.0 * macs


class _Blobs:
    """``CalibrationDataReader`` over prepared input batches."""

    def __init__(self, name: str, blobs: Sequence[np.ndarray]) -> None:
        self._name = name
        self._all = list(blobs)
        self._it = iter(self._all)

    def get_next(self):
        blob = next(self._it, None)
        return None if blob is None else {self._name: blob}

    def rewind(self) -> None:
        self._it = iter(self._all)


def quantize_int8(model: onnx.ModelProto, blobs: Sequence[np.ndarray]) -> bytes:
    """Static QDQ INT8 copy of ``model`` (uint8 activations, per-channel int8 weights: VNNI's
    u8 x s8 on x86), activation ranges calibrated on ``blobs`` (prepared input batches)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not blobs:
        raise ConfigError("INT8 detector calibration needs frames")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:  # per-channel DequantizeLinear (its axis) needs opset 13; FastestDet ships at 11
        model = onnx.version_converter.convert_version(model, 13)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        quantize_static(
            str(src),
            str(dst),
            _Blobs(model.graph.input[0].name, blobs),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=["Conv", "Relu", "Add", "MaxPool", "Concat", "Resize", "AveragePool"],
            extra_options={"WeightSymmetric": True},
        )
        return dst.read_bytes()


def match_rate(reference: Sequence[Detections], candidate: Sequence[Detections], iou: float = 0.5) -> dict[str, float]:
    """How well ``candidate`` reproduces ``reference`` frame by frame: recall (reference boxes
    with a candidate at IoU >= ``iou``, one-to-one, greedy by IoU), precision (the converse) and
    agreement (matched / (reference + candidate - matched), 1.0 when both are empty)."""
    matched = n_ref = n_cand = 0
    for ref, cand in zip(reference, candidate, strict=True):
        n_ref += len(ref)
        n_cand += len(cand)
        if not len(ref) or not len(cand):
            continue
        overlap = iou_matrix(ref.xyxy, cand.xyxy)
        used_r, used_c = set(), set()
        for flat in np.argsort(-overlap, axis=None, kind="stable"):
            r, c = divmod(int(flat), overlap.shape[1])
            if overlap[r, c] < iou:
                break
            if r not in used_r and c not in used_c:
                used_r.add(r)
                used_c.add(c)
        matched += len(used_r)
    union = n_ref + n_cand - matched
    return {
        "reference_boxes": n_ref,
        "candidate_boxes": n_cand,
        "recall": matched / n_ref if n_ref else 1.0,
        "precision": matched / n_cand if n_cand else 1.0,
        "agreement": matched / union if union else 1.0,
    }
