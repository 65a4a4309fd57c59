"""An exported model on disk: the ONNX file(s) plus a JSON sidecar that says how to use them.

The sidecar records the model config, preprocessing, embedding size, opset and a sha256 of
every file, so a runtime can refuse a truncated, swapped or foreign artefact with one line
instead of producing wrong embeddings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from adfl_deploy import __version__, config
from adfl_deploy.errors import ConfigError, one_line
from adfl_deploy.files import confined
from adfl_deploy.model.preprocess import FLOAT_NCHW, Preprocessing
from adfl_deploy.model.variants import ModelConfig
from adfl_deploy.runtime.engine_info import EngineInfo

SIDECAR = "adfl.json"


@dataclass(frozen=True)
class ArtifactInfo:
    """Contents of ``adfl.json``."""

    model: ModelConfig
    preprocessing: Preprocessing
    embedding_dim: int
    #: the runtime's default file: portable ONNX (custom nodes carry local functions, so it
    #: runs on plain ONNX Runtime) in the default ``precision``
    onnx: str = "model.onnx"
    #: the same graph for TensorRT + libadfl_plugins.so (no local functions); None if unfused
    onnx_tensorrt: str | None = None
    #: its INT8 QDQ version (symmetric int8 activations, as TensorRT requires)
    onnx_tensorrt_int8: str | None = None
    #: its FP16 version (TensorRT builds strongly typed networks: an fp16 engine needs it)
    onnx_tensorrt_fp16: str | None = None
    #: com.adfl op types in the graph
    fused_ops: list[str] = field(default_factory=list)
    opset: int = 18
    precision: str = "fp32"
    #: every portable ONNX file by precision ("fp32", "fp16", "int8"), the default one included
    variants: dict[str, str] = field(default_factory=dict)
    #: accuracy of each precision on an evaluation split (rank-1, mAP), when measured
    accuracy: dict[str, dict] = field(default_factory=dict)
    #: "uint8-nhwc-bgr": resized BGR crops, normalisation inside the graph (the export's
    #: default); "float32-nchw": normalised blobs (sidecars older than this field)
    input_format: Literal["uint8-nhwc-bgr", "float32-nchw"] = FLOAT_NCHW
    input_name: str = "images"
    output_name: str = "embeddings"
    max_batch: int = 64
    #: FLOPs of one image (2 per multiply-add; torch.utils.flop_counter at export)
    flops_per_image: int = 0
    toolkit_version: str = __version__
    #: file name -> sha256 hex digest
    sha256: dict[str, str] = field(default_factory=dict)
    #: parity of the export against PyTorch (max/mean abs error, cosine)
    parity: dict[str, float] = field(default_factory=dict)
    #: the TensorRT engine and what it was built for (adfl export --engine)
    engine: EngineInfo | None = None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_sidecar(directory: str | Path, info: ArtifactInfo) -> Path:
    return config.save(info, Path(directory) / SIDECAR)


def load_artifact(directory: str | Path) -> ArtifactInfo:
    """Read and verify an artefact folder; every problem is a one-line ``ConfigError``."""
    directory = Path(directory)
    sidecar = directory / SIDECAR
    if not sidecar.is_file():
        raise ConfigError(f"{directory}: no {SIDECAR} found; is this a folder written by adfl export?")
    try:
        data = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{sidecar}: not valid JSON ({one_line(exc)}); re-export the model") from None
    try:
        info = config.from_dict(ArtifactInfo, data)
    except ConfigError as exc:
        raise ConfigError(f"{sidecar}: {exc}") from None
    names = list(info.sha256) + ([info.engine.file] if info.engine is not None else [])
    for name in names:  # a sidecar names files inside its own folder, never elsewhere
        confined(directory, name, f"{sidecar}: file")
    for name, digest in info.sha256.items():
        path = directory / name
        if not path.is_file():
            raise ConfigError(f"{directory}: {name} listed in {SIDECAR} is missing; re-export the model")
        if sha256_of(path) != digest:
            raise ConfigError(f"{path}: sha256 does not match {SIDECAR} (truncated or replaced file); re-export the model")
    for name in {info.onnx, *info.variants.values()}:
        if name not in info.sha256:
            raise ConfigError(f"{sidecar}: no checksum for {name}; re-export the model")
    return info


def onnx_file(info: ArtifactInfo, precision: str | None = None) -> str:
    """The portable ONNX file for ``precision`` (None: the artefact's default)."""
    if precision is None or precision == info.precision:
        return info.onnx
    if precision not in info.variants:
        raise ConfigError(
            f"this artefact has no {precision} model (it has: {', '.join(sorted(info.variants) or [info.precision])})"
        )
    return info.variants[precision]


def tensorrt_onnx_file(info: ArtifactInfo, precision: str) -> str | None:
    """The TensorRT flavour for ``precision`` (None if it was not exported)."""
    return {"fp32": info.onnx_tensorrt, "fp16": info.onnx_tensorrt_fp16, "int8": info.onnx_tensorrt_int8}.get(precision)
