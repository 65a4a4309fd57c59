"""Build any ADFL variant from its paper name or config (the timm ``create_model`` idea)."""

from __future__ import annotations

from pathlib import Path

from adfl_deploy.model.variants import PAPER_MODEL_NAMES, ModelConfig, parse_model_name

from .adfl import ADFLNet


def create_model(
    name_or_config: str | ModelConfig,
    pretrained: str | Path | None = None,
    **overrides,
) -> ADFLNet:
    """``create_model("AF3-cat-1024-attn3-1sum", num_classes=751)`` -> an ``ADFLNet``.

    ``pretrained`` is a local torchvision ImageNet state dict for the backbone; without it
    the backbone starts from random weights (with a warning). Nothing is downloaded.
    """
    if isinstance(name_or_config, ModelConfig):
        cfg = name_or_config.with_(**overrides) if overrides else name_or_config
    else:
        cfg = parse_model_name(name_or_config, **overrides)
    return ADFLNet(cfg, pretrained=pretrained)


def list_models() -> tuple[str, ...]:
    """Every variant the paper's tables name, in table order."""
    return PAPER_MODEL_NAMES
