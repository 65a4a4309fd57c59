"""adfl bench on the shipped model: rows, peak ratios, JSON and plot."""

from __future__ import annotations

import json

import pytest

from adfl_deploy.assets import EDGE_MODEL
from adfl_deploy.bench.model_bench import _gemm_model, measure_gemm_peak, peak_rss_mb, reset_peak_rss
from adfl_deploy.cli import main


def test_bench_writes_table_json_and_plot(tmp_path, capsys):
    assert main(["bench", str(EDGE_MODEL), "--batch", "1,2", "--warmup", "1", "--iters", "2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [(r["precision"], r["batch"]) for r in report["rows"]] == [("int8", 1), ("int8", 2)]
    for row in report["rows"]:
        assert row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        # the ratio is achieved GFLOP/s over the measured peak, from the sidecar's FLOPs
        assert row["gflop_per_s"] == pytest.approx(report["flops_per_image"] * row["images_per_s"] / 1e9)
        assert row["peak_ratio"] == pytest.approx(row["gflop_per_s"] / report["peaks_gflop_per_s"]["int8"])
    assert report["machine"]["cores"] >= 1 and report["model"] == "AF3-cat-256-attn3-1sum@resnet18"
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert "| onnxruntime-cpu | int8 | 2 |" in capsys.readouterr().out


def test_gemm_models_compute_a_product():
    import numpy as np
    import onnxruntime as ort

    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    b = (np.arange(20, dtype=np.int8) - 8).reshape(4, 5)
    int8 = ort.InferenceSession(_gemm_model(b), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(int8.run(None, {"a": a})[0], a.astype(np.int32) @ b.astype(np.int32))
    fp32 = ort.InferenceSession(_gemm_model(b.astype(np.float32)), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(fp32.run(None, {"a": a.astype(np.float32)})[0], a.astype(np.float64) @ b.astype(np.float64))
    assert measure_gemm_peak("fp32", n=128, iters=2) > 0 and measure_gemm_peak("int8", n=128, iters=2) > 0


def test_torch_rows_need_a_checkpoint(capsys):
    assert main(["bench", str(EDGE_MODEL), "--backends", "torch"]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def _row(backend: str, precision: str, ms: float, batch: int = 1):
    from adfl_deploy.bench.model_bench import BenchRow

    return BenchRow(backend, precision, batch, ms, ms, ms, ms, 1e3 / ms, 0.0, 0.0, 0.0)


def test_gpu_comparison_is_against_eager_in_the_same_precision():
    from adfl_deploy.cli.bench import _comparison

    rows = [
        _row("torch-eager", "fp32", 8.0),
        _row("torch-eager", "fp16", 5.0),
        _row("tensorrt", "fp16", 1.0),
        _row("tensorrt", "fp16", 9.0, batch=8),
    ]
    c = _comparison(rows, 1)
    assert (c["best"], c["torch_eager_precision"], c["speedup_vs_torch"]) == ("tensorrt fp16", "fp16", 5.0)
    assert c["ort_fp32"] is None and c["speedup_vs_ort_fp32"] is None  # no ONNX Runtime row measured
    assert _comparison(rows, 8) is None  # no eager row at batch 8


def test_cpu_comparison_falls_back_to_the_fastest_eager_row():
    from adfl_deploy.cli.bench import _comparison

    rows = [_row("torch-eager", "fp32", 6.0), _row("onnxruntime-cpu", "fp32", 3.0), _row("onnxruntime-cpu", "int8", 1.0)]
    c = _comparison(rows, 1)
    assert (c["best"], c["torch_eager_precision"]) == ("onnxruntime-cpu int8", "fp32")
    assert (c["speedup_vs_torch"], c["speedup_vs_ort_fp32"]) == (6.0, 3.0)


def test_peak_rss_is_per_row_after_a_reset():
    import numpy as np

    block = np.ones(300 * 2**20 // 8)  # 300 MB touched
    with_block = peak_rss_mb()
    del block
    if not reset_peak_rss():
        pytest.skip("this kernel does not allow resetting the RSS high-water mark")
    assert peak_rss_mb() < with_block - 200  # the freed 300 MB no longer count
