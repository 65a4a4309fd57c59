"""Channel attention quantized in ONNX Runtime's INT8 model: the arithmetic the rewrite
promises (a float64 reference of its quantized operands, and the float op it stands for) and
the int8 kernels ONNX Runtime picks for it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("torch")  # export.onnx_ops builds the op's function with torch's exporter types

from adfl_deploy.export.int8_attention import quantize_channel_attention  # noqa: E402
from adfl_deploy.export.onnx_ops import DOMAIN, VERSION, function_proto  # noqa: E402
from tests.kernels.op_reference import channel_attention  # noqa: E402

SHAPE = (2, 64, 8, 6)  # N, C, H, W: energies of a few thousand, like a trained model's


def _cpu_has_vnni() -> bool:
    """True where ONNX Runtime's x86 u8 x s8 products run on VNNI (exact int32 sums); False on
    an x86 CPU with AVX2 only, where they run on vpmaddubsw, whose int16 pair sums saturate
    (ONNX Runtime's quantization guide says so). Unknown (not Linux): assumed True."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True
    return "vnni" in flags or not re.search(r"\bavx2\b", flags)


#: measured on an AVX2-only AMD EPYC (2026-12-02): 5% of outputs off by up to 17 on a scale of
#: 40; the shipped edge model's Con-ReID mAP there is 0.891 against 0.892 with VNNI
SATURATES = pytest.mark.xfail(
    not _cpu_has_vnni(),
    reason="no VNNI: ONNX Runtime's AVX2 u8 x s8 kernel saturates int16 pair sums, so the rewrite is not exact here",
    strict=False,
)


def _graph(scale: float, zero: int, alpha: float, zero_type=TensorProto.UINT8) -> onnx.ModelProto:
    """x_q -> DequantizeLinear -> ChannelAttention: what the quantizer leaves around the op."""
    params = [
        numpy_helper.from_array(np.array(scale, dtype=np.float32), "x_scale"),
        helper.make_tensor("x_zero", zero_type, [], [zero]),
        numpy_helper.from_array(np.array(alpha, dtype=np.float32), "alpha"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x"]),
        helper.make_node("ChannelAttention", ["x", "alpha"], ["y"], domain=DOMAIN, name="attention.channel"),
    ]
    graph = helper.make_graph(
        nodes,
        "channel",
        [helper.make_tensor_value_info("x_q", zero_type, list(SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(SHAPE))],
        initializer=params,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, VERSION)],
        functions=[function_proto("ChannelAttention")],
    )
    model.ir_version = 10
    return model


def _quantized_reference(x_q: np.ndarray, scale: float, zero: int, alpha: float) -> np.ndarray:
    """float64, from the module's definition: x on its uint8 grid, int8 copy with
    s8 = max(z, 255 - z) * s / 127, energies, softmax, weights on a 1/255 grid, weighted sum."""
    x = (x_q.astype(np.float64) - zero) * scale
    s8 = max(zero, 255 - zero) * scale / 127
    x8 = np.clip(np.round(x / s8), -128, 127) * s8
    b, c = x.shape[:2]
    xf, x8f = x.reshape(b, c, -1), x8.reshape(b, c, -1)
    e = xf @ x8f.transpose(0, 2, 1)
    a = np.exp(e - e.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    a = np.clip(np.round(a * 255), 0, 255) / 255
    return alpha * (a @ x8f).reshape(x.shape) + x


def _run(model: onnx.ModelProto, x_q: np.ndarray, optimized: str | None = None) -> np.ndarray:
    options = ort.SessionOptions()
    if optimized:
        options.optimized_model_filepath = optimized
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x_q": x_q})[0]


@SATURATES
@pytest.mark.parametrize("zero", [0, 37])
def test_quantized_channel_attention_computes_its_definition(zero):
    rng = np.random.default_rng(zero)
    scale, alpha = 0.1, 0.7
    x_q = rng.integers(0, 256, SHAPE, dtype=np.uint8)
    model, replaced = quantize_channel_attention(_graph(scale, zero, alpha))
    assert replaced == 1 and not model.functions  # the float function is gone with its last node
    onnx.checker.check_model(model, full_check=True)
    got = _run(model, x_q)
    # float32 against float64 only: far below one step of the weights' grid in the output
    # (alpha * max|x| / 255 = 0.07 here, which the unquantized float op misses by)
    x_max = max(zero, 255 - zero) * scale
    np.testing.assert_allclose(got, _quantized_reference(x_q, scale, zero, alpha), rtol=0, atol=1e-3)
    # and it stands for the float op: within a few grid steps of the float64 oracle
    want = channel_attention((x_q.astype(np.float64) - zero) * scale, alpha)
    assert np.abs(got - want).max() < 4 * alpha * x_max / 127


def test_onnx_runtime_runs_both_products_as_uint8_times_int8(tmp_path):
    """ORT's fast x86 int8 GEMM is u8 x s8: both products must reach MatMulIntegerToFloat with
    an int8 right operand (its QDQS8ToU8Transformer would turn a lone int8 Q -> DQ pair into
    uint8, the ~4x slower u8 x u8 path), and no float MatMul may be left."""
    model, _ = quantize_channel_attention(_graph(0.1, 0, 0.5))
    path = tmp_path / "optimized.onnx"
    _run(model, np.zeros(SHAPE, np.uint8), optimized=str(path))
    optimized = onnx.load(str(path))
    zero_types = {i.name: i.data_type for i in optimized.graph.initializer}
    products = [n for n in optimized.graph.node if n.op_type in ("MatMul", "FusedMatMul", "MatMulIntegerToFloat")]
    assert [n.op_type for n in products] == ["MatMulIntegerToFloat"] * 2
    for node in products:
        assert (zero_types[node.input[4]], zero_types[node.input[5]]) == (TensorProto.UINT8, TensorProto.INT8)


def test_other_inputs_are_left_alone():
    symmetric = _graph(0.1, 0, 0.5, zero_type=TensorProto.INT8)  # TensorRT's grid: not this rewrite's
    model, replaced = quantize_channel_attention(symmetric)
    assert replaced == 0 and model.SerializeToString() == symmetric.SerializeToString()
