"""Edge nodes and the central associator against a real ``redis-server`` (started here, on a
free port, per test): the central associator's decisions against a single ``Associator`` fed
the same tracklets in a single process's order; ``kill -9`` of ``adfl associate`` and a
restart; a broker that goes away and comes back under a publishing node; one-line errors."""

from __future__ import annotations

import json
import math
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adfl_deploy.association import AssociationConfig, Associator, Tracklet
from adfl_deploy.broker import PublishConfig
from adfl_deploy.broker import messages as msgs
from adfl_deploy.events import FrameTracked, GlobalIdAssigned, GlobalIdMerged, RunStarted, TickStats

pytestmark = pytest.mark.broker
ADFL = [sys.executable, "-m", "adfl_deploy.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server: append-only file in its own folder, so a restart keeps the streams."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port, self.proc = folder, _free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/adfl"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.folder)]
        args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        pytest.skip("redis-server did not start within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def client(self):
        import redis

        return redis.Redis(port=self.port)


@pytest.fixture
def broker(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); the broker tests need a real one")
    pytest.importorskip("redis", reason="the redis client is not installed (pip install redis)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# -- a synthetic building: people walking between four cameras watched by two nodes -------------
NODES = {"n1": ["cam1", "cam2"], "n2": ["cam3", "cam4"]}
CAMERAS = [c for cams in NODES.values() for c in cams]
DT = 0.1


def _building(seed: int = 0, ticks: int = 120, people: int = 7, dim: int = 32):
    """Per tick: [("ending", tracklet) | ("end", cam, tid) ...] and the tick's tracklets, in a
    single process's order; plus the tracklets linked at the close. Each person walks through
    cameras one after another (sometimes two at once for look-alikes); every track sends
    an embedding of its person (with noise) every few ticks, and some end before sending. One
    person is seen blurred (more noise): their tracks are often near an identity without being
    under the threshold, and wait for more crops. A track that ends, or is live at the close,
    sends its last tracklet once more in the ending phase, as an edge node does for every track
    whose id has not come back (the associator ignores it when the track is decided)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(people, dim))
    base[1] = base[0] + 0.35 * rng.normal(size=dim)  # two look-alikes
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    visits = []  # (person, camera, start tick, end tick)
    for p in range(people):
        t = int(rng.integers(0, 20))
        while t < ticks:
            length = int(rng.integers(8, 30))
            visits.append((p, CAMERAS[int(rng.integers(0, len(CAMERAS)))], t, min(t + length, ticks + 5)))
            t += length + int(rng.integers(3, 25))
    next_tid = dict.fromkeys(CAMERAS, 0)
    tracks = []  # (camera, tid, person, start, end)
    for p, cam, s, e in sorted(visits, key=lambda v: (v[2], v[1])):
        next_tid[cam] += 1
        tracks.append((cam, next_tid[cam], p, s, e))
    sent: set = set()
    plan = []
    for t in range(ticks):
        now = round(t * DT, 6)
        ops, batch = [], []
        for cam in CAMERAS:
            for c, tid, p, _s, e in sorted(tracks, key=lambda x: x[1]):
                if c == cam and e == t:  # ends this tick
                    ops.append(("ending", _tl(c, tid, base[p], rng, now, NOISE[p])))
                    sent.add((c, tid))
                    ops.append(("end", c, tid, now))
        for cam in CAMERAS:
            for c, tid, p, s, e in tracks:
                if c == cam and s < t < e and (t - s) % 3 == 1 and rng.random() < 0.8:
                    batch.append(_tl(c, tid, base[p], rng, now, NOISE[p]))
                    sent.add((c, tid))
        plan.append((now, ops, batch))
    last = round((ticks - 1) * DT, 6)
    closing = [
        _tl(c, tid, base[p], rng, last, NOISE[p]) for cam in CAMERAS for c, tid, p, s, e in tracks if c == cam and e >= ticks
    ]
    return plan, closing


#: per person, the noise of their embeddings (person 2 is seen blurred)
NOISE = {p: 0.16 if p == 2 else 0.08 for p in range(32)}


def _tl(cam, tid, vec, rng, now, noise=0.08):
    emb = vec + noise * rng.normal(size=vec.shape)
    emb = (emb / np.linalg.norm(emb)).astype(np.float32)
    return Tracklet(cam, tid, emb, now, int(round(now / DT)), (0.0, 0.0, 10.0, 20.0))


CONFIG = AssociationConfig(match_threshold=0.3)
#: what a node says of its association settings (as ``EdgeAssociator._settings`` does)
HELLO_SETTINGS = {
    "match_threshold": 0.3,
    "merge_threshold": None,
    "camera_centring": CONFIG.camera_centring,
    "camera_centring_prior": CONFIG.camera_centring_prior,
    "camera_centring_window": CONFIG.camera_centring_window,
}


def _reference(plan, closing, waited: set | None = None) -> list:
    """The single process: one Associator, ending tracks linked first (only without an id, and
    at once: ``final``), then the tick's batch; at the close, the tracks still undecided.
    ``waited`` collects the tracks that were left waiting for more crops after a call."""
    assoc, decisions = Associator(CONFIG), []
    waited = set() if waited is None else waited
    for _now, ops, batch in plan:
        for op in ops:
            if op[0] == "ending":
                if (op[1].camera, op[1].track_id) not in assoc.assignment:
                    decisions += assoc.associate([op[1]], final=True)
            else:
                assoc.end_track(op[1], op[2], op[3])
        if batch:
            decisions += assoc.associate(batch)
            waited.update(assoc.waiting)
    for t in closing:
        if (t.camera, t.track_id) not in assoc.assignment:
            decisions += assoc.associate([t], final=True)
    assert not assoc.waiting
    return decisions


def _node_messages(plan, closing) -> dict[str, list[dict]]:
    """What each node sends, in its own order (hello, per tick its endings, batch and mark,
    then its closing tracklets and bye)."""
    out = {}
    for node, cams in NODES.items():
        seq = iter(range(1, 10**6))
        run = f"run-{node}"
        m = [msgs.hello(node, run, next(seq), cams, HELLO_SETTINGS)]
        for now, ops, batch in plan:
            for op in ops:
                cam = op[1].camera if op[0] == "ending" else op[1]
                if cam not in cams:
                    continue
                if op[0] == "ending":
                    m.append(msgs.tracklet(node, run, next(seq), op[1], msgs.ENDING))
                else:
                    m.append(msgs.end(node, run, next(seq), op[1], op[2], op[3], msgs.ENDING))
            m += [msgs.tracklet(node, run, next(seq), t, msgs.TICK) for t in batch if t.camera in cams]
            m.append(msgs.tick(node, run, next(seq), now))
        m += [msgs.tracklet(node, run, next(seq), t, msgs.CLOSING) for t in closing if t.camera in cams]
        m.append(msgs.bye(node, run, next(seq), plan[-1][0]))
        out[node] = m
    return out


def _interleave(per_node: dict[str, list], seed: int) -> list[dict]:
    """The nodes' messages as they might reach the broker: each node in its own order, the
    nodes mixed at random."""
    rng = random.Random(seed)
    queues = {n: list(m) for n, m in per_node.items()}
    out = []
    while any(queues.values()):
        node = rng.choice([n for n, q in queues.items() if q])
        out.append(queues[node].pop(0))
    return out


def _published(client, results: str) -> list:
    return [
        msgs.decision_from_record(r) for _id, fields in client.xrange(results) for r in msgs.decode_group(fields)["decisions"]
    ]


def _drain(central, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        read = central.poll(block_ms=20)
        central.solve()
        if central.finished() and not read:
            break
    assert central.finished(), "the associator did not finish"


def test_the_central_associator_decides_like_one_process(broker):
    from adfl_deploy.broker.central import CentralAssociator

    plan, closing = _building(seed=1)
    waited: set = set()
    expected = _reference(plan, closing, waited)
    assert sum(isinstance(d, GlobalIdAssigned) and not d.new for d in expected) >= 5  # cross-camera links happen
    assert waited  # a track waited for more crops (and was decided later, or when it ended)
    decided = {(d.camera, d.track_id) for d in expected if isinstance(d, GlobalIdAssigned)}
    assert waited <= decided
    client = broker.client()
    stream = _interleave(_node_messages(plan, closing), seed=2)
    # half before the associator starts, half while it runs
    for fields in stream[: len(stream) // 2]:
        client.xadd("adfl", fields)
    central = CentralAssociator(broker.url, AssociationConfig(), node_timeout=60)
    central.restore()
    central.poll(block_ms=10)
    central.solve()
    for fields in stream[len(stream) // 2 :]:
        client.xadd("adfl", fields)
    _drain(central)
    assert _published(client, "adfl:decisions") == expected
    # every input acknowledged; health reports it
    health = central.measure_health()
    assert health["pending"] == 0 and health["lag"] == 0 and health["unsolved_inputs"] == 0
    summary = central.summary(finished=True)
    assert summary["messages"]["tr"] == sum(len(b) for _n, _o, b in plan) + sum(
        op[0] == "ending" for _n, ops, _b in plan for op in ops
    ) + len(closing)
    assert summary["decision_latency_ms_p99"] is not None and summary["cost_ms_per_tracklet_p50"] > 0


def test_a_message_resent_or_redelivered_changes_nothing(broker):
    from adfl_deploy.broker.central import CentralAssociator

    plan, closing = _building(seed=3, ticks=60)
    expected = _reference(plan, closing)
    client = broker.client()
    stream = _interleave(_node_messages(plan, closing), seed=4)
    for i, fields in enumerate(stream):
        client.xadd("adfl", fields)
        if fields["k"] == "tr" and i % 4 == 0:
            client.xadd("adfl", fields)  # a node resending after a lost reply: same node, run, seq
    central = CentralAssociator(broker.url, node_timeout=60)
    central.restore()
    _drain(central)
    assert _published(client, "adfl:decisions") == expected
    assert central.counts["duplicates"] == sum(1 for i, f in enumerate(stream) if f["k"] == "tr" and i % 4 == 0)


def _assign_counts(decisions) -> dict:
    counts: dict = {}
    for d in decisions:
        if isinstance(d, GlobalIdAssigned):
            counts[(d.camera, d.track_id)] = counts.get((d.camera, d.track_id), 0) + 1
    return counts


@pytest.mark.parametrize("kill_after_groups,snapshot_seconds", [(5, 0), (40, 0), (40, 0.05)])
def test_kill_9_of_adfl_associate_then_restart_loses_nothing_and_assigns_nothing_twice(
    broker, tmp_path, kill_after_groups, snapshot_seconds
):
    plan, closing = _building(seed=5)
    expected = _reference(plan, closing)
    client = broker.client()
    stream = _interleave(_node_messages(plan, closing), seed=6)
    cmd = [*ADFL, "associate", "--broker", broker.url, "--until-done", "--out", str(tmp_path / "assoc"), "--node-timeout", "60"]
    cmd += ["--snapshot-seconds", str(snapshot_seconds)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sent = 0
    while sent < len(stream) and client.xlen("adfl:decisions") < kill_after_groups:
        client.xadd("adfl", stream[sent])
        sent += 1
        if sent % 20 == 0:
            time.sleep(0.01)
    deadline = time.monotonic() + 30
    state = tmp_path / "assoc" / "associator-state.pkl"
    while (client.xlen("adfl:decisions") < kill_after_groups or (snapshot_seconds and not state.exists())) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)  # mid-run: some inputs delivered and not acknowledged
    first.wait(10)
    before = client.xlen("adfl:decisions")
    assert before >= kill_after_groups
    for fields in stream[sent:]:
        client.xadd("adfl", fields)
    started = time.monotonic()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 30  # it never waits out --node-timeout for a node that said bye
    assert second.returncode == 0, second.stderr
    published = _published(client, "adfl:decisions")
    assert published == expected  # the same decisions as one process that never stopped
    counts = _assign_counts(published)
    every = {(t.camera, t.track_id) for _n, ops, b in plan for t in b + [o[1] for o in ops if o[0] == "ending"]}
    every |= {(t.camera, t.track_id) for t in closing}
    assert set(counts) == every and set(counts.values()) == {1}  # none lost, none assigned twice
    summary = json.loads((tmp_path / "assoc" / "summary.json").read_text())
    # the restart replayed the journal after its snapshot (all of it without one)
    assert summary["snapshot"]["loaded"] == bool(snapshot_seconds)
    assert summary["snapshot"]["entries"] + summary["replayed"]["groups"] == before
    assert summary["finished"] and summary["replayed"]["mismatched_groups"] == 0
    assert summary["health"]["pending"] == 0


class _FakePipelineClock:
    """Drives a RemoteAssociator the way Pipeline does: events, then its calls."""

    def __init__(self, remote):
        self.remote = remote
        remote.on_event(RunStarted("r", tuple(remote.cameras), "now"))

    def tick(self, now: float, tracklets: list[Tracklet]) -> list:
        decisions = self.remote.associate(tracklets) if tracklets else []
        for cam in self.remote.cameras:
            self.remote.on_event(
                FrameTracked(cam, 0, now, np.zeros((1, 1, 3), np.uint8), np.zeros((0, 4)), np.zeros(0), np.zeros(0), [])
            )
        self.remote.on_event(TickStats(1, {}, {}, 0, 0))
        return decisions


def _remote(broker, tmp_path, **publish):
    from adfl_deploy.broker.edge import RemoteAssociator

    cfg = PublishConfig(url=broker.url, node="n1", retry_seconds=0.0, settle_seconds=10, **publish)
    return RemoteAssociator(cfg, ["cam1"], "run-n1", CONFIG, 0.3, 0.18, "test", tmp_path)


@pytest.mark.parametrize("disk", [False, True])
def test_a_node_buffers_while_the_broker_is_down_and_resends_in_order(broker, tmp_path, disk):
    rng = np.random.default_rng(0)
    remote = _remote(broker, tmp_path, buffer_messages=12, buffer_disk=disk)
    clock = _FakePipelineClock(remote)
    vec = rng.normal(size=16)
    t = [_tl("cam1", 1 + i % 3, vec, rng, round(i * DT, 6)) for i in range(30)]
    for i in range(5):  # broker up: hello + 5 x (tracklet, tick mark)
        clock.tick(t[i].time, [t[i]])
    client = broker.client()
    assert client.xlen("adfl") == 1 + 5 * 2
    broker.stop()
    for i in range(5, 15):  # down: 10 x 2 messages into room for 12 -> the 8 oldest dropped
        clock.tick(t[i].time, [t[i]])
    stats = remote.stats()
    assert stats["buffered_now"] == 12 and stats["dropped"] == {"tr": 4, "tick": 4} and not stats["broker_up"]
    if disk:
        assert (tmp_path / "publish-buffer.jsonl").stat().st_size > 0
    broker.start()  # the append-only file brings back what was there
    clock.tick(t[15].time, [t[15]])
    client = broker.client()
    got = [msgs.decode(i, f) for i, f in client.xrange("adfl")]
    # the tick's tracklet joined the full buffer before it was sent: one more dropped (tr 9)
    assert remote.stats()["dropped"] == {"tr": 5, "tick": 4}
    assert len(got) == 1 + 5 * 2 + 12 + 1
    assert [m.seq for m in got] == sorted(m.seq for m in got)  # in order
    lost = {m.seq for m in got} ^ set(range(1, got[-1].seq + 1))
    assert len(lost) == 9 and max(lost) < min(m.seq for m in got[11:])  # exactly the oldest of the outage
    assert remote.stats()["outages"] == 1 and remote.stats()["buffered_now"] == 0
    remote.close()


def test_a_node_labels_its_tracks_with_the_decisions_that_come_back(broker, tmp_path):
    from adfl_deploy.broker.central import CentralAssociator

    rng = np.random.default_rng(1)
    remote = _remote(broker, tmp_path)
    clock = _FakePipelineClock(remote)
    central = CentralAssociator(broker.url, node_timeout=60)
    central.restore()
    a, b = rng.normal(size=16), rng.normal(size=16)
    clock.tick(0.0, [_tl("cam1", 1, a, rng, 0.0), _tl("cam1", 2, b, rng, 0.0)])
    assert (("cam1", 1) in remote.assignment) and remote.assignment.get(("cam1", 1)) is None  # sent, not decided yet
    central.poll(block_ms=50)
    central.solve()
    decisions = clock.tick(0.1, [])
    decisions += remote.associate([])
    assert sorted((d.track_id, d.global_id, d.new) for d in decisions) == [(1, 1, True), (2, 2, True)]
    assert remote.assignment.get(("cam1", 1)) == 1 and remote.assignment.get(("cam1", 2)) == 2
    remote.end_track("cam1", 2, 0.2)
    settled = []
    central_done = False

    def settle():
        nonlocal settled
        settled = remote.settle()

    import threading

    th = threading.Thread(target=settle)
    th.start()
    while th.is_alive():
        central.poll(block_ms=20)
        central.solve()
        central_done = central.finished()
    th.join()
    assert central_done and settled == [] and remote.stats()["messages"] == {"hello": 1, "tr": 2, "tick": 1, "end": 1, "bye": 1}
    assert not any(isinstance(d, GlobalIdMerged) for d in decisions)


def test_an_unreachable_broker_or_a_bad_url_is_one_line_and_writes_nothing(tmp_path, broker):
    out = tmp_path / "run"
    video = tmp_path / "frames"
    video.mkdir()
    import cv2

    for i in range(3):
        cv2.imwrite(str(video / f"{i:03d}.png"), np.zeros((64, 64, 3), np.uint8))
    port = _free_port()
    for url, words in (
        (f"redis://127.0.0.1:{port}/adfl", "cannot reach the broker"),
        ("redis://127.0.0.1:notaport/adfl", "port"),
        ("amqp://127.0.0.1/adfl", "redis://HOST:PORT/STREAM"),
    ):
        r = subprocess.run(
            [*ADFL, "track", "--source", f"cam1={video}", "--model", "colour-histogram", "--out", str(out), "--publish", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert r.returncode == 2 and len(lines) == 1 and words in lines[0], r.stderr
        assert not out.exists()
    r = subprocess.run(
        [*ADFL, "associate", "--broker", f"redis://127.0.0.1:{port}/x"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "cannot reach the broker" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_group_waits_for_every_live_node_and_not_for_a_silent_one(broker):
    from adfl_deploy.broker.central import CentralAssociator, Node

    central = CentralAssociator(broker.url, node_timeout=5)
    central.nodes = {"a": Node("a", watermark=3.0, last_wall=100.0), "b": Node("b", watermark=1.0, last_wall=100.0)}
    assert central.ready_time(now=101.0) == 1.0
    assert central.ready_time(now=104.5) == 1.0
    central.nodes["b"].last_wall = 98.0  # silent for 6 s: not waited for
    assert central.ready_time(now=104.5) == 3.0
    central.nodes["a"].ended = True
    assert math.isinf(central.ready_time(now=104.5))


def test_a_node_that_restarts_never_continues_its_previous_runs_tracks(broker):
    from adfl_deploy.broker.central import CentralAssociator

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=16), rng.normal(size=16)
    client = broker.client()
    first = [
        msgs.hello("n1", "A", 1, ["cam1"], {}),
        msgs.tracklet("n1", "A", 2, _tl("cam1", 1, a, rng, 0.0), msgs.TICK),
        msgs.tick("n1", "A", 3, 0.0),
        msgs.end("n1", "A", 4, "cam1", 1, 0.1),
        msgs.bye("n1", "A", 5, 0.1),
    ]
    # the node restarts: track ids start at 1 again, and this is someone else
    second = [
        msgs.hello("n1", "B", 1, ["cam1"], {}),
        msgs.tracklet("n1", "B", 2, _tl("cam1", 1, b, rng, 5.0), msgs.TICK),
        msgs.tick("n1", "B", 3, 5.0),
        msgs.bye("n1", "B", 4, 5.0),
    ]
    central = CentralAssociator(broker.url, CONFIG, node_timeout=60)
    central.restore()
    for fields in first:
        client.xadd("adfl", fields)
    _drain(central)
    for fields in second:
        client.xadd("adfl", fields)
    _drain(central)
    recs = [r for _id, f in client.xrange("adfl:decisions") for r in msgs.decode_group(f)["decisions"]]
    assert [(r["cam"], r["tid"], r["run"], r["gid"], r["new"]) for r in recs] == [
        ("cam1", 1, "A", 1, True),
        ("cam1", 1, "B", 2, True),
    ]


def _final_ids(run: Path) -> dict:
    """(camera, track) -> global id from a run's events.jsonl, merges followed to the end."""
    ids, merged = {}, {}
    for line in (run / "events.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["event"] == "global_id_assigned":
            ids[(rec["camera"], rec["track_id"])] = rec["global_id"]
        elif rec["event"] == "global_id_merged":
            merged[rec["merged"]] = rec["kept"]
    out = {}
    for key, gid in ids.items():
        while gid in merged:
            gid = merged[gid]
        out[key] = gid
    return out


def test_two_adfl_track_nodes_and_adfl_associate_give_one_process_ids(broker, tmp_path):
    """The real pipeline end to end: a generated scene, one process on all cameras against
    two ``adfl track --publish`` nodes and ``adfl associate``, ground-truth boxes."""
    import yaml

    scene = tmp_path / "scene"
    subprocess.run(
        [*ADFL, "scene", "--cameras", "3", "--seconds", "15", "--people", "6", "--seed", "3", "--size", "320x180"]
        + ["--out", str(scene)],
        check=True,
        capture_output=True,
    )

    def config(cams, out):
        path = tmp_path / f"{out.name}.yaml"
        data = {
            "sources": [f"{c}={scene / c / 'video.mp4'}" for c in cams],
            "detections": {c: str(scene / c / "gt" / "gt.txt") for c in cams},
            "out": str(out),
            "write_videos": False,
            "sinks": ["events", "mot", "summary"],
        }
        path.write_text(yaml.safe_dump(data))
        return str(path)

    single = tmp_path / "single"
    subprocess.run([*ADFL, "track", "--config", config(["cam1", "cam2", "cam3"], single)], check=True, capture_output=True)
    assoc = subprocess.Popen(
        [*ADFL, "associate", "--broker", broker.url, "--until-done", "--nodes", "a,b", "--out", str(tmp_path / "assoc")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    nodes = [
        subprocess.Popen(
            [*ADFL, "track", "--config", config(cams, tmp_path / name), "--publish", broker.url, "--node", name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, cams in (("a", ["cam1", "cam2"]), ("b", ["cam3"]))
    ]
    assert [p.wait(240) for p in nodes] == [0, 0]
    assert assoc.wait(60) == 0
    one = _final_ids(single)
    many = {**_final_ids(tmp_path / "a"), **_final_ids(tmp_path / "b")}
    assert len(one) >= 5 and many == one
    summary = json.loads((tmp_path / "assoc" / "summary.json").read_text())
    assert summary["finished"] and summary["health"]["pending"] == 0
    publish = json.loads((tmp_path / "a" / "summary.json").read_text())["sinks"]["publish"]
    assert publish["dropped"] == {} and publish["sent_tracks"] == publish["decided_tracks"] == len(
        [k for k in one if k[0] != "cam3"]
    )


def test_a_restart_from_a_snapshot_replays_only_the_journal_after_it(broker, tmp_path):
    from adfl_deploy.broker.central import CentralAssociator

    plan, closing = _building(seed=7)
    waited: set = set()
    expected = _reference(plan, closing, waited)
    assert waited  # tracks waiting for more crops cross the snapshots, one of them until it ends
    client = broker.client()
    stream = _interleave(_node_messages(plan, closing), seed=8)
    third = len(stream) // 3
    first = CentralAssociator(broker.url, node_timeout=60, out=tmp_path, snapshot_seconds=0)
    first.restore()
    for fields in stream[:third]:
        client.xadd("adfl", fields)
    first.poll(block_ms=10)
    first.solve()
    first.save_snapshot()
    covered = client.xlen("adfl:decisions")
    assert first.snapshot["saved"] == 1 and covered > 5
    for fields in stream[third : 2 * third]:
        client.xadd("adfl", fields)
    first.poll(block_ms=10)
    first.solve()
    at_crash = client.xlen("adfl:decisions")
    assert at_crash > covered
    del first  # gone without a word, like kill -9
    for fields in stream[2 * third :]:
        client.xadd("adfl", fields)
    second = CentralAssociator(broker.url, node_timeout=60, out=tmp_path, snapshot_seconds=0)
    second.restore()
    assert second.snapshot == {"loaded": True, "entries": covered, "saved": 0}
    assert second.replayed["groups"] == at_crash - covered and second.replayed["mismatched_groups"] == 0
    _drain(second)
    assert _published(client, "adfl:decisions") == expected
    # a snapshot of another broker's journal is not used
    other = CentralAssociator(broker.url.replace("/adfl", "/other"), node_timeout=60, out=tmp_path, snapshot_seconds=0)
    other.restore()
    assert not other.snapshot["loaded"]


def test_a_node_forgets_ended_tracks_once_decided(broker, tmp_path):
    """Memory stays flat on a node that runs for days: a track that ended is forgotten once its
    id is known (and one that ended undecided, once its id comes)."""
    from adfl_deploy.broker.central import CentralAssociator

    rng = np.random.default_rng(4)
    remote = _remote(broker, tmp_path)
    clock = _FakePipelineClock(remote)
    central = CentralAssociator(broker.url, node_timeout=60)
    central.restore()
    clock.tick(0.0, [_tl("cam1", t, rng.normal(size=16), rng, 0.0) for t in (1, 2)])
    central.poll(block_ms=50)
    central.solve()
    clock.tick(0.1, [])
    remote.associate([])  # both decisions are here now
    remote.end_track("cam1", 1, 0.2)  # decided, then ended: forgotten
    clock.tick(0.2, [_tl("cam1", 3, rng.normal(size=16), rng, 0.2)])
    remote.end_track("cam1", 3, 0.3)  # ended before its id came: kept until it comes
    assert set(remote.assignment.sent) == {("cam1", 2), ("cam1", 3)}
    clock.tick(0.3, [])
    central.poll(block_ms=50)
    central.solve()
    decisions = remote.associate([])
    assert [(d.track_id, d.global_id) for d in decisions] == [(3, 3)]
    assert set(remote.assignment.sent) == {("cam1", 2)} and dict(remote.assignment) == {("cam1", 2): 2}
    stats = remote.stats()
    assert (stats["sent_tracks"], stats["decided_tracks"], stats["undecided_now"]) == (3, 3, 0)
    # a merge of an id this node labelled still reaches its journal after the track was forgotten
    broker.client().xadd("adfl:decisions", msgs.encode_group(0.4, [], [GlobalIdMerged(9, 1, 0.1, 0.4)], {}))
    assert remote.associate([]) == [GlobalIdMerged(9, 1, 0.1, 0.4)]
    assert remote.associate([]) == []  # and only once


@pytest.mark.parametrize("own_threshold", [None, 0.4])
def test_camera_centring_goes_with_the_threshold_it_was_calibrated_for(broker, own_threshold):
    """A node's threshold calibrated on centred embeddings is used on centred embeddings, whatever
    the associator's own setting; an associator with its own threshold keeps its own centring."""
    from adfl_deploy.broker.central import CentralAssociator

    settings = {"match_threshold": 0.55, "merge_threshold": None, "camera_centring": True, "camera_centring_prior": 7.0}
    settings["camera_centring_window"] = 300
    own = AssociationConfig(match_threshold=own_threshold, camera_centring=False)
    central = CentralAssociator(broker.url, own, node_timeout=60)
    central.restore()
    assoc = central._ensure_associator(json.loads(msgs.hello("n1", "run-n1", 1, ["cam1"], settings)["info"]))
    if own_threshold is None:
        assert assoc.match_threshold == 0.55 and assoc.centring is not None
        assert (assoc.centring.prior, assoc.centring.window) == (7.0, 300)
    else:
        assert assoc.match_threshold == 0.4 and assoc.centring is None
    # a restarted associator reads the same settings back from the broker
    again = CentralAssociator(broker.url, own, node_timeout=60)
    again.restore()
    assert (again._ensure_associator(None).centring is None) == (own_threshold is not None)


def test_a_threshold_from_before_centring_is_used_on_raw_embeddings(broker):
    """A node or stored settings without the centring keys calibrated on raw embeddings: the
    central associator does not centre, whatever its own default; a restart reads the same."""
    from adfl_deploy.broker.central import CentralAssociator

    central = CentralAssociator(broker.url, AssociationConfig(), node_timeout=60)
    central.restore()
    old_hello = json.loads(msgs.hello("n1", "run-n1", 1, ["cam1"], {"match_threshold": 0.3, "merge_threshold": None})["info"])
    assert AssociationConfig().camera_centring and central._ensure_associator(old_hello).centring is None
    client = broker.client()
    client.set(central.settings_key, json.dumps({"match_threshold": 0.3, "merge_threshold": None}))  # an old run's
    again = CentralAssociator(broker.url, AssociationConfig(), node_timeout=60)
    again.restore()
    assoc = again._ensure_associator(None)
    assert assoc.centring is None and assoc.match_threshold == 0.3


def test_a_node_with_another_gallery_rule_or_centring_is_warned_about(broker, caplog):
    """The gallery rule is the associator's: a node that keeps another one (an older version, or
    set by hand) is named in one warning and counted, not silently overruled."""
    from adfl_deploy.broker.central import CentralAssociator

    central = CentralAssociator(broker.url, AssociationConfig(match_threshold=0.5), node_timeout=60)
    central.restore()
    for node, rule in (("n1", "tracklet"), ("n2", "update")):
        info = json.loads(msgs.hello(node, f"run-{node}", 1, [f"cam-{node}"], {"gallery_entries": rule})["info"])
        central._check_hello(msgs.Message("hello", node, f"run-{node}", 1, 0.0, info=info))
    assert central.counts["settings_mismatch"] == 1
    assert "node n2 keeps gallery_entries=update, this associator tracklet" in caplog.text
    # the same for camera centring, which the associator does too; a node that agrees is not counted
    for node, centring in (("n3", True), ("n4", False)):
        info = json.loads(msgs.hello(node, f"run-{node}", 1, [f"cam-{node}"], {"camera_centring": centring})["info"])
        central._check_hello(msgs.Message("hello", node, f"run-{node}", 1, 0.0, info=info))
    assert central.counts["settings_mismatch"] == 2
    assert "node n4 keeps camera_centring=False, this associator True" in caplog.text


def test_nodes_that_white_balance_differently_are_warned_about(broker, caplog):
    """White balance happens on the nodes, before embedding: a node that embeds raw crops beside
    nodes that balance them (an older version, or set by hand) sends embeddings of another
    kind, so it is named in one warning and counted; nodes that agree are not."""
    from adfl_deploy.broker.central import CentralAssociator

    central = CentralAssociator(broker.url, AssociationConfig(match_threshold=0.5), node_timeout=60)
    central.restore()
    for node, balance in (("n1", "grey-world"), ("n2", "grey-world"), ("n3", "none")):
        info = json.loads(msgs.hello(node, f"run-{node}", 1, [f"cam-{node}"], {"white_balance": balance})["info"])
        central._check_hello(msgs.Message("hello", node, f"run-{node}", 1, 0.0, info=info))
    assert central.counts["settings_mismatch"] == 1
    assert "node n3 embeds crops with white_balance=none, node n1 with grey-world" in caplog.text
