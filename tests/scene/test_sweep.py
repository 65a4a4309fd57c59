"""`adfl mtmc --sweep`: the spec, mean ± sample sd against numbers worked by hand, and a tiny sweep
end to end (2 scenes x 2 methods) whose aggregates must equal the mean and sd of its own rows."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from adfl_deploy.cli import main
from adfl_deploy.errors import ConfigError
from adfl_deploy.evaluation.sweep import METRICS, SweepSpec, aggregate, markdown, mean_sd, parse_spec, scene_configs


def test_spec_ranges_lists_and_defaults():
    spec = parse_spec("seeds=1-4,cameras=3,5,seconds=60,120.5")
    assert spec == SweepSpec(seeds=(1, 2, 3, 4), cameras=(3, 5), seconds=(60.0, 120.5), people=(12,))
    assert len(scene_configs(spec)) == 4 * 2 * 2
    assert parse_spec("cameras=3-5") == SweepSpec(seeds=(1, 2, 3, 4), cameras=(3, 4, 5), seconds=(60.0,), people=(12,))
    assert parse_spec("seed=2, people=4,6") == SweepSpec(seeds=(2,), cameras=(3,), seconds=(60.0,), people=(4, 6))
    configs = scene_configs(parse_spec("seeds=7,8,cameras=2,seconds=30,people=5"))
    assert [(c.seed, c.cameras, c.seconds, c.people) for c in configs] == [(7, 2, 30.0, 5), (8, 2, 30.0, 5)]
    assert parse_spec("seeds=3,3,1-3").seeds == (3, 1, 2)  # repeats dropped, order kept


@pytest.mark.parametrize(
    "text, message",
    [
        ("seeds=4-1", "runs upwards"),
        ("colours=3", "unknown"),
        ("3,4", "has no key"),
        ("cameras=3,cameras=4", "given twice"),
        ("cameras=three", "whole number"),
        ("seconds=60-120", "list the lengths"),
        ("seconds=nan", "finite"),
        ("cameras=7", "cameras must be 1-6"),
        ("seeds=1-4,,cameras=3", "empty item"),
    ],
)
def test_spec_errors_are_one_line(text, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_spec(text)
    assert "\n" not in str(err.value)


def _row(method, idf1, hota=0.5, cams=(0.8, 0.6)):
    metrics = {key: 0.0 for key, _, _ in METRICS}
    metrics.update(mtmc_idf1=idf1, mtmc_hota=hota, idf1_per_camera=sum(cams) / len(cams))
    return {"method": method, "metrics": metrics}


def test_aggregate_mean_and_sample_sd_by_hand():
    rows = [_row("a", 0.5, hota=0.1), _row("b", 0.3), _row("a", 0.7, hota=0.2), _row("a", 0.9, hota=float("nan"))]
    a, b = aggregate(rows)
    assert (a["method"], a["n"], b["method"], b["n"]) == ("a", 3, "b", 1)
    # 0.5, 0.7, 0.9: mean 0.7; squared deviations 0.04 + 0 + 0.04, / (3 - 1) = 0.04 -> sd 0.2
    assert a["metrics"]["mtmc_idf1"]["mean"] == pytest.approx(0.7) and a["metrics"]["mtmc_idf1"]["sd"] == pytest.approx(0.2)
    # nan (undefined) is left out: 0.1, 0.2 -> mean 0.15, sd sqrt((0.05^2 + 0.05^2) / 1) = 0.0707
    assert a["metrics"]["mtmc_hota"] == pytest.approx({"mean": 0.15, "sd": math.sqrt(0.005), "n": 2})
    assert a["metrics"]["idf1_per_camera"]["mean"] == pytest.approx(0.7)  # (0.8 + 0.6) / 2 in each row
    assert b["metrics"]["mtmc_idf1"]["mean"] == pytest.approx(0.3) and math.isnan(b["metrics"]["mtmc_idf1"]["sd"])
    table = markdown([a, b])
    assert "| a | 3 | 0.700 ± 0.200 | 0.150 ± 0.071 |" in table and "| b | 1 | 0.300 | 0.500 |" in table
    assert math.isnan(mean_sd([])["mean"]) and mean_sd([])["n"] == 0


def test_tiny_sweep_end_to_end(tmp_path, capsys):
    scenes, out = tmp_path / "scenes", tmp_path / "sweep"
    argv = ["mtmc", "--sweep", "seeds=1-2,cameras=2,seconds=8,people=3", "--models", "colour-histogram"]
    argv += ["--detections", "gt,motion", "--scene-root", str(scenes), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "sweep.json").read_text())
    methods = ["colour histogram + gt", "colour histogram + motion"]
    assert [a["method"] for a in report["aggregates"]] == methods
    for a in report["aggregates"]:
        mine = [r for r in report["rows"] if r["method"] == a["method"]]
        assert len(mine) == 2 and a["n"] == 2
        assert sorted(r["scene"]["seed"] for r in mine) == [1, 2]
        checks = {
            "mtmc_idf1": [r["score"]["idf1"] for r in mine],
            "mtmc_hota": [r["score"]["hota"] for r in mine],
            "mtmc_deta": [r["score"]["deta"] for r in mine],
            "mtmc_assa": [r["score"]["assa"] for r in mine],
            "purity": [r["score"]["purity"] for r in mine],
            "fragmentation": [r["score"]["fragmentation"] for r in mine],
        }
        for key, values in checks.items():
            assert a["metrics"][key]["mean"] == pytest.approx(statistics.mean(values)), key
            assert a["metrics"][key]["sd"] == pytest.approx(statistics.stdev(values)), key
        for r in mine:  # each row is the run's own score, written beside its MOT files
            run = out / "runs" / r["scene"]["name"] / r["method"].replace(" + ", "-").replace(" ", "-")
            assert json.loads((run / "mtmc.json").read_text())["score"]["idf1"] == r["score"]["idf1"]
    assert report["command"] == " ".join(["adfl"] + argv)
    assert report["machine"]["date"] and report["spec"]["seeds"] == [1, 2]
    table = (out / "sweep.md").read_text()
    assert (
        "| method | scenes | MTMC IDF1 | MTMC HOTA | MTMC DetA | MTMC AssA |" in table
        and "| colour histogram + gt | 2 |" in table
    )
    assert "| colour histogram + gt | 2 |" in printed
    # the identity budget reads the same sweep: its first score is each run's own
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "identity_budget.py"
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    budget = json.loads((out / "identity-budget.json").read_text())
    assert len(budget["rows"]) == 4
    for row in budget["rows"]:
        own = next(r for r in report["rows"] if r["method"] == row["method"] and r["scene"]["name"] == row["scene"])
        assert row["mtmc_idf1"] == pytest.approx(own["score"]["idf1"])
        assert row["linked_perfectly"] <= row["detection_bound"] + 1e-9 <= 1.0 + 2e-9
    # scenes are reused when their config matches: a second sweep does not regenerate them
    stamp = (scenes / "cam2-8s-3p-seed1" / "scene.yaml").stat().st_mtime_ns
    assert main(argv[:5] + ["--detections", "gt", "--scene-root", str(scenes), "--out", str(tmp_path / "again")]) == 0
    assert (scenes / "cam2-8s-3p-seed1" / "scene.yaml").stat().st_mtime_ns == stamp


def test_sweep_misuse_fails_in_one_line_before_any_work(tmp_path, capsys):
    assert main(["mtmc", "--sweep", "cameras=9", "--scene-root", str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cameras must be 1-6" in err
    assert not (tmp_path / "s").exists() and not (tmp_path / "o").exists()
    assert main(["mtmc", str(tmp_path), "--sweep", "seeds=1"]) == 2
    assert "--sweep makes its own scenes" in capsys.readouterr().err
    assert main(["mtmc"]) == 2
    assert "no scene" in capsys.readouterr().err


def test_a_setting_for_every_run_reaches_each_run_and_the_record(tmp_path, capsys):
    import yaml

    scenes, out = tmp_path / "scenes", tmp_path / "sweep"
    argv = ["mtmc", "--sweep", "seeds=1,cameras=2,seconds=8,people=3", "--models", "colour-histogram", "--detections", "gt"]
    argv += ["--set", "association.min_evidence=3", "--scene-root", str(scenes), "--out", str(out)]
    assert main(argv) == 0
    (run,) = [p for p in (out / "runs").rglob("config.yaml") if "previous" not in p.parts]
    assert yaml.safe_load(run.read_text())["association"]["min_evidence"] == 3
    assert "--set=association.min_evidence=3" in json.loads((out / "sweep.json").read_text())["command"]
    capsys.readouterr()
    assert main([*argv[:-4], "--set", "association.min_evidence=0", "--scene-root", str(scenes), "--out", str(out)]) == 2
    assert "min_evidence" in capsys.readouterr().err
