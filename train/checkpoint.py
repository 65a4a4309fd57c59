"""Checkpoints: written atomically, read with ``weights_only=True``, checked on load.

A checkpoint holds the model (config and weights), optimiser, AMP scaler, epoch and RNG state,
so ``--resume`` continues exactly where a killed run stopped. The PK sampler and learning rate
are functions of the epoch, so they need no state of their own.
"""

from __future__ import annotations

from pathlib import Path

import torch

from adfl_deploy import config
from adfl_deploy.errors import ConfigError, one_line
from adfl_deploy.files import atomic_file
from adfl_deploy.model.preprocess import Preprocessing
from adfl_deploy.model.variants import ModelConfig

FORMAT = "adfl-checkpoint-v1"


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """``torch.save`` atomically: a temp file in the same folder, fsync, rename over ``path``."""
    with atomic_file(path, "wb") as fh:
        torch.save({"format": FORMAT, **state}, fh)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict:
    """Load and validate; a missing, truncated or foreign file is a one-line ``ConfigError``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable checkpoint, truncated or foreign ({one_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"{path}: not an ADFL-Deploy checkpoint (expected format {FORMAT})")
    return state


def model_config_of(state: dict) -> ModelConfig:
    return config.from_dict(ModelConfig, state["model_config"])


def preprocessing_of(state: dict) -> Preprocessing:
    """The input size and crop framing the checkpoint's network was trained with, with the
    runtime's normalisation (checkpoints from before ``crop_fit`` stretched)."""
    data = state["train_config"]["data"]
    return Preprocessing(height=data["height"], width=data["width"], fit=data.get("crop_fit", "stretch"))


def load_model(path: str | Path):
    """Rebuild the network stored in a checkpoint, in eval mode."""
    import warnings

    from adfl_deploy.train.models import create_model

    state = load_checkpoint(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stored weights replace the random init
        model = create_model(model_config_of(state))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise ConfigError(f"{path}: weights do not fit {state['model_config']} ({one_line(exc)})") from None
    return model.eval(), state
