"""Training recipe pieces against the paper, and the loop end to end on real crops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from adfl_deploy.errors import ConfigError
from adfl_deploy.train.checkpoint import load_checkpoint, load_model, save_checkpoint
from adfl_deploy.train.config import SolverConfig
from adfl_deploy.train.losses import batch_hard_triplet
from adfl_deploy.train.sampler import PKSampler
from adfl_deploy.train.schedule import lr_at
from adfl_deploy.train.trainer import train


def eq4(t: float) -> float:
    """The paper's Eq. (4), typed in as printed."""
    if t <= 20:
        return 3e-6 + (3.5e-4 - 3e-6) / 20 * t
    if t <= 80:
        return 3.5e-4
    if t <= 130:
        return 3.5e-5
    return 3.5e-6


def test_default_schedule_is_eq4():
    for t in range(1, 151):
        assert lr_at(t, SolverConfig()) == pytest.approx(eq4(t), rel=1e-12), t


def test_batch_hard_triplet_hand_case():
    # 1-D features: ids a = {0, 1}, b = {3}; anchors: 0 -> pos 1, neg 3: relu(1 - 3 + 0.3) = 0
    # 1 -> pos 1, neg 2: relu(1 - 2 + 0.3) = 0; 3 -> no positive except itself (dist ~0), neg 2:
    # relu(0 - 2 + 0.3) = 0. Move b to 1.5: anchor 1 -> relu(1 - 0.5 + 0.3) = 0.8, anchor 0 ->
    # relu(1 - 1.5 + 0.3) = 0, anchor b -> relu(0 - 0.5 + 0.3) = 0 -> mean 0.8 / 3
    feats = torch.tensor([[0.0], [1.0], [1.5]])
    labels = torch.tensor([0, 0, 1])
    assert float(batch_hard_triplet(feats, labels, 0.3)) == pytest.approx(0.8 / 3, abs=1e-5)


def test_pk_sampler_batches():
    labels = [0] * 10 + [1] * 2 + [2] * 7 + [3] * 4 + [4] * 1
    sampler = PKSampler(labels, p=3, k=4, seed=1)
    batches = list(sampler)
    assert batches and len(batches) == len(sampler)
    for batch in batches:
        ids = Counter(labels[i] for i in batch)
        assert len(batch) == 12 and len(ids) == 3 and set(ids.values()) == {4}
    sampler.set_epoch(2)
    assert list(sampler) != batches  # a new permutation each epoch...
    sampler.set_epoch(0)
    assert list(sampler) == batches  # ...that depends only on (seed, epoch)
    # identities with fewer than K images are sampled with replacement
    assert any(labels[i] == 4 for b in batches for i in b) or any(labels[i] == 1 for b in batches for i in b)


def test_pk_sampler_shards_across_ranks():
    labels = [i // 6 for i in range(60)]
    full = PKSampler(labels, p=2, k=3, seed=0)
    ranks = [PKSampler(labels, p=2, k=3, seed=0, rank=r, world_size=2) for r in range(2)]
    all_batches = list(full)[: 2 * len(ranks[0])]
    assert sorted(map(tuple, list(ranks[0]) + list(ranks[1]))) == sorted(map(tuple, all_batches))


def test_resume_continues_exactly(tiny_dataset, tmp_path):
    straight = load_checkpoint(train(tiny_config(tiny_dataset, tmp_path / "a")))
    train(tiny_config(tiny_dataset, tmp_path / "b"), stop_after_epoch=1)
    # as a checkpoint saved before ModelConfig.ibn existed: its model config lacks the field
    state = load_checkpoint(tmp_path / "b" / "last.pt")
    del state["model_config"]["ibn"]
    save_checkpoint(tmp_path / "b" / "last.pt", {k: v for k, v in state.items() if k != "format"})
    resumed = load_checkpoint(train(tiny_config(tiny_dataset, tmp_path / "b"), resume=tmp_path / "b" / "last.pt"))
    assert straight["epoch"] == resumed["epoch"] == 2
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=0, msg=key)
    lines = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert len(lines) == 3  # header + one row per epoch, no duplicate after resume
    assert (tmp_path / "a" / "evaluations.jsonl").read_text().count("mAP") == 1


def test_frozen_backbone_does_not_move(tiny_dataset, tmp_path):
    cfg = tiny_config(tiny_dataset, tmp_path, epochs=1)
    last = train(cfg)
    state = load_checkpoint(last)["model"]
    torch.manual_seed(cfg.seed)
    from adfl_deploy.train.models import create_model

    fresh = create_model(cfg.model, num_classes=8).state_dict()
    assert torch.equal(state["stages.0.0.conv1.weight"], fresh["stages.0.0.conv1.weight"])
    assert torch.equal(state["stem.1.running_mean"], fresh["stem.1.running_mean"])  # BN stats frozen too
    assert not torch.equal(state["head.classifier.weight"], fresh["head.classifier.weight"])


def test_checkpoints_are_loaded_safely(tmp_path):
    bad = tmp_path / "truncated.pt"
    save_checkpoint(bad, {"model": {"w": torch.zeros(1000)}})
    bad.write_bytes(bad.read_bytes()[:200])
    for path, match in ((bad, "truncated or foreign"), (tmp_path / "none.pt", "not found")):
        with pytest.raises(ConfigError, match=match) as err:
            load_checkpoint(path)
        assert "\n" not in str(err.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ConfigError, match="not an ADFL-Deploy checkpoint"):
        load_checkpoint(foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "adfl-checkpoint-v1", "obj": Path("x")}, pickled)  # arbitrary object: refused
    with pytest.raises(ConfigError, match="truncated or foreign"):
        load_checkpoint(pickled)


def test_kill_and_resume_from_the_command_line(tiny_dataset, tmp_path):
    """SIGKILL a real ``adfl train`` after its first checkpoint, then resume to the end."""
    out = tmp_path / "run"

    def command(epochs: int, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "adfl_deploy.cli", "train", "--dataset", "market-style", "--root", str(tiny_dataset),
            "--model", "baseline@resnet18", "--out", str(out), "--epochs", str(epochs),
            "--set", "data.height=64", "--set", "data.width=32", "--set", "data.workers=0",
            "--set", "data.identities_per_batch=4", "--set", "data.instances_per_identity=2",
            "--set", "solver.warmup_epochs=1", "--set", "solver.freeze_backbone_epochs=0", *extra,
        ]  # fmt: skip

    cmd = command(30)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(out / "last.pt")["epoch"]
    assert 1 <= killed_at < 30
    assert not list(out.glob(".*.tmp"))  # no half-written checkpoint left visible
    result = subprocess.run(command(killed_at + 1, "--resume", str(out / "last.pt")), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    model, state = load_model(out / "last.pt")
    assert state["epoch"] == killed_at + 1 and model.cfg.name == "baseline@resnet18"


def test_eval_command_writes_metrics_and_pictures(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    import json

    from adfl_deploy.cli import main

    out = tmp_path / "eval"
    spec = f"market-style={tiny_dataset}"
    assert main(["eval", str(tiny_checkpoint), "--test-set", spec, "--test-set", spec, "--flip", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["model"] == "attn3-1sum@resnet18" and report["train_config"]["data"]["height"] == 64
    assert len(report["results"]) == 2 and report["results"][0]["flip"] is True
    first = report["results"][0]
    assert 0 < first["mAP"] <= 1 and first["valid_queries"] >= 1 and first["valid_queries"] + first["skipped_queries"] == 6
    for png in ("ranked_market-style.png", "attention_market-style.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| attn3-1sum@resnet18 |" in capsys.readouterr().out


def test_eval_of_an_exported_model_needs_a_test_set(artifact_dir, tiny_dataset, tmp_path, capsys):
    from adfl_deploy.cli import main

    assert main(["eval", str(artifact_dir), "--out", str(tmp_path)]) == 2
    assert "--test-set" in capsys.readouterr().err
    assert main(["eval", str(artifact_dir), "--test-set", f"market-style={tiny_dataset}", "--out", str(tmp_path)]) == 0


def test_bf16_autocast_trains(tiny_dataset, tmp_path):
    import dataclasses

    cfg = dataclasses.replace(tiny_config(tiny_dataset, tmp_path, epochs=1), amp="bf16")
    state = load_checkpoint(train(cfg))
    assert state["train_config"]["amp"] == "bf16"
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.slow
def test_data_parallel_training_with_torchrun(tiny_dataset, tmp_path):
    """Two CPU processes (gloo) through torchrun: DDP and the rank-sharded PK sampler."""
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "adfl_deploy.cli", "train", "--dataset", "market-style", "--root", str(tiny_dataset),
        "--model", "attn3-1sum@resnet18", "--out", str(out), "--epochs", "2",
        "--set", "data.height=64", "--set", "data.width=32", "--set", "data.workers=0",
        "--set", "data.identities_per_batch=4", "--set", "data.instances_per_identity=2",
        "--set", "solver.warmup_epochs=1", "--set", "solver.freeze_backbone_epochs=1",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    model, state = load_model(out / "last.pt")
    assert state["epoch"] == 2 and model.cfg.name == "attn3-1sum@resnet18"
    assert (out / "metrics.csv").read_text().count("\n") == 3  # only rank 0 logs


def test_training_images_are_framed_as_the_runtime_will_frame_boxes(tmp_path):
    """A 40x10 person image at a 16x8 input: letterboxed (data.crop_fit) it stands between black
    columns 0-1 and 6-7, as the runtime's letterbox puts a detected box; the checkpoint records
    the framing so that the exported model's sidecar carries it."""
    import cv2
    import numpy as np

    from adfl_deploy.train.checkpoint import preprocessing_of
    from adfl_deploy.train.config import DataConfig
    from adfl_deploy.train.data import TrainImages

    path = tmp_path / "person.png"
    cv2.imwrite(str(path), np.full((40, 10, 3), 200, np.uint8))
    boxed = TrainImages._load(str(path), DataConfig(height=16, width=8, crop_fit="letterbox")).numpy()
    assert (boxed[:, :, :2] == 0).all() and (boxed[:, :, 6:] == 0).all() and (boxed[:, :, 2:6] == 200).all()
    stretched = TrainImages._load(str(path), DataConfig(height=16, width=8)).numpy()
    assert (stretched == 200).all()
    state = {"train_config": {"data": {"height": 16, "width": 8, "crop_fit": "letterbox"}}}
    assert preprocessing_of(state).fit == "letterbox"
    del state["train_config"]["data"]["crop_fit"]  # a checkpoint from before the field
    assert preprocessing_of(state).fit == "stretch"
