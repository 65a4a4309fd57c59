"""Where a camera frame's CPU goes at many streams, every thread included: the pipeline bench's
scenes (``adfl bench --pipeline``: one camera per stream, 768x432, 10 FPS, 30 s, the shipped model
and FastestDet, every output but videos) run as fast as possible under yappi with its CPU clock,
which follows every Python thread (camera readers, detector workers, the store's writer) and
charges C calls (ONNX Runtime, OpenCV, SQLite) to the function that made them.

    .venv/bin/pip install yappi     # a profiler, not a dependency of the toolkit
    .venv/bin/python benchmarks/profile_pipeline.py --streams 40 --out results/profile-pipeline-40-cpu.json

Prints ms of CPU per camera frame per thread group and for the costliest functions (own time and
with callees), and writes them as JSON with the command, machine (with the date) and code
version. yappi itself slows the run (about 1.3x here), so compare the shares, and take absolute
costs from ``adfl bench --pipeline``'s CPU ms per frame.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from adfl_deploy.bench.model_bench import machine_info
from adfl_deploy.bench.pipeline_bench import PipelineBenchConfig, _run, _scenes
from adfl_deploy.evaluation.sweep import code_version
from adfl_deploy.files import atomic_write_text

#: a thread's busiest function -> what the thread is (yappi knows threads by class name only)
ROLES = {
    "_run": "camera readers",  # CameraSource._run
    "<lambda>": "detector workers",  # detect_batch's jobs on the detector pool
    "_worker": "detector workers",  # (the pool's own loop, where yappi charges the job to it)
    "_loop": "store writer",  # StoreWriter._loop
    "wait": "idle helpers",
}
BOOTSTRAP = {"_bootstrap", "_bootstrap_inner", "run"}


def thread_role(yappi, thread) -> str:
    """The main thread, or what a worker thread spends its time in (its busiest function below
    the threading bootstrap)."""
    if thread.name == "_MainThread":
        return "main (pipeline loop)"
    stats = yappi.get_func_stats(filter={"ctx_id": thread.id})
    stats.sort("ttot", "desc")
    for s in stats:
        if s.name.split(".")[-1] not in BOOTSTRAP:
            name = s.name.split(".")[-1]
            return ROLES.get(name, name)
    return thread.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=40, help="camera streams (default 40, the issue's target)")
    parser.add_argument("--seconds", type=float, default=30.0, help="video length of each stream")
    parser.add_argument("--detector", default="fastestdet")
    parser.add_argument("--scene-root", default="out/bench-scene", help="where the scenes are made (reused when alike)")
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    parser.add_argument("--out", default="out/profile-pipeline.json", help="the report (JSON)")
    parser.add_argument("--runs", default="out/profile-pipeline", help="where the profiled run writes its outputs")
    args = parser.parse_args(argv)
    try:
        import yappi
    except ImportError:
        print("profile_pipeline: yappi is not installed; run `.venv/bin/pip install yappi` first", file=sys.stderr)
        return 2
    cfg = PipelineBenchConfig(seconds=args.seconds, detector=args.detector, scene_root=args.scene_root, out=args.runs)
    scenes = _scenes(cfg, args.streams)
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True, profile_threads=True)
    started = time.perf_counter()
    run = _run(cfg, scenes, f"profile-{args.streams}", realtime=False)
    wall = time.perf_counter() - started
    yappi.stop()
    frames = max(run["frames"], 1)
    per_frame = lambda seconds: 1000.0 * seconds / frames  # noqa: E731 - ms of CPU per camera frame
    groups: dict[str, float] = {}
    for t in yappi.get_thread_stats():
        role = thread_role(yappi, t)
        groups[role] = groups.get(role, 0.0) + t.ttot
    stats = yappi.get_func_stats()

    def top(key: str) -> list[dict]:
        stats.sort(key, "desc")
        return [
            {
                "function": f"{Path(s.module).name}:{s.lineno} {s.name}",
                "calls": s.ncall,
                "own_ms_per_frame": per_frame(s.tsub),
                "total_ms_per_frame": per_frame(s.ttot),
            }
            for s in stats[: args.top]
        ]

    report = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(),
        "code_version": code_version(),
        "streams": args.streams,
        "frames": run["frames"],
        "wall_seconds_profiled": wall,
        "aggregate_fps_profiled": run["aggregate_fps"],
        "process_cpu_ms_per_frame_profiled": run["cpu_ms_per_frame"],
        "stage_ms_per_frame": run["stage_ms_per_frame"],
        "threads_ms_per_frame": {k: per_frame(v) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
        "top_own": top("tsub"),
        "top_total": top("ttot"),
    }
    fps, cpu = run["aggregate_fps"], run["cpu_ms_per_frame"]
    print(f"{args.streams} streams, {run['frames']} frames, profiled: {fps:.0f} FPS, {cpu:.2f} ms CPU per frame")
    for name, ms in report["threads_ms_per_frame"].items():
        print(f"  thread {name:24s} {ms:6.3f} ms/frame")
    print(f"\n{'own':>7} {'total':>7} {'calls':>8}  function (ms of CPU per camera frame)")
    for row in report["top_own"]:
        print(f"{row['own_ms_per_frame']:7.3f} {row['total_ms_per_frame']:7.3f} {row['calls']:8d}  {row['function']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
