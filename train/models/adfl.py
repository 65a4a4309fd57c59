"""The ADFL network (Fig. 2): ResNet stages, optional attention after one stage, optional
attention-feature (AF) skip path, global max pooling, bottleneck FC, BN neck and classifier.

``forward`` returns the inference embedding only; training code calls ``forward_train`` for
the per-head features and logits, and the losses live in ``train/``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from adfl_deploy.model.variants import STAGE_CHANNELS, ModelConfig

from .attention import create_attention
from .backbone import create_resnet
from .head import HeadOutput, ReIDHead, conv_block, global_max_pool


def _af_stride(stage: int, last_stride: int) -> int:
    """Stride of the AF conv block that maps stage ``stage``'s output to stage4's size."""
    return {2: 2 * last_stride, 3: last_stride, 4: 1}[stage]


class ADFLNet(nn.Module):
    """One ADFL variant, built from a ``ModelConfig`` (see ``create_model`` for names)."""

    def __init__(self, cfg: ModelConfig, pretrained: str | Path | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        resnet = create_resnet(cfg.backbone, cfg.last_stride, pretrained, ibn=cfg.ibn)
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.stages = nn.ModuleList([resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4])
        channels = STAGE_CHANNELS[cfg.backbone]

        self.attention_stage = cfg.attention.stage if cfg.attention else None
        self.attention = (
            create_attention(cfg.attention.module, channels[cfg.attention.stage], cfg.batch_attention) if cfg.attention else None
        )
        self.bottleneck = nn.Identity() if cfg.backbone_dim == channels[4] else nn.Linear(channels[4], cfg.backbone_dim)
        self.head = ReIDHead(cfg.backbone_dim, cfg.num_classes, cfg.bn_neck)

        self.af_block = None
        self.fused_head = None
        if cfg.features is not None:
            f = cfg.features
            self.af_block = conv_block(channels[f.stage], f.dim, _af_stride(f.stage, cfg.last_stride))
            self.fused_head = ReIDHead(cfg.embedding_dim, cfg.num_classes, cfg.bn_neck)

    @property
    def embedding_dim(self) -> int:
        return self.cfg.embedding_dim

    def forward_features(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B, 3, H, W) normalised images -> (pooled backbone feature, fused feature or None)."""
        x = self.stem(x)
        attended = None
        for index, stage in enumerate(self.stages, start=1):
            x = stage(x)
            if index == self.attention_stage:
                x = attended = self.attention(x)
        backbone = self.bottleneck(global_max_pool(x))
        if self.af_block is None:
            return backbone, None
        af = global_max_pool(self.af_block(attended))
        fused = torch.cat([backbone, af], dim=1) if self.cfg.features.fusion == "cat" else backbone + af
        return backbone, fused

    def forward_train(self, x: Tensor) -> list[HeadOutput]:
        """Outputs of every head: the backbone head, then (AF variants) the fused head."""
        backbone, fused = self.forward_features(x)
        outputs = [self.head(backbone)]
        if fused is not None:
            outputs.append(self.fused_head(fused))
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        """The person embedding (Sec. V-B "Features"): the BN-neck output of the backbone
        feature, or of the fused feature for AF variants. Not L2-normalised."""
        backbone, fused = self.forward_features(x)
        return self.head.embed(backbone) if fused is None else self.fused_head.embed(fused)

    def set_fused(self, fused: bool = True) -> ADFLNet:
        """Route every softmax-attention core through its ``adfl::`` custom op (for ONNX export
        with one node per block, and TensorRT plugins); numerically the same model."""
        for module in self.modules():
            if hasattr(module, "fused"):
                module.fused = fused
        return self

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``backbone`` (ImageNet-initialisable stem and stages; frozen in the first epochs,
        Sec. V-B) and ``new`` (attention, AF block, bottleneck, heads)."""
        backbone_ids = {id(p) for p in [*self.stem.parameters(), *self.stages.parameters()]}
        return {
            "backbone": [p for p in self.parameters() if id(p) in backbone_ids],
            "new": [p for p in self.parameters() if id(p) not in backbone_ids],
        }
