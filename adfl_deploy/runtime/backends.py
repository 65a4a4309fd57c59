"""Inference backends behind ``Embedder``: each turns an artefact into a function
``(N, 3, H, W) float32 -> (N, D) float32``.

- ``onnxruntime-cpu`` / ``onnxruntime-cuda``: the portable ONNX (local functions carry the fused
  attention), on the CPU or the CUDA execution provider (``onnxruntime-gpu`` installed instead
  of ``onnxruntime``);
- ``torch``: the network rebuilt from the sidecar's config with ``model_state.pt`` (written by
  ``adfl export``, loaded with ``weights_only=True``); only where PyTorch is installed;
- ``tensorrt``: the sidecar's engine, checked against the installed TensorRT and GPU
  (``engine_info.check_engine``), run by ``tensorrt_runner`` (cuda-python buffers and stream;
  the fused-attention plugin library from ``make native`` or $ADFL_PLUGIN_LIBRARY).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from adfl_deploy.errors import ArtifactError, ConfigError, one_line
from adfl_deploy.model.artifact import SIDECAR, ArtifactInfo, onnx_file
from adfl_deploy.model.preprocess import UINT8_NHWC, normalise
from adfl_deploy.optional import installed
from adfl_deploy.runtime.engine_info import check_engine, device_compute_capability, installed_tensorrt_version

Runner = Callable[[np.ndarray], np.ndarray]
BACKENDS = ("auto", "onnxruntime-cpu", "onnxruntime-cuda", "tensorrt", "torch")
#: fastest first, for backend="auto"
AUTO_ORDER = ("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu")
STATE_FILE = "model_state.pt"


def available(directory: Path, info: ArtifactInfo) -> dict[str, str | None]:
    """backend -> None if usable here, else the one-line reason it is not."""
    import onnxruntime as ort

    providers = ort.get_available_providers()
    return {
        "tensorrt": _engine_problem(info),
        "onnxruntime-cpu": None,
        "onnxruntime-cuda": None if "CUDAExecutionProvider" in providers else "onnxruntime-gpu with a CUDA device is not installed",
        "torch": (
            None
            if installed("torch") and STATE_FILE in info.sha256
            else ("PyTorch is not installed" if not installed("torch") else f"the artefact has no {STATE_FILE}")
        ),
    }


def _engine_problem(info: ArtifactInfo) -> str | None:
    """Why the artefact's engine cannot run here (one line), or None."""
    try:
        check_engine(info.engine, installed_tensorrt_version(), device_compute_capability())
    except ConfigError as exc:
        return str(exc)
    return None


def resolve(backend: str, directory: Path, info: ArtifactInfo) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    reasons = available(directory, info)
    if backend == "auto":
        return next(b for b in AUTO_ORDER if reasons[b] is None)
    if backend == "tensorrt" and reasons[backend] is not None:
        raise ConfigError(reasons[backend])  # already says what to do
    if reasons[backend] is not None:
        raise ConfigError(f"backend {backend} is not available here: {reasons[backend]}")
    return backend


def onnxruntime_runner(directory: Path, info: ArtifactInfo, precision: str | None, cuda: bool, threads: int | None) -> Runner:
    import onnxruntime as ort

    model_file = onnx_file(info, precision)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(directory / model_file), options, providers=providers)
    except Exception as exc:
        raise ConfigError(f"{directory / model_file}: ONNX Runtime cannot load it ({one_line(exc)})") from None
    check_onnx_input(session, info, directory / model_file)
    names = ([info.output_name], info.input_name)
    return lambda blob: session.run(names[0], {names[1]: blob})[0]


def check_onnx_input(session, info: ArtifactInfo, path: Path) -> None:
    """The ONNX file's input and output agree with the sidecar (name, element type, and the
    fixed dimensions of the input shape), else a one-line ``ArtifactError`` at load instead of
    an ONNX Runtime error on the first batch."""
    prep = info.preprocessing
    if info.input_format == UINT8_NHWC:
        expected, element = (prep.height, prep.width, 3), "tensor(uint8)"
        layout = f"(N, {prep.height}, {prep.width}, 3) uint8"
    else:
        expected, element = (3, prep.height, prep.width), "tensor(float)"
        layout = f"(N, 3, {prep.height}, {prep.width}) float32"
    inputs = {i.name: i for i in session.get_inputs()}
    where = f"{path}: does not match {SIDECAR}"
    fix = "re-export the model with adfl export (or restore the original sidecar)"
    if info.input_name not in inputs:
        raise ArtifactError(f"{where}: no input {info.input_name!r} (it has {', '.join(inputs)}); {fix}")
    if info.output_name not in {o.name for o in session.get_outputs()}:
        raise ArtifactError(f"{where}: no output {info.output_name!r}; {fix}")
    found = inputs[info.input_name]
    shape = list(found.shape)
    fixed = len(shape) == 4 and all(not isinstance(d, int) or d == e for d, e in zip(shape[1:], expected))
    if found.type != element or not fixed:
        model_side = "x".join(str(d) if isinstance(d, int) else "N" for d in shape)
        raise ArtifactError(
            f"{where}: the model takes {info.input_name} {model_side} {found.type}, the sidecar says {layout} "
            f"({info.input_format}, preprocessing {prep.height}x{prep.width}); {fix}"
        )


def torch_runner(directory: Path, info: ArtifactInfo, precision: str | None) -> Runner:
    import torch

    from adfl_deploy.train.models import create_model

    if precision not in (None, "fp32"):
        raise ConfigError(f"the torch backend runs fp32 only, not {precision}")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stored weights replace the random init
        model = create_model(info.model).eval()
    try:
        state = torch.load(directory / STATE_FILE, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:
        raise ConfigError(f"{directory / STATE_FILE}: cannot load the weights ({one_line(exc)})") from None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)

    def run(blob: np.ndarray) -> np.ndarray:
        if info.input_format == UINT8_NHWC:  # the graph's folded normalisation, done here
            blob = normalise(blob, info.preprocessing)
        with torch.no_grad():
            return model(torch.from_numpy(blob).to(device)).float().cpu().numpy()

    return run


def tensorrt_runner(directory: Path, info: ArtifactInfo, precision: str | None, plugin_library: str | Path | None) -> Runner:
    from adfl_deploy.runtime.tensorrt_runner import TensorRTRunner, plugin_library_path

    engine = info.engine
    assert engine is not None  # resolve() checked it
    if precision not in (None, engine.precision):
        raise ConfigError(f"{engine.file} is a {engine.precision} engine, not {precision}; build another with adfl export --engine")
    plugins = plugin_library_path(plugin_library) if info.fused_ops else None
    return TensorRTRunner(directory / engine.file, plugins)
