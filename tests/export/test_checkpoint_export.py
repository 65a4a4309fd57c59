"""adfl export on a trained checkpoint: files, INT8 on real crops, accuracy guard, bundle."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from adfl_deploy.cli import main
from adfl_deploy.errors import ConfigError
from adfl_deploy.model.artifact import load_artifact
from adfl_deploy.runtime.embedder import Embedder

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported")
    bundle = out.parent / f"{out.name}-bundle"
    assert main(["export", str(tiny_checkpoint), "--out", str(out), "--int8", "--eval-set", f"market-style={tiny_dataset}",
                 "--max-map-drop", "100", "--bundle", "int8", str(bundle)]) == 0  # fmt: skip
    return out, bundle


def test_files_and_sidecar(exported):
    out, _ = exported
    info = load_artifact(out)
    assert info.variants == {"fp32": "model.onnx", "int8": "model.int8.onnx"} and info.onnx_tensorrt == "model.trt.onnx"
    assert info.onnx_tensorrt_int8 == "model.trt.int8.onnx"
    assert set(info.accuracy) == {"fp32", "int8"} and 0 < info.accuracy["int8"]["mAP"] <= 1
    assert (info.preprocessing.height, info.preprocessing.width) == (64, 32)  # from the checkpoint's config
    int8 = onnx.load(str(out / "model.int8.onnx"))
    ops = {n.op_type for n in int8.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # spatial attention stays a float fused node; channel attention is quantized (int8_attention)
    assert "SpatialAttention" in ops and "ChannelAttention" not in ops
    assert [f.name for f in int8.functions] == ["SpatialAttention"]
    # ONNX Runtime's file: uint8 activations (VNNI u8 x s8); TensorRT's: symmetric int8, no functions
    activation_zero_points = [
        i for i in int8.graph.initializer if i.name.endswith("zero_point") and i.data_type == onnx.TensorProto.UINT8
    ]
    assert activation_zero_points
    trt = onnx.load(str(out / "model.trt.int8.onnx"))
    assert not trt.functions and {"QuantizeLinear", "SpatialAttention", "ChannelAttention"} <= {n.op_type for n in trt.graph.node}
    trt_zero_points = [i for i in trt.graph.initializer if i.name.endswith("zero_point")]
    assert trt_zero_points and all(i.data_type == onnx.TensorProto.INT8 for i in trt_zero_points)
    assert all(not any(onnx.numpy_helper.to_array(z).ravel()) for z in trt_zero_points)  # symmetric


def test_int8_embeddings_stay_close_to_fp32(exported):
    from adfl_deploy.assets import load_sample_crops

    out, _ = exported
    crops = load_sample_crops()
    fp32 = Embedder.from_artifact(out, precision="fp32").embed(crops)
    int8 = Embedder.from_artifact(out, precision="int8").embed(crops)
    cosine = (fp32 * int8).sum(axis=1)  # per crop (the embeddings are L2-normalised)
    assert cosine.min() > 0.95
    # the sidecar reports the same comparison, made at export
    parity = load_artifact(out).parity
    assert parity["int8_min_cosine"] == pytest.approx(cosine.min(), abs=1e-5)
    assert parity["int8_median_cosine"] == pytest.approx(np.median(cosine), abs=1e-5)


def test_bundle_holds_one_precision(exported):
    _, bundle = exported
    info = load_artifact(bundle)
    assert info.precision == "int8" and sorted(p.name for p in bundle.iterdir()) == ["adfl.json", "model.int8.onnx"]
    assert Embedder.from_artifact(bundle).precision == "int8"
    with pytest.raises(ConfigError, match="no fp32 model"):
        Embedder.from_artifact(bundle, precision="fp32")


def test_the_accuracy_guard_fails_the_export(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    # a negative allowance can never be met: the guard must refuse
    code = main(
        [
            "export",
            str(tiny_checkpoint),
            "--out",
            str(tmp_path / "x"),
            "--int8",
            "--eval-set",
            f"market-style={tiny_dataset}",
            "--max-map-drop",
            "-100",
        ]
    )
    assert code == 2 and "INT8 loses" in capsys.readouterr().err
    assert json.loads((tmp_path / "x" / "adfl.json").read_text())["accuracy"]  # measured numbers kept for inspection


def test_bench_compare_adds_pytorch_and_speedups(exported, tiny_checkpoint, tmp_path):
    out, _ = exported
    assert (
        main(
            [
                "bench",
                str(out),
                "--compare",
                "--checkpoint",
                str(tiny_checkpoint),
                "--batch",
                "2",
                "--warmup",
                "1",
                "--iters",
                "2",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {(r["backend"], r["precision"]) for r in report["rows"]} == {
        ("onnxruntime-cpu", "fp32"),
        ("onnxruntime-cpu", "int8"),
        ("torch-eager", "fp32"),
    }
    (row,) = report["comparison"]
    assert row["speedup_vs_ort_fp32"] == pytest.approx(row["ort_fp32"] / row["best_ms"])
    # every CPU row, PyTorch's included, against the peak of its precision (the best measured)
    for r in report["rows"]:
        assert r["peak_ratio"] == pytest.approx(r["gflop_per_s"] / report["peaks_gflop_per_s"][r["precision"]])


@pytest.mark.parametrize(("flag", "max_shape"), [([], "crops:8x64x32x3"), (["--input", "float"], "images:8x3x64x32")])
def test_engine_without_tensorrt_fails_in_one_line_and_keeps_the_onnx(tiny_checkpoint, tmp_path, capsys, flag, max_shape):
    from adfl_deploy.export.tensorrt_engine import tensorrt_available

    if tensorrt_available():
        pytest.skip("TensorRT is installed here")
    out = tmp_path / "x"
    assert main(["export", str(tiny_checkpoint), "--out", str(out), "--engine", "--batch", "1:4:8", *flag]) == 2
    err = capsys.readouterr()
    assert "TensorRT is not installed" in err.err and err.err.strip().count("\n") == 0
    # the trtexec line uses the requested profile and the model's input (uint8 NHWC crops by default)
    assert f"--maxShapes={max_shape} " in err.out
    assert load_artifact(out).onnx == "model.onnx"  # the ONNX files are written and verified


def test_bad_batch_range(tiny_checkpoint, tmp_path, capsys):
    assert main(["export", str(tiny_checkpoint), "--out", str(tmp_path), "--batch", "8:1:4"]) == 2
    assert "MIN <= OPT <= MAX" in capsys.readouterr().err


def test_fp16_files_run_and_keep_accuracy(tiny_checkpoint, tiny_dataset, tmp_path):
    from adfl_deploy.assets import load_sample_crops

    out = tmp_path / "fp16"
    assert (
        main(
            [
                "export",
                str(tiny_checkpoint),
                "--out",
                str(out),
                "--precision",
                "fp16",
                "--eval-set",
                f"market-style={tiny_dataset}",
            ]
        )
        == 0
    )
    info = load_artifact(out)
    assert info.precision == "fp16" and info.variants == {"fp32": "model.onnx", "fp16": "model.fp16.onnx"}
    assert info.onnx_tensorrt_fp16 == "model.trt.fp16.onnx" and info.parity["fp16_min_cosine"] >= 0.999
    assert 0 < info.parity["fp16_max_activation"] < 65504 / 2
    assert info.parity["fp16_arithmetic_min_cosine"] >= 0.999  # the network in float16 arithmetic
    trt = onnx.load(str(out / "model.trt.fp16.onnx"))
    assert not trt.functions and {"SpatialAttention", "ChannelAttention"} <= {n.op_type for n in trt.graph.node}
    floats = {i.data_type for i in trt.graph.initializer} & {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    assert floats == {onnx.TensorProto.FLOAT16}  # every weight in half precision
    assert trt.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert trt.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # I/O types kept
    crops = load_sample_crops()
    half = Embedder.from_artifact(out)  # the default precision is now fp16
    full = Embedder.from_artifact(out, precision="fp32").embed(crops)
    assert half.precision == "fp16" and (half.embed(crops) * full).sum(axis=1).min() > 0.999
    assert abs(info.accuracy["fp16"]["mAP"] - info.accuracy["fp32"]["mAP"]) < 0.01


def test_fp16_parity_fails_on_values_beyond_the_fp16_range(tmp_path):
    from onnx import TensorProto, helper

    from adfl_deploy.assets import load_sample_crops
    from adfl_deploy.export.checkpoint_export import fp16_parity
    from adfl_deploy.export.half_precision import to_fp16
    from adfl_deploy.model.artifact import ArtifactInfo
    from adfl_deploy.model.preprocess import FLOAT_NCHW, Preprocessing
    from adfl_deploy.model.variants import ModelConfig

    # normalised pixels (|x| up to ~2.6) x 4e4: beyond half of float16's 65504
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["images", "scale"], ["big"]),
            helper.make_node("ReduceSum", ["big", "axes"], ["emb"], keepdims=0),
        ],
        "big",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, 16, 8])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor("scale", TensorProto.FLOAT, [], [4e4]), helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(tmp_path / "model.onnx"))
    onnx.save(to_fp16(model), str(tmp_path / "model.fp16.onnx"))
    info = ArtifactInfo(ModelConfig(), Preprocessing(16, 8), 3, input_format=FLOAT_NCHW)
    with pytest.raises(ConfigError, match=r"activation \w+ reaches \d+ on real crops, too close to float16"):
        fp16_parity(tmp_path, info, load_sample_crops())


def test_fp16_arithmetic_check_sees_what_float16_loses():
    import torch

    from adfl_deploy.assets import load_sample_crops
    from adfl_deploy.export.checkpoint_export import fp16_arithmetic_cosine
    from adfl_deploy.model.preprocess import Preprocessing

    class Scaled(torch.nn.Module):  # x * 2: exact in float16 for normalised pixels
        def forward(self, x):
            return (x * 2).flatten(1)

    class Cancelling(torch.nn.Module):  # (x + 1e4) - 1e4: float16's step at 1e4 is 8, x is lost
        def forward(self, x):
            return ((x + 1e4) - 1e4).flatten(1) + 1.0

    crops, prep = load_sample_crops()[:3], Preprocessing(32, 16)
    assert fp16_arithmetic_cosine(Scaled(), crops, prep).min() > 0.9999
    # x lost: every output is the constant 1.0 (+ multiples of 8), nowhere near x + 1.0
    assert fp16_arithmetic_cosine(Cancelling(), crops, prep).max() < 0.9
