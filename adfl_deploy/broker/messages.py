"""The wire format: one Redis stream entry per message, flat fields of bytes.

Inputs (nodes -> ``STREAM``), every one with ``k`` (kind), ``node``, ``run`` and ``seq`` (the
node run's message counter, so a message resent after a lost reply is recognised):

- ``hello``: the node's cameras and the association settings it was started with (threshold
  calibrated for its embedder), sent first;
- ``tr``: one tracklet: camera, track id, time, frame, box, quality, the track's aggregated
  unit descriptor (raw little-endian float32/float64 with its dtype) and ``ph``, the phase of
  the pipeline's tick it came from (0: a track that ends before it had an id, linked with what
  it has; 1: the tick's batch; 2: linked when the run closed);
- ``end``: the tracker dropped a track (``ph`` 0 or 2 like ``tr``);
- ``tick``: the node finished every camera's frame up to time ``t`` (its watermark);
- ``bye``: the node's run ended; it sends nothing more.

Decisions (associator -> ``STREAM:decisions``): one entry per solved group of inputs, field
``d``: JSON ``{"t", "inputs": [stream ids], "decisions": [...], "nodes": {node: watermark}}``,
each decision ``{"k": "assign", "cam", "tid", "run", "gid", "t", "new", "frame", "box"}`` or
``{"k": "merge", "kept", "merged", "distance", "t"}``. The decision stream is also the
associator's journal: replaying it rebuilds its state after a restart.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from adfl_deploy.association.associator import Tracklet
from adfl_deploy.events import GlobalIdAssigned, GlobalIdMerged

#: association settings the central associator applies itself (its galleries, its per-camera
#: centring, how long an unsure track waits): each node reports its own in its hello, and the
#: associator warns about a node whose value differs (it was set up for a different associator)
CENTRAL_SETTINGS = (
    "gallery_entries",
    "camera_centring",
    "camera_centring_prior",
    "camera_centring_window",
    "unsure_wait_seconds",
    "unsure_margin",
)
KINDS = ("hello", "tr", "end", "tick", "bye")
#: the phases of one pipeline tick, in the order the single process runs them
ENDING, TICK, CLOSING = 0, 1, 2


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _time(value: float) -> str:
    return repr(float(value))  # exact round trip (stream times are compared for equality)


@dataclass
class Message:
    """One decoded input message."""

    kind: str
    node: str
    run: str
    seq: int
    time: float
    camera: str = ""
    track_id: int = -1
    phase: int = TICK
    tracklet: Tracklet | None = None
    quality: float | None = None
    info: dict | None = None  # hello: cameras and settings
    id: str = ""  # the stream entry id, once read

    @property
    def key(self) -> tuple[str, int]:
        return (self.camera, self.track_id)


def hello(node: str, run: str, seq: int, cameras: list[str], settings: dict) -> dict:
    return {
        "k": "hello",
        "node": node,
        "run": run,
        "seq": seq,
        "t": _time(0.0),
        "info": json.dumps({"cameras": cameras, **settings}),
    }


def tracklet(node: str, run: str, seq: int, t: Tracklet, phase: int, quality: float | None = None) -> dict:
    emb = np.ascontiguousarray(t.embedding)
    if emb.dtype not in (np.float32, np.float64):
        emb = emb.astype(np.float32)
    fields = {
        "k": "tr",
        "node": node,
        "run": run,
        "seq": seq,
        "cam": t.camera,
        "tid": int(t.track_id),
        "t": _time(t.time),
        "ph": phase,
        "dt": emb.dtype.newbyteorder("<").str,
        "emb": emb.astype(emb.dtype.newbyteorder("<"), copy=False).tobytes(),
    }
    if t.frame is not None:
        fields["f"] = int(t.frame)
    if t.box is not None:
        fields["box"] = ",".join(repr(float(v)) for v in t.box)
    if quality is not None and math.isfinite(quality):
        fields["q"] = repr(float(quality))
    for key, value in (("since", t.since), ("until", t.until)):  # when the track was first / last reported
        if value is not None:
            fields[key] = _time(value)
    return fields


def end(node: str, run: str, seq: int, camera: str, track_id: int, time: float, phase: int = ENDING) -> dict:
    return {"k": "end", "node": node, "run": run, "seq": seq, "cam": camera, "tid": int(track_id), "t": _time(time), "ph": phase}


def tick(node: str, run: str, seq: int, time: float) -> dict:
    return {"k": "tick", "node": node, "run": run, "seq": seq, "t": _time(time)}


def bye(node: str, run: str, seq: int, time: float) -> dict:
    return {"k": "bye", "node": node, "run": run, "seq": seq, "t": _time(time)}


def decode(entry_id, fields: dict) -> Message:
    """A stream entry -> ``Message``; a malformed one raises ``ValueError`` (the associator
    logs it, acknowledges it and goes on)."""
    f = {_s(k): v for k, v in fields.items()}
    kind = _s(f.get("k", b""))
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    msg = Message(kind, _s(f["node"]), _s(f["run"]), int(f["seq"]), float(_s(f["t"])), id=_s(entry_id))
    if kind == "hello":
        msg.info = json.loads(_s(f["info"]))
    elif kind in ("tr", "end"):
        msg.camera, msg.track_id, msg.phase = _s(f["cam"]), int(f["tid"]), int(f["ph"])
    if kind == "tr":
        raw = f["emb"] if isinstance(f["emb"], bytes) else _s(f["emb"]).encode("latin-1")
        emb = np.frombuffer(raw, dtype=np.dtype(_s(f["dt"])))
        box = tuple(float(v) for v in _s(f["box"]).split(",")) if "box" in f else None
        frame = int(f["f"]) if "f" in f else None
        since, until = (float(_s(f[k])) if k in f else None for k in ("since", "until"))
        msg.tracklet = Tracklet(msg.camera, msg.track_id, emb, msg.time, frame, box, since, until)
        msg.quality = float(_s(f["q"])) if "q" in f else None
    return msg


def decision_record(decision) -> dict:
    if isinstance(decision, GlobalIdAssigned):
        return {
            "k": "assign",
            "cam": decision.camera,
            "tid": int(decision.track_id),
            "gid": int(decision.global_id),
            "t": decision.time,
            "new": bool(decision.new),
            "frame": decision.frame,
            "box": list(decision.box) if decision.box is not None else None,
        }
    if isinstance(decision, GlobalIdMerged):
        return {"k": "merge", "kept": decision.kept, "merged": decision.merged, "distance": decision.distance, "t": decision.time}
    raise TypeError(f"{type(decision).__name__} is not a decision")


def decision_from_record(rec: dict):
    if rec["k"] == "assign":
        box = tuple(rec["box"]) if rec.get("box") is not None else None
        return GlobalIdAssigned(
            rec["cam"], int(rec["tid"]), int(rec["gid"]), float(rec["t"]), bool(rec["new"]), rec.get("frame"), box
        )
    return GlobalIdMerged(int(rec["kept"]), int(rec["merged"]), float(rec["distance"]), float(rec["t"]))


def encode_group(time: float, inputs: list[str], decisions: list, nodes: dict[str, float]) -> dict:
    """``decisions``: decision events or their records (``decision_record``)."""
    wm = {n: (w if math.isfinite(w) else "end") for n, w in nodes.items()}
    recs = [d if isinstance(d, dict) else decision_record(d) for d in decisions]
    payload = {"t": time, "inputs": inputs, "decisions": recs, "nodes": wm}
    return {"d": json.dumps(payload, separators=(",", ":"))}


def decode_group(fields: dict) -> dict:
    f = {_s(k): v for k, v in fields.items()}
    payload = json.loads(_s(f["d"]))
    payload["nodes"] = {n: (math.inf if w == "end" else float(w)) for n, w in payload.get("nodes", {}).items()}
    return payload


def message_bytes(fields: dict) -> int:
    """Bytes of one entry's field names and values (what the broker stores and sends, before
    its own framing)."""
    total = 0
    for k, v in fields.items():
        total += len(k) + (len(v) if isinstance(v, (bytes, str)) else len(str(v)))
    return total


__all__ = [
    "CLOSING",
    "ENDING",
    "KINDS",
    "Message",
    "TICK",
    "bye",
    "decision_from_record",
    "decision_record",
    "decode",
    "decode_group",
    "encode_group",
    "end",
    "hello",
    "message_bytes",
    "tick",
    "tracklet",
]
