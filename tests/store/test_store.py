"""The identity store on hand-made events: schema and migrations, what the writer keeps, the
bounded queue's drops, and search against an exact float64 reference written here."""

from __future__ import annotations

import sqlite3
import threading

import numpy as np
import pytest

from adfl_deploy.errors import ConfigError, OutputError
from adfl_deploy.events import (
    CropEmbedded,
    FrameTracked,
    GlobalIdAssigned,
    GlobalIdMerged,
    RunStarted,
    TickStats,
    TrackEnded,
    TrackStarted,
)
from adfl_deploy.store import SCHEMA_VERSION, Store, VectorIndex, migrate, open_reader, open_writer
from adfl_deploy.store.model import ModelFingerprint
from adfl_deploy.store.writer import StoreWriter

FAKE_MODEL = ModelFingerprint("fake", "", "fake-net", "registered:fake", 0)
TABLES = {"meta", "cameras", "identities", "tracklets", "thumbnails", "merges", "embeddings", "ticks", "live"}


def tables(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def columns(conn, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


# -- schema and migrations -------------------------------------------------------------------------


def test_a_new_store_has_every_table_at_the_current_version_in_wal_mode(tmp_path):
    conn = open_writer(tmp_path / "a.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert TABLES <= tables(conn)
    assert {"descriptor"} <= columns(conn, "tracklets") and "store" in columns(conn, "ticks")


def test_a_version_1_store_is_migrated_with_its_rows_kept(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, path, target=1)  # what a store written before version 2 looks like
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "descriptor" not in columns(conn, "tracklets")
    conn.execute("INSERT INTO tracklets (camera, track_id, global_id, start_time, end_time) VALUES ('c', 7, 3, 1.0, 2.0)")
    conn.execute("INSERT INTO embeddings (tracklet_id, vector) VALUES (1, ?)", (np.ones(4, "<f4").tobytes(),))
    conn.close()
    with pytest.raises(OutputError, match="schema version 1"):
        open_reader(path)  # a reader never migrates (it is read-only)
    conn = open_writer(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT camera, track_id, global_id, descriptor FROM tracklets").fetchall() == [("c", 7, 3, None)]
    assert conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 1
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"tracklets_global_id", "embeddings_tracklet", "thumbnails_tracklet"} <= indexes


def test_a_store_from_a_newer_toolkit_is_refused_in_one_line(tmp_path):
    path = tmp_path / "new.db"
    conn = open_writer(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    for opener in (open_writer, open_reader):
        with pytest.raises(OutputError, match="newer") as err:
            opener(path)
        assert "\n" not in str(err.value)


def test_a_missing_file_or_a_file_that_is_not_a_store_is_one_line(tmp_path):
    with pytest.raises(OutputError, match="no identity store"):
        open_reader(tmp_path / "missing.db")
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(OutputError, match="not an identity store"):
        open_reader(tmp_path / "junk.db")


def test_the_reader_cannot_write(tmp_path):
    writer = StoreWriter(tmp_path / "s.db", ["cam"], FAKE_MODEL)
    writer.close()
    conn = open_reader(tmp_path / "s.db")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM meta")


# -- the writer ------------------------------------------------------------------------------------


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return (v / np.linalg.norm(v)).astype(np.float32)


def crop(value: int) -> np.ndarray:
    return np.full((64, 32, 3), value, np.uint8)


def tick(n: int) -> TickStats:
    return TickStats(n, {"detect": 1.0, "track": 0.5, "embed": 2.0, "associate": 0.1, "sink": 0.3}, {"cam": n}, 1, 1)


def frame(camera: str, index: int, track_ids, boxes) -> FrameTracked:
    return FrameTracked(
        camera,
        index,
        index / 10,
        np.zeros((48, 64, 3), np.uint8),
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(track_ids),
        np.ones(len(track_ids), np.float32),
        [None] * len(track_ids),
    )


def test_tracklets_box_summary_thumbnails_and_merges_are_kept(tmp_path):
    w = StoreWriter(tmp_path / "s.db", ["a", "b"], FAKE_MODEL, thumbnails_per_tracklet=2)
    w.on_event(RunStarted("run-1", ("a", "b"), "2026-12-01T00:00:00Z"))
    w.on_event(TrackStarted("a", 1, 0, 0.0, (0, 0, 10, 20)))
    w.on_event(GlobalIdAssigned("a", 1, 5, 0.0, True))
    w.on_event(frame("a", 0, [1], [(0, 0, 10, 20)]))
    qualities = [0.2, 0.9, 0.5, 0.7]
    for i, q in enumerate(qualities):
        e = unit(np.eye(4)[i % 4] + 1)
        w.on_event(CropEmbedded("a", 1, i, i / 10, (0, 0, 10, 20), crop(10 * i), e, q, e))
    w.on_event(frame("a", 3, [1], [(2, 2, 14, 32)]))  # 12 x 30
    w.on_event(tick(1))
    w.on_event(TrackEnded("a", 1, 4, 0.4))
    w.on_event(GlobalIdAssigned("a", 1, 5, 0.4, False))  # decided at its end (after TrackEnded): same tracklet
    w.on_event(TrackStarted("b", 1, 2, 0.2, (0, 0, 5, 5)))
    w.on_event(GlobalIdAssigned("b", 1, 6, 0.2, True))
    w.on_event(GlobalIdMerged(5, 6, 0.1, 0.5))
    w.on_event(tick(2))
    w.close()
    conn = open_reader(tmp_path / "s.db")
    row = conn.execute(
        "SELECT global_id, start_frame, end_frame, start_time, end_time, ended, boxes, mean_width, mean_height "
        "FROM tracklets WHERE camera = 'a'"
    ).fetchone()
    assert row == (5, 0, 4, 0.0, 0.4, 1, 2, 11.0, 25.0)  # widths 10, 12; heights 20, 30
    assert conn.execute("SELECT global_id FROM tracklets WHERE camera = 'b'").fetchone() == (5,)  # merged into 5
    assert conn.execute("SELECT kept, merged FROM merges").fetchall() == [(5, 6)]
    kept = sorted(r[0] for r in conn.execute("SELECT quality FROM thumbnails"))
    assert kept == pytest.approx(sorted(qualities)[-2:])  # the best two of four
    assert conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 4
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert meta["run_id"] == "run-1" and meta["finished"] == "1" and meta["model_dim"] == "4"
    assert conn.execute("SELECT tick, embed FROM ticks").fetchall() == [(1, 2.0), (2, 2.0)]
    assert conn.execute("SELECT COUNT(*) FROM tracklets").fetchone()[0] == 2
    assert w._tracklet_ids == {("b", 1): 2} and set(w._thumbs) == set()  # the ended track is forgotten


def test_a_stuck_writer_drops_crops_never_blocks_and_keeps_the_decisions(tmp_path):
    w = StoreWriter(tmp_path / "s.db", ["a"], FAKE_MODEL, queue_ticks=1)
    release = threading.Event()
    real_apply = w._apply

    def slow_apply(*args, **kwargs):
        release.wait(10)
        real_apply(*args, **kwargs)

    w._apply = slow_apply
    e = unit([1, 0, 0, 0])
    for n in range(1, 6):  # tick 1 is being written (stuck), tick 2 waits in the queue, 3-5 find it full
        w.on_event(TrackStarted("a", n, n, n / 10, (0, 0, 1, 1)))
        w.on_event(CropEmbedded("a", n, n, n / 10, None, crop(n), e, 0.5, e))
        w.on_event(tick(n))
        while n == 1 and not w.queue.empty():  # the writer has taken tick 1 and is stuck on it
            threading.Event().wait(0.01)
    assert w.ticks_dropped == 3 and w.crops_dropped == 3
    release.set()
    w.close()
    stats = w.stats()
    assert stats["ticks_dropped"] == 3 and stats["journal_events_dropped"] == 0
    conn = open_reader(tmp_path / "s.db")
    assert sorted(r[0] for r in conn.execute("SELECT track_id FROM tracklets")) == [1, 2, 3, 4, 5]  # no decision lost
    assert conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 2  # crops of ticks 1 and 2 only


def test_a_failing_store_stops_writing_but_not_the_run(tmp_path):
    w = StoreWriter(tmp_path / "s.db", ["a"], FAKE_MODEL)

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    w._apply = broken
    for n in range(1, 4):
        w.on_event(tick(n))
    w.close()  # no exception reaches the pipeline
    assert "disk I/O error" in w.stats()["error"]


# -- search against an exact reference ----------------------------------------------------------------


def reference_search(vectors: np.ndarray, identity: np.ndarray, query: np.ndarray, top: int) -> list[tuple[int, float]]:
    """Exact: every identity's best cosine similarity over its vectors, in float64 loops."""
    best: dict[int, float] = {}
    q = query.astype(np.float64)
    for v, gid in zip(vectors.astype(np.float64), identity):
        if gid < 0:
            continue
        s = float(v @ q)
        best[int(gid)] = max(best.get(int(gid), -np.inf), s)
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def write_random_store(path, rng, tracks: int = 40, per_track: int = 6, dim: int = 32):
    """A store of random embeddings; returns the vectors and each one's final global id."""
    w = StoreWriter(path, ["a", "b", "c"], FAKE_MODEL)
    vectors, owners = [], []
    gid_of_track = {}
    for t in range(tracks):
        cam = "abc"[t % 3]
        w.on_event(TrackStarted(cam, t, t, float(t), (0, 0, 4, 8)))
        if t % 7 != 6:  # every seventh track never gets an identity
            gid_of_track[t] = 100 + t // 2
            w.on_event(GlobalIdAssigned(cam, t, gid_of_track[t], float(t), True))
        for k in range(per_track):
            v = unit(rng.normal(size=dim))
            vectors.append(v)
            owners.append(t)
            w.on_event(CropEmbedded(cam, t, t * 10 + k, float(t), None, crop(k), v, float(rng.random()), v))
        w.on_event(tick(t + 1))
    w.on_event(GlobalIdMerged(100, 105, 0.2, 99.0))
    w.on_event(tick(tracks + 1))
    w.close()
    final = {t: (100 if g == 105 else g) for t, g in gid_of_track.items()}
    return np.array(vectors), np.array([final.get(t, -1) for t in owners])


def test_search_ranks_identities_exactly_like_the_float64_reference(tmp_path):
    rng = np.random.default_rng(0)
    vectors, identity = write_random_store(tmp_path / "s.db", rng)
    store = Store(tmp_path / "s.db")
    queries = [vectors[3], vectors[50] + 0.3 * rng.normal(size=32)] + [rng.normal(size=32) for _ in range(20)]
    for q in queries:
        q = unit(q)
        got = [(h.global_id, h.score) for h in store.search(q, top=8)]
        want = reference_search(vectors, identity, q, 8)
        assert [g for g, _ in got] == [g for g, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
    assert 105 not in {i.global_id for i in store.identities()}  # merged away
    assert store.search(unit(vectors[3]), top=1)[0].score == pytest.approx(1.0, abs=1e-6)


def test_the_index_reads_only_new_rows_as_a_live_run_adds_them(tmp_path):
    w = StoreWriter(tmp_path / "s.db", ["a"], FAKE_MODEL)
    store_path = tmp_path / "s.db"
    e1, e2 = unit([1, 0, 0]), unit([0, 1, 0])
    w.on_event(TrackStarted("a", 1, 0, 0.0, (0, 0, 1, 1)))
    w.on_event(GlobalIdAssigned("a", 1, 1, 0.0, True))
    w.on_event(CropEmbedded("a", 1, 0, 0.0, None, crop(1), e1, 0.5, e1))
    w.on_event(tick(1))
    _wait_written(w, 1)
    index = VectorIndex(open_reader(store_path))
    assert index.refresh() == 1 and index.search(e2) == [(1, pytest.approx(0.0, abs=1e-6))]
    w.on_event(TrackStarted("a", 2, 1, 0.1, (0, 0, 1, 1)))
    w.on_event(GlobalIdAssigned("a", 2, 2, 0.1, True))
    w.on_event(CropEmbedded("a", 2, 1, 0.1, None, crop(2), e2, 0.5, e2))
    w.on_event(tick(2))
    _wait_written(w, 2)
    assert index.refresh() == 1 and index.refresh() == 0
    assert index.search(e2)[0] == (2, pytest.approx(1.0))
    w.close()


def _wait_written(writer: StoreWriter, ticks: int) -> None:
    import time

    deadline = time.time() + 10
    while writer.ticks_written < ticks and time.time() < deadline:
        time.sleep(0.01)
    assert writer.ticks_written >= ticks


def test_a_query_of_another_dimension_is_one_line(tmp_path):
    rng = np.random.default_rng(1)
    write_random_store(tmp_path / "s.db", rng, tracks=3)
    with pytest.raises(ConfigError, match="dimensions"):
        Store(tmp_path / "s.db").search(unit(np.ones(8)))


# -- review: what a long or failing run, or a damaged file, must not do ----------------------------


def test_close_returns_when_the_writer_is_stuck_in_sqlite(tmp_path):
    """A writer hung on the disk must not hang the end of the run: close() gives up after
    ``close_timeout`` and says so."""
    w = StoreWriter(tmp_path / "s.db", ["a"], FAKE_MODEL)
    w.close_timeout = 0.5
    release = threading.Event()
    w._apply = lambda *args, **kwargs: release.wait(60)
    w.on_event(tick(1))
    closer = threading.Thread(target=w.close, daemon=True)
    closer.start()
    closer.join(10)
    try:
        assert not closer.is_alive()
        assert "did not finish within 0.5 s" in w.stats()["error"]
    finally:
        release.set()


def test_close_returns_when_the_writer_thread_is_gone_and_the_queue_is_full(tmp_path):
    w = StoreWriter(tmp_path / "s.db", ["a"], FAKE_MODEL, queue_ticks=1)
    w.queue.put(None)  # the writer thread ends (as if it had died)
    w._thread.join(5)
    w.on_event(tick(1))  # fills the queue: nobody drains it any more
    w.on_event(TrackStarted("a", 1, 0, 0.0, (0, 0, 1, 1)))  # a decision close() has to hand over
    closer = threading.Thread(target=w.close, daemon=True)
    closer.start()
    closer.join(10)
    assert not closer.is_alive()
    assert w.stats()["error"] and w.stats()["journal_events_dropped"] == 1


def test_a_failure_while_closing_is_reported_not_raised(tmp_path):
    """The disk fills up just as the run ends: the final meta update fails; close() must not
    throw into the pipeline, and the ticks written before stay readable."""

    class FullDisk:
        def __init__(self, conn) -> None:
            self.conn = conn

        def execute(self, sql, *args):
            if threading.current_thread() is threading.main_thread() and sql == "BEGIN IMMEDIATE":
                raise sqlite3.OperationalError("database or disk is full")
            return self.conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.conn, name)

    w = StoreWriter(tmp_path / "s.db", ["a"], FAKE_MODEL)
    w.on_event(tick(1))
    _wait_written(w, 1)
    w.conn = FullDisk(w.conn)
    w.close()
    assert "disk is full" in w.stats()["error"]
    assert open_reader(tmp_path / "s.db").execute("SELECT tick FROM ticks").fetchall() == [(1,)]


def test_a_crop_of_the_tick_its_track_ended_keeps_the_thumbnail_limit_and_memory_flat(tmp_path):
    w = StoreWriter(tmp_path / "s.db", ["a"], FAKE_MODEL, thumbnails_per_tracklet=2)
    e = unit([1, 0, 0, 0])
    w.on_event(TrackStarted("a", 1, 0, 0.0, (0, 0, 1, 1)))
    for k, q in enumerate((0.5, 0.6)):
        w.on_event(CropEmbedded("a", 1, k, k / 10, None, crop(k), e, q, e))
    w.on_event(tick(1))
    w.on_event(CropEmbedded("a", 1, 5, 0.5, None, crop(9), e, 0.1, e))  # its last crop, then it ends
    w.on_event(TrackEnded("a", 1, 5, 0.5))
    w.on_event(tick(2))
    w.close()
    conn = open_reader(tmp_path / "s.db")
    assert sorted(r[0] for r in conn.execute("SELECT quality FROM thumbnails")) == pytest.approx([0.5, 0.6])
    assert w._thumbs == {} and w._tracklet_ids == {}


def test_a_live_refresh_appends_in_place_and_reads_in_chunks(tmp_path):
    """New rows of a live run go into the buffer already held (no copy of the whole matrix per
    query); read a few rows at a time, the index still equals the float64 reference."""
    rng = np.random.default_rng(3)
    vectors, identity = write_random_store(tmp_path / "s.db", rng, tracks=10, per_track=5)
    conn = open_reader(tmp_path / "s.db")
    index = VectorIndex(conn)
    index.CHUNK = 7
    assert index.refresh() == 50
    held = index.vectors
    writer = open_writer(tmp_path / "s.db")
    extra = np.stack([unit(rng.normal(size=32)) for _ in range(3)])
    rows = [(v.astype("<f4").tobytes(),) for v in extra]
    writer.executemany("INSERT INTO embeddings (tracklet_id, vector) VALUES (1, ?)", rows)
    writer.close()
    assert index.refresh() == 3 and index.refresh() == 0
    assert np.shares_memory(held, index.vectors)  # appended where the first 50 already were
    np.testing.assert_array_equal(index.vectors, np.concatenate([vectors, extra]).astype(np.float32))
    identity = np.concatenate([identity, [identity[0]] * 3])
    for q in (unit(rng.normal(size=32)) for _ in range(5)):
        assert [g for g, _ in index.search(q, 6)] == [g for g, _ in reference_search(index.vectors, identity, q, 6)]


def test_embeddings_of_mixed_sizes_are_one_line(tmp_path):
    path = tmp_path / "s.db"
    write_random_store(path, np.random.default_rng(4), tracks=2, per_track=2)
    writer = open_writer(path)
    writer.execute("INSERT INTO embeddings (tracklet_id, vector) VALUES (1, ?)", (b"\x00" * 10,))
    writer.close()
    with pytest.raises(ConfigError, match="damaged") as err:
        VectorIndex(open_reader(path)).refresh()
    assert "\n" not in str(err.value)


def _damage(path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage (a disk error, a bad copy)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * size)
        fh.write(b"\xa5" * size)


def test_a_damaged_or_incomplete_store_is_one_line_not_a_traceback(tmp_path, capsys):
    from adfl_deploy.cli import main

    good = tmp_path / "good.db"
    write_random_store(good, np.random.default_rng(5), tracks=6)
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(good.read_bytes())
    _damage(damaged, "embeddings")
    store = Store(damaged)  # the header and meta read fine
    with pytest.raises(OutputError, match="damaged") as err:
        store.search(unit(np.ones(32)))
    assert "\n" not in str(err.value)
    assert main(["search", "--db", str(damaged), "--identity", "100"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "re-run adfl track" in lines[0]

    no_table = tmp_path / "no-table.db"
    no_table.write_bytes(good.read_bytes())
    conn = sqlite3.connect(no_table)
    conn.execute("DROP TABLE embeddings")
    conn.commit()
    conn.close()
    with pytest.raises(OutputError, match="no table embeddings"):
        Store(no_table)


def test_ids_beyond_sqlite_integers_find_nothing(tmp_path, capsys):
    from adfl_deploy.cli import main

    write_random_store(tmp_path / "s.db", np.random.default_rng(6), tracks=3)
    store = Store(tmp_path / "s.db")
    assert store.identities([10**30]) == [] and store.thumbnail(10**30) is None and store.thumbnail(-1) is None
    assert main(["search", "--db", str(tmp_path / "s.db"), "--identity", str(10**30)]) == 2
    assert "no identity" in capsys.readouterr().err
