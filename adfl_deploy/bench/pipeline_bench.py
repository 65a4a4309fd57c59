"""How many cameras this machine serves in real time, and what each stage costs.

Work is counted per frame and per stream: a stream at ``target_fps`` needs the pipeline to finish
decode + detect + track + (a share of) embed + associate + sink in ``1 / target_fps`` seconds.
Three measurements, on a generated scene with as many cameras as streams (so association sees
real cross-camera traffic, not copies of one video):

1. throughput: 1, 2, ... streams as fast as possible; aggregate frames per second gives the
   streams the machine could carry (``aggregate / target_fps``);
2. real time: ``target_streams`` streams played at their frame rate (as live cameras deliver
   them); real time means the run lasts no longer than the video (plus 1 s and 5% for start-up
   and the last frames), i.e. the pipeline never falls behind the cameras for good;
3. accuracy: the real-time run's MTMC IDF1 must equal the offline run's on the same scene.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from adfl_deploy.evaluation.scene_eval import score_run
from adfl_deploy.pipeline import PipelineConfig, run
from adfl_deploy.pipeline.sources import SourceConfig
from adfl_deploy.scene import SceneConfig, generate

STAGES = ("decode", "detect", "track", "embed", "associate", "sink")


@dataclass(frozen=True)
class PipelineBenchConfig:
    target_fps: float = 10.0
    target_streams: int = 4
    #: stream counts for the throughput curve (at most 6: one scene camera each)
    streams: tuple[int, ...] = (1, 2, 4, 6)
    seconds: float = 30.0
    detector: str = "motion"
    model: str = ""  # "" = the shipped edge model
    backend: str = "auto"
    scene_root: str = "out/bench-scene"
    out: str = "out/bench-pipeline"


def _scene(cfg: PipelineBenchConfig, cameras: int):
    return generate(
        SceneConfig(cameras=cameras, seconds=cfg.seconds, fps=cfg.target_fps, people=16),
        Path(cfg.scene_root) / f"{cameras}cam",
        progress=False,
    )


def _run(cfg: PipelineBenchConfig, scene, name: str, realtime: bool) -> dict:
    pipeline = PipelineConfig(
        sources=scene.sources(),
        model=cfg.model,
        backend=cfg.backend,
        detector=cfg.detector,
        out=str(Path(cfg.out) / name),
        write_videos=False,
        source=SourceConfig(realtime=realtime),
    )
    started = time.perf_counter()
    summary = run(pipeline, progress=False)
    wall = time.perf_counter() - started
    frames = sum(c.frames for c in summary.cameras.values())
    return {
        "streams": len(scene.cameras),
        "realtime_paced": realtime,
        "wall_seconds": wall,
        "video_seconds": scene.config.seconds,
        "frames": frames,
        "aggregate_fps": frames / summary.seconds,
        "fps_per_stream": min(summary.fps_per_camera.values()),
        "stage_ms_p50": summary.stage_ms_p50,
        "stage_ms_p99": summary.stage_ms_p99,
        "mtmc_idf1": score_run(scene, pipeline.out).idf1,
        "embedder": summary.embedder,
        # the identity store's own cost: ms per tick of its writer thread, ticks it had to drop
        "store": summary.sinks.get("store"),
    }


def run_benchmark(cfg: PipelineBenchConfig) -> dict:
    if max(cfg.streams) > 6 or cfg.target_streams > 6:
        raise ValueError("at most 6 streams: the generated scene has one real Con-ReID camera per stream")
    throughput = [_run(cfg, _scene(cfg, n), f"throughput-{n}", realtime=False) for n in cfg.streams]
    best = max(throughput, key=lambda r: r["streams"])
    capacity = best["aggregate_fps"] / cfg.target_fps
    target_scene = _scene(cfg, cfg.target_streams)
    offline = next((r for r in throughput if r["streams"] == cfg.target_streams), None) or _run(
        cfg, target_scene, "offline", realtime=False
    )
    live = _run(cfg, target_scene, "realtime", realtime=True)
    slack = 1.0 + 0.05 * live["video_seconds"]  # start-up, and the last frames draining
    return {
        "config": dataclasses.asdict(cfg),
        "throughput": throughput,
        "realtime": live,
        "max_realtime_streams_estimate": int(capacity),
        "realtime_ok": live["wall_seconds"] <= live["video_seconds"] + slack,
        "idf1_offline": offline["mtmc_idf1"],
        "idf1_realtime": live["mtmc_idf1"],
    }


def markdown(report: dict) -> str:
    lines = [
        "| streams | mode | wall s | aggregate FPS | FPS/stream | "
        + " | ".join(f"{s} p50/p99 ms" for s in STAGES)
        + " | MTMC IDF1 |",
        "|---:|---|---:|---:|---:|" + "---:|" * len(STAGES) + "---:|",
    ]
    for r in report["throughput"] + [report["realtime"]]:
        stages = " | ".join(f"{r['stage_ms_p50'][s]:.2f}/{r['stage_ms_p99'][s]:.2f}" for s in STAGES)
        mode = "real-time" if r["realtime_paced"] else "as fast as possible"
        lines.append(
            f"| {r['streams']} | {mode} | {r['wall_seconds']:.1f} | {r['aggregate_fps']:.0f} | "
            f"{r['fps_per_stream']:.1f} | {stages} | {r['mtmc_idf1']:.3f} |"
        )
    return "\n".join(lines)


def plot(report: dict, path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rows = report["throughput"]
    streams = [r["streams"] for r in rows]
    left.plot(streams, [r["fps_per_stream"] for r in rows], "o-", label="FPS per stream (as fast as possible)")
    left.axhline(report["config"]["target_fps"], color="red", ls="--", label="target FPS per stream")
    left.set_xlabel("streams")
    left.set_ylabel("frames per second per stream")
    left.legend()
    live = report["realtime"]
    x = range(len(STAGES))
    right.bar([i - 0.2 for i in x], [live["stage_ms_p50"][s] for s in STAGES], width=0.4, label="p50")
    right.bar([i + 0.2 for i in x], [live["stage_ms_p99"][s] for s in STAGES], width=0.4, label="p99")
    right.set_xticks(list(x), STAGES)
    right.set_ylabel("ms per frame (embed/associate/sink: per tick)")
    right.set_title(f"{live['streams']} streams in real time")
    right.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
