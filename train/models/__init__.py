"""The ADFL model family in PyTorch."""

from .adfl import ADFLNet
from .factory import create_model, list_models
from .head import HeadOutput

__all__ = ["ADFLNet", "HeadOutput", "create_model", "list_models"]
