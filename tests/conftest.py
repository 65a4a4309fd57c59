"""Test-wide helpers: where ../shared is, and skipping GPU tests without a CUDA device."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from adfl_deploy.model.preprocess import Preprocessing

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The read-only shared data folder: $ADFL_SHARED, else ../shared next to the repo."""
    return Path(os.environ.get("ADFL_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if not (path / "data").is_dir():
        pytest.skip(f"shared data not found at {path} (set ADFL_SHARED to its location)")
    return path


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none found)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# A small exported artefact shared by the export and runtime tests (built once per session).
SMALL_PREP = Preprocessing(height=128, width=64)


@pytest.fixture(scope="session")
def small_model():
    torch = pytest.importorskip("torch")
    from adfl_deploy.train.models import create_model

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model("AF3-cat-256-attn3-1sum@resnet18", num_classes=5).eval()
    for name, p in model.named_parameters():
        if name.endswith("alpha"):
            p.data.fill_(0.4)
    return model


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory, small_model):
    from adfl_deploy.assets import load_sample_crops
    from adfl_deploy.export.onnx_export import export_onnx

    out = tmp_path_factory.mktemp("artifact")
    export_onnx(small_model, out, load_sample_crops(), prep=SMALL_PREP, max_batch=8)
    return out


# A tiny real dataset and a trained tiny checkpoint, shared by the training and export tests.
@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, shared):
    """8 Con-ReID training ids x 8 images as train; 3 test ids as query/gallery (symlinks)."""
    src = shared / "data" / "con-reid"
    root = tmp_path_factory.mktemp("tiny-con-reid")

    def by_id(split: str) -> dict[str, list[Path]]:
        groups: dict[str, list[Path]] = {}
        for p in sorted((src / split).glob("*.jpg")):
            groups.setdefault(p.name[:4], []).append(p)
        return groups

    test_ids = sorted(by_id("query"))[:3]
    train_ids = sorted(by_id("bounding_box_train"))[:8]
    for split, per_id, ids in (("bounding_box_train", 8, train_ids), ("query", 2, test_ids), ("bounding_box_test", 6, test_ids)):
        (root / split).mkdir()
        groups = by_id(split)
        for pid in ids:
            for p in groups[pid][:per_id]:
                (root / split / p.name).symlink_to(p)
    return root


def tiny_config(root: Path, out: Path, epochs: int = 2):
    """A seconds-long training run: ResNet18 with 1sum attention on 64x32 crops of 8 ids."""
    from adfl_deploy.train.config import DataConfig, SolverConfig, TrainConfig

    return TrainConfig(
        model="attn3-1sum@resnet18",
        data=DataConfig(
            dataset="market-style",
            root=str(root),
            height=64,
            width=32,
            identities_per_batch=4,
            instances_per_identity=2,
            workers=0,
        ),
        solver=SolverConfig(epochs=epochs, warmup_epochs=1, milestones=(1,), freeze_backbone_epochs=1),
        out=str(out),
    )


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset, tmp_path_factory):
    from adfl_deploy.train.trainer import train

    return train(tiny_config(tiny_dataset, tmp_path_factory.mktemp("tiny-run"), epochs=1))


@pytest.fixture(scope="session")
def scene(tmp_path_factory):
    """A small generated scene: 2 cameras, 20 s at 10 FPS, 5 people (about 3 s to make)."""
    from adfl_deploy.scene import SceneConfig, generate

    return generate(
        SceneConfig(cameras=2, seconds=20, people=5, seed=1), tmp_path_factory.mktemp("scene") / "scene", progress=False
    )


@pytest.fixture
def full_disk_after(monkeypatch):
    """``full_disk_after(n)``: the pipeline's sinks may write ``n`` more times, then every write
    fails with ENOSPC, as on a disk that just filled up (the fault suite's full-disk cases)."""

    def arm(writes: int) -> None:
        import errno

        from adfl_deploy.pipeline import sinks

        real_write, left = os.write, {"writes": writes}

        def write(fd, data):
            if left["writes"] == 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            left["writes"] -= 1
            return real_write(fd, data)

        monkeypatch.setattr(sinks.os, "write", write)

    return arm
