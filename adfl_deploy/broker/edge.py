"""``RemoteAssociator``: what an edge node's ``Pipeline`` talks to instead of an ``Associator``.

It has the attributes the pipeline uses (``associate``, ``end_track``, ``assignment``,
``global_ids``, ``config``, the thresholds, ``transit_model``) and is also a subscriber of the
pipeline's events (tick marks, crop qualities, stats in ``summary.json`` under ``publish``):

- ``associate(tracklets)`` publishes one ``tr`` message per tracklet and returns the decisions
  for this node's cameras that arrived on the decision stream since the last call (no wait);
- ``associate_ending`` (a track that ends, or the run closes, before its id came back: the
  central links it with what it has if it is still undecided there - never sent, or waiting
  for more crops - and ignores it otherwise) and ``end_track`` publish with their phase, so
  the central associator can run them in the same order as a single process;
- ``assignment`` answers ``key in assignment`` for every track that was *sent* (the
  pipeline's "ready" rule: such a track sends every embedding) and ``assignment.get(key)``
  with the id once it has been decided (the "decide before end" rule asks that);
- ``settle()`` (when the run closes) sends ``bye`` and waits up to ``settle_seconds`` for the
  decisions still on their way, so every row that waited gets its id.

While the broker is away messages wait in a bounded buffer (``buffer``) and go out in order
when it is back; what had to be dropped is counted in the summary.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from pathlib import Path

from adfl_deploy.association.associator import AssociationConfig, Tracklet
from adfl_deploy.broker import messages as msgs
from adfl_deploy.broker.buffer import DiskBuffer, MemoryBuffer
from adfl_deploy.broker.config import BrokerError, PublishConfig, parse_broker_url
from adfl_deploy.events import CropEmbedded, FrameTracked, GlobalIdAssigned, GlobalIdMerged, RunStarted, TickStats

log = logging.getLogger(__name__)

#: messages sent per round trip when the buffer empties
BATCH = 500
PUBLISH_BUFFER = "publish-buffer.jsonl"


def connect(url: str, timeout: float = 2.0):
    """A redis client for ``url`` that has answered a PING; one ``BrokerError`` line if not."""
    try:
        import redis
    except ImportError:
        raise BrokerError("the broker needs the redis client: pip install redis (part of the base install)") from None
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    where = parse_broker_url(url)
    # no hidden retries with backoff inside the client: the node buffers and retries on its own
    # clock (retry_seconds) and the camera loop must never wait seconds on a dead broker
    client = redis.Redis(
        retry=Retry(NoBackoff(), 0),
        host=where.host,
        port=where.port,
        db=where.db,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=False,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        raise BrokerError(
            f"cannot reach the broker at {where} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "is redis-server running there?"
        ) from None
    return client


class SentAssignment(dict):
    """(camera, track) -> global id once decided; ``in`` is true from the moment a tracklet
    of the track was sent (see the module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: set[tuple[str, int]] = set()

    def __contains__(self, key) -> bool:
        return key in self.sent or dict.__contains__(self, key)


class _NoTransits:
    """The walking times are learned centrally; the node's summary has none."""

    def as_dict(self) -> dict:
        return {}


class RemoteAssociator:
    name = "publish"

    def __init__(
        self,
        publish: PublishConfig,
        cameras: list[str],
        run_id: str,
        config: AssociationConfig,
        match_threshold: float,
        merge_threshold: float,
        model: str = "",
        out: str | Path | None = None,
        client=None,
        white_balance: str = "grey-world",
    ) -> None:
        self.publish = publish
        #: the node's crop colour correction (``PipelineConfig.white_balance``), told in hello
        self.white_balance = white_balance
        self.where = parse_broker_url(publish.url)
        self.node = publish.node_name
        self.run_id = run_id
        self.cameras = list(cameras)
        self.config = config
        self.match_threshold = match_threshold
        self.merge_threshold = merge_threshold
        self.transit_model = _NoTransits()
        self.assignment = SentAssignment()
        self.global_ids: set[int] = set()
        self.client = client if client is not None else connect(publish.url)
        self._out = Path(out) if out is not None else None
        self.buffer: MemoryBuffer | None = None  # opened on first use (the run folder is claimed by then)
        self._seq = 0
        self._quality: dict[tuple[str, int], float] = {}
        self._tick_time: float | None = None  # latest frame time of the tick in progress
        self._first_time: float | None = None  # the first frame time (stream seconds covered)
        self._marked = -math.inf  # the latest tick time marked
        self._last_mark_wall = 0.0
        self._results_from = self._results_tail()
        self._down_since: float | None = None
        self._next_try = 0.0
        self.stats_counts: Counter = Counter()
        self.bytes_sent = 0
        self.outages = 0
        self.started = time.monotonic()
        self._model = model
        self._done = -math.inf  # the frame time of the last finished tick
        self._ended: set[tuple[str, int]] = set()  # tracks that ended before their id came
        self.tracks_sent = 0
        self.tracks_decided = 0

    # -- what the pipeline calls ---------------------------------------------------------------
    def associate(self, tracklets: list[Tracklet]) -> list:
        for t in tracklets:
            self._send_tracklet(t, msgs.TICK)
        return self._poll()

    def associate_ending(self, tracklets: list[Tracklet]) -> list:
        """A track linked with what it has when it ends (or when the run closes)."""
        for t in tracklets:
            self._send_tracklet(t, self._phase(t.time))
        return self._poll()

    def end_track(self, camera: str, track_id: int, time: float) -> None:
        self._send(msgs.end(self.node, self.run_id, self._next(), camera, track_id, time, self._phase(time)))
        key = (camera, track_id)
        self._quality.pop(key, None)
        if dict.__contains__(self.assignment, key):
            self._forget(key)  # ended and decided: nothing more to label (memory stays flat on long runs)
        elif key in self.assignment.sent:
            self._ended.add(key)  # its id is still on its way; forgotten once it has come

    def _forget(self, key: tuple[str, int]) -> None:
        dict.pop(self.assignment, key, None)
        self.assignment.sent.discard(key)
        self._ended.discard(key)

    def _phase(self, time: float) -> int:
        """A track linked or ended at the time of a tick already finished is the run
        closing (after that tick's batch); otherwise it is the start of a new tick."""
        return msgs.CLOSING if time <= self._done else msgs.ENDING

    def settle(self) -> list:
        """The run is closing: say so, send what waits, and collect the decisions still due
        (at most ``settle_seconds``)."""
        self._send(msgs.bye(self.node, self.run_id, self._next(), self._tick_time or 0.0))
        deadline = time.monotonic() + self.publish.settle_seconds
        decisions = []
        while True:
            self._next_try = 0.0
            self._flush()
            decisions += self._poll(block_ms=100)
            undecided = [k for k in self.assignment.sent if not dict.__contains__(self.assignment, k)]
            if (not undecided and not len(self._buffer())) or time.monotonic() >= deadline:
                break
            if self._down_since is not None:  # no broker: try again at a calm pace, not in a spin
                time.sleep(min(max(self.publish.retry_seconds, 0.05), 0.5))
        if undecided:
            self.stats_counts["undecided_at_end"] = len(undecided)
            log.warning(
                "publish: %d tracks of this node got no decision within %.0f s", len(undecided), self.publish.settle_seconds
            )
        return decisions

    # -- as a subscriber -------------------------------------------------------------------------
    def on_event(self, event) -> None:
        if isinstance(event, RunStarted):
            self._send(msgs.hello(self.node, self.run_id, self._next(), self.cameras, self._settings(self._model)))
        elif isinstance(event, FrameTracked):
            self._tick_time = event.time if self._tick_time is None else max(self._tick_time, event.time)
            self._first_time = event.time if self._first_time is None else min(self._first_time, event.time)
        elif isinstance(event, CropEmbedded):
            self._quality[(event.camera, event.track_id)] = event.quality
        elif isinstance(event, TickStats) and self._tick_time is not None:
            self._done = self._tick_time
            # every tick that sent something is marked at once (the associator can then solve
            # it); quiet ticks at most every half second, as a heartbeat
            now = time.monotonic()
            if self._tick_time > self._marked and (self._sent_this_tick or now - self._last_mark_wall >= 0.5):
                self._send(msgs.tick(self.node, self.run_id, self._next(), self._tick_time))
                self._marked, self._last_mark_wall = self._tick_time, now
            self._sent_this_tick = False

    _sent_this_tick = False

    def stats(self) -> dict:
        seconds = max(time.monotonic() - self.started, 1e-9)
        covered = (self._tick_time - self._first_time) if self._first_time is not None else 0.0
        cams = max(len(self.cameras), 1)
        messages = sum(v for k, v in self.stats_counts.items() if k in msgs.KINDS)
        buf = self._buffer()
        return {
            # per second of video (stream time): what a real-time camera costs the network
            "stream_seconds": covered,
            "bytes_per_camera_stream_second": self.bytes_sent / covered / cams if covered else None,
            "messages_per_camera_stream_second": messages / covered / cams if covered else None,
            "broker": str(self.where),
            "node": self.node,
            "messages": dict(self.stats_counts),
            "bytes_sent": self.bytes_sent,
            "bytes_per_camera_second": self.bytes_sent / seconds / cams,
            "messages_per_camera_second": messages / seconds / cams,
            "buffered_now": len(buf),
            "buffer_peak": buf.peak,
            "dropped": dict(buf.dropped),
            "outages": self.outages,
            "broker_up": self._down_since is None,
            "decided_tracks": self.tracks_decided,
            "sent_tracks": self.tracks_sent,
            "undecided_now": len(self.assignment.sent) - len(dict.keys(self.assignment)),
        }

    def close(self) -> None:
        if self.buffer is not None:
            self.buffer.close()

    # -- sending and receiving -----------------------------------------------------------------
    def _settings(self, model: str) -> dict:
        return {
            "model": model,
            "match_threshold": self.match_threshold,
            "merge_threshold": self.merge_threshold,
            "min_evidence": self.config.min_evidence,
            "evidence": self.config.evidence,
            "max_delay_seconds": self.config.max_delay_seconds,
            **{name: getattr(self.config, name) for name in msgs.CENTRAL_SETTINGS},
            "white_balance": self.white_balance,
        }

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _send_tracklet(self, t: Tracklet, phase: int) -> None:
        key = (t.camera, int(t.track_id))
        if key not in self.assignment.sent:
            self.tracks_sent += 1
        self.assignment.sent.add(key)
        self._send(msgs.tracklet(self.node, self.run_id, self._next(), t, phase, self._quality.get(key)))

    def _buffer(self) -> MemoryBuffer:
        if self.buffer is None:
            if self.publish.buffer_disk and self._out is not None:
                self.buffer = DiskBuffer(self._out / PUBLISH_BUFFER, self.publish.buffer_messages)
            else:
                self.buffer = MemoryBuffer(self.publish.buffer_messages)
        return self.buffer

    def _send(self, fields: dict) -> None:
        self._buffer().append(fields)
        self.stats_counts[str(fields["k"])] += 1
        self._sent_this_tick = True
        self._flush()

    def _flush(self) -> None:
        """Send what waits, oldest first, in batches of one round trip; on a broker error keep
        it and try again after ``retry_seconds``."""
        import redis

        buf = self._buffer()
        if not len(buf) or time.monotonic() < self._next_try:
            return
        try:
            while len(buf):
                batch = buf.peek(BATCH)
                pipe = self.client.pipeline(transaction=False)
                for fields in batch:
                    pipe.xadd(self.where.stream, fields)
                pipe.execute()
                self.bytes_sent += sum(msgs.message_bytes(f) for f in batch)
                buf.pop(len(batch))
        except redis.RedisError as exc:
            self._broker_down(exc)
            return
        if self._down_since is not None:
            log.warning(
                "publish: broker %s is back after %.1f s; resent what waited", self.where, time.monotonic() - self._down_since
            )
            self._down_since = None

    def _broker_down(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.outages += 1
            log.warning(
                "publish: broker %s unreachable (%s); buffering (at most %d messages)",
                self.where,
                type(exc).__name__,
                self.publish.buffer_messages,
            )
        self._next_try = time.monotonic() + self.publish.retry_seconds

    def _results_tail(self) -> bytes:
        """The decision stream's last id now: this run reads what comes after it."""
        last = self.client.xrevrange(self.where.results, count=1)
        return last[0][0] if last else b"0-0"

    def _poll(self, block_ms: int | None = None) -> list:
        """Decisions published since the last call, for this node's cameras (and every
        merge that touches an id seen here), applied to ``assignment`` idempotently."""
        import redis

        if self._down_since is not None and time.monotonic() < self._next_try:
            return []
        try:
            got = self.client.xread({self.where.results: self._results_from}, count=1000, block=block_ms)
        except redis.RedisError as exc:
            self._broker_down(exc)
            return []
        out = []
        mine = set(self.cameras)
        for _stream, entries in got:
            for entry_id, fields in entries:
                self._results_from = entry_id
                for rec in msgs.decode_group(fields)["decisions"]:
                    if rec.get("run", self.run_id) != self.run_id:
                        continue  # a track of another run of this camera (before a restart)
                    decision = msgs.decision_from_record(rec)
                    if isinstance(decision, GlobalIdAssigned):
                        key = (decision.camera, decision.track_id)
                        if decision.camera not in mine or key not in self.assignment.sent:
                            continue
                        if dict.get(self.assignment, key) == decision.global_id:
                            continue  # already applied (a decision seen twice changes nothing)
                        self.tracks_decided += not dict.__contains__(self.assignment, key)
                        self.assignment[key] = decision.global_id
                        self.global_ids.add(decision.global_id)
                        out.append(decision)
                        if key in self._ended:
                            self._forget(key)
                    elif isinstance(decision, GlobalIdMerged) and decision.merged in self.global_ids:  # an id labelled here
                        for key, gid in list(dict.items(self.assignment)):
                            if gid == decision.merged:
                                self.assignment[key] = decision.kept
                        self.global_ids.discard(decision.merged)
                        self.global_ids.add(decision.kept)
                        out.append(decision)
        return out


__all__ = ["PUBLISH_BUFFER", "RemoteAssociator", "SentAssignment", "connect"]
