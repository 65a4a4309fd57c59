"""Learning rate of the paper's Eq. (4), generalised to any warm-up length and milestones."""

from __future__ import annotations

from .config import SolverConfig


def lr_at(epoch: int, cfg: SolverConfig) -> float:
    """Learning rate for 1-based ``epoch`` t: linear warm-up from ``warmup_start_lr`` to ``lr``
    over ``warmup_epochs`` (t <= warmup), then ``lr`` times ``gamma`` per milestone passed
    (a milestone m applies from t = m + 1)."""
    if epoch <= cfg.warmup_epochs:
        return cfg.warmup_start_lr + (cfg.lr - cfg.warmup_start_lr) * epoch / cfg.warmup_epochs
    passed = sum(epoch > m for m in cfg.milestones)
    return cfg.lr * cfg.gamma**passed
