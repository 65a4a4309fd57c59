"""Running an exported model: the ``Embedder`` (crops in, unit embeddings out) over pluggable
backends (ONNX Runtime CPU/CUDA, TensorRT, PyTorch from the training side), the colour
histogram as a network-free embedder, and the per-camera white balance of crops before them."""

import importlib

#: public name -> module, imported on first use (the artefact description imports
#: runtime.engine_info, so this package must not import its modules eagerly)
_EXPORTS = {
    "BACKENDS": "adfl_deploy.runtime.backends",
    "EMBEDDERS": "adfl_deploy.runtime.embedder",
    "Embedder": "adfl_deploy.runtime.embedder",
    "EmbedderLike": "adfl_deploy.runtime.embedder",
    "create_embedder": "adfl_deploy.runtime.embedder",
    "WhiteBalance": "adfl_deploy.runtime.white_balance",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_EXPORTS)
