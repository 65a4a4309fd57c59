"""Inference backends behind ``Embedder``, in a registry (``BACKENDS``): each turns an
artefact into a function ``batch -> (N, D) float32``.

- ``onnxruntime-cpu`` / ``onnxruntime-cuda``: the portable ONNX (local functions carry the fused
  attention), on the CPU or the CUDA execution provider (``onnxruntime-gpu`` installed instead
  of ``onnxruntime``);
- ``tensorrt``: the sidecar's engine, checked against the installed TensorRT and GPU
  (``engine_info.check_engine``), run by ``tensorrt_runner`` (cuda-python buffers and stream;
  the fused-attention plugin library from ``make native`` or $ADFL_PLUGIN_LIBRARY);
- ``torch``: PyTorch eager, which lives on the training side (``adfl_deploy.train.torch_backend``)
  and is found through the entry point ``adfl_deploy.backends`` only when asked for.

A backend is a class with ``unavailable(directory, info) -> reason | None`` and
``load(directory, info, precision, **options) -> (runner, precision)``; register another with
``BACKENDS.register("name", MyBackend)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from adfl_deploy.errors import ArtifactError, BackendUnavailable, ConfigError, EngineError, one_line
from adfl_deploy.model.artifact import SIDECAR, ArtifactInfo, onnx_file
from adfl_deploy.model.preprocess import UINT8_NHWC
from adfl_deploy.registry import Registry
from adfl_deploy.runtime.engine_info import check_engine, device_compute_capability, installed_tensorrt_version

Runner = Callable[[np.ndarray], np.ndarray]
#: backend name -> backend class; "torch" comes from the training side's entry point
BACKENDS: Registry[type] = Registry("backend", "adfl_deploy.backends")
#: fastest first, for backend="auto"
AUTO_ORDER = ("tensorrt", "onnxruntime-cuda", "onnxruntime-cpu")


def names() -> list[str]:
    return ["auto", *BACKENDS.names()]


def _backend(name: str):
    try:
        return BACKENDS.get(name)
    except ImportError as exc:  # an entry point whose package needs what is not installed
        raise BackendUnavailable(f"backend {name} is not available here: {exc}") from None


def unavailable(name: str, directory: Path, info: ArtifactInfo) -> str | None:
    """None if backend ``name`` can run the artefact here, else the one-line reason."""
    try:
        backend = _backend(name)
    except BackendUnavailable as exc:
        return str(exc)
    return backend.unavailable(directory, info)


def resolve(backend: str, directory: Path, info: ArtifactInfo) -> str:
    """The backend to use: ``auto`` picks the first usable of ``AUTO_ORDER``."""
    if backend == "auto":
        return next(b for b in AUTO_ORDER if unavailable(b, directory, info) is None)
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose from {', '.join(names())}")
    reason = unavailable(backend, directory, info)
    if reason is not None:
        if backend == "tensorrt":
            raise EngineError(reason)  # already says what to do
        raise BackendUnavailable(
            reason if reason.startswith("backend ") else f"backend {backend} is not available here: {reason}"
        )
    return backend


def load(backend: str, directory: Path, info: ArtifactInfo, precision: str | None, **options) -> tuple[Runner, str]:
    """(runner, the precision it runs) for a resolved backend."""
    return _backend(backend).load(directory, info, precision, **options)


class OnnxRuntimeCpu:
    cuda = False

    @classmethod
    def unavailable(cls, directory: Path, info: ArtifactInfo) -> str | None:
        if not cls.cuda:
            return None
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            return None
        return "onnxruntime-gpu with a CUDA device is not installed"

    @classmethod
    def load(
        cls, directory: Path, info: ArtifactInfo, precision: str | None, threads: int | None = None, spinning: bool = True, **_
    ):
        runner = onnxruntime_runner(directory, info, precision, cuda=cls.cuda, threads=threads, spinning=spinning)
        return runner, precision or info.precision


class OnnxRuntimeCuda(OnnxRuntimeCpu):
    cuda = True


class TensorRT:
    @staticmethod
    def unavailable(directory: Path, info: ArtifactInfo) -> str | None:
        try:
            check_engine(info.engine, installed_tensorrt_version(), device_compute_capability())
        except (ConfigError, EngineError) as exc:
            return str(exc)
        return None

    @staticmethod
    def load(directory: Path, info: ArtifactInfo, precision: str | None, plugin_library: str | Path | None = None, **_):
        return tensorrt_runner(directory, info, precision, plugin_library), info.engine.precision


BACKENDS.register("onnxruntime-cpu", OnnxRuntimeCpu)
BACKENDS.register("onnxruntime-cuda", OnnxRuntimeCuda)
BACKENDS.register("tensorrt", TensorRT)


def onnxruntime_runner(
    directory: Path, info: ArtifactInfo, precision: str | None, cuda: bool, threads: int | None, spinning: bool = True
) -> Runner:
    """``spinning`` False: the intra-op threads sleep between calls instead of spinning (ONNX
    Runtime's default), which is slower call to call but leaves the cores to the rest of a
    pipeline that calls the model once a tick (camera readers, detector workers)."""
    import onnxruntime as ort

    model_file = onnx_file(info, precision)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(directory / model_file), options, providers=providers)
    except Exception as exc:
        raise ArtifactError(f"{directory / model_file}: ONNX Runtime cannot load it ({one_line(exc)})") from None
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


def tensorrt_runner(directory: Path, info: ArtifactInfo, precision: str | None, plugin_library: str | Path | None) -> Runner:
    from adfl_deploy.runtime.tensorrt_runner import TensorRTRunner, plugin_library_path

    engine = info.engine
    assert engine is not None  # resolve() checked it
    if precision not in (None, engine.precision):
        raise EngineError(
            f"{engine.file} is a {engine.precision} engine, not {precision}; build another with adfl export --engine"
        )
    plugins = plugin_library_path(plugin_library) if info.fused_ops else None
    return TensorRTRunner(directory / engine.file, plugins)
