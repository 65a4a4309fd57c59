"""The broker's wire format, URL parsing and resend buffers, without a broker."""

from __future__ import annotations

import numpy as np
import pytest

from adfl_deploy.association import Tracklet
from adfl_deploy.broker import PublishConfig, parse_broker_url
from adfl_deploy.broker import messages as msgs
from adfl_deploy.broker.buffer import DiskBuffer, MemoryBuffer
from adfl_deploy.errors import ConfigError
from adfl_deploy.events import GlobalIdAssigned, GlobalIdMerged


def test_broker_urls_parse_or_fail_in_one_line():
    url = parse_broker_url("redis://10.0.0.2:6380/site-a")
    assert (url.host, url.port, url.stream, url.results) == ("10.0.0.2", 6380, "site-a", "site-a:decisions")
    assert parse_broker_url("redis://localhost").port == 6379 and parse_broker_url("redis://localhost").stream == "adfl"
    for bad in ("http://h:1/x", "redis://:1/x", "redis://h:99999/x", "redis://h:1/a b", "h:6379"):
        with pytest.raises(ConfigError) as err:
            parse_broker_url(bad)
        assert "\n" not in str(err.value) and "redis://HOST:PORT/STREAM" in str(err.value)
    with pytest.raises(ConfigError):
        PublishConfig(url="redis://h/x", buffer_messages=0)
    with pytest.raises(ConfigError):
        PublishConfig(node="../evil")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_tracklet_survives_the_wire_bit_for_bit(dtype):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=128).astype(dtype)
    emb /= np.linalg.norm(emb)
    t = Tracklet("door", 17, emb, 12.3 + 1e-9, 123, (1.5, 2.25, 30.0, 80.125), since=10.1, until=12.2 + 1e-9)
    fields = msgs.tracklet("n1", "run1", 5, t, msgs.ENDING, quality=42.5)
    # the broker hands values back as bytes
    wire = {k.encode(): (v if isinstance(v, bytes) else str(v).encode()) for k, v in fields.items()}
    m = msgs.decode(b"1-0", wire)
    assert (m.kind, m.node, m.run, m.seq, m.phase, m.quality, m.id) == ("tr", "n1", "run1", 5, msgs.ENDING, 42.5, "1-0")
    back = m.tracklet
    assert back.embedding.dtype == dtype and np.array_equal(back.embedding, emb)
    assert (back.camera, back.track_id, back.time, back.frame, back.box) == ("door", 17, t.time, 123, t.box)
    assert (back.since, back.until) == (t.since, t.until)
    plain = msgs.tracklet("n1", "run1", 6, Tracklet("door", 18, emb, 1.0), msgs.TICK)
    assert not {"since", "until"} & set(plain)  # optional: unknown times are not sent
    wire = {k.encode(): (v if isinstance(v, bytes) else str(v).encode()) for k, v in plain.items()}
    assert (msgs.decode(b"1-1", wire).tracklet.since, msgs.decode(b"1-1", wire).tracklet.until) == (None, None)
    # what it costs on the wire: the descriptor plus about a hundred bytes of fields
    assert 128 * np.dtype(dtype).itemsize < msgs.message_bytes(fields) < 128 * np.dtype(dtype).itemsize + 240


def test_decisions_round_trip_through_a_group_record():
    decisions = [GlobalIdAssigned("cam1", 3, 7, 1.5, True, 15, (1.0, 2.0, 3.0, 4.0)), GlobalIdMerged(2, 7, 0.12, 1.5)]
    fields = msgs.encode_group(1.5, ["1-0", "2-0"], decisions, {"a": 1.5, "b": float("inf")})
    group = msgs.decode_group({k.encode(): v.encode() for k, v in fields.items()})
    assert [msgs.decision_from_record(r) for r in group["decisions"]] == decisions
    assert group["inputs"] == ["1-0", "2-0"] and group["nodes"] == {"a": 1.5, "b": float("inf")}


def test_malformed_messages_raise_value_error():
    with pytest.raises(ValueError):
        msgs.decode(b"1-0", {b"k": b"nonsense"})


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_the_resend_buffer_keeps_order_and_drops_the_oldest_beyond_its_bound(kind, tmp_path):
    buf = MemoryBuffer(5) if kind == "memory" else DiskBuffer(tmp_path / "buf.jsonl", 5)
    for i in range(8):  # 8 messages into room for 5: the three oldest go, counted by kind
        buf.append({"k": "tick" if i < 2 else "tr", "seq": i, "emb": bytes([i, 255])})
    assert len(buf) == 5 and dict(buf.dropped) == {"tick": 2, "tr": 1}
    assert [f["seq"] for f in buf.peek(3)] == [3, 4, 5]
    assert buf.peek(1)[0]["emb"] == bytes([3, 255])
    buf.pop(2)
    buf.append({"k": "end", "seq": 8})
    assert [f["seq"] for f in buf.peek(10)] == [5, 6, 7, 8] and buf.peak == 5
    buf.pop(4)
    assert len(buf) == 0
    if kind == "disk":
        assert (tmp_path / "buf.jsonl").stat().st_size == 0  # emptied once everything was sent
        buf.append({"k": "tr", "seq": 9})
        assert [f["seq"] for f in buf.peek(5)] == [9]
    buf.close()


@pytest.mark.parametrize("keep_ended", [False, True])
def test_an_edge_nodes_mot_rows_wait_for_an_id_that_comes_back_after_the_track_ended(tmp_path, keep_ended):
    from adfl_deploy.events import FrameTracked, TickStats, TrackEnded
    from adfl_deploy.pipeline.sinks import MotSink

    sink = MotSink(tmp_path, ["cam1"], keep_ended=keep_ended)
    box = np.array([[10.0, 20.0, 30.0, 60.0]])
    for f in range(3):  # three frames of track 4 without an id yet
        sink.on_event(FrameTracked("cam1", f, f / 10, np.zeros((1, 1, 3), np.uint8), box, np.array([4]), np.array([0.9]), [None]))
    sink.on_event(TrackEnded("cam1", 4, 3, 0.3))
    sink.on_event(GlobalIdAssigned("cam1", 4, 7, 0.2, True))  # the central associator's answer, after the end
    sink.on_event(TickStats(1, {}, {}, 0, 0))
    sink.close()
    rows = (tmp_path / "cam1.txt").read_text().splitlines()
    # one process (keep_ended False) decides before the end, so there a late id has nothing left to write
    assert rows == ([f"{f + 1},7,10.00,20.00,20.00,40.00,0.9000,-1,-1,-1" for f in range(3)] if keep_ended else [])
