"""Crops in, L2-normalised embeddings out: the runtime's one door to a model, whatever the
backend (``adfl_deploy.backends``). Torch-free unless the torch backend is asked for.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from adfl_deploy import backends
from adfl_deploy.artifact import ArtifactInfo, load_artifact
from adfl_deploy.preprocess import l2_normalise, to_blob

log = logging.getLogger(__name__)

BACKENDS = backends.BACKENDS


class Embedder:
    """``Embedder.from_artifact(dir).embed(list_of_bgr_crops) -> (N, D) float32``, unit norm."""

    def __init__(self, run: backends.Runner, info: ArtifactInfo, backend: str, precision: str) -> None:
        self._run = run
        self.info = info
        self.backend = backend
        self.precision = precision

    @classmethod
    def from_artifact(
        cls, directory: str | Path, backend: str = "auto", precision: str | None = None, threads: int | None = None
    ) -> "Embedder":
        """Load a verified artefact on ``backend`` ("auto": the fastest available, logged)."""
        directory = Path(directory)
        info = load_artifact(directory)
        chosen = backends.resolve(backend, directory, info)
        if chosen == "torch":
            run = backends.torch_runner(directory, info, precision)
            precision = "fp32"
        else:
            run = backends.onnxruntime_runner(directory, info, precision, cuda=chosen == "onnxruntime-cuda", threads=threads)
        precision = precision or info.precision
        log.info("embedder: %s (%s) on %s%s", info.model.name, precision, chosen, " (auto)" if backend == "auto" else "")
        return cls(run, info, chosen, precision)

    @property
    def name(self) -> str:
        return self.info.model.name

    @property
    def dim(self) -> int:
        return self.info.embedding_dim

    def embed_blob(self, blob: np.ndarray) -> np.ndarray:
        """Raw (not normalised) embeddings of a preprocessed (N, 3, H, W) float32 batch."""
        out = []
        for start in range(0, len(blob), self.info.max_batch):
            chunk = blob[start : start + self.info.max_batch]
            out.append(np.asarray(self._run(np.ascontiguousarray(chunk))))
        return np.concatenate(out).astype(np.float32, copy=False)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops of any size -> (N, D) float32 L2-normalised embeddings."""
        return l2_normalise(self.embed_blob(to_blob(list(crops), self.info.preprocessing)))
