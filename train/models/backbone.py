"""ResNet backbones from torchvision with the paper's stage4 stride of 1 (Sec. III-A 1).

ImageNet weights come only from a local file: nothing here downloads.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from adfl_deploy.errors import ConfigError, one_line


def _set_stage4_stride(layer4: nn.Sequential, stride: int) -> None:
    """Change the down-sampling of stage4's first block (conv and shortcut) to ``stride``."""
    block = layer4[0]
    strided_conv = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck vs BasicBlock
    strided_conv.stride = (stride, stride)
    if block.downsample is not None:
        block.downsample[0].stride = (stride, stride)


def load_pretrained(resnet: nn.Module, path: str | Path) -> None:
    """Load a torchvision ImageNet state dict from ``path`` (the classifier ``fc.*`` is ignored)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"pretrained weights {path} not found; pass a torchvision state dict file or omit --pretrained")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, foreign or pickled-object file
        raise ConfigError(f"{path}: not a loadable state dict ({one_line(exc)})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: expected a state dict, found {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("fc.")}
    own = resnet.state_dict()
    mismatched = [k for k, v in state.items() if k in own and getattr(v, "shape", None) != own[k].shape]
    missing = [k for k in own if k not in state and not k.startswith("fc.")]
    if missing or mismatched:
        example = (missing or mismatched)[0]
        raise ConfigError(
            f"{path}: does not match this backbone ({len(missing)} missing and {len(mismatched)} "
            f"mis-shaped tensors, e.g. {example}); is it a torchvision state dict of the same ResNet?"
        )
    resnet.load_state_dict(state, strict=False)


def create_resnet(name: str, last_stride: int = 1, pretrained: str | Path | None = None) -> nn.Module:
    """A torchvision ResNet with stage4 stride ``last_stride``, optionally ImageNet-initialised."""
    resnet = getattr(torchvision.models, name)(weights=None)
    if pretrained is not None:
        load_pretrained(resnet, pretrained)
    else:
        warnings.warn(f"{name}: no --pretrained file given, starting from random weights", stacklevel=2)
    _set_stage4_stride(resnet.layer4, last_stride)
    return resnet
