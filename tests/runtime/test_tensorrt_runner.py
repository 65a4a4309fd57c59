"""The TensorRT backend: its planning helpers here, the engine itself on a GPU (``-m gpu``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from adfl_deploy.assets import load_sample_crops
from adfl_deploy.errors import ArtifactError, EngineError
from adfl_deploy.model.artifact import load_artifact, write_sidecar
from adfl_deploy.optional import installed
from adfl_deploy.runtime import backends
from adfl_deploy.runtime.embedder import Embedder
from adfl_deploy.runtime.engine_info import EngineInfo
from adfl_deploy.runtime.tensorrt_runner import (
    DEFAULT_PLUGIN_LIBRARY,
    TensorPlan,
    batch_range,
    check_input,
    output_max_shape,
    pad_to_min,
    plugin_library_path,
)

CROPS_PLAN = TensorPlan("crops", np.dtype(np.uint8), (32, 128, 64, 3))


def test_batch_range_and_output_buffer_come_from_the_profile():
    assert batch_range(((2, 128, 64, 3), (8, 128, 64, 3), (32, 128, 64, 3))) == (2, 32)
    assert output_max_shape((-1, 768), 32) == (32, 768)
    assert CROPS_PLAN.max_bytes == 32 * 128 * 64 * 3
    with pytest.raises(ArtifactError, match="dynamic beyond the batch"):
        output_max_shape((-1, -1), 32)


@pytest.mark.parametrize(
    "batch, match",
    [
        (np.zeros((2, 128, 64, 3), np.float32), "expected uint8"),
        (np.zeros((2, 3, 128, 64), np.uint8), r"expected \(N, 128, 64, 3\)"),
        (np.zeros((33, 128, 64, 3), np.uint8), "outside 1..32"),
        (np.zeros((0, 128, 64, 3), np.uint8), "outside 1..32"),
    ],
)
def test_a_batch_the_engine_was_not_built_for_is_refused(batch, match):
    with pytest.raises(ValueError, match=match):
        check_input(batch, CROPS_PLAN, 32)


def test_small_batches_are_padded_with_the_last_crop():
    batch = np.arange(2 * 4).reshape(2, 4).astype(np.uint8)
    padded = pad_to_min(batch, 4)
    assert padded.shape == (4, 4) and (padded[:2] == batch).all() and (padded[2:] == batch[1]).all()
    assert pad_to_min(batch, 1) is batch


def test_plugin_library_argument_then_environment_then_build_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("ADFL_PLUGIN_LIBRARY", raising=False)
    assert plugin_library_path() == DEFAULT_PLUGIN_LIBRARY and DEFAULT_PLUGIN_LIBRARY.parent.name == "build"
    monkeypatch.setenv("ADFL_PLUGIN_LIBRARY", str(tmp_path / "env.so"))
    assert plugin_library_path() == tmp_path / "env.so"
    assert plugin_library_path(tmp_path / "arg.so") == tmp_path / "arg.so"


def test_auto_skips_an_engine_that_cannot_run_here(artifact_dir, tmp_path, monkeypatch):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(artifact_dir, model)
    write_sidecar(model, dataclasses.replace(load_artifact(model), engine=EngineInfo("model.engine", "10.3.0", "8.7")))
    monkeypatch.setattr(backends, "installed_tensorrt_version", lambda: None)
    assert Embedder.from_artifact(model).backend == "onnxruntime-cpu"
    with pytest.raises(EngineError, match="needs TensorRT 10.3.0, which is not installed"):
        Embedder.from_artifact(model, backend="tensorrt")


@pytest.mark.gpu
@pytest.mark.skipif(not installed("tensorrt"), reason="TensorRT is not installed")
def test_engine_matches_onnx_runtime_on_real_crops(artifact_dir, tmp_path):
    """Build the small artefact's engine (fused-attention plugins included) and compare."""
    import shutil

    from adfl_deploy.export.tensorrt_engine import build_engine, record_engine

    if not plugin_library_path().is_file():
        pytest.skip("plugin library not built (make native)")
    model = tmp_path / "model"
    shutil.copytree(artifact_dir, model)
    info = load_artifact(model)
    engine = build_engine(model / info.onnx_tensorrt, model / "model.engine", info, (2, 4, 8))
    record_engine(model, engine, (2, 4, 8))
    trt = Embedder.from_artifact(model, backend="tensorrt")
    assert trt.backend == "tensorrt" and trt.max_batch == 8
    crops = load_sample_crops()  # 12 crops: split 8 + 4; a single crop: padded to the minimum of 2
    want = Embedder.from_artifact(artifact_dir, backend="onnxruntime-cpu").embed(crops)
    got = trt.embed(crops)
    assert (got * want).sum(axis=1).min() > 0.9999  # TF32 may be on for fp32 layers
    np.testing.assert_allclose(trt.embed(crops[:1]), got[:1], atol=1e-5)
