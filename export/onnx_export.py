"""PyTorch ADFL network -> ONNX file(s) + sidecar, checked against PyTorch on real crops.

Uses the ``torch.export``-based exporter (``dynamo=True``), the one PyTorch maintains, with a
dynamic batch axis. With ``fused=True`` (default) every softmax-attention block becomes one
``com.adfl`` node and two files are written (see ``onnx_ops``): ``model.onnx`` (portable: local
functions, runs on plain ONNX Runtime) and ``model.trt.onnx`` (for TensorRT with the plugin
library). By default the crop normalisation is folded into both (``uint8_input``): the model
takes resized uint8 BGR crops; ``input_format="float32-nchw"`` keeps the float input. The
portable file is validated with ``onnx.checker`` (full check, shape inference), run on ONNX
Runtime and compared with the PyTorch embedding; a mismatch beyond tolerance fails the export
instead of shipping a wrong model.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from adfl_deploy.files import atomic_file
from adfl_deploy.model.artifact import ArtifactInfo, sha256_of, write_sidecar
from adfl_deploy.model.preprocess import FLOAT_INPUT, INPUT_FORMATS, UINT8_INPUT, UINT8_NHWC, Preprocessing, prepare, to_blob
from adfl_deploy.train.models.complexity import count_flops

from .onnx_ops import custom_nodes, custom_translation_table, portable_flavour, tensorrt_flavour
from .uint8_input import fold_preprocessing

#: opset 18: the first with ReduceMax taking axes as an input, what the exporter emits for amax
OPSET = 18


@dataclass(frozen=True)
class ParityTolerance:
    """Export fails beyond these (fp32 on CPU; errors scale with the embedding's magnitude)."""

    max_abs_rel: float = 1e-4  # max |onnx - torch| / max |torch|
    min_cosine: float = 0.99999


def _export(model: torch.nn.Module, prep: Preprocessing, max_batch: int) -> onnx.ModelProto:
    example = torch.zeros(2, 3, prep.height, prep.width)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        opset_version=OPSET,
        input_names=[FLOAT_INPUT],
        output_names=["embeddings"],
        dynamic_shapes={"x": {0: batch}},
        custom_translation_table=custom_translation_table(),
        optimize=True,
        verbose=False,
    )
    return program.model_proto


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b`` (one per crop)."""
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def check_parity(
    model: torch.nn.Module, onnx_path: Path, crops: list[np.ndarray], prep: Preprocessing, input_format: str, tol: ParityTolerance
) -> dict[str, float]:
    """Compare ONNX Runtime (fed what the runtime feeds it) with PyTorch on the NumPy-normalised
    crops; raise on a regression."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: prepare(crops, prep, input_format)})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(to_blob(crops, prep))).numpy()
    err = np.abs(got - want)
    cos = row_cosine(got, want)
    report = {
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
        "max_abs_torch": float(np.abs(want).max()),
        "min_cosine": float(cos.min()),
        "crops": int(len(crops)),
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
    fused: bool = True,
    input_format: str = UINT8_NHWC,
) -> ArtifactInfo:
    """Write ``model.onnx`` (+ ``model.trt.onnx`` when fused) and ``adfl.json`` into ``out_dir``;
    ``crops`` (BGR uint8) check parity."""
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input format {input_format!r} is not one of {', '.join(INPUT_FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval().set_fused(fused)
    try:
        proto = _export(model, prep, max_batch)
    finally:
        model.set_fused(False)
    flavours = {"model.onnx": portable_flavour(proto)}
    with atomic_file(out_dir / "model_state.pt", "wb") as fh:  # the torch backend's weights
        torch.save(model.state_dict(), fh)
    if custom_nodes(proto):
        flavours["model.trt.onnx"] = tensorrt_flavour(proto)
    if input_format == UINT8_NHWC:
        flavours = {name: fold_preprocessing(flavour, prep) for name, flavour in flavours.items()}
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:  # nothing half-written in out_dir
        for name, flavour in flavours.items():
            onnx.save(flavour, str(Path(tmp) / name))
        onnx.checker.check_model(str(Path(tmp) / "model.onnx"), full_check=True)
        parity = check_parity(model, Path(tmp) / "model.onnx", crops, prep, input_format, tol)
        for name in flavours:
            (Path(tmp) / name).replace(out_dir / name)
    info = ArtifactInfo(
        model=model.cfg,
        preprocessing=prep,
        input_format=input_format,
        input_name=UINT8_INPUT if input_format == UINT8_NHWC else FLOAT_INPUT,
        embedding_dim=model.cfg.embedding_dim,
        opset=OPSET,
        max_batch=max_batch,
        flops_per_image=count_flops(model, (prep.height, prep.width)),
        onnx_tensorrt="model.trt.onnx" if "model.trt.onnx" in flavours else None,
        variants={"fp32": "model.onnx"},
        fused_ops=sorted({n.op_type for n in custom_nodes(proto)}),
        sha256={name: sha256_of(out_dir / name) for name in [*flavours, "model_state.pt"]},
        parity=parity,
    )
    write_sidecar(out_dir, info)
    return info
