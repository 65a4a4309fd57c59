"""PyTorch ADFL network -> ONNX file + sidecar, checked against PyTorch on real crops.

Uses the ``torch.export``-based exporter (``dynamo=True``), the one PyTorch maintains, with a
dynamic batch axis. The result is validated with ``onnx.checker`` and shape inference, then
run on ONNX Runtime and compared with the PyTorch embedding; a mismatch beyond tolerance
fails the export instead of shipping a wrong model.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from adfl_deploy.artifact import ArtifactInfo, sha256_of, write_sidecar
from adfl_deploy.preprocess import Preprocessing, to_blob

#: opset 18: the first with ReduceMax taking axes as an input, what the exporter emits for amax
OPSET = 18


@dataclass(frozen=True)
class ParityTolerance:
    """Export fails beyond these (fp32 on CPU; errors scale with the embedding's magnitude)."""

    max_abs_rel: float = 1e-4  # max |onnx - torch| / max |torch|
    min_cosine: float = 0.99999


def _export(model: torch.nn.Module, path: Path, prep: Preprocessing, max_batch: int) -> None:
    example = torch.zeros(2, 3, prep.height, prep.width)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        opset_version=OPSET,
        input_names=["images"],
        output_names=["embeddings"],
        dynamic_shapes={"x": {0: batch}},
        optimize=True,
        verbose=False,
    )
    program.save(str(path), external_data=False)


def check_parity(model: torch.nn.Module, onnx_path: Path, blob: np.ndarray, tol: ParityTolerance) -> dict[str, float]:
    """Compare ONNX Runtime with PyTorch on a preprocessed batch; raise on a regression."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": blob})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(blob)).numpy()
    err = np.abs(got - want)
    cos = np.sum(got * want, 1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    report = {
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
        "max_abs_torch": float(np.abs(want).max()),
        "min_cosine": float(cos.min()),
        "crops": int(len(blob)),
    }
    if err.max() > tol.max_abs_rel * np.abs(want).max() or cos.min() < tol.min_cosine:
        raise RuntimeError(f"ONNX output differs from PyTorch beyond tolerance: {report}")
    return report


def export_onnx(
    model: torch.nn.Module,
    out_dir: str | Path,
    crops: list[np.ndarray],
    prep: Preprocessing = Preprocessing(),
    max_batch: int = 64,
    tol: ParityTolerance = ParityTolerance(),
) -> ArtifactInfo:
    """Write ``model.onnx`` and ``adfl.json`` into ``out_dir``; ``crops`` (BGR uint8) check parity."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    final = out_dir / "model.onnx"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:  # nothing half-written in out_dir
        path = Path(tmp) / "model.onnx"
        _export(model, path, prep, max_batch)
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
        parity = check_parity(model, path, to_blob(crops, prep), tol)
        path.replace(final)
    info = ArtifactInfo(
        model=model.cfg,
        preprocessing=prep,
        embedding_dim=model.cfg.embedding_dim,
        opset=OPSET,
        max_batch=max_batch,
        sha256={final.name: sha256_of(final)},
        parity=parity,
    )
    write_sidecar(out_dir, info)
    return info
