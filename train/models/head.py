"""Head pieces: the AF conv block (Fig. 3) and the re-ID head (Sec. III-A 2-5)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


def conv_block(in_dim: int, out_dim: int, stride: int = 1) -> nn.Sequential:
    """Fig. 3: 3x3 conv -> BN -> ReLU -> 1x1 conv -> BN -> ReLU (in_dim -> out_dim -> out_dim).

    ``stride`` brings an earlier stage's map to stage4's size (AF2 needs 2 at 384x128).
    """
    return nn.Sequential(
        nn.Conv2d(in_dim, out_dim, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_dim),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_dim, out_dim, kernel_size=1, bias=False),
        nn.BatchNorm2d(out_dim),
        nn.ReLU(inplace=True),
    )


def global_max_pool(x: Tensor) -> Tensor:
    """Sec. III-A 2: global max pooling replaces average pooling; (B, C, H, W) -> (B, C)."""
    return x.amax(dim=(2, 3))


@dataclass
class HeadOutput:
    """What the losses need from one head: triplet on a feature, softmax on the logits."""

    pre_bn: Tensor
    post_bn: Tensor
    logits: Tensor


class ReIDHead(nn.Module):
    """Feature -> BN neck -> classifier (no bias). The BN output is the inference embedding."""

    def __init__(self, dim: int, num_classes: int, bn_neck: bool = True) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim) if bn_neck else nn.Identity()
        self.classifier = nn.Linear(dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def embed(self, feature: Tensor) -> Tensor:
        return self.bn(feature)

    def forward(self, feature: Tensor) -> HeadOutput:
        post = self.bn(feature)
        return HeadOutput(pre_bn=feature, post_bn=post, logits=self.classifier(post))
