"""The ``torch`` backend: PyTorch eager, on the training side because it rebuilds the network
from ``adfl_deploy.train.models``. The torch-free runtime finds it by name through the backend
registry (entry point ``adfl_deploy.backends: torch`` in pyproject.toml) and never imports this
package unless asked for it; ``adfl bench`` uses the same runner for its PyTorch rows.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from adfl_deploy.errors import ArtifactError, BackendUnavailable, one_line
from adfl_deploy.model.artifact import ArtifactInfo
from adfl_deploy.model.preprocess import UINT8_NHWC, normalise

STATE_FILE = "model_state.pt"


def eager_runner(model: torch.nn.Module, precision: str = "fp32", preprocess=None):
    """(run, on_gpu): ``run(blob) -> (N, D) float32`` with ``model`` in eval mode on the GPU when
    there is one (fp32 or fp16), else the CPU (fp32); each call includes the copies in and out,
    as the other backends' do."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if precision not in ("fp32", "fp16"):
        raise BackendUnavailable(f"the torch backend runs fp32 (or fp16 on a GPU), not {precision}")
    if precision == "fp16" and device.type != "cuda":
        raise BackendUnavailable("PyTorch eager fp16 needs a CUDA device; use fp32 here")
    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = model.to(device=device, dtype=dtype).eval()

    def run(blob: np.ndarray) -> np.ndarray:
        if preprocess is not None:
            blob = preprocess(blob)
        with torch.no_grad():
            return model(torch.from_numpy(blob).to(device=device, dtype=dtype)).float().cpu().numpy()

    return run, device.type == "cuda"


def checkpoint_runner(checkpoint: str | Path, precision: str = "fp32"):
    """(run, on_gpu) for a training checkpoint (``adfl bench --checkpoint``)."""
    from adfl_deploy.train.checkpoint import load_model

    model, _ = load_model(checkpoint)
    return eager_runner(model, precision)


class TorchBackend:
    """An exported artefact's ``model_state.pt`` (loaded with ``weights_only=True``) in the
    network rebuilt from the sidecar's model config; ``checkpoint_runner`` for a training
    checkpoint (``adfl bench --checkpoint``)."""

    checkpoint_runner = staticmethod(checkpoint_runner)

    @staticmethod
    def unavailable(directory: Path, info: ArtifactInfo) -> str | None:
        return None if STATE_FILE in info.sha256 else f"the artefact has no {STATE_FILE} (re-export it with adfl export)"

    @staticmethod
    def load(directory: Path, info: ArtifactInfo, precision: str | None, **options):
        from adfl_deploy.train.models import create_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the stored weights replace the random init
            model = create_model(info.model).eval()
        try:
            state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:
            raise ArtifactError(f"{directory / STATE_FILE}: cannot load the weights ({one_line(exc)})") from None
        fold = (lambda blob: normalise(blob, info.preprocessing)) if info.input_format == UINT8_NHWC else None
        run, _ = eager_runner(model, precision or "fp32", preprocess=fold)
        return run, precision or "fp32"
