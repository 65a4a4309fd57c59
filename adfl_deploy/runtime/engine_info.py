"""What a TensorRT engine was built for, and whether this machine can run it.

A serialized engine only deserialises on the TensorRT version that built it and is tuned for
one GPU architecture (compute capability), unless built as version- or hardware-compatible.
``adfl export --engine`` records both in the sidecar; the runtime compares them with what is
installed before handing the file to TensorRT, so a mismatch is one line that says what to do
instead of a deserialisation failure deep inside TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass

from adfl_deploy.errors import EngineError
from adfl_deploy.optional import installed


@dataclass(frozen=True)
class EngineInfo:
    file: str
    tensorrt_version: str  # e.g. "10.13.0"
    compute_capability: str  # e.g. "8.7" (Jetson Orin)
    gpu: str = ""
    #: (min, opt, max) batch of the optimisation profile
    batch: tuple[int, int, int] = (1, 8, 32)
    #: the ONNX precision it was built from (strongly typed: the engine has no other)
    precision: str = "fp32"


def installed_tensorrt_version() -> str | None:
    if not installed("tensorrt"):
        return None
    import tensorrt

    return str(tensorrt.__version__)


def device_compute_capability(device: int = 0) -> str | None:
    """ "major.minor" of a CUDA device through cuda-python, or None without one."""
    if not installed("cuda"):
        return None
    try:
        from cuda.bindings import runtime

        err, props = runtime.cudaGetDeviceProperties(device)
        return f"{props.major}.{props.minor}" if int(err) == 0 else None
    except Exception:  # no driver / no device: report "no GPU" rather than crash
        return None


def check_engine(engine: EngineInfo | None, tensorrt_version: str | None, compute_capability: str | None) -> None:
    """Raise a one-line EngineError when the engine cannot run here."""
    if engine is None:
        raise EngineError("the artefact has no TensorRT engine; build one with: adfl export CHECKPOINT --out DIR --engine")
    if tensorrt_version is None:
        raise EngineError(
            f"{engine.file} needs TensorRT {engine.tensorrt_version}, which is not installed here; use backend "
            "onnxruntime-cuda or onnxruntime-cpu"
        )
    if tensorrt_version != engine.tensorrt_version:
        raise EngineError(
            f"{engine.file} was built with TensorRT {engine.tensorrt_version} but {tensorrt_version} is installed; "
            "rebuild it here (adfl export --engine, or the trtexec line in the export log)"
        )
    if compute_capability is None:
        raise EngineError(
            f"{engine.file} needs a CUDA GPU (built for compute capability {engine.compute_capability}) and none was found"
        )
    if compute_capability != engine.compute_capability:
        raise EngineError(
            f"{engine.file} was built for a GPU of compute capability {engine.compute_capability}"
            f"{' (' + engine.gpu + ')' if engine.gpu else ''} but this GPU is {compute_capability}; rebuild the "
            "engine on this device"
        )
