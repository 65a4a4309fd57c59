"""The runtime imports, serves a built model and runs its CLI where ``import torch`` fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCK_TORCH = textwrap.dedent(
    """
    import sys
    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch.") or name in ("torchvision", "onnxscript"):
                raise ImportError(f"{name} is blocked for this test")
            return None
    sys.meta_path.insert(0, _NoTorch())
    """
)


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_the_block_really_blocks_torch():
    result = run_without_torch("import torch")
    assert result.returncode != 0 and "blocked" in result.stderr


def test_runtime_modules_import_without_torch():
    result = run_without_torch(
        """
        import pkgutil, importlib, adfl_deploy
        skip = ("adfl_deploy.train", "adfl_deploy.export")
        names = [m.name for m in pkgutil.walk_packages(adfl_deploy.__path__, "adfl_deploy.")
                 if not m.name.startswith(skip) and not m.name.endswith("__main__")]
        for name in names:
            importlib.import_module(name)
        assert "torch" not in sys.modules
        print(len(names), "modules")
        """
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[0]) >= 8


def test_cli_help_works_and_torch_commands_say_what_to_install():
    result = run_without_torch(
        """
        from adfl_deploy.cli import main
        assert main(["--help"]) == 0
        """
    )
    assert "COMMAND" in result.stdout and result.returncode == 0, result.stderr
    result = run_without_torch(
        """
        from adfl_deploy.cli import main
        sys.exit(main(["models"]))
        """
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\\n") == 0 and "pip install -e '.[train]'" in result.stderr


def test_the_training_side_refuses_clearly_without_torch():
    result = run_without_torch("import adfl_deploy.train")
    assert result.returncode != 0 and "needs PyTorch" in result.stderr


def test_a_built_model_is_served_without_torch(artifact_dir):
    pytest.importorskip("torch")  # only to build the artefact in this process
    result = run_without_torch(
        f"""
        from adfl_deploy.assets import load_sample_crops
        from adfl_deploy.runtime.embedder import Embedder
        emb = Embedder.from_artifact({str(artifact_dir)!r}).embed(load_sample_crops())
        assert "torch" not in sys.modules
        print(emb.shape)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(12, 768)"


def test_the_demo_runs_without_torch_and_writes_every_output(tmp_path):
    result = run_without_torch(
        f"""
        from adfl_deploy.cli import main
        code = main(["demo", "--cameras", "2", "--seconds", "6", "--people", "3", "--no-compare",
                     "--scene", {str(tmp_path / "scene")!r}, "--out", {str(tmp_path / "demo")!r}])
        assert "torch" not in sys.modules
        sys.exit(code)
        """
    )
    assert result.returncode == 0, result.stderr
    track = tmp_path / "demo" / "track"
    for name in ("mosaic.avi", "video/cam1.avi", "video/cam2.avi", "events.jsonl", "mot/cam1.txt", "summary.json", "mtmc.json"):
        assert (track / name).is_file(), name
    assert (tmp_path / "demo" / "mosaic.png").is_file() and (tmp_path / "demo" / "comparison.md").is_file()
    assert "MTMC IDF1" in result.stdout


def test_every_subcommand_teaches_with_help_without_torch():
    result = run_without_torch(
        """
        import contextlib, io
        from adfl_deploy.cli import COMMANDS, main
        for command in COMMANDS:
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                try:
                    main([command, "--help"])
                except SystemExit as exc:
                    assert exc.code == 0, command
            assert "usage: adfl " + command in buffer.getvalue(), command
            assert "examples:" in buffer.getvalue(), command
        print(" ".join(COMMANDS))
        """
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) >= {"models", "demo", "train", "eval", "export", "bench", "track", "scene", "mtmc"}
