"""The pipeline scored on a generated scene, the `adfl mtmc` command and the pipeline benchmark."""

from __future__ import annotations

import json

import pytest

from adfl_deploy.bench.pipeline_bench import STAGES, PipelineBenchConfig, run_benchmark
from adfl_deploy.cli import main
from adfl_deploy.evaluation.scene_eval import Method, evaluate


@pytest.fixture(scope="module")
def gt_run(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("gt-run")
    return out, evaluate(scene, Method("edge + gt", "", "gt"), out)


def test_ground_truth_boxes_track_almost_perfectly_and_the_threshold_is_calibrated(gt_run):
    from adfl_deploy.assets import EDGE_MODEL
    from adfl_deploy.association.calibration import match_threshold
    from adfl_deploy.runtime.embedder import Embedder

    _, result = gt_run
    assert all(c["mota"] > 0.9 for c in result["score"]["cameras"])  # boxes are given: only the tracker can miss
    assert 0 < result["score"]["idf1"] <= 1 and result["score"]["fragmentation"] >= 1
    # calibrated for the model, on centred crops as the run centres its embeddings (the default)
    assert result["match_threshold"] == pytest.approx(match_threshold(Embedder.from_artifact(EDGE_MODEL).embed, centred=True))


def test_mtmc_command_scores_a_run_and_explains_misuse(scene, gt_run, capsys):
    out, result = gt_run
    assert main(["mtmc", str(scene.root), "--results", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "MTMC IDF1" in printed and f"{result['score']['idf1']:.3f}" in printed
    assert json.loads((out / "mtmc.json").read_text())["score"]["idf1"] == pytest.approx(result["score"]["idf1"])
    assert main(["mtmc", str(scene.root)]) == 2
    assert "--results" in capsys.readouterr().err


def test_the_histogram_baseline_runs_in_the_same_pipeline(scene, tmp_path):
    result = evaluate(scene, Method("hist + gt", "colour-histogram", "gt"), tmp_path)
    assert result["embedder"]["model"] == "colour-histogram"
    assert all(c["mota"] > 0.9 for c in result["score"]["cameras"])


def test_pipeline_benchmark_reports_stages_capacity_and_equal_idf1(tmp_path):
    cfg = PipelineBenchConfig(
        streams=(1, 2), target_streams=2, seconds=4.0, scene_root=str(tmp_path / "scenes"), out=str(tmp_path / "out")
    )
    report = run_benchmark(cfg)
    assert [r["streams"] for r in report["throughput"]] == [1, 2]
    for r in report["throughput"] + [report["realtime"]]:
        assert set(r["stage_ms_p50"]) == set(STAGES) and r["stage_ms_p99"]["detect"] >= r["stage_ms_p50"]["detect"] > 0
    live = report["realtime"]
    assert live["wall_seconds"] >= 0.9 * live["video_seconds"]  # paced like live cameras
    assert report["idf1_offline"] == pytest.approx(report["idf1_realtime"])
    assert report["max_realtime_streams_estimate"] >= 1
