"""Crops in, L2-normalised embeddings out: the runtime's one door to a model, whatever the
backend (``adfl_deploy.runtime.backends``). Torch-free unless the torch backend is asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from adfl_deploy.assets import BASELINE_MODEL, EDGE_MODEL
from adfl_deploy.model.artifact import ArtifactInfo, load_artifact
from adfl_deploy.model.preprocess import l2_normalise, prepare
from adfl_deploy.registry import Registry
from adfl_deploy.runtime import backends
from adfl_deploy.runtime.colour_histogram import ColourHistogramEmbedder

log = logging.getLogger(__name__)


@runtime_checkable
class EmbedderLike(Protocol):
    """What the pipeline needs of an embedder: ``embed(crops) -> (N, D)`` unit vectors, and
    ``name``/``backend``/``precision`` for the run's records."""

    name: str
    backend: str
    precision: str

    def embed(self, crops: list[np.ndarray]) -> np.ndarray: ...


#: embedder name -> factory(backend=...) for embedders that are not an artefact folder
EMBEDDERS: Registry[Callable[..., EmbedderLike]] = Registry("embedder", "adfl_deploy.embedders")
#: the shipped models by name (``adfl track --model baseline``, as ``adfl mtmc --models`` names them)
SHIPPED_MODELS = {"edge": EDGE_MODEL, "baseline": BASELINE_MODEL}


def create_embedder(model: str | Path = "", backend: str = "auto", spinning: bool = True) -> EmbedderLike:
    """A registered embedder by name (``colour-histogram``), a shipped model by name (``edge``,
    ``baseline``), else the exported artefact in the folder ``model`` (empty: the shipped edge
    model; a folder of that name in the working directory wins over the shipped name).
    ``spinning``: see ``Embedder.from_artifact``."""
    if isinstance(model, str) and model and model in EMBEDDERS:
        return EMBEDDERS.get(model)(backend=backend)
    return Embedder.from_artifact(artifact_folder(model), backend=backend, spinning=spinning)


def artifact_folder(model: str | Path = "") -> Path:
    """The artefact folder ``model`` names: a shipped model's name (``edge``, ``baseline``;
    empty: ``edge``) unless a folder of that name exists here, else the folder itself."""
    if not model:
        return Path(EDGE_MODEL)
    if isinstance(model, str) and model in SHIPPED_MODELS and not Path(model).is_dir():
        return Path(SHIPPED_MODELS[model])
    return Path(model)


class Embedder:
    """``Embedder.from_artifact(dir).embed(list_of_bgr_crops) -> (N, D) float32``, unit norm."""

    def __init__(self, run: backends.Runner, info: ArtifactInfo, backend: str, precision: str) -> None:
        self._run = run
        self.info = info
        self.backend = backend
        self.precision = precision

    @classmethod
    def from_artifact(
        cls,
        directory: str | Path,
        backend: str = "auto",
        precision: str | None = None,
        threads: int | None = None,
        plugin_library: str | Path | None = None,
        spinning: bool = True,
    ) -> Embedder:
        """Load a verified artefact on ``backend`` ("auto": the fastest available, logged).
        ``plugin_library``: the fused-attention TensorRT plugins (default $ADFL_PLUGIN_LIBRARY,
        else build/libadfl_plugins.so). ``spinning`` False: ONNX Runtime's threads sleep between
        calls (the pipeline: one call a tick, cores shared with readers and detectors)."""
        directory = Path(directory)
        info = load_artifact(directory)
        chosen = backends.resolve(backend, directory, info)
        run, precision = backends.load(
            chosen, directory, info, precision, threads=threads, plugin_library=plugin_library, spinning=spinning
        )
        log.info("embedder: %s (%s) on %s%s", info.model.name, precision, chosen, " (auto)" if backend == "auto" else "")
        return cls(run, info, chosen, precision)

    @property
    def name(self) -> str:
        return self.info.model.name

    @property
    def dim(self) -> int:
        return self.info.embedding_dim

    def prepare(self, crops: list[np.ndarray]) -> np.ndarray:
        """Crops -> the batch the model takes: resized uint8 (N, H, W, 3) BGR when the artefact
        folds the normalisation into its graph, else a normalised (N, 3, H, W) float32 blob."""
        return prepare(list(crops), self.info.preprocessing, self.info.input_format)

    def embed_batch(self, batch: np.ndarray) -> np.ndarray:
        """Raw (not normalised) embeddings of a prepared batch (``prepare``), in chunks of the
        artefact's largest batch."""
        out = []
        for start in range(0, len(batch), self.max_batch):
            chunk = batch[start : start + self.max_batch]
            out.append(np.asarray(self._run(np.ascontiguousarray(chunk))))
        return np.concatenate(out).astype(np.float32, copy=False)

    @property
    def max_batch(self) -> int:
        """Largest batch one call of the backend takes (a TensorRT engine's profile may be smaller)."""
        limit = getattr(self._run, "max_batch", None)
        return min(self.info.max_batch, limit) if limit else self.info.max_batch

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops of any size -> (N, D) float32 L2-normalised embeddings."""
        return l2_normalise(self.embed_batch(self.prepare(crops)))


EMBEDDERS.register("colour-histogram", lambda backend="auto": ColourHistogramEmbedder())
