"""Which embedder made a store: recorded when the run starts, checked before a search.

Embeddings of two models live in different spaces, so a query embedded by another model ranks
noise. The store keeps the run's model as given (``model``: an artefact folder, a registered
embedder name, or empty for the shipped edge model), its resolved path, and a fingerprint: the
sha256 of the artefact's ONNX file from its verified sidecar (or ``registered:NAME`` for an
embedder without a file), the network's name and the embedding dimension.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from adfl_deploy.errors import ConfigError


@dataclass(frozen=True)
class ModelFingerprint:
    model: str  # as the run's config gave it ("" = the shipped edge model)
    path: str  # the artefact folder it resolved to ("" for a registered embedder)
    name: str
    sha256: str
    dim: int  # 0 = not known yet (a registered embedder: set from the first embedding)

    def as_meta(self) -> dict[str, str]:
        return {f"model_{k}": str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> ModelFingerprint:
        try:
            return cls(meta["model_model"], meta["model_path"], meta["model_name"], meta["model_sha256"], int(meta["model_dim"]))
        except (KeyError, ValueError):
            raise ConfigError("the store records no model (not written by adfl track?); re-run adfl track") from None

    def same_model(self, other: ModelFingerprint) -> bool:
        return (
            self.sha256 == other.sha256 and self.name == other.name and (not self.dim or not other.dim or self.dim == other.dim)
        )

    def describe(self) -> str:
        digest = self.sha256.removeprefix("registered:")[:12]
        return f"{self.name} ({digest}, {self.dim or '?'}-d)"


def fingerprint(model: str | Path = "") -> ModelFingerprint:
    """The fingerprint of ``model`` as ``create_embedder`` would load it, without loading the
    network (the sidecar's checksums are verified, as at load)."""
    from adfl_deploy.model.artifact import load_artifact
    from adfl_deploy.runtime.embedder import EMBEDDERS, artifact_folder

    model = str(model or "")
    if model and model in EMBEDDERS:
        return ModelFingerprint(model, "", model, f"registered:{model}", 0)
    folder = artifact_folder(model)
    info = load_artifact(folder)
    return ModelFingerprint(model, str(folder.resolve()), info.model.name, info.sha256[info.onnx], int(info.embedding_dim))


__all__ = ["ModelFingerprint", "fingerprint"]
