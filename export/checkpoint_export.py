"""Checkpoint -> deployable artefact folder: ONNX (portable + TensorRT flavour), optional FP16
and INT8, accuracy of every precision on an evaluation split, and a guard on their mAP drop."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import onnx

from adfl_deploy.assets import load_sample_crops
from adfl_deploy.errors import ConfigError
from adfl_deploy.evaluation.datasets import IMAGE_SUFFIXES, load_dataset, load_dataset_spec
from adfl_deploy.files import atomic_file
from adfl_deploy.model.artifact import SIDECAR, ArtifactInfo, load_artifact, sha256_of, write_sidecar
from adfl_deploy.model.preprocess import UINT8_NHWC, Preprocessing
from adfl_deploy.train.checkpoint import load_model, preprocessing_of

from .half_precision import FP16_HEADROOM, FP16_MAX, max_activation, to_fp16
from .onnx_export import export_onnx, row_cosine
from .onnx_ops import tensorrt_flavour
from .quantize import quantize_int8

if TYPE_CHECKING:
    import torch


def calibration_crops(calib: str | Path | None, train_config: dict, limit: int = 256) -> list[np.ndarray]:
    """Up to ``limit`` crops spread evenly over ``calib`` (a folder of images) or, by default,
    over the checkpoint's training images."""
    if calib is not None:
        paths = sorted(p for p in Path(calib).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise ConfigError(f"{calib}: no images for INT8 calibration")
    else:
        data = train_config["data"]
        paths = [Path(s.path) for s in load_dataset(data["dataset"], data["root"]).train]
    step = max(1, len(paths) // limit)
    crops = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths[::step][:limit]]
    return [c for c in crops if c is not None]


def _accuracy(out_dir: Path, precisions: list[str], eval_set: str) -> dict[str, dict]:
    from adfl_deploy.evaluation.reid import evaluate
    from adfl_deploy.runtime.embedder import Embedder

    dataset = load_dataset_spec(eval_set)
    results = {}
    for precision in precisions:
        m = evaluate(Embedder.from_artifact(out_dir, precision=precision).embed, dataset).metrics
        results[precision] = {"eval_set": eval_set, "rank1": m["rank1"], "mAP": m["mAP"]}
    return results


#: an FP16 file whose embeddings fall below this cosine to fp32 (sample crops) fails the export
FP16_MIN_COSINE = 0.999


def fp16_parity(out_dir: Path, info: ArtifactInfo, crops: list[np.ndarray]) -> dict[str, float]:
    """FP16 vs FP32 portable files on ONNX Runtime (CPU) on real crops, and the FP32 model's
    largest activation; raise below FP16_MIN_COSINE or beyond the float16 headroom
    (``half_precision``: on the CPU this sees weight rounding and overflow risk, not fp16 arithmetic)."""
    from adfl_deploy.model.preprocess import prepare

    batch = prepare(crops, info.preprocessing, info.input_format)
    peak, where = max_activation(onnx.load(str(out_dir / "model.onnx")), {info.input_name: batch})
    if peak > FP16_HEADROOM * FP16_MAX:
        raise ConfigError(
            f"activation {where} reaches {peak:.0f} on real crops, too close to float16's {FP16_MAX:.0f}; export fp32 instead"
        )
    fp32, fp16 = _outputs(out_dir, ("model.onnx", "model.fp16.onnx"), info.input_name, batch)
    cos = row_cosine(fp32, fp16)
    report = {
        "fp16_max_abs_error": float(np.abs(fp16 - fp32).max()),
        "fp16_min_cosine": float(cos.min()),
        "fp16_max_activation": peak,
    }
    if not cos.min() >= FP16_MIN_COSINE:  # NaN (an fp16 overflow) fails too
        raise ConfigError(
            f"the FP16 model differs from FP32 (min cosine {cos.min():.5f} < {FP16_MIN_COSINE} on real crops); "
            "export fp32 instead"
        )
    return report


def fp16_arithmetic_cosine(model: torch.nn.Module, crops: list[np.ndarray], prep: Preprocessing) -> np.ndarray:
    """Per-crop cosine between the network run in float16 arithmetic (PyTorch's CPU half kernels:
    every tensor stored in float16, attention energies included) and in float32. What ONNX
    Runtime's CPU provider cannot show (it runs float16 nodes in float32); a GPU's fp16 kernels
    round the same tensors, though they may accumulate differently."""
    import copy

    import torch

    from adfl_deploy.model.preprocess import to_blob

    blob = torch.from_numpy(to_blob(crops, prep))
    with torch.no_grad():
        full = model.eval()(blob).double()
        half = copy.deepcopy(model).half().eval()(blob.half()).double()
    return torch.nn.functional.cosine_similarity(full, half, dim=1).numpy()


def int8_parity(out_dir: Path, info: ArtifactInfo, crops: list[np.ndarray]) -> dict[str, float]:
    """INT8 vs FP32 embeddings on ONNX Runtime on real crops, recorded for users to see (the gate
    is the mAP guard: per-tensor uint8 activations lose more per crop than ranking shows)."""
    from adfl_deploy.model.preprocess import prepare

    batch = prepare(crops, info.preprocessing, info.input_format)
    fp32, int8 = _outputs(out_dir, ("model.onnx", "model.int8.onnx"), info.input_name, batch)
    cos = row_cosine(fp32, int8)
    return {
        "int8_max_abs_error": float(np.abs(int8 - fp32).max()),
        "int8_min_cosine": float(cos.min()),
        "int8_median_cosine": float(np.median(cos)),
    }


def _outputs(out_dir: Path, names: tuple[str, ...], input_name: str, batch: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    return [
        ort.InferenceSession(str(out_dir / n), providers=["CPUExecutionProvider"]).run(None, {input_name: batch})[0]
        for n in names
    ]


def add_fp16(out_dir: Path, info: ArtifactInfo, model: torch.nn.Module | None = None) -> ArtifactInfo:
    """Write float16 copies of the portable and TensorRT files; check them against fp32, and,
    given the PyTorch ``model``, check float16 arithmetic too (``fp16_arithmetic_cosine``)."""
    written = {}
    for src, dst in (("model.onnx", "model.fp16.onnx"), (info.onnx_tensorrt, "model.trt.fp16.onnx")):
        if src is None:
            continue
        with atomic_file(out_dir / dst, "wb") as fh:
            fh.write(to_fp16(onnx.load(str(out_dir / src))).SerializeToString())
        written[dst] = sha256_of(out_dir / dst)
    info = dataclasses.replace(
        info,
        variants={**info.variants, "fp16": "model.fp16.onnx"},
        onnx_tensorrt_fp16="model.trt.fp16.onnx" if info.onnx_tensorrt else None,
        sha256={**info.sha256, **written},
    )
    crops = load_sample_crops()
    report = fp16_parity(out_dir, info, crops)
    if model is not None:
        cos = fp16_arithmetic_cosine(model, crops, info.preprocessing)
        report["fp16_arithmetic_min_cosine"] = float(cos.min())
        if not cos.min() >= FP16_MIN_COSINE:  # NaN (an overflow) fails too
            raise ConfigError(
                f"in float16 arithmetic the model differs from fp32 (min cosine {cos.min():.5f} < {FP16_MIN_COSINE} "
                "on real crops); export fp32 instead"
            )
    return dataclasses.replace(info, parity={**info.parity, **report})


def add_int8(out_dir: Path, info: ArtifactInfo, crops: list[np.ndarray], calib_method: str) -> ArtifactInfo:
    """Write the INT8 QDQ files (ONNX Runtime's and, when fused, TensorRT's) calibrated on ``crops``."""
    prep = info.preprocessing
    quantize_int8(out_dir / "model.onnx", out_dir / "model.int8.onnx", crops, prep, calib_method, "onnxruntime")
    written = {"model.int8.onnx": sha256_of(out_dir / "model.int8.onnx")}
    if info.onnx_tensorrt:
        # TensorRT's file: symmetric activations; calibrated on the portable graph (ONNX
        # Runtime must run it), then turned into the function-free TensorRT flavour
        trt_int8 = out_dir / "model.trt.int8.onnx"
        quantize_int8(out_dir / "model.onnx", trt_int8, crops, prep, calib_method, "tensorrt")
        with atomic_file(trt_int8, "wb") as fh:
            fh.write(tensorrt_flavour(onnx.load(str(trt_int8))).SerializeToString())
        written[trt_int8.name] = sha256_of(trt_int8)
    info = dataclasses.replace(
        info,
        variants={**info.variants, "int8": "model.int8.onnx"},
        onnx_tensorrt_int8="model.trt.int8.onnx" if info.onnx_tensorrt else None,
        sha256={**info.sha256, **written},
    )
    return dataclasses.replace(info, parity={**info.parity, **int8_parity(out_dir, info, load_sample_crops())})


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    int8: bool = False,
    calib: str | Path | None = None,
    calib_method: str = "percentile",
    eval_set: str | None = None,
    max_map_drop: float = 1.0,
    max_batch: int = 64,
    default_precision: str = "fp32",
    input_format: str = UINT8_NHWC,
    fp16: bool = False,
) -> ArtifactInfo:
    out_dir = Path(out_dir)
    model, state = load_model(checkpoint)
    prep = preprocessing_of(state)
    info = export_onnx(model, out_dir, load_sample_crops(), prep=prep, max_batch=max_batch, input_format=input_format)
    precisions = ["fp32"]
    if fp16:
        info = add_fp16(out_dir, info, model)
        precisions.append("fp16")
    if int8:
        info = add_int8(out_dir, info, calibration_crops(calib, state["train_config"]), calib_method)
        precisions.append("int8")
    if default_precision not in precisions:
        raise ConfigError(f"default precision {default_precision} was not exported (exported: {', '.join(precisions)})")
    info = dataclasses.replace(info, precision=default_precision, onnx=info.variants[default_precision])
    write_sidecar(out_dir, info)
    if eval_set:
        info = dataclasses.replace(info, accuracy=_accuracy(out_dir, precisions, eval_set))
        write_sidecar(out_dir, info)
        for precision in precisions[1:]:
            drop = 100 * (info.accuracy["fp32"]["mAP"] - info.accuracy[precision]["mAP"])
            if drop > max_map_drop:
                hint = "try --calib-method or more calibration crops" if precision == "int8" else "export fp32 instead"
                raise ConfigError(f"{precision.upper()} loses {drop:.2f} mAP points on {eval_set} (limit {max_map_drop}); {hint}")
    return info


def bundle(artifact_dir: str | Path, out_dir: str | Path, precision: str) -> ArtifactInfo:
    """A folder with one precision only (e.g. the INT8 model that ships inside the package)."""
    info = load_artifact(artifact_dir)
    if precision not in info.variants:
        raise ConfigError(f"{artifact_dir}: no {precision} model to bundle")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = info.variants[precision]
    shutil.copyfile(Path(artifact_dir) / name, out_dir / name)
    slim = dataclasses.replace(
        info,
        onnx=name,
        precision=precision,
        onnx_tensorrt=None,
        onnx_tensorrt_fp16=None,
        onnx_tensorrt_int8=None,
        variants={precision: name},
        sha256={name: info.sha256[name]},
        accuracy={k: v for k, v in info.accuracy.items() if k == precision},
    )
    write_sidecar(out_dir, slim)
    assert (out_dir / SIDECAR).exists()
    return slim
