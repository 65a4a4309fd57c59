"""pyproject lists every package folder, and train/ and export/ install inside adfl_deploy."""

from __future__ import annotations

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = cfg["package-dir"]
    found = set()
    for package, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *rel.parts]))
    assert found == set(cfg["packages"])
    assert "train" not in mapping and "export" not in mapping


def test_train_and_export_are_namespaced():
    import adfl_deploy.export
    import adfl_deploy.train

    assert Path(adfl_deploy.train.__file__).parent == REPO / "train"
    assert Path(adfl_deploy.export.__file__).parent == REPO / "export"


def test_named_entry_points_run_their_subcommand(monkeypatch, capsys):
    import sys

    import pytest

    from adfl_deploy import cli

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["adfl-export"] == "adfl_deploy.cli:export_main" and scripts["adfl-bench"] == "adfl_deploy.cli:bench_main"
    for fn, command in ((cli.export_main, "export"), (cli.bench_main, "bench")):
        monkeypatch.setattr(sys, "argv", [f"adfl-{command}", "--help"])
        with pytest.raises(SystemExit) as exc:
            fn()
        assert exc.value.code == 0 and f"usage: adfl {command}" in capsys.readouterr().out
