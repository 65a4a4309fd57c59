"""Crops in, L2-normalised embeddings out, on ONNX Runtime (torch-free).

This is the runtime's only door to a model. Other backends (CUDA EP, TensorRT, torch) join
behind the same ``embed`` call.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from adfl_deploy.artifact import ArtifactInfo, load_artifact, onnx_file
from adfl_deploy.config import ConfigError, one_line
from adfl_deploy.preprocess import l2_normalise, to_blob

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime-cpu")


class Embedder:
    """``Embedder.from_artifact(dir).embed(list_of_bgr_crops) -> (N, D) float32``, unit norm."""

    def __init__(self, session, info: ArtifactInfo, backend: str, precision: str) -> None:
        self._session = session
        self.info = info
        self.backend = backend
        self.precision = precision

    @classmethod
    def from_artifact(
        cls, directory: str | Path, backend: str = "auto", precision: str | None = None, threads: int | None = None
    ) -> "Embedder":
        if backend not in BACKENDS:
            raise ConfigError(f"backend {backend!r} is not available here; choose from {', '.join(BACKENDS)}")
        info = load_artifact(directory)
        model_file = onnx_file(info, precision)
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(
                str(Path(directory) / model_file), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ConfigError(f"{directory}/{model_file}: ONNX Runtime cannot load it ({one_line(exc)})") from None
        chosen = precision or info.precision
        log.info("embedder: %s (%s) on onnxruntime-cpu", info.model.name, chosen)
        return cls(session, info, "onnxruntime-cpu", chosen)

    @property
    def dim(self) -> int:
        return self.info.embedding_dim

    def embed_blob(self, blob: np.ndarray) -> np.ndarray:
        """Raw (not normalised) embeddings of a preprocessed (N, 3, H, W) float32 batch."""
        out = []
        for start in range(0, len(blob), self.info.max_batch):
            chunk = blob[start : start + self.info.max_batch]
            out.append(self._session.run([self.info.output_name], {self.info.input_name: chunk})[0])
        return np.concatenate(out).astype(np.float32, copy=False)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops of any size -> (N, D) float32 L2-normalised embeddings."""
        return l2_normalise(self.embed_blob(to_blob(list(crops), self.info.preprocessing)))
