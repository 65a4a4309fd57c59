"""The append-only outputs (events.jsonl, mot/*.txt): every record is in the file as soon as it
is written (a killed process loses none of it), and the disk is synced every SYNC_SECONDS and
on close, not once per camera per tick."""

from __future__ import annotations

import numpy as np

from adfl_deploy.pipeline import sinks


def test_rows_are_in_the_file_before_any_sync(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(sinks.os, "fsync", lambda fd: synced.append(fd))
    monkeypatch.setattr(sinks, "SYNC_PHASES", 1)  # no stagger: the clock starts at opening
    writer = sinks.MotWriter(tmp_path / "cam1.txt")
    writer.add(4, [7], np.array([[10.0, 20.0, 40.0, 100.0]]), np.array([0.9]))
    writer.flush()  # a tick's flush right after opening: not yet due
    # read by another open file, as a reader after a kill -9 would
    assert (tmp_path / "cam1.txt").read_text() == "5,7,10.00,20.00,30.00,80.00,0.9000,-1,-1,-1\n"
    assert synced == []
    writer.close()
    assert len(synced) == 1  # close always syncs


def test_flush_syncs_at_most_every_sync_seconds(tmp_path, monkeypatch):
    synced = []
    clock = [100.0]
    monkeypatch.setattr(sinks.os, "fsync", lambda fd: synced.append(clock[0]))
    monkeypatch.setattr(sinks, "_clock", lambda: clock[0])
    monkeypatch.setattr(sinks, "SYNC_PHASES", 1)
    log = sinks.EventLog(tmp_path / "events.jsonl")
    for _tick in range(50):  # 50 ticks of 0.1 s: 5 s
        log.write({"event": "x"})
        log.flush()
        clock[0] += 0.1
    # after 2 s, 4 s (within float rounding of the 0.1 s steps)
    assert len(synced) == 2 and all(b - a >= sinks.SYNC_SECONDS - 1e-6 for a, b in zip([100.0] + synced, synced))
    log.flush(force=True)
    assert len(synced) == 3
    log.close()
    assert len(synced) == 4 and len((tmp_path / "events.jsonl").read_text().splitlines()) == 50


def test_files_opened_together_sync_in_staggered_turns(tmp_path, monkeypatch):
    """Eight MOT files opened in one go, flushed every 0.1 s tick for 2 s: each syncs once, and
    no two in the same tick."""
    ticks = []
    clock = [50.0]
    monkeypatch.setattr(sinks.os, "fsync", lambda fd: ticks.append(clock[0]))
    monkeypatch.setattr(sinks, "_clock", lambda: clock[0])
    monkeypatch.setattr(sinks._AppendFile, "_opened", 0)
    writers = [sinks.MotWriter(tmp_path / f"cam{k}.txt") for k in range(sinks.SYNC_PHASES)]
    for _tick in range(20):
        clock[0] += 0.1
        for w in writers:
            w.flush()
    assert len(ticks) == sinks.SYNC_PHASES and len(set(ticks)) == sinks.SYNC_PHASES
    for w in writers:
        w.close()
