"""Losses of the paper's recipe: softmax cross-entropy and the batch-hard triplet loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from adfl_deploy.train.models import HeadOutput

from .config import LossConfig


def batch_hard_triplet(features: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Hermans et al. 2017: for each anchor, the farthest positive and the nearest negative
    (Euclidean), ``mean(relu(d_ap - d_an + margin))``."""
    dist = torch.cdist(features.float(), features.float()).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    hardest_pos = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)
    return F.relu(hardest_pos - hardest_neg + margin).mean()


def reid_loss(outputs: list[HeadOutput], labels: Tensor, cfg: LossConfig) -> tuple[Tensor, dict[str, float]]:
    """Sum over heads of weighted softmax and triplet losses; returns (loss, parts for logging)."""
    ce_total = torch.zeros((), device=labels.device)
    tri_total = torch.zeros((), device=labels.device)
    for out in outputs:
        if cfg.softmax_weight:
            ce_total = ce_total + F.cross_entropy(out.logits.float(), labels, label_smoothing=cfg.label_smoothing)
        if cfg.triplet_weight:
            feature = out.pre_bn if cfg.triplet_feature == "pre_bn" else out.post_bn
            tri_total = tri_total + batch_hard_triplet(feature, labels, cfg.triplet_margin)
    loss = cfg.softmax_weight * ce_total + cfg.triplet_weight * tri_total
    accuracy = (outputs[-1].logits.argmax(dim=1) == labels).float().mean()
    parts = {"loss": loss, "softmax": ce_total, "triplet": tri_total, "acc": accuracy}
    return loss, {k: float(v.detach()) for k, v in parts.items()}
