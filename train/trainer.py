"""The training loop: PK batches, softmax + batch-hard triplet, Adam with Eq. (4)'s schedule,
backbone frozen for the first epochs, AMP, DDP under ``torchrun``, atomic resumable checkpoints.

Outputs in ``cfg.out``: ``config.yaml`` (the full config), ``last.pt`` (after every epoch),
``metrics.csv`` (one row per epoch) and ``evaluations.jsonl`` (one line per evaluation).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from adfl_deploy import config
from adfl_deploy.errors import ConfigError
from adfl_deploy.evaluation.datasets import load_dataset, load_dataset_spec
from adfl_deploy.evaluation.reid import evaluate
from adfl_deploy.model.preprocess import Preprocessing
from adfl_deploy.train.models import HeadOutput, create_model

from .checkpoint import load_checkpoint, model_config_of, save_checkpoint
from .config import TrainConfig
from .data import TrainImages
from .features import TorchEmbed
from .losses import reid_loss
from .sampler import PKSampler
from .schedule import lr_at

log = logging.getLogger(__name__)


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank)


class _TrainForward(nn.Module):
    """DDP hooks ``forward`` only, so route it to ``forward_train`` (as plain tuples)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return [(o.pre_bn, o.post_bn, o.logits) for o in self.model.forward_train(x)]


def _set_backbone_frozen(model, frozen: bool) -> None:
    for p in model.parameter_groups()["backbone"]:
        p.requires_grad_(not frozen)
    for module in (model.stem, model.stages):
        module.train(not frozen)  # frozen BN statistics too


def _device() -> torch.device:
    return torch.device(f"cuda:{torch.cuda.current_device()}") if torch.cuda.is_available() else torch.device("cpu")


def _preprocessing(cfg: TrainConfig) -> Preprocessing:
    return Preprocessing(height=cfg.data.height, width=cfg.data.width, fit=cfg.data.crop_fit)


def run_evaluations(model, cfg: TrainConfig, datasets, device) -> list[dict]:
    embed = TorchEmbed(model, _preprocessing(cfg), device)
    return [evaluate(embed, ds).metrics for ds in datasets]


def train(cfg: TrainConfig, resume: str | Path | None = None, stop_after_epoch: int | None = None) -> Path:
    """Train per ``cfg``; returns the path of the last checkpoint.

    ``stop_after_epoch`` ends the run early (as a kill would) - for tests and time budgets.
    """
    ddp = setup_distributed()
    device = _device()
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    dataset = load_dataset(cfg.data.dataset, cfg.data.root)
    test_sets = [dataset] + [load_dataset_spec(spec) for spec in cfg.extra_test_sets]
    images = TrainImages(dataset.train, cfg.data)
    with warnings.catch_warnings():
        if resume:  # the checkpoint's weights replace the random init
            warnings.simplefilter("ignore")
        model = create_model(cfg.model, pretrained=cfg.pretrained, num_classes=len(images.pids)).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.solver.lr, betas=cfg.solver.betas, weight_decay=cfg.solver.weight_decay
    )
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16" and device.type == "cuda")
    start = 1
    if resume:
        state = load_checkpoint(resume)
        if model_config_of(state) != model.cfg:  # as configs, so fields added since default alike
            raise ConfigError(f"{resume}: checkpoint is for {state['model_name']}, not {model.cfg.name} with this data")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        start = state["epoch"] + 1
        log.info("resumed from %s at epoch %d", resume, start)

    net: nn.Module = _TrainForward(model)
    if cfg.sync_bn and device.type != "cuda":
        raise ConfigError("sync_bn needs CUDA devices (PyTorch's SyncBatchNorm is GPU-only); set sync_bn: false on CPU")
    if ddp.world_size > 1:
        if cfg.sync_bn:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        net = nn.parallel.DistributedDataParallel(
            net,
            device_ids=[ddp.local_rank] if device.type == "cuda" else None,
            find_unused_parameters=cfg.solver.freeze_backbone_epochs > 0,
        )
    sampler = PKSampler(
        images.labels, cfg.data.identities_per_batch, cfg.data.instances_per_identity, cfg.seed, ddp.rank, ddp.world_size
    )
    loader = DataLoader(images, batch_sampler=sampler, num_workers=cfg.data.workers, pin_memory=device.type == "cuda")
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
    if ddp.main:
        config.save(cfg, out / "config.yaml")

    last = out / "last.pt"
    final_epoch = cfg.solver.epochs if stop_after_epoch is None else min(stop_after_epoch, cfg.solver.epochs)
    for epoch in range(start, final_epoch + 1):
        lr = lr_at(epoch, cfg.solver)
        for group in optimizer.param_groups:
            group["lr"] = lr
        net.train()
        frozen = epoch <= cfg.solver.freeze_backbone_epochs
        _set_backbone_frozen(model, frozen)
        sampler.set_epoch(epoch)
        totals, seen, began = {}, 0, time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.solver.epochs}", disable=not ddp.main, leave=False)
        for x, labels in bar:
            x, labels = x.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
            with autocast:
                outputs = [HeadOutput(*o) for o in net(x)]
                loss, parts = reid_loss(outputs, labels, cfg.loss)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            seen += len(x)
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + v * len(x)
            bar.set_postfix(
                loss=f"{parts['loss']:.3f}", acc=f"{parts['acc']:.2f}", img_s=f"{seen / (time.perf_counter() - began):.0f}"
            )
        seconds = time.perf_counter() - began
        row = {"epoch": epoch, "lr": lr, "frozen_backbone": frozen, **{k: v / max(seen, 1) for k, v in totals.items()}}
        row.update(images_per_s=seen * ddp.world_size / seconds, seconds=seconds)
        if ddp.main:
            save_checkpoint(
                last,
                {
                    "model_name": model.cfg.name,
                    "model_config": config.to_dict(model.cfg),
                    "train_config": config.to_dict(cfg),
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "train_pids": images.pids,
                },
            )
            _append_csv(out / "metrics.csv", row)  # after the checkpoint: a resumed epoch is never logged twice
            print(
                f"epoch {epoch}: loss {row.get('loss', 0):.4f} acc {row.get('acc', 0):.3f} lr {lr:.2e} "
                f"{row['images_per_s']:.0f} img/s",
                flush=True,
            )
            if (cfg.eval_every and epoch % cfg.eval_every == 0) or epoch == cfg.solver.epochs:
                for metrics in run_evaluations(model, cfg, test_sets, device):
                    _append_jsonl(out / "evaluations.jsonl", {"epoch": epoch, **metrics})
                    print(f"  eval {metrics['dataset']}: rank1 {metrics['rank1']:.3f} mAP {metrics['mAP']:.3f}", flush=True)
    if ddp.world_size > 1:
        dist.barrier()
        dist.destroy_process_group()
    return last


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")
