"""Latency and throughput of an exported model per backend x precision x batch, against the
machine's measured GEMM peak (torch-free; a PyTorch eager row is added by the caller).

Work is counted first: FLOPs per image come from the sidecar (counted at export by
``torch.utils.flop_counter``), and the peak is measured in the same run with ONNX Runtime
GEMMs (fp32 MatMul, int8 MatMulInteger u8 x s8), so every row says how close it is to the limit.
"""

from __future__ import annotations

import datetime
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from adfl_deploy import __version__
from adfl_deploy.errors import ConfigError
from adfl_deploy.timing import measure

GEMM_SIZE = 1024


@dataclass
class BenchRow:
    backend: str
    precision: str
    batch: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    ms_per_image: float
    images_per_s: float
    gflop_per_s: float
    peak_ratio: float  # achieved / measured GEMM peak of the same precision
    peak_rss_mb: float


def _gemm_model(b: np.ndarray) -> bytes:
    """``c = a @ b`` with ``b`` a constant, as a layer's weights are: ONNX Runtime packs it once
    at load, as it does convolution weights (an input ``b`` is packed on every call: 7% slower
    in fp32 and 17% in int8 at 1024^3 on this project's CPU). fp32 MatMul, or MatMulInteger
    u8 x s8 when ``b`` is int8."""
    n, m = b.shape
    if b.dtype == np.int8:
        node, a_type, c_type = helper.make_node("MatMulInteger", ["a", "b"], ["c"]), TensorProto.UINT8, TensorProto.INT32
    else:
        node, a_type, c_type = helper.make_node("MatMul", ["a", "b"], ["c"]), TensorProto.FLOAT, TensorProto.FLOAT
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("a", a_type, ["rows", n])],
        [helper.make_tensor_value_info("c", c_type, ["rows", m])],
        initializer=[numpy_helper.from_array(b, "b")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


def measure_gemm_peak(precision: str, n: int = GEMM_SIZE, iters: int = 20) -> float:
    """GFLOP/s (or int8 GOP/s) of an n x n x n GEMM on ONNX Runtime, all threads, from the
    fastest of ``iters`` calls: a peak is what the machine can do, and on a shared machine a
    median can catch a busy neighbour (one such run measured 316 GFLOP/s against 458)."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    if precision == "fp32":
        a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    else:
        a, b = rng.integers(0, 255, (n, n), dtype=np.uint8), rng.integers(-127, 127, (n, n), dtype=np.int8)
    session = ort.InferenceSession(_gemm_model(b), providers=["CPUExecutionProvider"])
    session.run(None, {"a": a})  # warm-up
    fastest = min(_seconds(lambda: session.run(None, {"a": a})) for _ in range(iters))
    return 2.0 * n**3 / fastest / 1e9


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def with_peak(row: BenchRow, peak: float) -> BenchRow:
    """``row`` measured against ``peak`` (GFLOP/s; 0 for no ratio, e.g. a GPU row)."""
    return replace(row, peak_ratio=row.gflop_per_s / peak if peak else 0.0)


def reset_peak_rss() -> bool:
    """Start a new high-water mark of this process's resident memory (Linux: ``5`` into
    /proc/self/clear_refs), so that ``peak_rss_mb`` reports one row's peak instead of the largest
    of every row before it. False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory in MB since the last ``reset_peak_rss`` (VmHWM), else since start."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def check_settings(batches: list[int], warmup: int, iters: int, max_batch: int | None = None) -> None:
    """One-line ``ConfigError`` unless every batch is 1..``max_batch`` (the artefact's largest:
    a larger one would only be split into many calls, e.g. 100000 crops taking hours), ``warmup``
    is 0 or more and ``iters`` at least 1 (percentiles need a timed call)."""
    if iters < 1:
        raise ConfigError(f"bench iters must be at least 1 (timed calls per row), got {iters}; e.g. --iters 20")
    if warmup < 0:
        raise ConfigError(f"bench warmup must be 0 or more, got {warmup}; e.g. --warmup 3")
    if not batches:
        raise ConfigError("bench needs at least one batch size, e.g. --batch 1,8,32")
    for batch in batches:
        if batch < 1 or (max_batch is not None and batch > max_batch):
            limit = f"1-{max_batch} (the artefact's max_batch)" if max_batch is not None else "at least 1"
            raise ConfigError(f"bench batch {batch} is out of range: use {limit}, e.g. --batch 1,8,32")


def bench_callable(
    fn: Callable[[np.ndarray], object], backend: str, precision: str, blob: np.ndarray, flops: int, warmup: int, iters: int
) -> BenchRow:
    """One row; its peak ratio comes later (``with_peak``), once the peaks are known. Peak RSS
    is the process's while the row ran (its model loaded, the inputs and outputs in flight)."""
    batch = len(blob)
    check_settings([batch], warmup, iters)
    reset_peak_rss()
    lat = measure(lambda: fn(blob), batch, warmup, iters)
    gflops = flops * lat.items_per_s / 1e9
    return BenchRow(
        backend=backend,
        precision=precision,
        batch=batch,
        p50_ms=lat.p50_ms,
        p90_ms=lat.p90_ms,
        p99_ms=lat.p99_ms,
        ms_per_image=lat.per_item_ms,
        images_per_s=lat.items_per_s,
        gflop_per_s=gflops,
        peak_ratio=0.0,
        peak_rss_mb=peak_rss_mb(),
    )


def machine_info() -> dict:
    import onnxruntime as ort

    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "adfl_deploy": __version__,
    }


def _percent(ratio: float) -> str:
    return f"{100 * ratio:.0f}%" if ratio else "-"  # no measured peak (GPU rows, fp16 on a CPU)


def markdown(rows: list[BenchRow]) -> str:
    lines = [
        "| backend | precision | batch | p50 ms | p90 ms | p99 ms | ms/image | images/s | GFLOP/s | of peak | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.backend} | {r.precision} | {r.batch} | {r.p50_ms:.2f} | {r.p90_ms:.2f} | {r.p99_ms:.2f} | "
            f"{r.ms_per_image:.2f} | {r.images_per_s:.1f} | {r.gflop_per_s:.0f} | {_percent(r.peak_ratio)} | "
            f"{r.peak_rss_mb:.0f} |"
        )
    return "\n".join(lines)


def plot(rows: list[BenchRow], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from adfl_deploy.files import atomic_file

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in sorted({(r.backend, r.precision) for r in rows}):
        pts = sorted((r.batch, r.ms_per_image) for r in rows if (r.backend, r.precision) == key)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{key[0]} {key[1]}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch")
    ax.set_ylabel("ms per image (p50)")
    ax.set_title("latency per image vs batch")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def rows_as_dicts(rows: list[BenchRow]) -> list[dict]:
    return [asdict(r) for r in rows]
