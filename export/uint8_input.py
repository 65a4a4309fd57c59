"""Fold the crop normalisation into an exported graph, so the runtime hands resized uint8 crops
straight to the model.

Why: on a GPU the host->device copy of a float32 NCHW batch is four times the bytes of the
uint8 crops it came from, and the normalisation is one more pass over them on the host. With
the preprocessing in the graph, ONNX Runtime and TensorRT get (N, H, W, 3) uint8 BGR (what
``cv2.resize`` returns) and do Cast -> channel order -> (x - mean) * inv_std -> NCHW themselves.
Resizing stays outside (``preprocess.resize_batch``): it depends on each crop's size.

The constants are the float32 values ``preprocess.normalise`` uses and the ops are exact IEEE
element-wise ones, so the folded graph computes bit-for-bit the network input the NumPy path
would. Applied after quantization, so INT8 calibration still sees the float graph.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from adfl_deploy.preprocess import UINT8_INPUT, Preprocessing, normalisation_constants


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
    mean, inv_std = normalisation_constants(prep)
    prefix = "preprocess/"
    constants = [
        numpy_helper.from_array(mean.reshape(1, 1, 1, 3), prefix + "mean"),
        numpy_helper.from_array(inv_std.reshape(1, 1, 1, 3), prefix + "inv_std"),
    ]
    nodes = [helper.make_node("Cast", [UINT8_INPUT], [prefix + "float"], to=TensorProto.FLOAT, name=prefix + "cast")]
    pixels = prefix + "float"
    if prep.channel_order == "RGB":
        constants.append(numpy_helper.from_array(np.array([2, 1, 0], dtype=np.int64), prefix + "bgr_to_rgb"))
        nodes.append(helper.make_node("Gather", [pixels, prefix + "bgr_to_rgb"], [prefix + "rgb"], axis=3, name=prefix + "channel_order"))
        pixels = prefix + "rgb"
    nodes += [
        helper.make_node("Sub", [pixels, prefix + "mean"], [prefix + "centred"], name=prefix + "sub_mean"),
        helper.make_node("Mul", [prefix + "centred", prefix + "inv_std"], [prefix + "scaled"], name=prefix + "div_std"),
        helper.make_node("Transpose", [prefix + "scaled"], [float_input], perm=[0, 3, 1, 2], name=prefix + "to_nchw"),
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

