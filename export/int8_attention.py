"""Channel attention quantized deliberately in ONNX Runtime's INT8 model.

Why: in the INT8 ``AF3-cat-1024-attn3-1sum`` at 384x128 the two (1024 x 1024 x 192) products of
the channel attention were the largest cost after the convolutions (2.0 of 13.5 ms per crop at
batch 8): ONNX Runtime runs the energies X X^T as uint8 x uint8 (its slow int8 path, the
activations of the ``onnxruntime`` target are all uint8) and the attention-weighted sum in
float. Its x86 int8 GEMM is ~4x faster for uint8 x **int8** (VNNI's u8 x s8 dot product), so
both products get an int8 right operand here: 0.7 ms per crop instead of 2.0.

``ChannelAttention(x, alpha)`` (contract in ``cuda_kernels/README.md``) whose ``x`` comes out
of a per-tensor uint8 ``DequantizeLinear`` (scale s, zero point z) becomes::

    xf = Reshape(x, [0, 0, -1])                    (N, C, HW)
    xa = DQ(Q(xf; s, z))                           uint8, the grid x is already on
    x8 = Q(xf; s8, 0)                              int8, s8 = max(z, 255 - z) * s / 127
    e  = MatMul(xa, DQ(Transpose(x8)))             (N, C, C): u8 x s8
    a  = Softmax(e)
    o  = MatMul(DQ(Q(a; 1/255, 0)), DQ(x8))        (N, C, HW): u8 x s8
    y  = alpha * Reshape(o, Shape(x)) + x

Graph shape, because ONNX Runtime decides from it: its ``QDQS8ToU8Transformer`` turns every
int8 Q -> DQ pair whose Q has one consumer into uint8, so ``x8`` feeds a Transpose and a second
DequantizeLinear and never forms such a pair.

Accuracy: the int8 right operand has 7 bits of x's range and the attention weights step by
1/255. Trained ADFL models have energies in the thousands and nearly one-hot softmax rows
(median row maximum 1.0 on the delegate's crops), which this grid keeps; the export's mAP guard
measures the whole INT8 model either way. The TensorRT INT8 flavour is not touched: there the
``com.adfl`` nodes are plugins.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .onnx_ops import DOMAIN, OP_TYPES

OP_TYPE = OP_TYPES["channel_attention"][0]
#: uint8 step of the softmax weights (they lie in [0, 1])
WEIGHT_SCALE = 1.0 / 255.0


def quantize_channel_attention(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of the INT8 QDQ ``model`` with every ChannelAttention node fed by a per-tensor
    uint8 DequantizeLinear replaced as above, and how many were replaced. Other nodes (and
    ChannelAttention on any other input) stay as they are."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    body: list[onnx.NodeProto] = []
    replaced = 0
    for node in graph.node:
        grid = _uint8_grid(producer.get(node.input[0]), constants) if _is_channel_attention(node) else None
        if grid is None:
            body.append(node)
            continue
        prefix = f"{node.name or OP_TYPE}/int8_{replaced}/"
        nodes, initializers = _int8_channel_attention(node, *grid, prefix)
        body += nodes
        graph.initializer.extend(initializers)
        replaced += 1
    del graph.node[:]
    graph.node.extend(body)
    if not any(_is_channel_attention(n) for n in graph.node):  # its local function is unused now
        kept = [f for f in out.functions if not (f.domain == DOMAIN and f.name == OP_TYPE)]
        del out.functions[:]
        out.functions.extend(kept)
    return out, replaced


def _is_channel_attention(node: onnx.NodeProto) -> bool:
    return node.domain == DOMAIN and node.op_type == OP_TYPE


def _uint8_grid(dq: onnx.NodeProto | None, constants: dict[str, np.ndarray]) -> tuple[float, int] | None:
    """(scale, zero point) of a per-tensor uint8 DequantizeLinear with constant parameters."""
    if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3:
        return None
    scale, zero = constants.get(dq.input[1]), constants.get(dq.input[2])
    if scale is None or zero is None or scale.size != 1 or zero.size != 1 or zero.dtype != np.uint8:
        return None
    return float(scale.reshape(())), int(zero.reshape(()))


def _int8_channel_attention(node: onnx.NodeProto, scale: float, zero: int, p: str) -> tuple[list, list]:
    x, alpha = node.input[0], node.input[1]
    scale8 = max(zero, 255 - zero) * scale / 127.0
    initializers = [
        numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), p + "flat"),
        numpy_helper.from_array(np.array(scale, dtype=np.float32), p + "x_scale"),
        numpy_helper.from_array(np.array(zero, dtype=np.uint8), p + "x_zero"),
        numpy_helper.from_array(np.array(scale8, dtype=np.float32), p + "x8_scale"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), p + "x8_zero"),
        numpy_helper.from_array(np.array(WEIGHT_SCALE, dtype=np.float32), p + "a_scale"),
        numpy_helper.from_array(np.array(0, dtype=np.uint8), p + "a_zero"),
    ]
    x_grid, x8_grid, a_grid = (p + "x_scale", p + "x_zero"), (p + "x8_scale", p + "x8_zero"), (p + "a_scale", p + "a_zero")

    def n(op: str, inputs: list[str], output: str, **attrs) -> onnx.NodeProto:
        return helper.make_node(op, inputs, [p + output], name=p + output, **attrs)

    nodes = [
        n("Reshape", [x, p + "flat"], "xf"),
        n("QuantizeLinear", [p + "xf", *x_grid], "xq"),
        n("DequantizeLinear", [p + "xq", *x_grid], "xa"),
        n("QuantizeLinear", [p + "xf", *x8_grid], "x8"),
        n("Transpose", [p + "x8"], "x8t", perm=[0, 2, 1]),
        n("DequantizeLinear", [p + "x8t", *x8_grid], "xbt"),
        n("DequantizeLinear", [p + "x8", *x8_grid], "xb"),
        n("MatMul", [p + "xa", p + "xbt"], "e"),
        n("Softmax", [p + "e"], "a", axis=-1),
        n("QuantizeLinear", [p + "a", *a_grid], "aq"),
        n("DequantizeLinear", [p + "aq", *a_grid], "ad"),
        n("MatMul", [p + "ad", p + "xb"], "o"),
        n("Shape", [x], "shape"),
        n("Reshape", [p + "o", p + "shape"], "o4"),
        n("Mul", [alpha, p + "o4"], "scaled"),
        helper.make_node("Add", [p + "scaled", x], list(node.output), name=p + "residual"),
    ]
    return nodes, initializers
