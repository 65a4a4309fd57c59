"""The store written by real runs: ``adfl track`` on a generated scene, searched with crops cut
from its ground-truth boxes; ``kill -9`` in the middle of a run; ``adfl search`` end to end and
its refusal of a store made with another model."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from adfl_deploy.cli import main
from adfl_deploy.store import Store

ADFL = [sys.executable, "-m", "adfl_deploy.cli"]


def gt_rows(scene, cam: str) -> np.ndarray:
    return np.loadtxt(scene.gt(cam), delimiter=",", ndmin=2)


@pytest.fixture(scope="module")
def gt_run(scene, tmp_path_factory):
    """``adfl track`` on the shared small scene with its ground-truth boxes as detections."""
    out = tmp_path_factory.mktemp("gt-run") / "track"
    args = ["track", "--no-video", "--out", str(out)]
    for cam in scene.cameras:
        args += ["--source", f"{cam}={scene.video(cam)}", "--set", f"detections.{cam}={scene.gt(cam)}"]
    assert main(args) == 0
    return out


def person_of_global_id(scene, run: Path) -> dict[int, int]:
    """With ground-truth boxes as detections every MOT row is a ground-truth box: a global id
    belongs to the person whose boxes it carries most often (boxes compared to 0.5 px)."""
    votes: dict[int, dict[int, int]] = {}
    for cam in scene.cameras:
        gt = gt_rows(scene, cam)
        for row in np.loadtxt(run / "mot" / f"{cam}.txt", delimiter=",", ndmin=2):
            same = gt[(gt[:, 0] == row[0]) & (np.abs(gt[:, 2:6] - row[2:6]).max(axis=1) < 0.5)]
            if len(same):
                person = int(same[0, 1])
                votes.setdefault(int(row[1]), {}).setdefault(person, 0)
                votes[int(row[1])][person] += 1
    merges = {}
    for line in (run / "events.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["event"] == "global_id_merged":
            merges[record["merged"]] = record["kept"]
    final: dict[int, dict[int, int]] = {}
    for gid, counts in votes.items():
        while gid in merges:
            gid = merges[gid]
        for person, n in counts.items():
            final.setdefault(gid, {}).setdefault(person, 0)
            final[gid][person] += n
    return {gid: max(counts, key=counts.get) for gid, counts in final.items()}


def gt_crops(scene, run: Path, per_person: int = 4):
    """Crops of ground-truth boxes (tall, fully considered) at frames the run never embedded."""
    conn = sqlite3.connect(run / "adfl.db")
    embedded = set(conn.execute("SELECT t.camera, e.frame FROM embeddings e JOIN tracklets t ON t.id = e.tracklet_id"))
    conn.close()
    crops = []
    for cam in scene.cameras:
        gt = gt_rows(scene, cam)
        gt = gt[(gt[:, 6] > 0) & (gt[:, 5] >= 60)]
        cap = cv2.VideoCapture(str(scene.video(cam)))
        frames = []
        while True:
            ok, image = cap.read()
            if not ok:
                break
            frames.append(image)
        for person in np.unique(gt[:, 1]).astype(int):
            rows = [r for r in gt[gt[:, 1] == person] if (cam, int(r[0]) - 1) not in embedded]
            for r in rows[:: max(1, len(rows) // per_person)][:per_person]:
                x, y, w, h = (int(v) for v in r[2:6])
                image = frames[int(r[0]) - 1]
                crop = image[max(0, y) : y + h, max(0, x) : x + w]
                if crop.shape[0] >= 32 and crop.shape[1] >= 12:
                    crops.append((person, crop))
    return crops


def test_a_ground_truth_crop_finds_its_persons_identity(scene, gt_run):
    owner = person_of_global_id(scene, gt_run)
    crops = gt_crops(scene, gt_run)
    store = Store(gt_run / "adfl.db")
    assert {i.global_id for i in store.identities()} == set(owner)  # the store's identities are the run's
    vectors = store.embedder().embed([c for _, c in crops])
    right = sum(owner.get(store.search(v, top=1)[0].global_id) == person for (person, _), v in zip(crops, vectors))
    assert len(crops) >= 20 and right / len(crops) >= 0.8, (right, len(crops))


def test_adfl_search_prints_a_table_and_writes_json_and_a_contact_sheet(scene, gt_run, tmp_path, capsys):
    person, crop = gt_crops(scene, gt_run, per_person=1)[0]
    cv2.imwrite(str(tmp_path / "q.png"), crop)
    code = main(
        [
            "search",
            "--db",
            str(gt_run),
            "--image",
            str(tmp_path / "q.png"),
            "--top",
            "3",
            "--json",
            str(tmp_path / "hits.json"),
            "--sheet",
            str(tmp_path / "sheet.png"),
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    report = json.loads((tmp_path / "hits.json").read_text())
    assert [h["rank"] for h in report["hits"]] == [1, 2, 3]
    scores = [h["score"] for h in report["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert f"{report['hits'][0]['global_id']:>8}" in table.splitlines()[2]
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet is not None and sheet.shape[0] >= 3 * 128
    gid = report["hits"][0]["global_id"]
    assert main(["search", "--db", str(gt_run / "adfl.db"), "--identity", str(gid), "--json", "-"]) == 0
    mine = json.loads(capsys.readouterr().out)
    assert mine["query"]["identity"] == gid and gid not in [h["global_id"] for h in mine["hits"]]
    assert {s["camera"] for s in mine["query"]["sightings"]} <= set(scene.cameras)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_store_made_with_another_model_is_refused_in_one_line(tmp_path, capsys):
    from adfl_deploy.assets import BASELINE_MODEL
    from adfl_deploy.events import CropEmbedded, GlobalIdAssigned, TickStats, TrackStarted
    from adfl_deploy.runtime import create_embedder
    from adfl_deploy.store.model import fingerprint
    from adfl_deploy.store.writer import StoreWriter

    crop = np.full((128, 64, 3), (40, 90, 200), np.uint8)
    cv2.imwrite(str(tmp_path / "q.png"), crop)
    e = create_embedder(str(BASELINE_MODEL)).embed([crop])[0]
    w = StoreWriter(tmp_path / "adfl.db", ["cam"], fingerprint(str(BASELINE_MODEL)))
    w.on_event(TrackStarted("cam", 1, 0, 0.0, (0, 0, 64, 128)))
    w.on_event(GlobalIdAssigned("cam", 1, 1, 0.0, True))
    w.on_event(CropEmbedded("cam", 1, 0, 0.0, None, crop, e, 0.9, e))
    w.on_event(TickStats(1, {}, {}, 1, 1))
    w.close()
    db = str(tmp_path / "adfl.db")
    assert main(["search", "--db", db, "--image", str(tmp_path / "q.png"), "--model", "colour-histogram"]) == 2
    line = one_error_line(capsys)
    assert "was made with baseline" in line and "not colour-histogram" in line
    assert main(["search", "--db", db, "--image", str(tmp_path / "q.png")]) == 0  # the recorded model
    assert "   1         1   1.000" in capsys.readouterr().out
    assert main(["search", "--db", db, "--image", str(tmp_path / "missing.png")]) == 2
    assert "no such image" in one_error_line(capsys)
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    assert main(["search", "--db", db, "--image", str(tmp_path / "junk.jpg")]) == 2
    assert "not an image" in one_error_line(capsys)


def test_kill_9_mid_run_leaves_a_store_that_opens_and_answers(scene, tmp_path):
    out = tmp_path / "out"
    cmd = [*ADFL, "track", "--no-video", "--detector", "motion", "--out", str(out)]
    for cam in scene.cameras:
        cmd += ["--source", f"{cam}={scene.video(cam)}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "adfl.db"
    seen = 0
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if db.is_file():
                try:
                    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
                    seen = conn.execute("SELECT COUNT(*) FROM ticks").fetchone()[0]
                    embedded = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
                    conn.close()
                except sqlite3.OperationalError:
                    seen, embedded = 0, 0
                if seen >= 60 and embedded >= 5:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert seen >= 60
    store = Store(db)  # read-only, as adfl search and adfl serve open it, straight after the kill
    row = store.conn.execute(
        "SELECT e.vector, t.global_id FROM embeddings e JOIN tracklets t ON t.id = e.tracklet_id "
        "WHERE t.global_id IS NOT NULL LIMIT 1"
    ).fetchone()
    assert row is not None
    hits = store.search(np.frombuffer(row[0], "<f4"), top=3)
    assert hits[0].global_id == row[1] and hits[0].score == pytest.approx(1.0, abs=1e-5)
    store.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ticks = [r[0] for r in conn.execute("SELECT tick FROM ticks ORDER BY tick")]
    assert len(ticks) >= seen and ticks == list(range(1, len(ticks) + 1))  # whole ticks, no gap
    orphans = conn.execute("SELECT COUNT(*) FROM embeddings WHERE tracklet_id NOT IN (SELECT id FROM tracklets)").fetchone()
    assert orphans[0] == 0
    assert dict(conn.execute("SELECT key, value FROM meta").fetchall())["finished"] == "0"
    conn.close()


def test_adfl_bench_store_maps_ids_like_an_independent_count_and_writes_its_report(scene, gt_run, tmp_path, capsys):
    from adfl_deploy.bench.store_bench import identity_map

    store = Store(gt_run / "adfl.db")
    merges = dict(store.conn.execute("SELECT merged, kept FROM merges").fetchall())
    assert identity_map(scene, gt_run, merges) == person_of_global_id(scene, gt_run)
    out = tmp_path / "bench"
    args = ["bench", "--store", "--run", str(gt_run), "--scene", str(scene.root), "--queries", "20", "--stored", "3000"]
    assert main([*args, "--out", str(out)]) == 0
    report = json.loads((out / "bench.json").read_text())
    assert report["accuracy"]["queries"] >= 10 and 0 <= report["accuracy"]["top1_accuracy"] <= 1
    assert report["latency"]["stored"] == 3000 and report["latency"]["p99_ms"] >= report["latency"]["p50_ms"] > 0
    assert sorted(p.name for p in out.iterdir()) == ["bench.json"]  # the synthetic store is removed
    assert "top-1 identity correct" in capsys.readouterr().out
