"""FLOP counts of the attention modules against hand counts (2 FLOPs per multiply-add)."""

from __future__ import annotations

import json
import warnings

from adfl_deploy.cli import main
from adfl_deploy.train.models import create_model
from adfl_deploy.train.models.complexity import count_flops

C, HW = 1024, 24 * 8  # stage3 of ResNet50 at 384x128


def _extra_flops(name: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return count_flops(create_model(name)) - count_flops(create_model("baseline"))


def test_channel_attention_counts_two_c_by_c_by_hw_matmuls():
    assert _extra_flops("attn3-1c") == 2 * (2 * C * C * HW)


def test_spatial_attention_counts_convs_and_both_matmuls():
    qk = 2 * (2 * C * (C // 8) * HW)
    v = 2 * C * C * HW
    attention = 2 * HW * HW * (C // 8) + 2 * HW * HW * C
    assert _extra_flops("attn3-1s") == qk + v + attention


def test_hyper_attention_counts_rank_one_logits():
    inner = C // 64
    convs = 3 * (2 * C * inner * HW) + 2 * inner * C * HW
    m = inner * HW
    assert _extra_flops("attn3-1h") == convs + 2 * m * m * 1 + 2 * m * m * 1


def test_models_command_writes_a_table_and_json(tmp_path, capsys):
    out = tmp_path / "models.json"
    assert main(["models", "baseline", "attn3-1c@resnet18", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| `baseline` | 1024 |" in table and "`attn3-1c@resnet18`" in table
    rows = json.loads(out.read_text())["models"]
    assert [r["name"] for r in rows] == ["baseline", "attn3-1c@resnet18"]
    assert rows[1]["gflops"] - rows[0]["gflops"] < 0  # resnet18 is cheaper


def test_models_command_rejects_a_bad_name(capsys):
    assert main(["models", "attn9-1s"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Grammar:" in err and "\n" not in err
