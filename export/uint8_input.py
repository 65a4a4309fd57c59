"""Fold the crop normalisation into an exported graph, so the runtime hands resized uint8 crops
straight to the model.

Why: on a GPU the host->device copy of a float32 NCHW batch is four times the bytes of the
uint8 crops it came from, and the normalisation is one more pass over them on the host. With
the preprocessing in the graph, ONNX Runtime and TensorRT get (N, H, W, 3) uint8 BGR (what
``cv2.resize`` returns) and compute ``(x - mean) * inv_std`` and the NCHW layout themselves.
Resizing stays outside (``preprocess.resize_batch``): it depends on each crop's size.

The constants are the float32 values ``preprocess.normalise`` uses and the ops are exact IEEE
element-wise ones, so the folded graph computes bit-for-bit the network input the NumPy path
would. Applied before quantization, so INT8 calibration sees the same prefix it will run.

Layout, because it decides the speed on ONNX Runtime CPU: the element-wise ops run on the
NHWC bytes with constants tiled over a whole image row, and one Transpose to NCHW comes last.
ORT's transpose optimizer moves that Transpose into the quantized convolutions (which run
NHWC); with per-channel constants of shape (1, 3, 1, 1) it had left Sub and Mul broadcasting
over an innermost axis of 3 (0.9 ms per crop at 384x128 in the INT8 model, 0.15 ms now).
The BGR -> RGB flip costs nothing when the input feeds convolutions with constant weights:
their input channels are reversed instead (integer sums in INT8 are unchanged; float sums only
change order). Otherwise a Slice flips the channels.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from adfl_deploy.model.preprocess import UINT8_INPUT, Preprocessing, normalisation_constants

PREFIX = "preprocess/"


def fold_preprocessing(model: onnx.ModelProto, prep: Preprocessing, float_input: str = "images") -> onnx.ModelProto:
    """A copy of ``model`` whose input is (N, H, W, 3) uint8 BGR named ``crops``; the nodes
    that turn it into the old float input ``float_input`` are prepended."""
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    old = next((i for i in graph.input if i.name == float_input), None)
    if old is None:
        raise ValueError(f"the graph has no input {float_input!r} to fold preprocessing into")
    batch_dim = old.type.tensor_type.shape.dim[0]
    batch = batch_dim.dim_param or batch_dim.dim_value
    mean, inv_std = normalisation_constants(prep)  # in the network's channel order
    nodes: list[onnx.NodeProto] = []
    constants: list[onnx.TensorProto] = []
    pixels = UINT8_INPUT
    if prep.channel_order == "RGB":
        if reverse_conv_input_channels(graph, float_input):
            mean, inv_std = mean[::-1], inv_std[::-1]  # the network now reads BGR
        else:
            nodes.append(_channel_flip(pixels, PREFIX + "rgb", constants))
            pixels = PREFIX + "rgb"
    constants += [
        numpy_helper.from_array(_row_tiled(mean, prep.width), PREFIX + "mean"),
        numpy_helper.from_array(_row_tiled(inv_std, prep.width), PREFIX + "inv_std"),
    ]
    nodes += [
        helper.make_node("Cast", [pixels], [PREFIX + "float"], to=TensorProto.FLOAT, name=PREFIX + "cast"),
        helper.make_node("Sub", [PREFIX + "float", PREFIX + "mean"], [PREFIX + "centred"], name=PREFIX + "sub_mean"),
        helper.make_node("Mul", [PREFIX + "centred", PREFIX + "inv_std"], [PREFIX + "nhwc"], name=PREFIX + "div_std"),
        helper.make_node("Transpose", [PREFIX + "nhwc"], [float_input], perm=[0, 3, 1, 2], name=PREFIX + "to_nchw"),
    ]
    new_input = helper.make_tensor_value_info(UINT8_INPUT, TensorProto.UINT8, [batch, prep.height, prep.width, 3])
    inputs = [new_input if i.name == float_input else i for i in graph.input]
    del graph.input[:]
    graph.input.extend(inputs)
    graph.initializer.extend(constants)
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + body)
    return folded


def _row_tiled(per_channel: np.ndarray, width: int) -> np.ndarray:
    """(3,) -> (1, 1, W, 3): the same values once per pixel of a row, so broadcasting over
    (N, H) moves W * 3 contiguous elements at a time."""
    return np.ascontiguousarray(np.tile(per_channel.astype(np.float32), (width, 1)).reshape(1, 1, width, 3))


def _channel_flip(src: str, dst: str, constants: list[onnx.TensorProto]) -> onnx.NodeProto:
    """Slice the last (channel) axis from 2 down to 0."""
    for name, value in (("flip_start", 2), ("flip_end", np.iinfo(np.int64).min), ("flip_axis", 3), ("flip_step", -1)):
        constants.append(numpy_helper.from_array(np.array([value], dtype=np.int64), PREFIX + name))
    inputs = [src] + [PREFIX + n for n in ("flip_start", "flip_end", "flip_axis", "flip_step")]
    return helper.make_node("Slice", inputs, [dst], name=PREFIX + "bgr_to_rgb")


def reverse_conv_input_channels(graph: onnx.GraphProto, tensor: str) -> bool:
    """If every consumer of ``tensor`` is a Conv whose weight is an initializer with 3 input
    channels, give each a copy of its weight with those channels reversed and return True (the
    convolutions now expect ``tensor`` in the opposite channel order). Otherwise change nothing
    and return False."""
    consumers = [n for n in graph.node if tensor in n.input]
    weights = {i.name: i for i in graph.initializer}
    if not consumers or tensor in {o.name for o in graph.output}:
        return False
    for node in consumers:
        if node.op_type != "Conv" or list(node.input).count(tensor) != 1 or node.input[0] != tensor:
            return False
        if len(node.input) < 2 or node.input[1] not in weights or _attribute(node, "group", 1) != 1:
            return False
        if len(weights[node.input[1]].dims) < 3 or weights[node.input[1]].dims[1] != 3:
            return False
    originals = set()
    for k, node in enumerate(consumers):
        originals.add(node.input[1])
        weight = numpy_helper.to_array(weights[node.input[1]])
        name = f"{PREFIX}{node.input[1]}_bgr_{k}"
        graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight[:, ::-1]), name))
        node.input[1] = name
    used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    for init in [i for i in graph.initializer if i.name in originals and i.name not in used]:
        graph.initializer.remove(init)
    return True


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)
