"""Preprocessing folded into the graph: the model takes resized uint8 BGR crops and computes the
same network input (and so the same embeddings) as the NumPy path."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from adfl_deploy.assets import load_sample_crops
from adfl_deploy.export.uint8_input import fold_preprocessing
from adfl_deploy.model.artifact import load_artifact
from adfl_deploy.model.preprocess import FLOAT_NCHW, UINT8_NHWC, Preprocessing, resize_batch
from adfl_deploy.runtime.embedder import Embedder


def _identity_graph(h: int, w: int) -> onnx.ModelProto:
    """A model that returns its float input, so the folded prefix is what comes out."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["out"])],
        "identity",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, h, w])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, h, w])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _reference(batch_u8: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """float64, straight from the definition: RGB in [0, 1], minus mean, over std, NCHW."""
    x = batch_u8.astype(np.float64) / 255.0
    if prep.channel_order == "RGB":
        x = x[..., ::-1]
    x = (x - np.array(prep.mean)) / np.array(prep.std)
    return x.transpose(0, 3, 1, 2)


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_folded_prefix_computes_the_normalised_input(order):
    prep = Preprocessing(height=32, width=16, channel_order=order)
    folded = fold_preprocessing(_identity_graph(32, 16), prep)
    onnx.checker.check_model(folded, full_check=True)
    (inp,) = folded.graph.input
    assert inp.name == "crops" and inp.type.tensor_type.elem_type == TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 32, 16, 3]
    batch = resize_batch(load_sample_crops()[:5], prep)
    batch[0, 0, 0] = (0, 128, 255)  # distinct channels: a swapped order cannot pass
    got = ort.InferenceSession(folded.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"crops": batch})[0]
    np.testing.assert_allclose(got, _reference(batch, prep), rtol=0, atol=1e-5)


def _conv_graph(h: int, w: int, seed: int = 0) -> onnx.ModelProto:
    """images -> 3x3 Conv (3 -> 4 channels, zero padding): the shape of every network's stem."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "stem.weight")
    bias = numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "stem.bias")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "stem.weight", "stem.bias"], ["out"], pads=[1, 1, 1, 1])],
        "stem",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, h, w])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 4, h, w])],
        initializer=[weight, bias],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_channel_flip_folds_into_the_stem_convolution():
    prep = Preprocessing(height=32, width=16)
    stem = _conv_graph(32, 16)
    before = stem.SerializeToString()
    folded = fold_preprocessing(stem, prep)
    assert stem.SerializeToString() == before  # the input model is left alone
    onnx.checker.check_model(folded, full_check=True)
    assert "Slice" not in {n.op_type for n in folded.graph.node}  # no flip pass over the pixels
    batch = resize_batch(load_sample_crops()[:4], prep)
    batch[0, 0, 0] = (0, 128, 255)
    got = ort.InferenceSession(folded.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"crops": batch})[0]
    # oracle: the unfolded float model on the float64 reference input
    plain = ort.InferenceSession(stem.SerializeToString(), providers=["CPUExecutionProvider"])
    want = plain.run(None, {"images": _reference(batch, prep).astype(np.float32)})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_channel_flip_stays_a_slice_when_the_input_feeds_more_than_convolutions():
    stem = _conv_graph(8, 4)
    stem.graph.node.append(helper.make_node("Identity", ["images"], ["copy"]))
    stem.graph.output.append(helper.make_tensor_value_info("copy", TensorProto.FLOAT, ["batch", 3, 8, 4]))
    folded = fold_preprocessing(stem, Preprocessing(8, 4))
    assert "Slice" in {n.op_type for n in folded.graph.node}
    weights = {i.name for i in folded.graph.initializer}
    assert "stem.weight" in weights and not any(w.endswith("_bgr_0") for w in weights)


def test_fold_refuses_a_graph_without_the_float_input():
    with pytest.raises(ValueError, match="no input 'pixels'"):
        fold_preprocessing(_identity_graph(8, 4), Preprocessing(8, 4), float_input="pixels")


def test_default_export_takes_uint8_crops_in_both_flavours(artifact_dir):
    info = load_artifact(artifact_dir)
    assert info.input_format == UINT8_NHWC and info.input_name == "crops"
    for name in ("model.onnx", "model.trt.onnx"):
        (inp,) = onnx.load(str(artifact_dir / name)).graph.input
        dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
        assert inp.type.tensor_type.elem_type == TensorProto.UINT8 and dims[1:] == [
            info.preprocessing.height,
            info.preprocessing.width,
            3,
        ]
    assert Embedder.from_artifact(artifact_dir).prepare(load_sample_crops()[:2]).dtype == np.uint8


def test_float_input_export_gives_the_same_embeddings(artifact_dir, small_model, tmp_path):
    pytest.importorskip("torch")
    from adfl_deploy.export.onnx_export import export_onnx

    float_info = export_onnx(
        small_model,
        tmp_path,
        load_sample_crops(),
        prep=load_artifact(artifact_dir).preprocessing,
        max_batch=8,
        input_format=FLOAT_NCHW,
    )
    (inp,) = onnx.load(str(tmp_path / "model.onnx")).graph.input
    assert float_info.input_name == "images" and inp.type.tensor_type.elem_type == TensorProto.FLOAT
    crops = load_sample_crops()
    as_float = Embedder.from_artifact(tmp_path).embed(crops)
    as_uint8 = Embedder.from_artifact(artifact_dir).embed(crops)
    np.testing.assert_allclose(as_uint8, as_float, rtol=0, atol=1e-6)
