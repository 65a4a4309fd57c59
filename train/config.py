"""Training configuration: the paper's recipe (Sec. V-B, Eq. 4) as typed defaults.

Every field can be set from YAML/JSON (``adfl train --config FILE``) or the command line
(``--set solver.epochs=60``); the full config is stored inside every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from adfl_deploy.errors import ConfigError
from adfl_deploy.model.variants import DEFAULT_MODEL_NAME


@dataclass
class CameraShiftConfig:
    """Simulated camera changes (``train/camera_augment.py``); ``prob`` 0 = the paper's recipe."""

    prob: float = 0.0  # share of training crops that look as if another camera took them
    step_prob: float = 0.5  # each change below, within such a crop
    colour_cast: float = 0.2  # per-channel gain in [1 - x, 1 + x] (white balance)
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    scale: tuple[float, float] = (0.4, 0.9)  # down and back up (resolution, distance)
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    noise_std: float = 0.03  # of the 0..1 range
    jpeg_quality: tuple[int, int] = (30, 90)
    occlusion: float = 0.3  # probability of a random-coloured block in front of the person
    #: probability that a crop's person is matted onto another training crop's picture
    #: (``train/background_swap.py``); independent of ``prob``
    background: float = 0.0

    def __post_init__(self) -> None:
        for name in ("prob", "step_prob", "occlusion", "background"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"data.camera_shift.{name}: {getattr(self, name)} is not a probability")
        if not (0 < self.scale[0] <= self.scale[1] <= 1 and 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100):
            raise ConfigError("data.camera_shift: scale must be within (0, 1] and jpeg_quality within 1..100, low <= high")


@dataclass
class DataConfig:
    dataset: str = "market1501"  # market1501 | dukemtmc | msmt17 | market-style
    root: str = ""
    height: int = 384
    width: int = 128
    pad: int = 10  # pad then random-crop back to height x width
    flip_prob: float = 0.5
    random_erasing: float = 0.0  # probability; the paper does not use it
    #: how the dataset's crops frame a person, recorded for the runtime to frame boxes alike:
    #: "stretch" (Market-1501, DukeMTMC, MSMT17: boxes resized) or "letterbox" (Con-ReID: aspect
    #: kept, black bars); training images of another size are fitted the same way
    crop_fit: Literal["stretch", "letterbox"] = "stretch"
    #: simulated camera changes (colour cast, exposure, resolution, blur, noise, JPEG, occlusion)
    camera_shift: CameraShiftConfig = field(default_factory=CameraShiftConfig)
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
