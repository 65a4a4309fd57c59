"""``CentralAssociator``: the one ``Associator`` of many edge nodes, behind ``adfl associate``.

It reads every node's messages through a consumer group and feeds them to one
``adfl_deploy.association.Associator`` (the same class a single process uses) in the order a
single process would: inputs are grouped by their frame time, and a group is solved once every
live node has finished that time (its ``tick`` watermark), so one group holds the tracklets of
all cameras at that moment and is solved jointly, as one tick of ``adfl track`` on all cameras
would. Inside a group: tracks that end before they had an id (and track ends), by camera and
message order; then the tick's batch; then tracks linked when a node's run closed. A node that
has sent nothing for ``node_timeout`` seconds is not waited for (its later messages are solved
late, in the next group).

Each solved group becomes one entry of the decision stream, written and acknowledged in one
transaction (``MULTI``): the decisions for the nodes and, with the ids of its inputs, the
associator's journal. The associator is deterministic given its ordered inputs, so a restart
(after ``kill -9`` too) rebuilds its state by replaying the journal without publishing, then
takes the messages that were delivered but not acknowledged: those already in the journal are
acknowledged and skipped, the others solved. Delivery is at least once; a message a node resent
(same node, run and ``seq``) is recognised and dropped, and decisions are idempotent by tracklet.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adfl_deploy.association.associator import AssociationConfig, Associator
from adfl_deploy.broker import messages as msgs
from adfl_deploy.broker.config import BrokerError, parse_broker_url
from adfl_deploy.broker.edge import connect
from adfl_deploy.files import atomic_write_text
from adfl_deploy.timing import latency_window

log = logging.getLogger(__name__)

GROUP = "associators"
#: the associator's track id of a node's track: its run's index on that camera x RUN_STRIDE +
#: the node's track id, so a node that restarts (track ids from 1 again) never continues the
#: previous run's tracks
RUN_STRIDE = 1_000_000_000


def camera_order(camera: str) -> list:
    """cam2 before cam10: the order a single process lists numbered cameras in."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", camera)]


@dataclass
class Node:
    name: str
    run: str = ""
    cameras: list[str] = field(default_factory=list)
    watermark: float = -math.inf
    ended: bool = False
    last_wall: float = 0.0
    messages: int = 0


class CentralAssociator:
    def __init__(
        self,
        url: str,
        config: AssociationConfig = AssociationConfig(),
        consumer: str = "associator-1",
        node_timeout: float = 10.0,
        out: str | Path | None = None,
        summary_seconds: float = 5.0,
        client=None,
        expect_nodes: list[str] | None = None,
        snapshot_seconds: float = 60.0,
    ) -> None:
        self.where = parse_broker_url(url)
        self.url = url
        self.config = config
        self.consumer = consumer
        self.node_timeout = node_timeout
        self.out = Path(out) if out is not None else None
        self.summary_seconds = summary_seconds
        self.client = client if client is not None else connect(url)
        self.associator: Associator | None = None
        self.settings: dict | None = None
        #: (node, setting) of the first node that told its crop white balance: the others must match
        self._white_balance: tuple[str, str] | None = None
        self.nodes: dict[str, Node] = {}
        self.pending: list[msgs.Message] = []
        self.marks: list[str] = []  # ids of hello/tick/bye messages, acknowledged with the next entry
        self._urgent_marks = False  # a hello or bye among them
        self._marks_since = 0.0
        self._unpublished: list[tuple[dict, list[str], list[str]]] = []  # journal entries the broker has not taken yet
        self.done: set[str] = set()  # input ids in the journal
        self.max_seq: dict[tuple[str, str], int] = {}
        self.solved_time = -math.inf
        self._run_index: dict[tuple[str, str], int] = {}  # (camera, run) -> index, in the order first solved
        self._run_of: dict[tuple[str, int], str] = {}
        self.counts: Counter = Counter()
        self.latency_ms = latency_window()
        self.cost_ms_per_tracklet = latency_window()
        self.replayed = {"groups": 0, "inputs": 0, "missing_inputs": 0, "mismatched_groups": 0}
        self.health: dict = {}
        self._last_summary = 0.0
        self._stop = False
        #: nodes waited for from the start, before they have spoken (a fixed deployment names
        #: them, so the first moments are not solved without a node that is still loading)
        self.expect_nodes = list(expect_nodes or [])
        #: save the associator's state in OUT/SNAPSHOT this often, so a restart replays only
        #: the journal after it (0 = never: a restart replays the whole journal)
        self.snapshot_seconds = snapshot_seconds
        self._last_snapshot = time.monotonic()
        self._last_entry = ""  # the id of the last journal entry applied
        self._last_inputs: set[str] = set()  # its input ids (an entry written twice is adjacent)
        self.journal_entries = 0
        self.snapshot = {"loaded": False, "entries": 0, "saved": 0}
        self.started = time.time()

    # -- the associator and its settings ----------------------------------------------------------
    @property
    def settings_key(self) -> str:
        return f"{self.where.stream}:associator"

    def _ensure_associator(self, hello: dict | None) -> Associator:
        """The first node's calibrated thresholds (unless set here), kept in the broker so a
        restarted associator uses the same ones. Camera centring goes with the threshold: a
        threshold calibrated on centred embeddings is used on centred embeddings, and one from a
        node or stored settings that predate centring (no ``camera_centring`` key) on raw ones."""
        if self.associator is not None:
            return self.associator
        stored = self.client.get(self.settings_key)
        if stored:
            kept = json.loads(stored)
            settings = {
                "match_threshold": kept.get("match_threshold"),
                "merge_threshold": kept.get("merge_threshold"),
                **self._centring_settings(kept),
            }
        elif self.config.match_threshold:
            settings = {
                "match_threshold": self.config.match_threshold,
                "merge_threshold": self.config.merge_threshold,
                "camera_centring": self.config.camera_centring,
                "camera_centring_prior": self.config.camera_centring_prior,
                "camera_centring_window": self.config.camera_centring_window,
            }
        else:
            hello = hello or {}
            settings = {
                "match_threshold": hello.get("match_threshold"),
                "merge_threshold": self.config.merge_threshold or hello.get("merge_threshold"),
                **self._centring_settings(hello),
            }
        cfg = dataclasses.replace(self.config, **settings)  # checked before it is kept
        if not stored:
            self.client.set(self.settings_key, json.dumps(settings))
        self.settings = settings
        self.associator = Associator(cfg)
        log.info("associate: match threshold %.3f, merge %.3f", self.associator.match_threshold, self.associator.merge_threshold)
        return self.associator

    def _centring_settings(self, source: dict) -> dict:
        """The centring fields of a hello, stored settings or this config: off where they are
        absent (a threshold from before centring was calibrated on raw embeddings); values of
        the wrong type fall back to this associator's own."""
        on = source.get("camera_centring", False)
        prior = source.get("camera_centring_prior", self.config.camera_centring_prior)
        window = source.get("camera_centring_window", self.config.camera_centring_window)
        number = (int, float)
        return {
            "camera_centring": on is True,
            "camera_centring_prior": float(prior)
            if isinstance(prior, number) and not isinstance(prior, bool)
            else self.config.camera_centring_prior,
            "camera_centring_window": int(window)
            if isinstance(window, int) and not isinstance(window, bool)
            else self.config.camera_centring_window,
        }

    # -- solving -----------------------------------------------------------------------------------
    def _track(self, m: msgs.Message) -> int:
        """The associator's track id for a node's track (see ``RUN_STRIDE``)."""
        key = (m.camera, m.run)
        if key not in self._run_index:
            index = sum(1 for cam, _ in self._run_index if cam == m.camera)
            self._run_index[key] = index
            self._run_of[(m.camera, index)] = m.run
        return self._run_index[key] * RUN_STRIDE + m.track_id

    def records(self, decisions: list) -> list[dict]:
        """Decisions as the nodes read them: the node's own track id and run."""
        out = []
        for d in decisions:
            rec = msgs.decision_record(d)
            if rec["k"] == "assign":
                index, rec["tid"] = divmod(rec["tid"], RUN_STRIDE)
                rec["run"] = self._run_of.get((rec["cam"], index), "")
            out.append(rec)
        return out

    def apply(self, group: list[msgs.Message]) -> list:
        """Feed one group of inputs (one frame time, or late ones) to the associator in the
        single process's order; returns the decisions."""
        assoc = self._ensure_associator(None)
        for m in group:
            if m.kind in ("tr", "end"):
                track = self._track(m)
                if m.tracklet is not None:
                    m.tracklet = dataclasses.replace(m.tracklet, track_id=track)
                m.track_id = track
        decisions = []
        key = lambda m: (m.time, camera_order(m.camera), m.seq)  # noqa: E731
        for phase in (msgs.ENDING, msgs.TICK, msgs.CLOSING):
            batch = sorted((m for m in group if m.phase == phase), key=key)
            if phase == msgs.TICK:
                tracklets = [m.tracklet for m in batch if m.kind == "tr"]
                if tracklets:
                    decisions += assoc.associate(tracklets)
                ends = [m for m in batch if m.kind == "end"]
                batch = ends  # an end in a tick's phase is not sent by nodes; treat it as one
            else:
                for m in batch:
                    if m.kind == "tr":
                        if m.key not in assoc.assignment:  # a single process links an ending track only without an id
                            decisions += assoc.associate([m.tracklet], final=True)
                    elif m.kind == "end":
                        assoc.end_track(m.camera, m.track_id, m.time)
                continue
            for m in batch:
                assoc.end_track(m.camera, m.track_id, m.time)
        return decisions

    def ready_time(self, now: float | None = None) -> float:
        """Groups up to this frame time can be solved: every node still sending has finished it."""
        now = time.monotonic() if now is None else now
        waiting = [n.watermark for n in self.nodes.values() if not n.ended and now - n.last_wall < self.node_timeout]
        return min(waiting, default=math.inf)

    def solve(self, now: float | None = None) -> int:
        """Solve every group that is ready; returns how many."""
        self._flush_journal()
        limit = self.ready_time(now)
        due = [m for m in self.pending if m.time <= limit]
        if not due:
            self._journal_marks()
            return 0
        self.pending = [m for m in self.pending if m.time > limit]
        by_time: dict[float, list] = {}
        for m in due:
            by_time.setdefault(m.time, []).append(m)
        for t in sorted(by_time):
            group = by_time[t]
            t0 = time.perf_counter()
            decisions = self.apply(group)
            cost = 1000 * (time.perf_counter() - t0)
            tracklets = sum(m.kind == "tr" for m in group)
            if tracklets:
                self.cost_ms_per_tracklet.append(cost / tracklets)
            self._publish(t, group, decisions)
            self.solved_time = max(self.solved_time, t)
        return len(by_time)

    def _publish(self, t: float, group: list[msgs.Message], decisions: list) -> None:
        """Journal one solved group (its decisions, input ids and the watermarks) and
        acknowledge its inputs and the marks so far, in one transaction. The associator's
        state already holds the group, so an entry the broker did not take waits in
        ``_unpublished`` and goes first once it is back (before anything else is solved)."""
        ids = [m.id for m in group]
        entry = msgs.encode_group(t, ids, self.records(decisions), {n.name: n.watermark for n in self.nodes.values()})
        tracklet_ids = [m.id for m in group if m.kind == "tr"]
        self._unpublished.append((entry, ids + self.marks, tracklet_ids))
        self.marks = []
        self._urgent_marks = False
        self.done.update(ids)
        self.counts["decisions"] += len(decisions)
        self.counts["groups" if ids else "mark_entries"] += 1
        self._flush_journal()

    def _flush_journal(self) -> None:
        while self._unpublished:
            entry, acks, tracklet_ids = self._unpublished[0]
            pipe = self.client.pipeline(transaction=True)
            pipe.xadd(self.where.results, entry)
            if acks:
                pipe.xack(self.where.stream, GROUP, *acks)
            entry_id = pipe.execute()[0]
            self._unpublished.pop(0)
            self._last_entry = _s(entry_id)
            self._last_inputs = set(json.loads(_s(entry["d"]))["inputs"])
            self.journal_entries += 1
            now_ms = time.time() * 1000
            for i in tracklet_ids:
                self.latency_ms.append(now_ms - int(i.split("-")[0]))

    def _journal_marks(self) -> None:
        """Marks (hello, tick, bye) are acknowledged only with a journal entry that records
        the watermarks they set, so a restart knows them: with the next group, or, when none is
        due, in an entry without inputs - at once for hello and bye, else once 200 marks or a
        second have gathered."""
        if not self.marks:
            return
        urgent = self._urgent_marks or len(self.marks) >= 200 or time.monotonic() - self._marks_since >= 1.0
        if urgent:
            self._publish(self.solved_time if math.isfinite(self.solved_time) else 0.0, [], [])

    # -- reading -----------------------------------------------------------------------------------
    def ingest(self, entry_id, fields: dict, redelivered: bool = False) -> None:
        try:
            m = msgs.decode(entry_id, fields)
        except (ValueError, KeyError) as exc:
            log.warning("associate: skipping malformed message %s (%s)", entry_id, exc)
            self.counts["malformed"] += 1
            self.client.xack(self.where.stream, GROUP, entry_id)
            return
        if m.id in self.done:
            self.counts["redelivered_done"] += 1  # solved before a restart: nothing changes
            self.client.xack(self.where.stream, GROUP, m.id)
            return
        src = (m.node, m.run)
        if not redelivered and m.seq <= self.max_seq.get(src, 0):
            self.counts["duplicates"] += 1  # a node resent it after a lost reply
            self.client.xack(self.where.stream, GROUP, m.id)
            return
        self.max_seq[src] = max(self.max_seq.get(src, 0), m.seq)
        self.counts[m.kind] += 1
        node = self.nodes.setdefault(m.node, Node(m.node))
        node.last_wall = time.monotonic()
        node.messages += 1
        if m.kind in ("hello", "tick", "bye"):
            if not self.marks:
                self._marks_since = time.monotonic()
            self._urgent_marks |= m.kind != "tick"
        if m.kind == "hello":
            if node.run != m.run:
                node.ended, node.watermark = False, -math.inf
            node.run, node.cameras = m.run, list(m.info.get("cameras", []))
            self._check_hello(m)
            self.marks.append(m.id)
        elif m.kind == "tick":
            node.watermark = max(node.watermark, m.time)
            self.marks.append(m.id)
        elif m.kind == "bye":
            node.ended, node.watermark = True, math.inf
            self.marks.append(m.id)
        else:  # (a node's run ends with its bye; only a new hello starts it again)
            self.pending.append(m)

    def _check_hello(self, m: msgs.Message) -> None:
        assoc = self._ensure_associator(m.info)
        thr = m.info.get("match_threshold")
        if thr is not None and not math.isclose(thr, assoc.match_threshold, rel_tol=1e-6):
            log.warning(
                "associate: node %s calibrated match threshold %.3f, this associator uses %.3f (set it with --set)",
                m.node,
                thr,
                assoc.match_threshold,
            )
            self.counts["threshold_mismatch"] += 1
        for name in msgs.CENTRAL_SETTINGS:
            theirs, ours = m.info.get(name), getattr(assoc.config, name)
            if theirs is not None and theirs != ours:
                log.warning(
                    "associate: node %s keeps %s=%s, this associator %s (set it with --set %s=%s)",
                    m.node,
                    name,
                    theirs,
                    ours,
                    name,
                    theirs,
                )
                self.counts["settings_mismatch"] += 1
        balance = m.info.get("white_balance")  # the first node to tell sets what the others should do
        if balance is not None:
            self._white_balance = self._white_balance or (m.node, balance)
            if balance != self._white_balance[1]:
                log.warning(
                    "associate: node %s embeds crops with white_balance=%s, node %s with %s; run every node with one setting",
                    m.node,
                    balance,
                    *self._white_balance,
                )
                self.counts["settings_mismatch"] += 1
        others = {c: n.name for n in self.nodes.values() if n.name != m.node and not n.ended for c in n.cameras}
        clash = sorted(set(m.info.get("cameras", [])) & set(others))
        if clash:
            log.warning(
                "associate: camera %s of node %s is also a camera of node %s; camera names must be unique",
                clash[0],
                m.node,
                others[clash[0]],
            )

    # -- restart -----------------------------------------------------------------------------------
    def restore(self) -> None:
        """Create the consumer group if needed, replay the journal (no publishing), then take
        back what was delivered and not acknowledged."""
        import redis

        try:
            self.client.xgroup_create(self.where.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        last = self._load_snapshot() or "-"
        while True:
            entries = self.client.xrange(self.where.results, min=last, max="+", count=500)
            if last != "-":
                entries = [e for e in entries if _s(e[0]) != _s(last)]
            if not entries:
                break
            for eid, fields in entries:
                self._replay(fields)
                self._last_entry = _s(eid)
                self.journal_entries += 1
            last = entries[-1][0]
        for name in self.expect_nodes:
            self.nodes.setdefault(name, Node(name))
        for node in self.nodes.values():  # replayed and expected nodes are waited for as if they had just spoken
            node.last_wall = time.monotonic()
        if self.replayed["groups"]:
            log.warning(
                "associate: restarted; replayed %d groups (%d inputs) of the journal, %d global ids",
                self.replayed["groups"],
                self.replayed["inputs"],
                len(self.associator.global_ids) if self.associator else 0,
            )
        # messages delivered to any consumer of the group and never acknowledged
        start = "0-0"
        while True:
            reply = self.client.xautoclaim(self.where.stream, GROUP, self.consumer, min_idle_time=0, start_id=start, count=1000)
            start, claimed = reply[0], reply[1]
            for eid, fields in claimed:
                if fields:
                    self.ingest(eid, fields, redelivered=True)
            if start in (b"0-0", "0-0"):
                break
        self.counts["redelivered"] = self.counts["redelivered_done"] + sum(1 for _ in self.pending)

    def _replay(self, fields: dict) -> None:
        group = msgs.decode_group(fields)
        ids = group["inputs"]
        if ids and (all(i in self.done for i in ids) or set(ids) == self._last_inputs):
            return  # the same entry twice (its first write's reply was lost): applied once
        self._last_inputs = set(ids)
        pipe = self.client.pipeline(transaction=False)
        for i in ids:
            pipe.xrange(self.where.stream, min=i, max=i)
        found = []
        for got in pipe.execute():
            if not got:
                self.replayed["missing_inputs"] += 1
                continue
            m = msgs.decode(got[0][0], got[0][1])
            found.append(m)
            src = (m.node, m.run)
            self.max_seq[src] = max(self.max_seq.get(src, 0), m.seq)
        decisions = self.apply(found) if found else []
        if self.records(decisions) != group["decisions"]:
            self.replayed["mismatched_groups"] += 1
        self.done.update(ids)
        for name, wm in group["nodes"].items():
            node = self.nodes.setdefault(name, Node(name))
            node.watermark, node.ended = wm, math.isinf(wm) and wm > 0
        self.solved_time = max(self.solved_time, group["t"])
        self.replayed["groups"] += 1
        self.replayed["inputs"] += len(ids)

    # -- snapshots ---------------------------------------------------------------------------------
    SNAPSHOT = "associator-state.pkl"

    def save_snapshot(self) -> None:
        """The associator and what orders its inputs, up to the last journal entry written,
        atomically in OUT (private to this machine: a pickle, read back only from there).
        Unsolved inputs and marks are not in it: they are unacknowledged, so a restart gets
        them again."""
        if self.out is None or self._unpublished or not self._last_entry:
            return
        import pickle

        from adfl_deploy.files import atomic_file

        state = {
            "version": 1,
            "broker": str(self.where),
            "last_entry": self._last_entry,
            "last_inputs": self._last_inputs,
            "entries": self.journal_entries,
            "associator": self.associator,
            "settings": self.settings,
            "nodes": {n.name: (n.run, n.cameras, n.watermark, n.ended) for n in self.nodes.values()},
            "max_seq": self.max_seq,
            "solved_time": self.solved_time,
            "run_index": self._run_index,
            "run_of": self._run_of,
        }
        with atomic_file(self.out / self.SNAPSHOT, "wb") as fh:
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(self.out / self.SNAPSHOT, 0o600)
        self.done = set(self._last_inputs)  # older ids are acknowledged: never delivered again
        self.snapshot["saved"] += 1
        self._last_snapshot = time.monotonic()

    def _load_snapshot(self) -> str | None:
        """Restore from OUT's snapshot when it belongs to this broker's journal; returns the
        journal entry id it covers (replay continues after it)."""
        path = self.out / self.SNAPSHOT if self.out is not None else None
        if path is None or not path.is_file():
            return None
        import pickle

        try:
            with open(path, "rb") as fh:
                state = pickle.load(fh)
        except Exception as exc:  # a damaged file costs a full replay, nothing else
            log.warning("associate: ignoring the snapshot %s (%s); replaying the whole journal", path, type(exc).__name__)
            return None
        if state.get("broker") != str(self.where) or not self.client.xrange(
            self.where.results, min=state["last_entry"], max=state["last_entry"]
        ):
            log.warning("associate: the snapshot %s is not of this broker's journal; replaying the whole journal", path)
            return None
        self.associator, self.settings = state["associator"], state["settings"]
        for name, (run, cameras, watermark, ended) in state["nodes"].items():
            self.nodes[name] = Node(name, run, list(cameras), watermark, ended)
        self.max_seq, self.solved_time = state["max_seq"], state["solved_time"]
        self._run_index, self._run_of = state["run_index"], state["run_of"]
        self._last_entry, self._last_inputs = state["last_entry"], set(state["last_inputs"])
        self.done = set(self._last_inputs)
        self.journal_entries = state["entries"]
        self.snapshot.update(loaded=True, entries=state["entries"])
        log.warning("associate: restored the snapshot of %d journal entries from %s", state["entries"], path)
        return state["last_entry"]

    # -- the loop ----------------------------------------------------------------------------------
    def poll(self, block_ms: int = 100) -> int:
        got = self.client.xreadgroup(GROUP, self.consumer, {self.where.stream: ">"}, count=2000, block=block_ms)
        n = 0
        for _stream, entries in got or []:
            for eid, fields in entries:
                self.ingest(eid, fields)
                n += 1
        return n

    def request_stop(self) -> None:
        self._stop = True

    def finished(self) -> bool:
        """Every node that spoke has said bye (or has been silent for ``node_timeout``) and
        everything is solved and journalled."""
        now = time.monotonic()
        return (
            bool(self.nodes)
            and all(n.ended or now - n.last_wall >= self.node_timeout for n in self.nodes.values())
            and not self.pending
            and not self.marks
            and not self._unpublished
        )

    def run(self, until_done: bool = False, max_seconds: float = 0.0) -> dict:
        import redis

        self.restore()
        start = time.monotonic()
        down_since = None
        while not self._stop:
            try:
                self.poll()
                self.solve()
                if down_since is not None:
                    log.warning("associate: broker %s is back after %.1f s", self.where, time.monotonic() - down_since)
                    down_since = None
                    self.restore_group()
            except redis.ConnectionError as exc:
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning("associate: broker %s unreachable (%s); retrying", self.where, type(exc).__name__)
                    self.counts["outages"] += 1
                time.sleep(0.5)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self.restore_group()  # the broker came back empty (no persistence): start the group again
            if self.snapshot_seconds and time.monotonic() - self._last_snapshot >= self.snapshot_seconds:
                self.save_snapshot()
            if time.monotonic() - self._last_summary >= self.summary_seconds:
                self._report(finished=False)
            if until_done and self.finished():
                break
            if max_seconds and time.monotonic() - start > max_seconds:
                break
        if self.snapshot_seconds:
            self.save_snapshot()
        return self._report(finished=True)

    def restore_group(self) -> None:
        import redis

        try:
            self.client.xgroup_create(self.where.stream, GROUP, id="0", mkstream=True)
            log.warning("associate: the consumer group was missing on %s (a broker without persistence?); created it", self.where)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- health ------------------------------------------------------------------------------------
    def measure_health(self) -> dict:
        """Consumer-group pending count and lag, stream lengths, per-node watermarks."""
        import redis

        now = time.monotonic()
        try:
            pending = self.client.xpending(self.where.stream, GROUP)
            groups = {(_s(g["name"])): g for g in self.client.xinfo_groups(self.where.stream)}
            info = groups.get(GROUP, {})
            health = {
                "broker_up": True,
                "pending": int(pending["pending"]),
                "lag": info.get("lag"),
                "stream_length": self.client.xlen(self.where.stream),
                "decision_stream_length": self.client.xlen(self.where.results),
            }
        except redis.RedisError as exc:
            health = {"broker_up": False, "error": type(exc).__name__}
        health["unsolved_inputs"] = len(self.pending)
        health["nodes"] = {
            n.name: {
                "run": n.run,
                "cameras": n.cameras,
                "watermark": n.watermark if math.isfinite(n.watermark) else ("ended" if n.watermark > 0 else None),
                "seconds_since_last_message": round(now - n.last_wall, 3) if n.last_wall else None,
                "live": not n.ended and bool(n.last_wall) and now - n.last_wall < self.node_timeout,
                "messages": n.messages,
            }
            for n in self.nodes.values()
        }
        self.health = health
        return health

    def summary(self, finished: bool = False) -> dict:
        lat = np.array(self.latency_ms) if self.latency_ms else None
        cost = np.array(self.cost_ms_per_tracklet) if self.cost_ms_per_tracklet else None
        assoc = self.associator
        return {
            "broker": str(self.where),
            "consumer": self.consumer,
            "finished": finished,
            "seconds": time.time() - self.started,
            "settings": self.settings,
            "messages": dict(self.counts),
            "global_ids": sorted(assoc.global_ids) if assoc else [],
            "assigned_tracks": len(assoc.assignment) if assoc else 0,
            "decision_latency_ms_p50": float(np.median(lat)) if lat is not None else None,
            "decision_latency_ms_p99": float(np.percentile(lat, 99)) if lat is not None else None,
            "cost_ms_per_tracklet_p50": float(np.median(cost)) if cost is not None else None,
            "cost_ms_per_tracklet_p99": float(np.percentile(cost, 99)) if cost is not None else None,
            "replayed": self.replayed,
            "snapshot": self.snapshot,
            "learned_transitions": assoc.transit_model.as_dict() if assoc else {},
            "health": self.health,
        }

    def _report(self, finished: bool) -> dict:
        self._last_summary = time.monotonic()
        health = self.measure_health()
        live = sum(1 for n in health["nodes"].values() if n["live"])
        log.info(
            "associate: %d nodes (%d live), pending %s, lag %s, unsolved %d, %d decisions, %d global ids",
            len(health["nodes"]),
            live,
            health.get("pending"),
            health.get("lag"),
            health["unsolved_inputs"],
            self.counts["decisions"],
            len(self.associator.global_ids) if self.associator else 0,
        )
        data = self.summary(finished)
        if self.out is not None:
            atomic_write_text(self.out / "summary.json", json.dumps(data, indent=2, default=_plain) + "\n")
        return data


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


__all__ = ["BrokerError", "CentralAssociator", "GROUP", "Node", "camera_order"]
