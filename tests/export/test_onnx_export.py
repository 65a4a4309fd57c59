"""Export writes a valid dynamic-batch ONNX whose ONNX Runtime output matches PyTorch."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from adfl_deploy.assets import load_sample_crops
from adfl_deploy.model.artifact import SIDECAR, load_artifact
from adfl_deploy.model.preprocess import to_blob
from adfl_deploy.runtime.embedder import Embedder

torch = pytest.importorskip("torch")


def test_artifact_files_and_sidecar(artifact_dir, small_model):
    proto = onnx.load(str(artifact_dir / "model.onnx"))
    onnx.checker.check_model(proto)
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # symbolic batch axis
    info = load_artifact(artifact_dir)
    assert info.model == small_model.cfg
    assert info.embedding_dim == 512 + 256
    assert json.loads((artifact_dir / SIDECAR).read_text())["model"]["backbone"] == "resnet18"
    assert sorted(p.name for p in artifact_dir.iterdir()) == [SIDECAR, "model.onnx", "model.trt.onnx", "model_state.pt"]
    assert info.fused_ops == ["ChannelAttention", "SpatialAttention"]  # 1sum = 1s + 1c


def test_attention_blocks_are_single_custom_nodes_in_both_flavours(artifact_dir):
    portable = onnx.load(str(artifact_dir / "model.onnx"))
    trt = onnx.load(str(artifact_dir / "model.trt.onnx"))
    for proto in (portable, trt):
        custom = [n for n in proto.graph.node if n.domain == "com.adfl"]
        assert sorted(n.op_type for n in custom) == ["ChannelAttention", "SpatialAttention"]
        assert not any(n.op_type == "Softmax" for n in proto.graph.node)  # no unfused attention left
    assert sorted(f.name for f in portable.functions) == ["ChannelAttention", "SpatialAttention"]
    assert not trt.functions  # a local function would hide the TensorRT plugin
    attrs = {a.name: a.s.decode() for n in trt.graph.node if n.domain == "com.adfl" for a in n.attribute}
    assert attrs == {"plugin_namespace": "adfl", "plugin_version": "1"}


def test_runtime_embeddings_match_pytorch_on_real_crops(artifact_dir, small_model):
    crops = load_sample_crops()
    embedder = Embedder.from_artifact(artifact_dir)
    got = embedder.embed(crops)
    with torch.no_grad():
        want = small_model(torch.from_numpy(to_blob(crops, embedder.info.preprocessing))).numpy()
    want = want / np.linalg.norm(want, axis=1, keepdims=True)
    assert got.shape == (12, 768) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
    assert np.abs(got - want).max() < 1e-4


def test_dynamic_batch_gives_the_same_embedding_per_crop(artifact_dir):
    crops = load_sample_crops()
    embedder = Embedder.from_artifact(artifact_dir)
    together = embedder.embed(crops)  # 12 crops > max_batch 8: split into two runs
    alone = np.concatenate([embedder.embed([c]) for c in crops])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_the_paper_delegate_exports_fused_and_matches_pytorch_on_real_crops(tmp_path):
    """Issue 4's acceptance case: AF3-cat-1024-attn3-1sum with active attention (alpha != 0)."""
    import warnings

    from adfl_deploy.export.onnx_export import export_onnx
    from adfl_deploy.model.preprocess import Preprocessing
    from adfl_deploy.train.models import create_model

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model("AF3-cat-1024-attn3-1sum").eval()
    for name, p in model.named_parameters():
        if name.endswith("alpha"):
            p.data.fill_(0.3)
    crops = load_sample_crops()
    info = export_onnx(model, tmp_path, crops, prep=Preprocessing())
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert sorted(n.op_type for n in proto.graph.node if n.domain == "com.adfl") == ["ChannelAttention", "SpatialAttention"]
    got = Embedder.from_artifact(tmp_path).embed(crops)
    with torch.no_grad():
        want = model(torch.from_numpy(to_blob(crops, info.preprocessing))).numpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert np.abs(got - want).max() < 1e-4  # on the unit-norm embeddings the runtime returns


def test_torch_backend_matches_onnx_runtime(artifact_dir):
    crops = load_sample_crops()
    ort_emb = Embedder.from_artifact(artifact_dir, backend="onnxruntime-cpu").embed(crops)
    torch_embedder = Embedder.from_artifact(artifact_dir, backend="torch")
    assert torch_embedder.backend == "torch" and torch_embedder.precision == "fp32"
    assert np.abs(torch_embedder.embed(crops) - ort_emb).max() < 1e-4


def test_auto_picks_the_fastest_available_backend(artifact_dir, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="adfl_deploy.runtime.embedder"):
        embedder = Embedder.from_artifact(artifact_dir)
    assert embedder.backend == "onnxruntime-cpu"  # no CUDA execution provider on this machine
    assert "(auto)" in caplog.text


def test_ibn_backbone_exports_and_matches_pytorch_on_real_crops(tmp_path):
    """Instance norm on half the channels survives export (plain ONNX ops, no custom domain)."""
    import warnings

    from adfl_deploy.export.onnx_export import export_onnx
    from adfl_deploy.model.preprocess import Preprocessing
    from adfl_deploy.train.models import create_model

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model("AF3-cat-256-attn3-1sum@resnet18-ibn", num_classes=5).eval()
    with torch.no_grad():  # non-trivial instance-norm affines, so a dropped one would show
        for name, p in model.named_parameters():
            if ".instance." in name:
                p.uniform_(0.5, 1.5)
    crops = load_sample_crops()
    info = export_onnx(model, tmp_path, crops, prep=Preprocessing(height=128, width=64))
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert "InstanceNormalization" in {n.op_type for n in proto.graph.node}
    assert load_artifact(tmp_path).model.ibn
    got = Embedder.from_artifact(tmp_path).embed(crops)
    with torch.no_grad():
        want = model(torch.from_numpy(to_blob(crops, info.preprocessing))).numpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert np.abs(got - want).max() < 1e-4
