"""Load test of one central associator: the tracklets of many simulated cameras, replayed in
real time (or as fast as possible) through a private ``redis-server`` into ``adfl associate``.

    .venv/bin/python benchmarks/broker_load.py --cameras 100 --seconds 60

Cameras are grouped ten to a node; each node sends, every tick (10 per second), its tracks'
tracklets (a 768-float32 descriptor each, like the shipped edge model's, every ``--embed-every``
frames per track), its track ends and its tick mark, in one pipelined round trip. People walk
from camera to camera (visits of 5-30 s, 2-10 s between), ``--people-per-camera`` at a time on
average, so identities accumulate as in a building. The associator's own summary gives the
decision latency (from the broker's receipt of a tracklet to its decision's publication, p50
and p99) and its cost per tracklet; the table adds events/s and the wire volume per camera.
Writes results/broker-load-cpu.json (date, machine, command).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from broker_nodes import ADFL, free_port, start_redis, write_results  # noqa: E402

from adfl_deploy.association import Tracklet  # noqa: E402
from adfl_deploy.broker import messages as msgs  # noqa: E402


def simulate(cameras: int, seconds: float, per_camera: float, fps: float, embed_every: int, dim: int, seed: int):
    """Yield (time, {node: [fields...]}) per tick."""
    rng = np.random.default_rng(seed)
    ticks = int(seconds * fps)
    people = max(1, int(cameras * per_camera * 1.5))
    base = rng.normal(size=(people, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    # visits: (start tick, end tick, camera, person); each person walks on after a gap
    visits = []
    for p in range(people):
        t = int(rng.integers(0, int(10 * fps)))
        while t < ticks:
            length = int(rng.integers(int(5 * fps), int(30 * fps)))
            visits.append((t, t + length, int(rng.integers(0, cameras)), p))
            t += length + int(rng.integers(int(2 * fps), int(10 * fps)))
    starts: dict[int, list] = {}
    for v in visits:
        starts.setdefault(v[0], []).append(v)
    next_tid = [0] * cameras
    live: dict[tuple[int, int], tuple[int, int, int]] = {}  # (camera, tid) -> (person, end tick, phase offset)
    seq = {}
    names = [f"cam{c + 1}" for c in range(cameras)]
    node_of = [f"node{c // 10 + 1}" for c in range(cameras)]
    noise = 0.3 / np.sqrt(dim)
    for tick in range(ticks):
        now = round(tick / fps, 6)
        out: dict[str, list] = {n: [] for n in dict.fromkeys(node_of)}
        for key in sorted(k for k, v in live.items() if v[1] == tick):
            cam, tid = key
            node = node_of[cam]
            seq[node] = seq.get(node, 0) + 1
            out[node].append(msgs.end(node, "load", seq[node], names[cam], tid, now, msgs.ENDING))
            del live[key]
        for _s, e, cam, p in starts.get(tick, []):
            next_tid[cam] += 1
            live[(cam, next_tid[cam])] = (p, e, int(rng.integers(0, embed_every)))
        for (cam, tid), (p, _e, offset) in sorted(live.items()):
            if (tick - offset) % embed_every:
                continue
            emb = base[p] + noise * rng.normal(size=dim).astype(np.float32)
            emb /= np.linalg.norm(emb)
            node = node_of[cam]
            seq[node] = seq.get(node, 0) + 1
            t = Tracklet(names[cam], tid, emb, now, tick, (10.0, 20.0, 60.0, 180.0))
            out[node].append(msgs.tracklet(node, "load", seq[node], t, msgs.TICK, quality=50.0))
        for node in out:
            seq[node] = seq.get(node, 0) + 1
            out[node].append(msgs.tick(node, "load", seq[node], now))
        yield now, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--fps", type=float, default=10)
    ap.add_argument("--people-per-camera", type=float, default=3.0)
    ap.add_argument(
        "--embed-every", type=int, default=10, help="frames between two tracklets of a track (the pipeline's default)"
    )
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--fast", action="store_true", help="as fast as possible instead of real time (capacity)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="out/broker-load")
    ap.add_argument("--results", default="results/broker-load-cpu.json")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix="adfl-redis-"))
    port = free_port()
    redis_proc = start_redis(tmp, port, persist=False)
    url = f"redis://127.0.0.1:{port}/load"
    import redis

    client = redis.Redis(port=port)
    names = sorted({f"node{c // 10 + 1}" for c in range(args.cameras)}, key=lambda n: int(n[4:]))
    for i, node in enumerate(names):
        cams = [f"cam{c + 1}" for c in range(10 * i, min(10 * i + 10, args.cameras))]
        client.xadd("load", msgs.hello(node, "load", 0, cams, {"match_threshold": 0.3, "merge_threshold": None}))
    cmd = [*ADFL, "associate", "--broker", url, "--until-done", "--out", str(out / "associate"), "--summary-seconds", "5"]
    cmd += ["--node-timeout", "30"]
    log = open(out / "associate.log", "w")  # noqa: SIM115
    assoc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    counts = {"tr": 0, "end": 0, "tick": 0}
    sent_bytes = 0
    behind = []
    try:
        time.sleep(2.0)  # the associator connects and creates its group
        t0 = time.monotonic()
        for now, per_node in simulate(
            args.cameras, args.seconds, args.people_per_camera, args.fps, args.embed_every, args.dim, args.seed
        ):
            if not args.fast:
                wait = t0 + now - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                behind.append(-wait)
            for fields_list in per_node.values():
                pipe = client.pipeline(transaction=False)
                for fields in fields_list:
                    pipe.xadd("load", fields)
                    counts[fields["k"]] += 1
                    sent_bytes += msgs.message_bytes(fields)
                pipe.execute()
        produced = time.monotonic() - t0
        for node in names:
            client.xadd("load", msgs.bye(node, "load", 10**9, args.seconds))
        assoc.wait(timeout=600)
        total = time.monotonic() - t0
    finally:
        if assoc.poll() is None:
            assoc.kill()
        redis_proc.terminate()
        redis_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = json.loads((out / "associate" / "summary.json").read_text())
    events = sum(counts.values())
    stream_s = args.seconds
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()} {os.cpu_count()} cores"
        " (shared with the producer and redis-server)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "mode": "as fast as possible" if args.fast else "real time",
        "cameras": args.cameras,
        "nodes": len(names),
        "stream_seconds": stream_s,
        "people_per_camera": args.people_per_camera,
        "embed_every_frames": args.embed_every,
        "descriptor": f"{args.dim} x float32",
        "messages": counts,
        "events_per_s_offered": events / stream_s,
        "events_per_s_processed": events / total,
        "producer_seconds": produced,
        "producer_max_behind_s": max(behind) if behind else None,
        "seconds_to_last_decision": total,
        "bytes_per_camera_per_s": sent_bytes / stream_s / args.cameras,
        "messages_per_camera_per_s": events / stream_s / args.cameras,
        "tracklets_per_camera_per_s": counts["tr"] / stream_s / args.cameras,
        "decision_latency_ms_p50": summary["decision_latency_ms_p50"],
        "decision_latency_ms_p99": summary["decision_latency_ms_p99"],
        "cost_ms_per_tracklet_p50": summary["cost_ms_per_tracklet_p50"],
        "cost_ms_per_tracklet_p99": summary["cost_ms_per_tracklet_p99"],
        "global_ids": len(summary["global_ids"]),
        "assigned_tracks": summary["assigned_tracks"],
        "associator_pending_at_end": summary["health"].get("pending"),
    }
    rows = [
        ("cameras / nodes", f"{args.cameras} / {len(names)}"),
        ("mode", result["mode"]),
        ("events offered / processed per s", f"{result['events_per_s_offered']:.0f} / {result['events_per_s_processed']:.0f}"),
        ("tracklets per camera per s", f"{result['tracklets_per_camera_per_s']:.2f}"),
        ("bytes per camera per s", f"{result['bytes_per_camera_per_s']:.0f}"),
        ("messages per camera per s", f"{result['messages_per_camera_per_s']:.2f}"),
        ("decision latency p50 / p99 (ms)", f"{result['decision_latency_ms_p50']:.1f} / {result['decision_latency_ms_p99']:.1f}"),
        (
            "associator cost per tracklet p50 / p99 (ms)",
            f"{result['cost_ms_per_tracklet_p50']:.3f} / {result['cost_ms_per_tracklet_p99']:.3f}",
        ),
        ("global ids / tracks", f"{result['global_ids']} / {result['assigned_tracks']}"),
    ]
    print("| measure | value |\n|---|---:|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    if args.results:
        write_results(args.results, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
