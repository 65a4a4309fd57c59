"""ResNet backbones from torchvision with the paper's stage4 stride of 1 (Sec. III-A 1), and
optionally IBN-a normalisation (Pan et al., "Two at Once: Enhancing Learning and Generalization
Capacities via IBN-Net", ECCV 2018), the usual backbone of cross-domain re-ID.

ImageNet weights come only from a local file: nothing here downloads.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torchvision
from torch import nn

from adfl_deploy.errors import ConfigError, one_line


class IBN(nn.Module):
    """Instance norm (with affine) on the first half of the channels, batch norm on the rest.

    Per-image statistics take out what a camera adds to every picture (colour cast, exposure,
    contrast); the batch-normalised half keeps what tells people apart (IBN-Net, Sec. 3)."""

    def __init__(self, channels: int, instance_share: float = 0.5) -> None:
        super().__init__()
        self.split = int(channels * instance_share)
        self.instance = nn.InstanceNorm2d(self.split, affine=True)
        self.batch = nn.BatchNorm2d(channels - self.split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.instance(x[:, : self.split]), self.batch(x[:, self.split :])], dim=1)


def _use_ibn(resnet: nn.Module) -> None:
    """IBN-a: the first normalisation of every block in stages 1-3 becomes ``IBN`` (stage 4
    keeps batch norm: its features must stay discriminative, IBN-Net Sec. 3.2)."""
    for stage in (resnet.layer1, resnet.layer2, resnet.layer3):
        for block in stage:
            block.bn1 = IBN(block.bn1.num_features)


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


def create_resnet(name: str, last_stride: int = 1, pretrained: str | Path | None = None, ibn: bool = False) -> nn.Module:
    """A torchvision ResNet with stage4 stride ``last_stride``, optionally ImageNet-initialised
    and with IBN-a normalisation (``ibn``)."""
    resnet = getattr(torchvision.models, name)(weights=None)
    if pretrained is not None and ibn:
        raise ConfigError(
            f"{name}-ibn: ImageNet weights for IBN backbones are not torchvision's; train it from scratch (omit --pretrained)"
        )
    if ibn:
        _use_ibn(resnet)
    if pretrained is not None:
        load_pretrained(resnet, pretrained)
    else:
        warnings.warn(f"{name}: no --pretrained file given, starting from random weights", stacklevel=2)
    _set_stage4_stride(resnet.layer4, last_stride)
    return resnet
