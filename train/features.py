"""A PyTorch model as an ``evaluation.EmbedFn``: same preprocessing as the runtime."""

from __future__ import annotations

import numpy as np
import torch

from adfl_deploy.model.preprocess import Preprocessing, to_blob


class TorchEmbed:
    def __init__(self, model: torch.nn.Module, prep: Preprocessing, device: str | torch.device = "cpu") -> None:
        self.model, self.prep, self.device = model, prep, torch.device(device)

    @torch.no_grad()
    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        try:
            blob = torch.from_numpy(to_blob(crops, self.prep)).to(self.device)
            return self.model(blob).float().cpu().numpy()
        finally:
            self.model.train(was_training)
