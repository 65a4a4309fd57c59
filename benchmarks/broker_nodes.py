"""Three edge nodes and one central associator against one process, on one generated scene.

    .venv/bin/python benchmarks/broker_nodes.py --scene out/scene6 --cameras 6 --seconds 20 [--kill-associator S]

Generates the scene (``adfl scene``) if needed, starts a private ``redis-server`` (append-only
file in a temporary folder), runs ``adfl track`` once on all cameras (one process), then
``adfl associate --until-done`` and N ``adfl track --publish`` processes with the cameras split
between them, and scores both with MTMC IDF1 (``adfl_deploy.evaluation.mtmc``: the nodes' MOT
files taken together). ``--kill-associator N`` kills the associator with SIGKILL once it has
journalled N groups, and starts it again. Writes results/broker-nodes-cpu.json (date, machine, command).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADFL = [sys.executable, "-m", "adfl_deploy.cli"]


def write_results(path: str, result: dict) -> None:
    """The results JSON, written atomically (a killed benchmark never leaves half a file)."""
    from adfl_deploy.files import atomic_write_text

    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder: Path, port: int, persist: bool = True) -> subprocess.Popen:
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)]
    if persist:
        args += ["--appendonly", "yes", "--appendfsync", "always"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def write_config(path: Path, scene: Path, cameras: list[str], out: Path, detector: str = "gt") -> Path:
    """A pipeline config: ground-truth boxes (association alone) or a detector by name."""
    import yaml

    boxes = {"detections": {c: str(scene / c / "gt" / "gt.txt") for c in cameras}} if detector == "gt" else {"detector": detector}
    data = {
        "sources": [f"{c}={scene / c / 'video.mp4'}" for c in cameras],
        **boxes,
        "out": str(out),
        "write_videos": False,
        "sinks": ["events", "mot", "summary"],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def assignments(run: Path) -> dict:
    """(camera, track) -> global id from a run's events.jsonl, merges applied at the end."""
    out, merged = {}, {}
    for line in (run / "events.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["event"] == "global_id_assigned":
            out[(rec["camera"], rec["track_id"])] = rec["global_id"]
        elif rec["event"] == "global_id_merged":
            merged[rec["merged"]] = rec["kept"]

    def final(g):
        while g in merged:
            g = merged[g]
        return g

    return {k: final(g) for k, g in out.items()}


def score(scene: Path, runs: dict[str, Path]):
    from adfl_deploy.evaluation import mtmc

    return mtmc.score({c: scene / c / "gt" / "gt.txt" for c in runs}, {c: runs[c] / "mot" / f"{c}.txt" for c in runs})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="out/scene6")
    ap.add_argument("--cameras", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--people", type=int, default=8)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--size", default="480x270")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--out", default="out/broker-nodes")
    ap.add_argument(
        "--kill-associator", type=int, default=0, help="SIGKILL the associator once it has journalled this many groups"
    )
    ap.add_argument("--restart-broker", type=int, default=0, help="stop redis-server once N groups are journalled, restart it")
    ap.add_argument("--outage", type=float, default=3.0, help="seconds the broker stays down with --restart-broker")
    ap.add_argument("--detector", default="gt", help="gt (ground-truth boxes: association alone) or a detector, e.g. motion")
    ap.add_argument("--results", default="results/broker-nodes-cpu.json")
    args = ap.parse_args()
    scene, out = Path(args.scene), Path(args.out)
    subprocess.run(
        [*ADFL, "scene", "--cameras", str(args.cameras), "--seconds", str(args.seconds), "--people", str(args.people),
         "--seed", str(args.seed), "--size", args.size, "--out", str(scene)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    cameras = [f"cam{i + 1}" for i in range(args.cameras)]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.time()
    single = out / "single"
    subprocess.run(
        [*ADFL, "track", "--config", str(write_config(out / "single.yaml", scene, cameras, single, args.detector))], check=True
    )
    single_s = time.time() - t0

    tmp = Path(tempfile.mkdtemp(prefix="adfl-redis-"))
    port = free_port()
    redis = start_redis(tmp, port)
    url = f"redis://127.0.0.1:{port}/adfl"
    split = [sorted(cameras[i * len(cameras) // args.nodes : (i + 1) * len(cameras) // args.nodes]) for i in range(args.nodes)]
    assoc_cmd = [*ADFL, "associate", "--broker", url, "--until-done", "--out", str(out / "associate"), "--summary-seconds", "1"]
    assoc_cmd += ["--nodes", ",".join(f"node{i + 1}" for i in range(args.nodes))]
    log = open(out / "associate.log", "w")  # noqa: SIM115
    try:
        t0 = time.time()
        assoc = subprocess.Popen(assoc_cmd, stdout=log, stderr=subprocess.STDOUT)
        nodes = []
        for i, cams in enumerate(split):
            cfg = write_config(out / f"node{i + 1}.yaml", scene, cams, out / f"node{i + 1}", args.detector)
            nodes.append(
                subprocess.Popen([*ADFL, "track", "--config", str(cfg), "--publish", url, "--node", f"node{i + 1}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            )  # fmt: skip
        restarts = restarts_broker = 0
        if args.kill_associator:
            import redis as redis_client

            client = redis_client.Redis(port=port)
            while client.xlen("adfl:decisions") < args.kill_associator and assoc.poll() is None:
                time.sleep(0.01)
            if assoc.poll() is None:
                assoc.send_signal(signal.SIGKILL)
                assoc.wait()
                restarts = 1
                assoc = subprocess.Popen(assoc_cmd, stdout=log, stderr=subprocess.STDOUT)
        if args.restart_broker:
            import redis as redis_client

            client = redis_client.Redis(port=port)
            while client.xlen("adfl:decisions") < args.restart_broker and assoc.poll() is None:
                time.sleep(0.01)
            redis.terminate()  # the append-only file keeps the streams
            redis.wait()
            time.sleep(args.outage)
            redis = start_redis(tmp, port)
            restarts_broker = 1
        node_out = [p.communicate()[0] for p in nodes]
        assoc.wait(timeout=120)
        nodes_s = time.time() - t0
        # every assignment the associator ever published (its journal), per node track
        import redis as redis_client

        from adfl_deploy.broker import messages as msgs

        published: dict = {}
        for _id, fields in redis_client.Redis(port=port).xrange("adfl:decisions"):
            for rec in msgs.decode_group(fields)["decisions"]:
                if rec["k"] == "assign":
                    key = (rec["cam"], rec["tid"], rec["run"])
                    published[key] = published.get(key, 0) + 1
    finally:
        for p in [assoc, *nodes]:
            if p.poll() is None:
                p.kill()
        redis.terminate()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    for i, text in enumerate(node_out):
        print(f"node{i + 1}: {text.strip().splitlines()[-2] if text.strip() else ''}")
    runs = {c: out / f"node{i + 1}" for i, cams in enumerate(split) for c in cams}
    one = score(scene, dict.fromkeys(cameras, single))
    many = score(scene, runs)
    a1 = assignments(single)
    a3 = {}
    for i in range(args.nodes):
        a3.update(assignments(out / f"node{i + 1}"))
    same = sum(a3.get(k) == g for k, g in a1.items())
    # the same partition of tracks into people, whatever the numbers (ids can be handed out in
    # another order when nodes start at different moments)
    keys = sorted(a1)
    pairs = [(x, y) for i, x in enumerate(keys) for y in keys[i + 1 :]]
    same_pairs = sum((a1[x] == a1[y]) == (a3.get(x) == a3.get(y)) for x, y in pairs)
    central = json.loads((out / "associate" / "summary.json").read_text())
    node_stats = [json.loads((out / f"node{i + 1}" / "summary.json").read_text())["sinks"]["publish"] for i in range(args.nodes)]
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()} {os.cpu_count()} cores",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "scene": {"cameras": args.cameras, "seconds": args.seconds, "people": args.people, "seed": args.seed, "size": args.size},
        "detector": args.detector,
        "nodes": {f"node{i + 1}": cams for i, cams in enumerate(split)},
        "associator_killed_and_restarted": restarts,
        "killed_after_groups": args.kill_associator,
        "broker_restarted": restarts_broker,
        "broker_restarted_after_groups": args.restart_broker,
        "one_process": {"mtmc_idf1": one.idf1, "seconds": single_s},
        "nodes_and_associator": {"mtmc_idf1": many.idf1, "seconds": nodes_s},
        "idf1_difference": many.idf1 - one.idf1,
        "tracks_assigned_one_process": len(a1),
        "tracks_assigned_nodes": len(a3),
        "same_final_global_id": same,
        "tracks_assigned_in_journal": len(published),
        "tracks_assigned_more_than_once": sum(n > 1 for n in published.values()),
        "track_pairs_same_partition": f"{same_pairs}/{len(pairs)}",
        "associator": {k: central[k] for k in ("messages", "decision_latency_ms_p50", "decision_latency_ms_p99",
                                                "cost_ms_per_tracklet_p50", "cost_ms_per_tracklet_p99", "replayed")},
        "publish": node_stats,
    }  # fmt: skip
    shown = ("one_process", "nodes_and_associator", "idf1_difference", "same_final_global_id", "track_pairs_same_partition")
    shown += ("tracks_assigned_in_journal", "tracks_assigned_more_than_once")
    print(json.dumps({k: result[k] for k in (*shown, "tracks_assigned_one_process", "tracks_assigned_nodes")}, indent=1))
    if args.results:
        write_results(args.results, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
