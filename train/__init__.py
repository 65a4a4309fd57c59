"""ADFL training side (PyTorch): the model family now, training and evaluation next.

Installed as ``adfl_deploy.train``; it needs the ``train`` extra (torch, torchvision).
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the torch-free test
    raise ImportError("adfl_deploy.train needs PyTorch: pip install -e '.[train]' (torch==2.14.1, torchvision==0.29.1)") from exc
