"""Fault suite: bad input and broken environments around `adfl track`.

Policy under test: a problem visible at start (a missing folder, a broken model, a bad config,
an unwritable output) stops the run before anything is written, with one line that says what to
do; a problem during the run (a camera that dies, a truncated or corrupted video, odd frames, a
full disk) costs only the camera or output concerned - the other streams keep their output and
the event log stays valid JSONL with every record whole.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from adfl_deploy.cli import main
from adfl_deploy.errors import ConfigError
from adfl_deploy.pipeline import core as pipeline_module
from adfl_deploy.pipeline.core import PipelineConfig, run
from adfl_deploy.pipeline.sources import CameraSource, SourceConfig

FAST_SOURCES = SourceConfig(reconnect_attempts=1, backoff_seconds=0.05, stall_seconds=0.3)


def valid_events(out) -> list[dict]:
    """Every line of events.jsonl parses as one JSON object (a torn record would not)."""
    text = (out / "events.jsonl").read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def track(cfg: PipelineConfig) -> dict:
    """Run the pipeline; its summary as summary.json has it, less what the cameras measured (FPS,
    white-balance gains: not what these faults are about)."""
    summary = run(cfg, progress=False).to_dict()
    for cam in summary["cameras"].values():
        cam.pop("fps")
        assert len(cam.pop("white_balance")) == 3
    return summary


def config(scene, out, extra_sources=(), **changes) -> PipelineConfig:
    return PipelineConfig(
        sources=[f"cam1={scene.video('cam1')}", *extra_sources],
        detector="motion",
        out=str(out),
        write_videos=False,
        source=FAST_SOURCES,
        **changes,
    )


def healthy_camera_complete(out, summary, frames=200) -> None:
    assert summary["finished"] and summary["cameras"]["cam1"] == {
        "frames": frames,
        "state": "ended",
        "skipped_frames": 0,
        "dropped_frames": 0,
        "reconnects": 0,
    }
    assert (out / "mot" / "cam1.txt").read_text().strip()
    assert len(valid_events(out)) == summary["events"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err  # may also hold the progress bar
    errors = [line for line in err.replace("\r", "\n").splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


class FlakyStream:
    """A live camera: ``good`` frames, then ``bad`` failed reads, then (``comes_back``) frames again."""

    opened = 0

    def __init__(self, good: int, comes_back: bool) -> None:
        FlakyStream.opened += 1
        self.left = {1: good, 2: 50 if comes_back else 0}.get(FlakyStream.opened, 0)

    def read(self):
        if self.left > 0:
            self.left -= 1
            time.sleep(0.002)
            return True, np.full((240, 320, 3), 90, np.uint8)
        return False, None

    def isOpened(self):
        return self.left > 0

    def release(self):
        pass


@pytest.mark.parametrize("comes_back", [False, True], ids=["dies", "dies-and-comes-back"])
def test_a_live_stream_that_dies_mid_run(scene, tmp_path, monkeypatch, comes_back):
    FlakyStream.opened = 0

    def source(name, uri, cfg, opener=None):
        if uri == "fake://flaky":
            return CameraSource(name, uri, cfg, opener=lambda _: FlakyStream(30, comes_back))
        return CameraSource(name, uri, cfg)

    monkeypatch.setattr(pipeline_module, "CameraSource", source)
    summary = track(config(scene, tmp_path, ["live=fake://flaky"]))
    healthy_camera_complete(tmp_path, summary)
    live = summary["cameras"]["live"]
    assert live["state"] == "dropped" and live["reconnects"] >= 1  # reconnected, then given up
    assert live["frames"] + live["dropped_frames"] == (30 if not comes_back else 80)  # live: late frames are dropped, not queued
    if comes_back:  # reopened once and read again; the second stall used up the attempts
        assert live["frames"] > 0 and FlakyStream.opened == 2


def test_a_truncated_video(scene, tmp_path):
    broken = tmp_path / "truncated.mp4"
    data = scene.video("cam2").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    summary = track(config(scene, tmp_path / "out", [f"cam2={broken}"]))
    healthy_camera_complete(tmp_path / "out", summary)
    cam2 = summary["cameras"]["cam2"]
    # half an MP4 (its index is at the end) decodes to nothing: that camera is dropped, not "ended"
    assert cam2["frames"] < 200 and cam2["state"] == ("dropped" if cam2["frames"] == 0 else "ended")


def test_corrupted_frames_in_a_video(scene, tmp_path):
    broken = tmp_path / "corrupt.mp4"
    data = bytearray(scene.video("cam2").read_bytes())
    rng = np.random.default_rng(0)
    for start in rng.integers(len(data) // 4, 3 * len(data) // 4, 20):
        data[start : start + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
    broken.write_bytes(bytes(data))
    summary = track(config(scene, tmp_path / "out", [f"cam2={broken}"]))
    healthy_camera_complete(tmp_path / "out", summary)
    assert summary["cameras"]["cam2"]["state"] == "ended"


def test_an_image_folder_with_changing_sizes_and_unreadable_files(scene, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cap = cv2.VideoCapture(str(scene.video("cam2")))
    for i in range(30):
        ok, image = cap.read()
        size = [(768, 432), (640, 360), (1024, 576)][i % 3]
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), cv2.resize(image, size))
    (folder / "0010.jpg").write_bytes(b"not a jpeg")
    (folder / "0020.jpg").write_bytes((folder / "0021.jpg").read_bytes()[:300])  # truncated JPEG
    summary = track(config(scene, tmp_path / "out", [f"cam2={folder}"]))
    healthy_camera_complete(tmp_path / "out", summary)
    assert summary["cameras"]["cam2"]["frames"] + summary["cameras"]["cam2"]["skipped_frames"] == 30
    assert summary["cameras"]["cam2"]["skipped_frames"] >= 1


def test_a_folder_of_only_unreadable_images_ends_that_camera_only(scene, tmp_path):
    folder = tmp_path / "garbage"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.jpg").write_bytes(b"\x00" * 100)
    summary = track(config(scene, tmp_path / "out", [f"cam2={folder}"]))
    healthy_camera_complete(tmp_path / "out", summary)
    assert summary["cameras"]["cam2"] == {
        "frames": 0,
        "state": "ended",
        "skipped_frames": 5,
        "dropped_frames": 0,
        "reconnects": 0,
    }


def test_an_empty_folder_stops_before_anything_is_written(scene, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    assert (
        main(["track", "--source", f"cam1={scene.video('cam1')}", "--source", f"cam2={tmp_path / 'empty'}", "--out", str(out)])
        == 2
    )
    assert "has no images" in one_line_error(capsys)
    assert not (out / "events.jsonl").exists()


@pytest.mark.parametrize("damage", ["missing", "truncated", "foreign"])
def test_a_broken_model_artefact(scene, tmp_path, capsys, damage):
    from adfl_deploy.assets import EDGE_MODEL

    model = tmp_path / "model"
    shutil.copytree(EDGE_MODEL, model)
    onnx = model / "model.int8.onnx"
    if damage == "missing":
        onnx.unlink()
    elif damage == "truncated":
        onnx.write_bytes(onnx.read_bytes()[:1000])
    else:
        (model / "adfl.json").write_text(json.dumps({"name": "something else", "version": 3}))
    out = tmp_path / "out"
    assert main(["track", "--source", f"cam1={scene.video('cam1')}", "--model", str(model), "--out", str(out)]) == 2
    one_line_error(capsys)
    assert not (out / "events.jsonl").exists()


def test_an_engine_built_for_another_tensorrt_and_gpu(scene, tmp_path, capsys, monkeypatch):
    from adfl_deploy.assets import EDGE_MODEL
    from adfl_deploy.model.artifact import load_artifact, write_sidecar
    from adfl_deploy.runtime import backends
    from adfl_deploy.runtime.engine_info import EngineInfo

    model = tmp_path / "model"
    shutil.copytree(EDGE_MODEL, model)
    info = load_artifact(model)
    write_sidecar(model, __import__("dataclasses").replace(info, engine=EngineInfo("model.engine", "10.3.0", "8.7", "Orin")))
    monkeypatch.setattr(backends, "installed_tensorrt_version", lambda: "11.1.0")
    monkeypatch.setattr(backends, "device_compute_capability", lambda: "9.0")
    argv = ["track", "--source", f"cam1={scene.video('cam1')}", "--model", str(model), "--backend", "tensorrt"]
    argv += ["--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "built with TensorRT 10.3.0 but 11.1.0" in one_line_error(capsys)
    monkeypatch.setattr(backends, "installed_tensorrt_version", lambda: "10.3.0")
    assert main(argv) == 2
    assert "compute capability 8.7" in one_line_error(capsys)


@pytest.mark.parametrize(
    "text, match",
    [
        ("max_frame: 10\n", "max_frame"),
        ("max_frames: ten\n", "max_frames"),
        ("association:\n  match_threshold: [1]\n", "match_threshold"),
    ],
    ids=["unknown-field", "wrong-type", "wrong-nested-type"],
)
def test_a_config_with_a_wrong_field_or_type(scene, tmp_path, capsys, text, match):
    path = tmp_path / "track.yaml"
    path.write_text(text)
    assert main(["track", "--config", str(path), "--source", f"cam1={scene.video('cam1')}", "--out", str(tmp_path / "out")]) == 2
    assert match in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_cannot_be_written(scene, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["track", "--source", f"cam1={scene.video('cam1')}", "--out", str(blocker / "out")]) == 2
    assert "not writable" in one_line_error(capsys)


def test_a_full_disk_during_the_run(scene, tmp_path, capsys, full_disk_after):
    full_disk_after(5)
    out = tmp_path / "out"
    code = main(
        [
            "track",
            "--source",
            f"cam1={scene.video('cam1')}",
            "--source",
            f"cam2={scene.video('cam2')}",
            "--detector",
            "motion",
            "--no-video",
            "--out",
            str(out),
        ]
    )
    assert code == 1 and "No space left on device" in one_line_error(capsys)
    # the 5 writes that succeeded (event records and MOT rows share the disk) are whole lines
    mot_lines = [line for f in (out / "mot").glob("*.txt") for line in f.read_text().splitlines()]
    assert all(len(line.split(",")) == 10 for line in mot_lines)
    assert (
        valid_events(out)[0]["event"] == "run_started"
        and len(valid_events(out)) + len({f for f in (out / "mot").glob("*.txt") if f.stat().st_size}) <= 5
    )
    assert not json.loads((out / "summary.json").read_text())["finished"] if (out / "summary.json").exists() else True


def test_kill_9_during_a_run_then_restart(scene, tmp_path):
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "adfl_deploy.cli",
        "track",
        "--source",
        f"cam1={scene.video('cam1')}",
        "--source",
        f"cam2={scene.video('cam2')}",
        "--detector",
        "motion",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "events.jsonl").is_file() or (out / "events.jsonl").stat().st_size < 200:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_events = valid_events(out)  # whole records only
    killed_run = killed_events[0]["run_id"]
    assert not (out / "mosaic.avi").exists()  # nothing claims to be finished
    if (out / "summary.json").exists():
        assert json.loads((out / "summary.json").read_text())["finished"] is False
    assert subprocess.run(command, capture_output=True).returncode == 0
    # the killed run moved whole to previous/RUN_ID/, its event log unchanged
    kept = out / "previous" / killed_run
    assert [json.loads(line) for line in (kept / "events.jsonl").read_text().splitlines()] == killed_events
    assert (kept / "mot").is_dir() and not list(out.rglob(".*.partial.avi"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["finished"] and summary["run_id"] != killed_run == json.loads((kept / "run.json").read_text())["run_id"]
    assert len(valid_events(out)) == summary["events"] and (out / "mosaic.avi").is_file()


def test_sources_that_cannot_exist_fail_in_one_line():
    with pytest.raises(ConfigError, match="no such file"):
        CameraSource("cam", "/nonexistent/video.mp4")
