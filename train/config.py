"""Training configuration: the paper's recipe (Sec. V-B, Eq. 4) as typed defaults.

Every field can be set from YAML/JSON (``adfl train --config FILE``) or the command line
(``--set solver.epochs=60``); the full config is stored inside every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adfl_deploy.model.variants import DEFAULT_MODEL_NAME


@dataclass
class DataConfig:
    dataset: str = "market1501"  # market1501 | dukemtmc | msmt17 | market-style
    root: str = ""
    height: int = 384
    width: int = 128
    pad: int = 10  # pad then random-crop back to height x width
    flip_prob: float = 0.5
    random_erasing: float = 0.0  # probability; the paper does not use it
    identities_per_batch: int = 8  # P
    instances_per_identity: int = 4  # K (ids with fewer images are sampled with replacement)
    workers: int = 2


@dataclass
class LossConfig:
    softmax_weight: float = 1.0
    triplet_weight: float = 1.0
    triplet_margin: float = 0.3
    label_smoothing: float = 0.0
    #: the feature the batch-hard triplet loss sees: "pre_bn" (BNNeck practice, default) or
    #: "post_bn" (the paper's text, Sec. III-A 4)
    triplet_feature: Literal["pre_bn", "post_bn"] = "pre_bn"


@dataclass
class SolverConfig:
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    epochs: int = 150
    warmup_epochs: int = 20
    warmup_start_lr: float = 3e-6
    milestones: tuple[int, ...] = (80, 130)
    gamma: float = 0.1
    freeze_backbone_epochs: int = 5


@dataclass
class TrainConfig:
    model: str = DEFAULT_MODEL_NAME
    #: local torchvision ImageNet state dict for the backbone; None = random init
    pretrained: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    amp: Literal["none", "bf16", "fp16"] = "none"
    sync_bn: bool = False
    seed: int = 0
    #: evaluate on the test split every N epochs (0: only after the last epoch)
    eval_every: int = 0
    #: extra "dataset=root" test sets evaluated after training (cross-domain)
    extra_test_sets: list[str] = field(default_factory=list)
    out: str = "runs/adfl"
