"""The whole pipeline on real footage: outputs appear and parse (MOT files through motmetrics),
events are valid JSONL, a dying camera does not stop the others, no torch is imported."""

from __future__ import annotations

import json
import sys

import pytest

from adfl_deploy.cli import main
from adfl_deploy.errors import ConfigError
from adfl_deploy.pipeline import PipelineConfig, parse_sources, read_summary, run
from adfl_deploy.pipeline.sources import SourceConfig

VIDEO = "data/videos/one-by-one-person-detection.mp4"


@pytest.fixture(scope="module")
def tracked(shared, tmp_path_factory):
    out = tmp_path_factory.mktemp("track")
    video = shared / VIDEO
    # the CLI, two cameras on the real indoor video; frames 0-220 hold two people in turn
    code = main(["track", "--source", f"cam1={video}", "--source", f"cam2={video}", "--out", str(out), "--max-frames", "220"])
    assert code == 0
    return out


def test_outputs_appear_and_parse(tracked):
    import motmetrics as mm

    summary = read_summary(tracked / "summary.json")
    assert {c.frames for c in summary.cameras.values()} == {220}
    records = [json.loads(line) for line in (tracked / "events.jsonl").read_text().splitlines()]
    kinds = {r["event"] for r in records}
    assert {"track_started", "global_id_assigned"} <= kinds
    for cam in ("cam1", "cam2"):
        table = mm.io.loadtxt(str(tracked / "mot" / f"{cam}.txt"), fmt="mot15-2D")
        assert len(table) > 50  # a person is tracked through most of frames 60-190
        assert set(table.index.get_level_values("Id")) <= set(summary.global_ids)
    assert (tracked / "mosaic.avi").stat().st_size > 0 and (tracked / "video" / "cam1.avi").stat().st_size > 0
    assert not list(tracked.rglob(".*partial*"))


def test_the_same_person_seen_at_once_in_two_cameras_gets_two_global_ids(tracked):
    """Both 'cameras' show the same frames at the same time: one person cannot be in two
    places at once, so the two tracks must not share a global id."""
    records = [json.loads(line) for line in (tracked / "events.jsonl").read_text().splitlines()]
    first = {r["camera"]: r["global_id"] for r in records if r["event"] == "global_id_assigned" and r["track_id"] == 1}
    assert first["cam1"] != first["cam2"]


def test_a_dead_camera_does_not_stop_the_others(shared, tmp_path):
    summary = run(
        PipelineConfig(
            sources=[f"good={shared / VIDEO}", "bad=rtsp://127.0.0.1:9/none"],
            out=str(tmp_path),
            max_frames=80,
            write_videos=False,
            source=SourceConfig(reconnect_attempts=1, backoff_seconds=0.01, stall_seconds=0.1),
        ),
        progress=False,
    )
    assert summary.cameras["good"].frames == 80 and summary.cameras["bad"].state == "dropped"


def test_bad_sources_fail_in_one_line(tmp_path):
    for specs, match in (([], "no sources"), (["cam1"], "NAME=PATH"), (["a=x", "a=y"], "unique")):
        with pytest.raises(ConfigError, match=match):
            parse_sources(specs)
    assert main(["track", "--source", f"cam1={tmp_path / 'missing.mp4'}", "--out", str(tmp_path)]) == 2


def test_the_pipeline_never_imports_torch():
    import subprocess

    code = (
        "import sys\n"
        "class B:\n"
        "    def find_spec(self, n, p=None, t=None):\n"
        "        if n == 'torch' or n.startswith('torch.'): raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, B())\n"
        "import adfl_deploy.pipeline.core, adfl_deploy.cli.track\n"
        "assert 'torch' not in sys.modules\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_frames_that_change_size_and_garbage_files_do_not_stop_the_run(tmp_path):
    """A camera (image folder) whose frames change resolution, with an unreadable file among
    them; the run must finish and write a video of one size."""
    import cv2
    import numpy as np

    folder = tmp_path / "cam"
    folder.mkdir()
    for i in range(6):
        size = (240, 320) if i % 2 else (120, 200)
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((*size, 3), 40 * i, np.uint8))
    (folder / "003b.png").write_bytes(b"\x89PNG garbage")
    summary = run(PipelineConfig(sources=[f"cam={folder}"], out=str(tmp_path / "out"), show=True), progress=False)
    assert summary.cameras["cam"].frames == 6 and summary.cameras["cam"].skipped_frames == 1
    cap = cv2.VideoCapture(str(tmp_path / "out" / "video" / "cam.avi"))
    sizes = set()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        sizes.add(frame.shape)
    assert len(sizes) == 1


def test_precomputed_detections_and_a_region_of_interest(shared, tmp_path):
    """cam1 uses a det.txt (one box per frame moving right) and a mask that hides the right
    half: the track exists while the box's feet are on the left, and events carry boxes."""
    import cv2
    import numpy as np

    det = tmp_path / "det.txt"
    det.write_text("".join(f"{f},-1,{100 + 4 * f},100,60,200,0.9,-1,-1,-1\n" for f in range(1, 131)))
    mask = np.zeros((432, 768), np.uint8)
    mask[:, :384] = 255
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    summary = run(
        PipelineConfig(
            sources=[f"cam1={shared / VIDEO}"],
            out=str(tmp_path / "out"),
            max_frames=130,
            write_videos=False,
            detections={"cam1": str(det)},
            roi_masks={"cam1": str(tmp_path / "mask.png")},
        ),
        progress=False,
    )
    records = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    started = [r for r in records if r["event"] == "track_started"]
    assert len(started) == 1 and len(started[0]["box"]) == 4
    rows = np.loadtxt(tmp_path / "out" / "mot" / "cam1.txt", delimiter=",", ndmin=2)
    centres = rows[:, 2] + rows[:, 4] / 2
    assert centres.max() < 384 + 10 and summary.cameras["cam1"].frames == 130
    assert {r["event"] for r in records} >= {"track_started", "global_id_assigned", "track_ended"}
    with pytest.raises(ConfigError, match="not among the sources"):
        run(
            PipelineConfig(sources=[f"cam1={shared / VIDEO}"], out=str(tmp_path / "x"), detections={"cam9": str(det)}),
            progress=False,
        )


def test_track_without_sources_runs_the_generated_scene(tmp_path, monkeypatch, capsys):
    from adfl_deploy.scene import SceneConfig, generate

    monkeypatch.chdir(tmp_path)
    generate(SceneConfig(), "out/scene", progress=False)  # what `adfl track` reuses
    assert main(["track", "--max-frames", "20", "--no-video", "--out", "run"]) == 0
    assert "generated demo scene" in capsys.readouterr().out
    summary = read_summary(tmp_path / "run" / "summary.json")
    assert set(summary.cameras) == {"cam1", "cam2", "cam3"} and all(c.frames == 20 for c in summary.cameras.values())


def test_print_config_shows_overrides_without_running_anything(tmp_path, monkeypatch, capsys):
    import yaml

    monkeypatch.chdir(tmp_path)  # the generated scene would land in ./out/scene
    assert main(["track", "--set", "association.merge_threshold=0.3", "--max-frames", "5", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["association"]["merge_threshold"] == 0.3 and printed["max_frames"] == 5
    assert not (tmp_path / "out").exists()  # no scene generated just to print a config
