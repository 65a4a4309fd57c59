"""Build a TensorRT engine from ``model.trt.onnx`` with the plugin library and an optimisation
profile over the batch range, through the TensorRT Python API.

TensorRT 10+/11 networks are strongly typed: the precision comes from the ONNX file (fp32 or the
INT8 QDQ flavour), not from builder flags. Not exercised on this project's machines yet (no
TensorRT there; ``tests/runtime/test_tensorrt_runner.py`` builds and runs an engine on a GPU);
where TensorRT is missing the export stops with one line and the ONNX files stay written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from adfl_deploy.errors import ConfigError
from adfl_deploy.files import atomic_file
from adfl_deploy.model.artifact import ArtifactInfo, load_artifact, sha256_of, write_sidecar
from adfl_deploy.model.preprocess import input_shape
from adfl_deploy.optional import installed
from adfl_deploy.runtime.engine_info import EngineInfo, device_compute_capability, installed_tensorrt_version
from adfl_deploy.runtime.tensorrt_runner import plugin_library_path


def tensorrt_available() -> bool:
    return installed("tensorrt")


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    info: ArtifactInfo,
    batch: tuple[int, int, int],
    plugin_library: Path | None = None,
) -> Path:
    """``plugin_library``: default $ADFL_PLUGIN_LIBRARY, else build/libadfl_plugins.so."""
    if not tensorrt_available():
        raise ConfigError(
            "TensorRT is not installed here: the ONNX files are written; install TensorRT (pip install tensorrt "
            "from NVIDIA's index, or JetPack) or build on the device with the trtexec line printed above"
        )
    plugin_library = plugin_library_path(plugin_library)
    if not plugin_library.is_file():
        raise ConfigError(f"{plugin_library}: plugin library not built; run make native (or pass its path)")
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    builder.get_plugin_registry().load_library(str(plugin_library))
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConfigError(f"{onnx_path}: TensorRT cannot parse it ({errors})")
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape(info.input_name, *(input_shape(info.input_format, b, info.preprocessing) for b in batch))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ConfigError(f"{onnx_path}: TensorRT failed to build an engine (see the log above)")
    with atomic_file(engine_path, "wb") as fh:
        fh.write(bytes(serialized))
    return engine_path


def parse_batch_range(text: str) -> tuple[int, int, int]:
    try:
        lo, opt, hi = (int(v) for v in text.split(":"))
    except ValueError:
        raise ConfigError(f"--batch {text!r}: expected MIN:OPT:MAX, e.g. 1:8:32") from None
    if not 1 <= lo <= opt <= hi:
        raise ConfigError(f"--batch {text!r}: need 1 <= MIN <= OPT <= MAX")
    return lo, opt, hi


def record_engine(artifact_dir: Path, engine_path: Path, batch: tuple[int, int, int], precision: str = "fp32") -> ArtifactInfo:
    """Add the engine, its sha256 and what it was built for (TensorRT version, GPU, precision) to the sidecar."""
    info = load_artifact(artifact_dir)
    engine = EngineInfo(
        engine_path.name, installed_tensorrt_version() or "", device_compute_capability() or "", batch=batch, precision=precision
    )
    updated = dataclasses.replace(info, engine=engine, sha256={**info.sha256, engine_path.name: sha256_of(engine_path)})
    write_sidecar(artifact_dir, updated)
    return updated


def trtexec_command(
    info: ArtifactInfo,
    out_dir: str,
    batch: tuple[int, int, int],
    onnx_name: str,
    plugin_library: str = "build/libadfl_plugins.so",
) -> str:
    """The trtexec line that builds the same engine on the device itself (the usual way on Jetson)."""
    shapes = [
        f"--{which}Shapes={info.input_name}:" + "x".join(str(d) for d in input_shape(info.input_format, b, info.preprocessing))
        for which, b in zip(("min", "opt", "max"), batch)
    ]
    return " ".join(
        [
            f"trtexec --onnx={out_dir}/{onnx_name}",
            f"--dynamicPlugins={plugin_library}",
            *shapes,
            f"--saveEngine={out_dir}/model.engine",
        ]
    )
