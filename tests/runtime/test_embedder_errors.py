"""Bad crops and bad artefacts fail with one clear line (the artefact comes from tests/conftest.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from adfl_deploy.errors import BackendUnavailable, ConfigError
from adfl_deploy.model.artifact import SIDECAR
from adfl_deploy.runtime.embedder import Embedder

pytest.importorskip("torch")  # the artefact fixture exports with PyTorch


@pytest.fixture(scope="module", params=["onnxruntime-cpu", "torch"])
def embedder(artifact_dir, request):
    """Every backend present here gets the same bad-input tests."""
    return Embedder.from_artifact(artifact_dir, backend=request.param)


@pytest.mark.parametrize(
    "crops,message",
    [
        ([], "no crops"),
        ([np.zeros((10, 10, 3), np.float32)], "uint8"),
        ([np.zeros((10, 10), np.uint8)], r"\(H, W, 3\)"),
        ([np.zeros((10, 10, 4), np.uint8)], r"\(H, W, 3\)"),
        ([np.zeros((0, 10, 3), np.uint8)], "zero-size"),
        (["not an image"], "numpy array"),
    ],
)
def test_bad_crops(embedder, crops, message):
    with pytest.raises(ValueError, match=message) as err:
        embedder.embed(crops)
    assert "\n" not in str(err.value)


@pytest.fixture
def broken(tmp_path, artifact_dir):
    copy = tmp_path / "artifact"
    shutil.copytree(artifact_dir, copy)
    return copy


def _fails(directory, match):
    with pytest.raises(ConfigError, match=match) as err:
        Embedder.from_artifact(directory)
    assert "\n" not in str(err.value)


def test_missing_sidecar(broken):
    (broken / SIDECAR).unlink()
    _fails(broken, "no adfl.json")


def test_truncated_onnx(broken):
    onnx_file = broken / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    _fails(broken, "sha256 does not match")


def test_missing_onnx(broken):
    (broken / "model.onnx").unlink()
    _fails(broken, "missing")


def test_corrupt_sidecar(broken):
    (broken / SIDECAR).write_text("{ not json")
    _fails(broken, "not valid JSON")


def test_foreign_sidecar_field(broken):
    data = json.loads((broken / SIDECAR).read_text())
    data["embedding_dimension"] = 3
    (broken / SIDECAR).write_text(json.dumps(data))
    _fails(broken, "unknown field 'embedding_dimension'")


def test_unknown_and_unavailable_backends(artifact_dir):
    with pytest.raises(ConfigError, match="unknown backend"):
        Embedder.from_artifact(artifact_dir, backend="tensorrt-on-mars")
    with pytest.raises(BackendUnavailable, match="onnxruntime-cuda is not available here: onnxruntime-gpu") as err:
        Embedder.from_artifact(artifact_dir, backend="onnxruntime-cuda")
    assert "\n" not in str(err.value)


def test_torch_backend_rejects_int8_and_foreign_weights(broken):
    with pytest.raises(BackendUnavailable, match="runs fp32"):
        Embedder.from_artifact(broken, backend="torch", precision="int8")
    import torch

    torch.save({"unrelated": torch.zeros(2)}, broken / "model_state.pt")
    with pytest.raises(ConfigError, match="sha256 does not match"):
        Embedder.from_artifact(broken, backend="torch")
