"""The ``tensorrt`` backend: a serialized engine run through TensorRT's Python API, with memory
and copies through cuda-python.

One runner owns one execution context, one CUDA stream, device buffers sized for the engine's
largest batch and page-locked host buffers (the only kind the driver copies asynchronously).
A call copies the batch into the pinned input buffer, then queues host->device copy, inference
and device->host copy on the stream and waits once. A batch smaller than the profile's minimum
is padded (and the padding's outputs dropped); a larger one is the caller's to split
(``max_batch``, which ``Embedder`` honours).

Which engine may run here (TensorRT version, GPU) is ``engine_info.check_engine``'s decision,
made before this module loads anything. Written against TensorRT 10/11's name-based I/O API
(``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``); the pure planning helpers
are tested on the CPU, the runner itself only on a GPU (``tests/runtime/test_tensorrt_runner.py``,
marker ``gpu``).
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adfl_deploy.errors import ArtifactError, EngineError

#: where ``make native`` puts the plugin library, unless ADFL_PLUGIN_LIBRARY says otherwise
DEFAULT_PLUGIN_LIBRARY = Path(__file__).resolve().parents[2] / "build" / "libadfl_plugins.so"


def plugin_library_path(explicit: str | Path | None = None) -> Path:
    """The fused-attention plugin library: the argument, else $ADFL_PLUGIN_LIBRARY, else build/."""
    return Path(explicit or os.environ.get("ADFL_PLUGIN_LIBRARY") or DEFAULT_PLUGIN_LIBRARY)


@dataclass(frozen=True)
class TensorPlan:
    """One I/O tensor of the engine: its name, NumPy dtype and shape at the largest batch."""

    name: str
    dtype: np.dtype
    max_shape: tuple[int, ...]

    @property
    def max_bytes(self) -> int:
        return int(np.prod(self.max_shape)) * self.dtype.itemsize


def batch_range(profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]) -> tuple[int, int]:
    """(min, max) batch of an input's optimisation profile (min, opt, max shapes)."""
    lo, _, hi = profile
    return int(lo[0]), int(hi[0])


def output_max_shape(shape: tuple[int, ...], max_batch: int) -> tuple[int, ...]:
    """An output's shape at the largest batch: the engine reports the dynamic batch as -1."""
    if any(d < 0 for d in shape[1:]):
        raise ArtifactError(f"engine output shape {shape} is dynamic beyond the batch axis; re-export the model")
    return (max_batch, *shape[1:])


def check_input(batch: np.ndarray, plan: TensorPlan, max_batch: int) -> None:
    """The batch must be what the engine was built for (dtype, per-crop shape, size)."""
    if batch.dtype != plan.dtype:
        raise ValueError(f"TensorRT input {plan.name}: expected {plan.dtype}, got {batch.dtype}; use Embedder.prepare")
    if tuple(batch.shape[1:]) != tuple(plan.max_shape[1:]):
        raise ValueError(
            f"TensorRT input {plan.name}: expected (N, {', '.join(map(str, plan.max_shape[1:]))}), got {batch.shape}"
        )
    if not 1 <= len(batch) <= max_batch:
        raise ValueError(f"TensorRT input {plan.name}: batch {len(batch)} outside 1..{max_batch}; split it (Embedder does)")


def pad_to_min(batch: np.ndarray, min_batch: int) -> np.ndarray:
    """Repeat the last crop up to the profile's smallest batch (outputs of the padding are dropped)."""
    if len(batch) >= min_batch:
        return batch
    return np.concatenate([batch, np.repeat(batch[-1:], min_batch - len(batch), axis=0)])


class _Cuda:
    """The few CUDA runtime calls the runner needs, each checked (cuda-python returns error codes)."""

    def __init__(self) -> None:
        from cuda.bindings import runtime

        self.rt = runtime

    def __call__(self, fn: str, *args):
        result = getattr(self.rt, fn)(*args)
        err, rest = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if int(err) != 0:
            _, text = self.rt.cudaGetErrorString(err)
            raise RuntimeError(f"CUDA {fn} failed: {text.decode() if isinstance(text, bytes) else text}")
        return rest[0] if len(rest) == 1 else rest

    def pinned(self, nbytes: int, dtype: np.dtype, shape: tuple[int, ...]) -> tuple[int, np.ndarray]:
        """Page-locked host memory as a NumPy array (pointer kept for cudaFreeHost)."""
        ptr = int(self("cudaMallocHost", nbytes))
        array = np.ctypeslib.as_array((ctypes.c_ubyte * nbytes).from_address(ptr)).view(dtype).reshape(shape)
        return ptr, array


def _stream_handle(stream) -> int:
    """The raw cudaStream_t value of a cuda.bindings stream (``int()`` on it is deprecated)."""
    protocol = getattr(stream, "__cuda_stream__", None)
    return int(protocol()[1]) if protocol is not None else int(stream)


class TensorRTRunner:
    """``runner(batch) -> (N, D) float32`` on a TensorRT engine; ``max_batch`` is its profile's."""

    def __init__(self, engine_path: Path, plugin_library: Path | None = None, device: int = 0) -> None:
        import tensorrt as trt

        self._cuda = cuda = _Cuda()
        cuda("cudaSetDevice", device)
        logger = trt.Logger(trt.Logger.WARNING)
        if plugin_library is not None:
            if not plugin_library.is_file():
                raise EngineError(
                    f"{plugin_library}: the engine needs the fused-attention plugins; run make native or set ADFL_PLUGIN_LIBRARY"
                )
            trt.get_plugin_registry().load_library(str(plugin_library))
        self._runtime = trt.Runtime(logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise EngineError(
                f"{engine_path}: TensorRT cannot deserialize it (see the log above); rebuild it with adfl export --engine"
            )
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ArtifactError(f"{engine_path}: expected one input and one output, found {inputs} -> {outputs}")
        profile = tuple(tuple(s) for s in self._engine.get_tensor_profile_shape(inputs[0], 0))
        self.min_batch, self.max_batch = batch_range(profile)
        self._in = TensorPlan(inputs[0], self._dtype(trt, inputs[0]), profile[2])
        out_shape = output_max_shape(tuple(self._engine.get_tensor_shape(outputs[0])), self.max_batch)
        self._out = TensorPlan(outputs[0], self._dtype(trt, outputs[0]), out_shape)
        self._context = self._engine.create_execution_context()
        self._stream = cuda("cudaStreamCreate")
        self._device = {p.name: int(cuda("cudaMalloc", p.max_bytes)) for p in (self._in, self._out)}
        self._host = {p.name: cuda.pinned(p.max_bytes, p.dtype, p.max_shape) for p in (self._in, self._out)}
        for name, ptr in self._device.items():
            self._context.set_tensor_address(name, ptr)

    def _dtype(self, trt, name: str) -> np.dtype:
        return np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        check_input(batch, self._in, self.max_batch)
        n = len(batch)
        batch = pad_to_min(batch, self.min_batch)
        cuda, rt = self._cuda, self._cuda.rt
        host_in, host_out = self._host[self._in.name][1], self._host[self._out.name][1]
        host_in[: len(batch)] = batch
        in_bytes, out_bytes = batch.nbytes, host_out[: len(batch)].nbytes
        if not self._context.set_input_shape(self._in.name, tuple(batch.shape)):
            raise ValueError(f"TensorRT rejected input shape {batch.shape}")
        cuda(
            "cudaMemcpyAsync",
            self._device[self._in.name],
            self._host[self._in.name][0],
            in_bytes,
            rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
            self._stream,
        )
        if not self._context.execute_async_v3(_stream_handle(self._stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the log above)")
        cuda(
            "cudaMemcpyAsync",
            self._host[self._out.name][0],
            self._device[self._out.name],
            out_bytes,
            rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
            self._stream,
        )
        cuda("cudaStreamSynchronize", self._stream)
        return host_out[:n].astype(np.float32)  # a copy: the pinned buffer is reused next call

    def close(self) -> None:
        """Free the CUDA buffers and stream (also on garbage collection)."""
        if getattr(self, "_stream", None) is None:
            return
        for ptr in self._device.values():
            self._cuda("cudaFree", ptr)
        for ptr, _ in self._host.values():
            self._cuda("cudaFreeHost", ptr)
        self._cuda("cudaStreamDestroy", self._stream)
        self._stream = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the driver frees what is left
            pass
