"""ADFL variant names <-> typed model configs (torch-free).

The paper names every variant with a dash-separated string, e.g. ``AF3-cat-1024-attn3-1sum`` =
"attention features from stage 3 - concatenation fusion - 1024-dim conv block - attention after
stage 3 - Type I spatial+channel attention summed" (Sec. V-E). ``parse_model_name`` turns such a
name into a ``ModelConfig`` and ``ModelConfig.name`` turns it back, so a name stored in an
artefact's sidecar rebuilds exactly the same architecture. It lives in the runtime package
because sidecars are read without torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from adfl_deploy.errors import ConfigError

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
#: channels out of stage2/3/4 for each backbone (torchvision ResNets)
STAGE_CHANNELS = {
    "resnet18": {2: 128, 3: 256, 4: 512},
    "resnet34": {2: 128, 3: 256, 4: 512},
    "resnet50": {2: 512, 3: 1024, 4: 2048},
    "resnet101": {2: 512, 3: 1024, 4: 2048},
}
#: default width of the bottleneck FC (the paper sets 1024 for ResNet50, Sec. V-C)
DEFAULT_FEAT_DIM = {"resnet18": 512, "resnet34": 512, "resnet50": 1024, "resnet101": 1024}

TYPE1_MODULES = ("1s", "1c", "1h", "1b", "1sc", "1cs", "1sum")
TYPE2_MODULES = ("2s", "2c", "2h", "2sc", "2cs", "2sum", "2multiply")
ATTENTION_MODULES = TYPE1_MODULES + TYPE2_MODULES
STAGES = (2, 3, 4)
FUSIONS = ("cat", "sum")

GRAMMAR = (
    "baseline | attn{2,3,4}-MODULE | AF{2,3,4}-{cat,sum}-DIM-attn{2,3,4}-MODULE, optionally "
    "followed by @BACKBONE[-ibn]; MODULE is one of "
    + ",".join(ATTENTION_MODULES)
    + "; BACKBONE one of "
    + ",".join(BACKBONES)
    + " (default resnet50; -ibn: IBN-a instance normalisation in stages 1-3); the AF stage must "
    "equal the attn stage"
)

_NAME_RE = re.compile(
    r"^(?:AF(?P<af_stage>\d)-(?P<fusion>[a-z]+)-(?P<dim>\d+)-)?"
    r"(?:attn(?P<stage>\d)-(?P<module>[0-9a-z]+)|(?P<baseline>baseline))"
    r"(?:@(?P<backbone>[a-z0-9]+)(?P<ibn>-ibn)?)?$"
)


def _bad(name: str, why: str) -> ConfigError:
    return ConfigError(f"bad model name {name!r}: {why}. Grammar: {GRAMMAR}")


@dataclass(frozen=True)
class AttentionConfig:
    """Which attention module sits after which backbone stage (Sec. III-B, IV)."""

    module: str = "1sum"
    stage: int = 3

    def __post_init__(self) -> None:
        if self.module not in ATTENTION_MODULES:
            raise ConfigError(f"attention.module {self.module!r} is not one of {', '.join(ATTENTION_MODULES)}")
        if self.stage not in STAGES:
            raise ConfigError(f"attention.stage {self.stage} is not one of {STAGES}")

    @property
    def type(self) -> int:
        """1 = long-range dependency (residual, learnable scale); 2 = direct generation (gate)."""
        return int(self.module[0])

    @property
    def arrangement(self) -> str:
        """``s``, ``c``, ``h``, ``b`` (single module) or ``sc``/``cs``/``sum``/``multiply``."""
        return self.module[1:]


@dataclass(frozen=True)
class FeatureFusionConfig:
    """Attention features (AF) fused with the backbone feature (Sec. III-C, Fig. 2 red lines)."""

    stage: int = 3
    fusion: Literal["cat", "sum"] = "cat"
    dim: int = 1024

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ConfigError(f"features.stage {self.stage} is not one of {STAGES}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"features.fusion {self.fusion!r} is not one of {FUSIONS}")
        if self.dim <= 0:
            raise ConfigError(f"features.dim must be positive, got {self.dim}")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an ADFL network.

    Only ``backbone`` (with ``ibn``), ``attention`` and ``features`` are encoded in the paper name; the other
    fields are head details (Sec. III-A) that default to the paper's choices.
    """

    backbone: Literal["resnet18", "resnet34", "resnet50", "resnet101"] = "resnet50"
    attention: AttentionConfig | None = None
    features: FeatureFusionConfig | None = None
    #: width of the bottleneck FC after global max pooling; None = the backbone's default
    feat_dim: int | None = None
    num_classes: int = 751
    #: BN neck after the (fused) feature; Table I "no BN" switches it off
    bn_neck: bool = True
    #: stage4 stride; the paper uses 1 (no down-sampling in stage4)
    last_stride: int = 1
    #: how the batch attention ``1b`` behaves at inference: ``batch`` attends over the
    #: images of the batch (the paper, Table II), ``self`` over the image alone (batch-independent)
    batch_attention: Literal["batch", "self"] = "batch"
    #: IBN-a (Pan et al., ECCV 2018): the first normalisation of every block in stages 1-3
    #: normalises half its channels per image (instance norm) and half per batch; per-image
    #: statistics remove much of a camera's colour cast and contrast, so the features carry
    #: less of the camera. Encoded in the name as ``@BACKBONE-ibn``
    ibn: bool = False

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone {self.backbone!r} is not one of {', '.join(BACKBONES)}")
        if self.features is not None:
            if self.attention is None or self.attention.stage != self.features.stage:
                raise ConfigError(
                    f"attention features AF{self.features.stage} need an attention module after "
                    f"stage {self.features.stage} (attn{self.features.stage})"
                )
        if self.num_classes <= 0:
            raise ConfigError(f"num_classes must be positive, got {self.num_classes}")
        if self.last_stride not in (1, 2):
            raise ConfigError(f"last_stride must be 1 or 2, got {self.last_stride}")
        if self.feat_dim is not None and self.feat_dim <= 0:
            raise ConfigError(f"feat_dim must be positive, got {self.feat_dim}")

    @property
    def name(self) -> str:
        """The paper-style name; ``parse_model_name(cfg.name)`` rebuilds the same architecture."""
        core = "baseline" if self.attention is None else f"attn{self.attention.stage}-{self.attention.module}"
        if self.features is not None:
            f = self.features
            core = f"AF{f.stage}-{f.fusion}-{f.dim}-{core}"
        if self.ibn:
            return f"{core}@{self.backbone}-ibn"
        return core if self.backbone == "resnet50" else f"{core}@{self.backbone}"

    @property
    def backbone_dim(self) -> int:
        """Width of the backbone's pooled feature before fusion.

        The bottleneck FC reduces the stage4 output to ``feat_dim``; with ``sum`` fusion it must
        match the AF dimension instead (``AF3-sum-2048`` needs a 2048-wide backbone feature).
        """
        if self.features is not None and self.features.fusion == "sum":
            return self.features.dim
        return self.feat_dim or DEFAULT_FEAT_DIM[self.backbone]

    @property
    def embedding_dim(self) -> int:
        """Size of the inference embedding (the BN-neck output of the final fused feature)."""
        if self.features is None or self.features.fusion == "sum":
            return self.backbone_dim
        return self.backbone_dim + self.features.dim

    def with_(self, **changes) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


def parse_model_name(name: str, **overrides) -> ModelConfig:
    """Parse a paper name such as ``AF3-cat-1024-attn3-1sum`` or ``attn3-1sc@resnet18``.

    Extra keyword arguments set the non-name fields (``num_classes=...``).
    Raises ``ConfigError`` with the grammar on a malformed name.
    """
    try:
        return _parse(name, overrides)
    except ConfigError as exc:
        if "Grammar:" in str(exc):
            raise
        raise _bad(name, str(exc)) from None


def _parse(name: str, overrides: dict) -> ModelConfig:
    m = _NAME_RE.match(name.strip())
    if m is None:
        raise _bad(name, "it does not match the grammar")
    backbone = m["backbone"] or "resnet50"
    if backbone not in BACKBONES:
        raise _bad(name, f"unknown backbone {backbone!r}")
    attention = None
    if m["module"] is not None:
        if m["module"] not in ATTENTION_MODULES:
            raise _bad(name, f"unknown attention module {m['module']!r}")
        if int(m["stage"]) not in STAGES:
            raise _bad(name, f"attention stage must be 2, 3 or 4, not {m['stage']}")
        attention = AttentionConfig(module=m["module"], stage=int(m["stage"]))
    features = None
    if m["af_stage"] is not None:
        if m["fusion"] not in FUSIONS:
            raise _bad(name, f"fusion must be cat or sum, not {m['fusion']!r}")
        if attention is None or int(m["af_stage"]) != attention.stage:
            raise _bad(name, "AF needs attention at the same stage, e.g. AF3-...-attn3-...")
        features = FeatureFusionConfig(stage=int(m["af_stage"]), fusion=m["fusion"], dim=int(m["dim"]))
    named = {"backbone", "attention", "features", "ibn"} & set(overrides)
    if named:
        raise _bad(name, f"{sorted(named)[0]} is set by the name itself, not as an extra field")
    return ModelConfig(backbone=backbone, attention=attention, features=features, ibn=m["ibn"] is not None, **overrides)


def _paper_names() -> tuple[str, ...]:
    table1 = ["baseline"]
    table2_type1 = [f"attn{s}-{m}" for s in (2, 3) for m in TYPE1_MODULES]
    table2_type2 = [f"attn{s}-{m}" for s in (3, 4) for m in TYPE2_MODULES]
    table3 = [
        f"AF3-{fusion}-{dim}-attn3-{m}"
        for fusion, dim in (("cat", 512), ("cat", 1024), ("sum", 1024), ("sum", 2048))
        for m in ("1sum", "1sc", "1cs")
    ]
    return tuple(table1 + table2_type1 + table2_type2 + table3)


#: every variant named in the paper's Tables I-VI, in table order
PAPER_MODEL_NAMES: tuple[str, ...] = _paper_names()

#: the paper's delegate model (Tables IV-VI)
DEFAULT_MODEL_NAME = "AF3-cat-1024-attn3-1sum"

__all__ = [
    "ATTENTION_MODULES",
    "AttentionConfig",
    "BACKBONES",
    "DEFAULT_MODEL_NAME",
    "FeatureFusionConfig",
    "GRAMMAR",
    "ModelConfig",
    "PAPER_MODEL_NAMES",
    "STAGE_CHANNELS",
    "parse_model_name",
]
