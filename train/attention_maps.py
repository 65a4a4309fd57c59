"""Where the attention module looks: a heat map per image from its output.

For every variant the map is the per-position L2 norm (over channels) of what the attention
module adds to or makes of its input - ``|O - I|`` for Type I (the attended context, scaled by
alpha) and ``|O|`` for Type II gates - normalised to [0, 1] per image. It is a visual aid with
one definition for all variants, not one of the paper's equations.
"""

from __future__ import annotations

import numpy as np
import torch

from adfl_deploy.model.preprocess import Preprocessing, to_blob


@torch.no_grad()
def attention_heatmaps(model, crops: list[np.ndarray], prep: Preprocessing) -> list[np.ndarray]:
    if model.attention is None:
        raise ValueError(f"{model.cfg.name} has no attention module to visualise")
    captured = {}
    handle = model.attention.register_forward_hook(lambda m, i, o: captured.update(inp=i[0], out=o))
    try:
        model.eval()(torch.from_numpy(to_blob(crops, prep)))
    finally:
        handle.remove()
    delta = captured["out"] - captured["inp"] if model.cfg.attention.type == 1 else captured["out"]
    energy = delta.float().norm(dim=1)  # (B, h, w)
    flat = energy.flatten(1)
    lo, hi = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
    return list(((energy - lo) / (hi - lo).clamp_min(1e-12)).numpy())
