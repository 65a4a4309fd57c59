"""The pipeline as a library: the README's examples run as written, parts plug in through the
registries, events arrive typed and in order, and the torch-free runtime never imports the
training side."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from adfl_deploy.errors import ConfigError
from adfl_deploy.events import (
    CropEmbedded,
    FrameTracked,
    GlobalIdAssigned,
    RunEnded,
    RunStarted,
    TickStats,
    TrackEnded,
    TrackStarted,
)
from adfl_deploy.pipeline import SINKS, CameraSource, Pipeline, PipelineConfig, run
from adfl_deploy.runtime import create_embedder
from adfl_deploy.runtime.white_balance import apply_gains
from adfl_deploy.tracking import DETECTORS, TrackerConfig, create_detector

REPO = Path(__file__).resolve().parents[2]
VIDEO = "data/videos/one-by-one-person-detection.mp4"


def readme_python_blocks() -> list[str]:
    section = REPO.joinpath("README.md").read_text().split("## Use it as a library", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def short_clip(src: Path, dst: Path, start: int, frames: int) -> Path:
    cap = cv2.VideoCapture(str(src))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    writer = None
    for _ in range(frames):
        ok, image = cap.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), 10, (image.shape[1], image.shape[0]))
        writer.write(image)
    writer.release()
    return dst


def test_the_readme_library_example_runs_as_written(shared, tmp_path, monkeypatch, capsys):
    example = readme_python_blocks()[0]
    assert len([line for line in example.splitlines() if line.strip()]) <= 15
    # the example's two cameras: stretches of the real indoor video where someone walks
    short_clip(shared / VIDEO, tmp_path / "door.mp4", 40, 60)
    short_clip(shared / VIDEO, tmp_path / "hall.mp4", 300, 60)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert '"event": "run_started"' in lines[0]
    announced = re.findall(r"(door|hall) track (\d+) -> person (\d+)", printed)
    assert announced, printed  # somebody was seen and named
    assert sum('"event": "global_id_assigned"' in line for line in lines) == len(announced)


def test_a_toy_detector_registered_in_one_line_runs_end_to_end(shared, tmp_path):
    namespace: dict = {}
    exec(compile(readme_python_blocks()[1], "README.md", "exec"), namespace)
    try:
        assert "whole-frame" in DETECTORS.names()
        clip = short_clip(shared / VIDEO, tmp_path / "clip.mp4", 0, 12)
        out = tmp_path / "out"
        run(
            PipelineConfig(
                sources=[f"cam={clip}"], detector="whole-frame", model="colour-histogram", out=str(out), write_videos=False
            ),
            progress=False,
        )
        rows = np.loadtxt(out / "mot" / "cam.txt", delimiter=",", ndmin=2)
        # the video is 768x432: the toy box is x 307.2..460.8, y 86.4..388.8 in every frame
        # from the tracker's confirmation on (3 hits, frames 3..12 in MOT's 1-based numbering)
        assert rows[:, 0].tolist() == list(range(3, 13))
        np.testing.assert_allclose(rows[:, 2:6], [[307.2, 86.4, 153.6, 302.4]] * 10, atol=0.6)
    finally:
        DETECTORS._factories.pop("whole-frame", None)


def test_a_user_sink_registered_by_name_gets_every_event(shared, tmp_path):
    seen = []

    class Recorder:
        def __init__(self, out, cameras, config):
            self.cameras = cameras

        def on_event(self, event):
            seen.append(event)

        def close(self):
            seen.append("closed")

    SINKS.register("recorder", Recorder)
    try:
        clip = short_clip(shared / VIDEO, tmp_path / "clip.mp4", 40, 30)
        summary = run(
            PipelineConfig(
                sources=[f"a={clip}"], detector="motion", model="colour-histogram", out=str(tmp_path / "o"), sinks=["recorder"]
            ),
            progress=False,
        )
    finally:
        SINKS._factories.pop("recorder", None)
    assert isinstance(seen[0], RunStarted) and seen[0].run_id == summary.run_id
    assert seen[-2] == "closed" and isinstance(seen[-1], RunEnded) and seen[-1].summary.finished
    assert sum(isinstance(e, TickStats) for e in seen) == summary.ticks == 30
    assert not (tmp_path / "o" / "events.jsonl").exists()  # only the sinks asked for


def test_events_come_typed_in_one_direction_with_their_evidence(shared, tmp_path):
    clip = short_clip(shared / VIDEO, tmp_path / "clip.mp4", 40, 60)
    embedder = create_embedder("colour-histogram")
    from adfl_deploy.association import AssociationConfig, Associator

    pipeline = Pipeline(
        [CameraSource("cam", str(clip))],
        {"cam": create_detector("motion")},
        embedder,
        Associator(AssociationConfig(match_threshold=0.3, min_evidence=1)),  # linked on its first crop
        TrackerConfig(),
    )
    events = []
    pipeline.subscribe(events.append)
    ticks = 0
    while pipeline.step():
        ticks += 1
    summary = pipeline.close("test")
    assert summary.ticks == 60 and summary.ended_by == "test"
    started = {e.track_id: i for i, e in enumerate(events) if isinstance(e, TrackStarted)}
    ended = {e.track_id: e.frame for e in events if isinstance(e, TrackEnded)}
    frames = {(e.camera, e.frame): e for e in events if isinstance(e, FrameTracked)}
    assigned = [(i, e) for i, e in enumerate(events) if isinstance(e, GlobalIdAssigned)]
    assert assigned, "the person walking through should get a global id"
    assert any(d.box is not None for _, d in assigned), "some track should be linked on live evidence"
    for i, decision in assigned:
        assert started[decision.track_id] < i  # a track starts before it is named
        if decision.box is None:  # it ended (or the run did) before its second embedding: linked with what it had
            assert decision.frame == ended.get(decision.track_id, max(f for _, f in frames))
            continue
        # the decision's frame and box are the tracked box of that frame, not patched in later
        frame = frames[("cam", decision.frame)]
        row = list(frame.track_ids).index(decision.track_id)
        np.testing.assert_allclose(decision.box, frame.boxes[row], atol=0.051)
        assert frame.global_ids[row] == decision.global_id
    crops = [e for e in events if isinstance(e, CropEmbedded)]
    assert crops, "the walking person's crops should be embedded"
    for crop in crops:
        frame = frames[(crop.camera, crop.frame)]
        row = list(frame.track_ids).index(crop.track_id)
        x1, y1, x2, y2 = np.round(frame.boxes[row]).astype(int)
        np.testing.assert_array_equal(crop.crop, frame.image[max(y1, 0) : y2, max(x1, 0) : x2])
        # the embedding is the embedder's own vector for that crop as white-balanced (the gains
        # the event names; the library's default), and the descriptor a unit vector
        assert crop.white_balance is not None and len(crop.white_balance) == 3
        seen = apply_gains(crop.crop, np.array(crop.white_balance))
        np.testing.assert_allclose(crop.embedding, embedder.embed([seen])[0], atol=1e-6)
        assert abs(np.linalg.norm(crop.descriptor) - 1) < 1e-5 and crop.quality > 0


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


#: the training commands are the only runtime modules allowed to reach the training side
#: (``adfl eval`` of a training checkpoint is one of them; an exported model needs no torch)
TRAINING_COMMANDS = {"cli/train.py", "cli/models.py", "cli/export.py", "cli/evaluate.py"}


def test_the_runtime_never_imports_the_training_side():
    offenders = []
    for path in sorted((REPO / "adfl_deploy").rglob("*.py")):
        rel = path.relative_to(REPO / "adfl_deploy").as_posix()
        if rel in TRAINING_COMMANDS:
            continue
        bad = {m for m in _imports(path) if m.startswith(("adfl_deploy.train", "adfl_deploy.export", "torch"))}
        if bad:
            offenders.append(f"{rel}: {sorted(bad)}")
    assert not offenders, offenders


def test_the_torch_backend_is_found_through_the_registry():
    pytest.importorskip("torch")
    from adfl_deploy.runtime import BACKENDS
    from adfl_deploy.train.torch_backend import TorchBackend

    assert BACKENDS.get("torch") is TorchBackend


def test_detect_every_n_frames_detects_one_frame_in_n_per_camera_in_turns_and_tracks_all(shared, tmp_path):
    """Two cameras, 12 frames, ``detect_every=3``: each camera's detector sees 4 frames, camera
    a on its frames 0, 3, 6, 9 and camera b a turn later (2, 5, 8, 11), so each tick detects
    on at most one camera; the still person found there is reported on every frame from the
    track's confirmation (third detection) on, at the same box in between."""
    from adfl_deploy.tracking.detections import Detections

    class Still:
        def __init__(self):
            self.frames = 0

        def __call__(self, frame, roi_mask=None):
            self.frames += 1
            box = np.array([[300, 100, 380, 380]], np.float32)
            return Detections(box, np.array([0.9], np.float32), np.zeros(1, np.int64))

    clips = {name: short_clip(shared / VIDEO, tmp_path / f"{name}.mp4", 0, 12) for name in ("a", "b")}
    detectors = {"a": Still(), "b": Still()}
    pipeline = Pipeline(
        [CameraSource(n, str(c)) for n, c in clips.items()],
        detectors,
        create_embedder("colour-histogram"),
        detect_every=3,
    )
    tracked = {"a": {}, "b": {}}
    pipeline.subscribe(lambda e: tracked[e.camera].update({e.frame: e.boxes}) if isinstance(e, FrameTracked) else None)
    calls = []
    while pipeline.step():
        calls.append(detectors["a"].frames + detectors["b"].frames)
    pipeline.close("test")
    assert detectors["a"].frames == 4 and detectors["b"].frames == 4
    assert all(b - a <= 1 for a, b in zip([0] + calls, calls))  # never both cameras in one tick
    first = {"a": 6, "b": 8}  # the third detected frame confirms the track
    for cam, boxes in tracked.items():
        shown = sorted(f for f, b in boxes.items() if len(b))
        assert shown == list(range(first[cam], 12)), (cam, shown)
        for f in shown:
            np.testing.assert_allclose(boxes[f][0], [300, 100, 380, 380], atol=1.0)
    with pytest.raises(Exception, match="detect_every"):
        PipelineConfig(sources=["a=x.mp4"], detect_every=0)


def test_an_unset_detect_every_is_the_detectors_own_and_precomputed_boxes_are_every_frame(shared, tmp_path):
    from adfl_deploy.tracking.detectors import FastestDet, MotionDetector

    clip = short_clip(shared / VIDEO, tmp_path / "clip.mp4", 0, 3)
    sources = [CameraSource(n, str(clip)) for n in ("a", "b", "c")]
    detectors = {"a": create_detector("fastestdet"), "b": MotionDetector(), "c": None}
    pipeline = Pipeline(sources, detectors, create_embedder("colour-histogram"), precomputed={"c": object()})
    assert pipeline.detect_every == {"a": FastestDet.detect_every, "b": 1, "c": 1} and FastestDet.detect_every == 2
    sources = [CameraSource(n, str(clip)) for n in ("a", "b")]
    pipeline = Pipeline(sources, {"a": detectors["a"], "b": detectors["b"]}, create_embedder("colour-histogram"), detect_every=3)
    assert pipeline.detect_every == {"a": 3, "b": 3}  # a value set wins

    class Odd(MotionDetector):
        detect_every = 0  # a user's detector asking for something impossible

    with pytest.raises(ConfigError, match="camera a: detect_every 0"):
        Pipeline([CameraSource("a", str(clip))], {"a": Odd()}, create_embedder("colour-histogram"))


def test_run_json_records_what_unset_settings_resolved_to(shared, tmp_path):
    """config.yaml keeps detector-dependent fields unset (null); run.json says what ran."""
    import json

    clip = short_clip(shared / VIDEO, tmp_path / "clip.mp4", 0, 6)
    out = tmp_path / "out"
    run(PipelineConfig(sources=[f"cam={clip}"], model="colour-histogram", out=str(out), write_videos=False), progress=False)
    assert "detect_every: null" in (out / "config.yaml").read_text()
    settings = json.loads((out / "run.json").read_text())["settings"]["cam"]
    assert settings["detector"] == "FastestDet+MotionDetector" and settings["detect_every"] == 2  # the default pair
    assert settings["tracker"]["appearance_weight"] == 2.0 and settings["tracker"]["new_track_confidence"] == 0.7


@pytest.mark.parametrize(("evidence", "delay", "linked_at"), [("any", 30.0, {2}), ("whole", 30.0, {15}), ("whole", 0.5, {12})])
def test_a_person_walking_in_is_linked_once_seen_whole(shared, tmp_path, evidence, delay, linked_at):
    """A person enters at the left edge (box on the border for frames 0-14) and steps into the
    picture at frame 15. The track is confirmed on its third detection (frame 2) and embedded
    then, every 10 frames, and as soon as its box is clearly better (off the border: quality
    doubles). With ``evidence: any`` it is linked on that first embedding, a half-seen person;
    with ``whole`` on the first whole view (frame 15); with ``whole`` and a 0.5 s bound (10 FPS)
    on the first embedding after the bound, frame 12, half-seen but not kept waiting."""
    from adfl_deploy.association import AssociationConfig, Associator
    from adfl_deploy.tracking.detections import Detections

    class WalkingIn:
        def __init__(self):
            self.frame = -1

        def __call__(self, frame, roi_mask=None):
            self.frame += 1
            x = 0 if self.frame < 15 else 10  # one step in: the same track, off the border
            box = np.array([[x, 100, x + 60, 380]], np.float32)
            return Detections(box, np.array([0.9], np.float32), np.zeros(1, np.int64))

    clip = short_clip(shared / VIDEO, tmp_path / "a.mp4", 0, 25)
    associator = Associator(AssociationConfig(match_threshold=0.3, evidence=evidence, max_delay_seconds=delay, min_evidence=1))
    pipeline = Pipeline([CameraSource("a", str(clip))], {"a": WalkingIn()}, create_embedder("colour-histogram"), associator)
    linked = []
    pipeline.subscribe(lambda e: linked.append(e.frame) if isinstance(e, GlobalIdAssigned) else None)
    while pipeline.step():
        pass
    pipeline.close("test")
    assert set(linked) == linked_at


def test_a_cameras_colour_cast_does_not_reach_the_embedder(shared, tmp_path):
    """The same frames seen by a neutral camera and by one with a strong cast: with grey-world
    white balance the embedder gets nearly the same crops from both (the cast is a per-channel
    gain, which the frame mean absorbs); without it they differ by the cast. The crops in the
    events are the camera's own pixels either way."""
    from adfl_deploy.runtime.white_balance import WhiteBalance
    from adfl_deploy.tracking.detections import Detections

    cast = np.array([0.85, 1.0, 1.15])
    cap = cv2.VideoCapture(str(shared / VIDEO))
    for name in ("plain", "tinted"):
        (tmp_path / name).mkdir()
    for i in range(4):
        ok, image = cap.read()
        assert ok
        cv2.imwrite(str(tmp_path / "plain" / f"{i:03d}.png"), image)
        cv2.imwrite(str(tmp_path / "tinted" / f"{i:03d}.png"), np.clip(image * cast + 0.5, 0, 255).astype(np.uint8))

    class Fixed:
        def __call__(self, frame, roi_mask=None):
            return Detections(np.array([[200, 60, 300, 380]], np.float32), np.array([0.9], np.float32), np.zeros(1, np.int64))

    class Recording:
        name, backend, precision, dim = "recording", "numpy", "fp32", 3

        def __init__(self):
            self.crops = []

        def embed(self, crops):
            self.crops += [c.copy() for c in crops]
            return np.tile(np.array([1.0, 0.0, 0.0], np.float32), (len(crops), 1))

    def crops(folder: str, **white_balance) -> tuple[list, list, list | None]:
        embedder, seen = Recording(), []
        source = CameraSource("cam", str(tmp_path / folder))
        pipeline = Pipeline([source], {"cam": Fixed()}, embedder, **white_balance)
        pipeline.subscribe(lambda e: seen.append(e.crop) if isinstance(e, CropEmbedded) else None)
        while pipeline.step():
            pass
        summary = pipeline.close("test")
        assert embedder.crops and len(seen) == len(embedder.crops)
        return embedder.crops, seen, summary.cameras["cam"].white_balance

    plain, _, plain_gains = crops("plain", white_balance=WhiteBalance())
    tinted, events, tinted_gains = crops("tinted")  # a library user's Pipeline balances by default
    raw, _, no_gains = crops("tinted", white_balance=False)
    gap = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(plain, tinted)])
    uncorrected = np.mean([np.abs(a.astype(int) - b).mean() for a, b in zip(plain, raw)])
    # what is left is mostly where the cast saturated bright pixels
    assert gap < 0.2 * uncorrected and uncorrected > 10.0, (gap, uncorrected)
    assert all(np.array_equal(e, r) for e, r in zip(events, raw))  # events: the camera's pixels
    # the summary reports the gains: the tinted camera's differ from the plain one's by 1 / cast
    # (up to one common factor)
    ratio = np.array(tinted_gains) * cast / np.array(plain_gains)
    assert np.ptp(ratio) < 0.02 * ratio.mean() and no_gains is None, (tinted_gains, plain_gains)
