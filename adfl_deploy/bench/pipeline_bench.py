"""How many cameras this machine serves in real time, what each stage costs, and how close each
stage's arithmetic gets to the machine's peak.

Work is counted per frame and per stream: a stream at ``target_fps`` needs the pipeline to finish
decode + detect + track + (a share of) embed + associate + sink in ``1 / target_fps`` seconds.
Four measurements, on generated scenes with one camera per stream (so association sees real
cross-camera traffic, not copies of one video; above 6 streams, several scenes side by side,
6 cameras each, seeds 0, 1, ...):

1. throughput: ``streams`` as fast as possible; aggregate frames per second gives the streams
   the machine could carry (``aggregate / target_fps``, from the largest count);
2. real time: ``target_streams`` streams played at their frame rate (as live cameras deliver
   them); real time means the run lasts no longer than the video (plus 1 s and 5% for start-up
   and the last frames), i.e. the pipeline never falls behind the cameras for good; with
   ``capacity_check`` the estimated capacity is played in real time too;
3. accuracy: the real-time run's MTMC IDF1 must equal the offline run's on the same scene;
4. profile (``profile``): the largest run's mean milliseconds per frame in every stage (from
   every tick's ``TickStats``) next to the stage's FLOPs per frame (detector network from its
   ONNX shapes, embedder from its sidecar times the crops it embedded), the achieved GFLOP/s
   against the fp32/int8 GEMM peaks measured in the same run (best of before and after), and
   the detectors taken apart (preprocess, network, decode; one worker or two; INT8 behind its
   guard).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adfl_deploy.evaluation.scene_eval import score_run
from adfl_deploy.pipeline import PipelineConfig, run
from adfl_deploy.pipeline.config import DEFAULT_SINKS, check_detect_every
from adfl_deploy.pipeline.sinks import SINKS
from adfl_deploy.pipeline.sources import SourceConfig
from adfl_deploy.scene import SceneConfig, generate

STAGES = ("decode", "detect", "track", "embed", "associate", "sink")
#: cameras of one generated scene (one real Con-ReID camera each)
SCENE_CAMERAS = 6


@dataclass(frozen=True)
class PipelineBenchConfig:
    target_fps: float = 10.0
    target_streams: int = 4
    #: stream counts for the throughput curve; above 6, several scenes side by side
    streams: tuple[int, ...] = (1, 2, 4, 6)
    seconds: float = 30.0
    detector: str = "fastestdet+motion-quarter"  # the demo's
    #: the detector sees one frame in this many per camera (``PipelineConfig.detect_every``;
    #: None: the detector's own)
    detect_every: int | None = None
    model: str = ""  # "" = the shipped edge model
    backend: str = "auto"
    scene_root: str = "out/bench-scene"
    out: str = "out/bench-pipeline"
    #: also play the estimated capacity (streams) in real time
    capacity_check: bool = False
    #: per-stage FLOPs and GFLOP/s against the measured peaks, and the detectors taken apart
    profile: bool = False

    def __post_init__(self) -> None:
        if self.detect_every is not None:
            check_detect_every(self.detect_every, "--detect-every")


class _Counter:
    """Bench-only sink: every tick's stage milliseconds, frames and embedded crops."""

    name = "bench-counter"
    last: _Counter | None = None

    def __init__(self, *_args) -> None:
        self.stage_ms = dict.fromkeys(STAGES[1:], 0.0)
        self.ticks = self.frames = self.crops = 0
        _Counter.last = self

    def on_event(self, event) -> None:
        kind = type(event).__name__
        if kind == "TickStats":
            self.ticks += 1
            for stage, ms in event.stage_ms.items():
                if stage in self.stage_ms:
                    self.stage_ms[stage] += ms
        elif kind == "FrameTracked":
            self.frames += 1
        elif kind == "CropEmbedded":
            self.crops += 1


if _Counter.name not in SINKS:
    SINKS.register(_Counter.name, _Counter)


def _scenes(cfg: PipelineBenchConfig, streams: int) -> list:
    """Scenes for ``streams`` cameras: one scene up to 6, else scenes of 6 (seeds 0, 1, ...)."""
    scenes, left, seed = [], streams, 0
    while left > 0:
        cameras = min(left, SCENE_CAMERAS)
        folder = f"{cameras}cam" if seed == 0 else f"{cameras}cam-seed{seed}"
        scene = SceneConfig(cameras=cameras, seconds=cfg.seconds, fps=cfg.target_fps, people=16, seed=seed)
        scenes.append(generate(scene, Path(cfg.scene_root) / folder, progress=False))
        left, seed = left - cameras, seed + 1
    return scenes


def _sources(scenes: list) -> list[str]:
    if len(scenes) == 1:
        return scenes[0].sources()
    return [f"s{k}{cam}={scene.video(cam)}" for k, scene in enumerate(scenes) for cam in scene.cameras]


def _run(cfg: PipelineBenchConfig, scenes: list, name: str, realtime: bool) -> dict:
    sinks = [s for s in DEFAULT_SINKS if s not in ("videos", "mosaic")] + [_Counter.name]
    pipeline = PipelineConfig(
        sources=_sources(scenes),
        model=cfg.model,
        backend=cfg.backend,
        detector=cfg.detector,
        detect_every=cfg.detect_every,
        out=str(Path(cfg.out) / name),
        write_videos=False,
        sinks=sinks,
        source=SourceConfig(realtime=realtime),
    )
    started, cpu = time.perf_counter(), _cpu_seconds()
    summary = run(pipeline, progress=False)
    wall = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu
    counter = _Counter.last
    frames = sum(c.frames for c in summary.cameras.values())
    return {
        "streams": len(summary.cameras),
        "scenes": len(scenes),
        "realtime_paced": realtime,
        "wall_seconds": wall,
        "loop_seconds": summary.seconds,
        "video_seconds": scenes[0].config.seconds,
        "frames": frames,
        "aggregate_fps": frames / summary.seconds,
        "fps_per_stream": min(summary.fps_per_camera.values()),
        # CPU time of the whole process (every thread: readers, detector workers, sinks) per
        # frame: what a frame costs whatever else shares the machine (start-up included)
        "cpu_ms_per_frame": 1000.0 * cpu / max(frames, 1),
        "stage_ms_p50": summary.stage_ms_p50,
        "stage_ms_p99": summary.stage_ms_p99,
        # mean per frame over the whole run (detect/track per frame; embed/associate/sink per tick, shared by its frames)
        "stage_ms_per_frame": {k: v / max(counter.frames, 1) for k, v in counter.stage_ms.items()},
        "ticks": counter.ticks,
        "crops_embedded": counter.crops,
        "mtmc_idf1": score_run(scenes[0], pipeline.out).idf1 if len(scenes) == 1 else None,
        "embedder": summary.embedder,
        # the identity store's own cost: ms per tick of its writer thread, ticks it had to drop
        "store": summary.sinks.get("store"),
        "sinks": sinks[:-1],
    }


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peaks() -> dict[str, float]:
    from adfl_deploy.bench.model_bench import measure_gemm_peak

    return {"fp32": measure_gemm_peak("fp32"), "int8": measure_gemm_peak("int8")}


def run_benchmark(cfg: PipelineBenchConfig) -> dict:
    if min(cfg.streams) < 1 or cfg.target_streams < 1:
        raise ValueError("stream counts start at 1")
    import os

    from adfl_deploy.evaluation.sweep import code_version

    load_before = os.getloadavg()
    peaks = _peaks() if cfg.profile else {}
    throughput = [_run(cfg, _scenes(cfg, n), f"throughput-{n}", realtime=False) for n in cfg.streams]
    best = max(throughput, key=lambda r: r["streams"])
    capacity = best["aggregate_fps"] / cfg.target_fps
    target_scenes = _scenes(cfg, cfg.target_streams)
    offline = next((r for r in throughput if r["streams"] == cfg.target_streams), None) or _run(
        cfg, target_scenes, "offline", realtime=False
    )
    live = _run(cfg, target_scenes, "realtime", realtime=True)
    report = {
        "code_version": code_version(),
        # a shared machine: the 1-minute load average before the runs (and after, below); with
        # more runnable threads than cores, wall-clock numbers stretch and CPU ms per frame much less
        "load_average_1min": {"before": load_before[0]},
        "config": dataclasses.asdict(cfg),
        "throughput": throughput,
        "realtime": live,
        "max_realtime_streams_estimate": int(capacity),
        # what the CPU time per frame allows if every core were free for this process alone
        "cpu_bound_streams": int(_cores() * 1000.0 / best["cpu_ms_per_frame"] / cfg.target_fps),
        "realtime_ok": _kept_up(live),
        "idf1_offline": offline["mtmc_idf1"],
        "idf1_realtime": live["mtmc_idf1"],
    }
    if cfg.capacity_check and int(capacity) > cfg.target_streams:
        check = _run(cfg, _scenes(cfg, int(capacity)), f"realtime-{int(capacity)}", realtime=True)
        report["realtime_capacity"] = {**check, "kept_up": _kept_up(check)}
    if cfg.profile:
        after = _peaks()
        report["peaks_gflop_per_s"] = {k: max(peaks[k], after[k]) for k in peaks}
        report["profile"] = stage_profile(cfg, best, report["peaks_gflop_per_s"])
        report["detectors"] = detector_profile(cfg, report["peaks_gflop_per_s"])
    report["load_average_1min"]["after"] = os.getloadavg()[0]
    return report


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _kept_up(run: dict) -> bool:
    return run["wall_seconds"] <= run["video_seconds"] + 1.0 + 0.05 * run["video_seconds"]


def _flops(cfg: PipelineBenchConfig) -> tuple[float, float]:
    """(detector network FLOPs per frame - per camera frame, so a detector that sees one frame
    in N (``detect_every``) counts 1/N of its network -, embedder FLOPs per crop); 0 where there
    is no network."""
    from adfl_deploy.assets import EDGE_MODEL
    from adfl_deploy.model.artifact import load_artifact
    from adfl_deploy.tracking.detectors import create_detector
    from adfl_deploy.tracking.onnx_detector import forward_flops

    detector = create_detector(cfg.detector)
    network = getattr(detector, "primary", detector)  # a fused pair: its network (the helper has none)
    detect = forward_flops(network.model) if hasattr(network, "model") else 0.0
    detect /= cfg.detect_every or getattr(detector, "detect_every", 1)
    try:
        embed = float(load_artifact(cfg.model or EDGE_MODEL).flops_per_image)
    except Exception:  # noqa: BLE001 - a registered embedder without an artefact (colour histogram)
        embed = 0.0
    return detect, embed


def stage_profile(cfg: PipelineBenchConfig, run: dict, peaks: dict[str, float]) -> list[dict]:
    """Mean ms per frame of every stage of ``run`` beside its FLOPs per frame and the share of the
    peak it reaches (the pipeline runs both cores, so the whole machine's peak; the embedder's
    against the peak of its precision: int8 for the shipped INT8 model)."""
    detect_flops, crop_flops = _flops(cfg)
    peak = {"detect": peaks["fp32"], "embed": peaks["int8" if run["embedder"].get("precision") == "int8" else "fp32"]}
    crops_per_frame = run["crops_embedded"] / max(run["frames"], 1)
    flops = {"detect": detect_flops, "embed": crop_flops * crops_per_frame}
    per_frame = {"decode": run["stage_ms_p50"]["decode"], **run["stage_ms_per_frame"]}
    wall = 1000.0 / run["aggregate_fps"]
    rows = []
    for stage in STAGES:
        ms = per_frame.get(stage, 0.0)
        f = flops.get(stage, 0.0)
        gflops = f / (ms / 1000.0) / 1e9 if f and ms else 0.0
        rows.append(
            {
                "stage": stage,
                "ms_per_frame": ms,
                "gflop_per_frame": f / 1e9,
                "gflop_per_s": gflops,
                "of_peak": gflops / peak.get(stage, peaks["fp32"]) if gflops else 0.0,
                "peak": ("int8" if peak.get(stage) == peaks["int8"] else "fp32") if gflops else "",
                "note": "source threads, overlaps the loop (p50)" if stage == "decode" else "",
            }
        )
    loop = sum(r["ms_per_frame"] for r in rows if r["stage"] != "decode")
    rows.append(
        {
            "stage": "loop total (1000 / aggregate FPS)",
            "ms_per_frame": wall,
            "gflop_per_frame": sum(flops.values()) / 1e9,
            "gflop_per_s": sum(flops.values()) / (wall / 1000.0) / 1e9,
            "of_peak": 0.0,
            "peak": "",
            "note": f"stages {loop:.2f} ms; the rest waits for frames or runs Python between stages",
        }
    )
    for r in rows:
        r["streams"] = run["streams"]
        r["crops_per_frame"] = crops_per_frame
    return rows


def _frames(cfg: PipelineBenchConfig, per_camera: int = 60) -> list[list[np.ndarray]]:
    import cv2

    scene = _scenes(cfg, SCENE_CAMERAS)[0]
    out = []
    for cam in scene.cameras:
        cap = cv2.VideoCapture(str(scene.video(cam)))
        frames = []
        while len(frames) < per_camera:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        cap.release()
        out.append(frames)
    return out


def _ms(fn, frames: int, repeats: int = 5) -> float:
    """Fastest of ``repeats`` runs of ``fn`` in ms per frame (a shared machine: the fastest is
    the one least disturbed)."""
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / frames


def detector_profile(cfg: PipelineBenchConfig, peaks: dict[str, float]) -> list[dict]:
    """Each detector taken apart on 6 cameras' frames: motion (one model per camera; one worker,
    then two side by side), and the ONNX detector(s) (preprocess, network one frame per call on
    one thread, decode + NMS, then ``detect_batch`` on its workers; INT8 behind its guard)."""
    from concurrent.futures import ThreadPoolExecutor

    import cv2

    from adfl_deploy.tracking.detectors import MotionDetector, create_detector, detect_frames, fused_pair

    cams = _frames(cfg)
    n = len(cams)
    warm, timed = 30, [cam[30:] for cam in cams]
    per_tick = list(zip(*timed))  # ticks of one frame per camera
    frames = [f for tick in per_tick for f in tick]
    rows = []
    threads = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        motion = [MotionDetector() for _ in cams]
        for m, cam in zip(motion, cams):
            for f in cam[:warm]:
                m(f)
        one = _ms(lambda: [m(f) for tick in per_tick for m, f in zip(motion, tick)], len(frames), 2)
        with ThreadPoolExecutor(2) as pool:
            two = _ms(lambda: [detect_frames(list(zip(motion, tick, [None] * n)), pool) for tick in per_tick], len(frames), 2)
        rows += _motion_parts(cams, warm)
        rows.append({"detector": "motion", "part": "whole (MOG2, morphology, labelling), 1 worker", "ms_per_frame": one})
        rows.append({"detector": "motion", "part": "whole, one model per camera, 2 workers side by side", "ms_per_frame": two})
        # a fused pair's network (the motion rows are above), profiled once when it is FastestDet
        network = (fused_pair(cfg.detector) or (cfg.detector,))[0]
        for name in dict.fromkeys(["fastestdet", network]):
            det = create_detector(name) if name != "motion" else None
            if det is not None and hasattr(det, "prepare"):
                rows += _onnx_rows(name, det, cams, per_tick, peaks)
    finally:
        cv2.setNumThreads(threads)
    return rows


def _motion_parts(cams: list, warm: int) -> list[dict]:
    """The motion detector's three steps on one thread, on one camera's frames."""
    import cv2

    from adfl_deploy.tracking.detectors import MotionDetector

    m = MotionDetector()
    for f in cams[0][:warm]:
        m(f)
    frames = cams[0][warm:]
    masks = [m._model.apply(f) for f in frames]
    opened = [
        cv2.morphologyEx(cv2.morphologyEx(g, cv2.MORPH_OPEN, m._kernel), cv2.MORPH_CLOSE, m._kernel, iterations=2) for g in masks
    ]
    parts = {
        "MOG2 background model (per pixel)": lambda: [m._model.apply(f) for f in frames],
        "morphology (open, close x2)": lambda: [
            cv2.morphologyEx(cv2.morphologyEx(g, cv2.MORPH_OPEN, m._kernel), cv2.MORPH_CLOSE, m._kernel, iterations=2)
            for g in masks
        ],
        "connected components (Grana) + boxes": lambda: [
            cv2.connectedComponentsWithStatsWithAlgorithm(g, 8, cv2.CV_32S, cv2.CCL_GRANA) for g in opened
        ],
        "connected components (OpenCV's default, before)": lambda: [
            cv2.connectedComponentsWithStats((g > 0).astype(np.uint8)) for g in opened
        ],
    }
    return [{"detector": "motion", "part": f"{k}, 1 thread", "ms_per_frame": _ms(fn, len(frames), 3)} for k, fn in parts.items()]


def _network_ms(session, name: str, blobs: np.ndarray) -> float:
    return _ms(lambda: [session.run(None, {name: blobs[i : i + 1]}) for i in range(len(blobs))], len(blobs))


def _onnx_rows(name: str, det, cams: list, per_tick: list, peaks: dict[str, float]) -> list[dict]:
    from adfl_deploy.tracking.onnx_detector import AccuracyError, forward_flops

    frames = [f for tick in per_tick for f in tick]
    flops = forward_flops(det.model)
    blobs = np.stack([det.prepare(f)[0] for f in frames])
    prep = _ms(lambda: [det.prepare(f) for f in frames], len(frames))
    net = _network_ms(det.session, det.input, blobs)
    outs = [det.session.run(None, {det.input: blobs[i : i + 1]})[0][0] for i in range(len(blobs))]
    metas = [det.prepare(f)[1] for f in frames]
    post = _ms(lambda: [det.finish(o, f.shape, meta, None) for o, f, meta in zip(outs, frames, metas)], len(frames))
    whole = _ms(lambda: [det.detect_batch(list(tick)) for tick in per_tick], len(frames))
    per_core = peaks["fp32"] / 2
    rows = [
        {
            "detector": name,
            "part": "preprocess (letterbox resize; FastestDet scales and lays out in its graph), 1 thread",
            "ms_per_frame": prep,
        },
        {
            "detector": name,
            "part": "network fp32, 1 frame per call, 1 thread",
            "ms_per_frame": net,
            "gflop_per_frame": flops / 1e9,
            "gflop_per_s": flops / net / 1e6,
            "of_peak": flops / net / 1e6 / per_core,
        },
        {"detector": name, "part": "decode + NMS + filters, 1 thread", "ms_per_frame": post},
        {"detector": name, "part": f"detect_batch of {len(cams)} cameras, {det.threads} workers", "ms_per_frame": whole},
    ]
    half = len(cams) // 2
    calibration = [f for cam in cams[:half] for f in cam[::3]]  # other cameras than the held-out ones
    held_out = [f for cam in cams[half:] for f in cam[::3]]
    try:
        int8 = det.quantized(calibration, held_out)
    except AccuracyError as exc:
        return rows + [{"detector": name, "part": "network int8", "refused": str(exc)}]
    net8 = _network_ms(int8.session, int8.input, blobs)
    rows.append(
        {
            "detector": name,
            "part": "network int8, 1 frame per call, 1 thread",
            "ms_per_frame": net8,
            "gflop_per_frame": flops / 1e9,
            "gflop_per_s": flops / net8 / 1e6,
            "of_peak": flops / net8 / 1e6 / (peaks["int8"] / 2),
            "int8_guard": int8.int8_report,
        }
    )
    return rows


def markdown(report: dict) -> str:
    lines = [
        "| streams | mode | wall s | aggregate FPS | FPS/stream | CPU ms/frame | "
        + " | ".join(f"{s} p50/p99 ms" for s in STAGES)
        + " | MTMC IDF1 |",
        "|---:|---|---:|---:|---:|---:|" + "---:|" * len(STAGES) + "---:|",
    ]
    runs = report["throughput"] + [report["realtime"]] + ([report["realtime_capacity"]] if "realtime_capacity" in report else [])
    for r in runs:
        stages = " | ".join(f"{r['stage_ms_p50'][s]:.2f}/{r['stage_ms_p99'][s]:.2f}" for s in STAGES)
        mode = "real-time" if r["realtime_paced"] else "as fast as possible"
        idf1 = f"{r['mtmc_idf1']:.3f}" if r.get("mtmc_idf1") is not None else "-"
        lines.append(
            f"| {r['streams']} | {mode} | {r['wall_seconds']:.1f} | {r['aggregate_fps']:.0f} | "
            f"{r['fps_per_stream']:.1f} | {r.get('cpu_ms_per_frame', 0):.2f} | {stages} | {idf1} |"
        )
    if "cpu_bound_streams" in report:
        best = max(report["throughput"], key=lambda r: r["streams"])
        lines += [
            "",
            f"Capacity at {report['config']['target_fps']:g} FPS: {report['max_realtime_streams_estimate']} streams from the "
            f"aggregate FPS of {best['streams']} streams; {report['cpu_bound_streams']} streams from its CPU time per frame "
            f"({best['cpu_ms_per_frame']:.2f} ms) if all {_cores()} cores were free for this process alone.",
        ]
    if "profile" in report:
        peaks = report["peaks_gflop_per_s"]
        first = report["profile"][0]
        lines += [
            "",
            f"Where a frame's time goes ({first['streams']} streams as fast as possible, mean per frame; "
            f"peaks measured: fp32 {peaks['fp32']:.0f} GFLOP/s, int8 {peaks['int8']:.0f} GOP/s; "
            f"{first['crops_per_frame']:.2f} crops embedded per frame):",
            "",
            "| stage | ms per frame | GFLOP per frame | GFLOP/s | of peak | note |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in report["profile"]:
            g = f"{r['gflop_per_frame']:.3f}" if r["gflop_per_frame"] else "-"
            rate = f"{r['gflop_per_s']:.1f}" if r["gflop_per_s"] else "-"
            share = f"{100 * r['of_peak']:.1f}% ({r['peak']})" if r["of_peak"] else "-"
            lines.append(f"| {r['stage']} | {r['ms_per_frame']:.2f} | {g} | {rate} | {share} | {r['note']} |")
        lines += [
            "",
            "| detector | part | ms per frame | GFLOP per frame | GFLOP/s | of peak (one core) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in report["detectors"]:
            if "refused" in r:
                lines.append(f"| {r['detector']} | {r['part']} | refused: {r['refused']} | | | |")
                continue
            g = f"{r['gflop_per_frame']:.3f}" if r.get("gflop_per_frame") else "-"
            rate = f"{r['gflop_per_s']:.1f}" if r.get("gflop_per_s") else "-"
            share = f"{100 * r['of_peak']:.1f}%" if r.get("of_peak") else "-"
            part = r["part"]
            if "int8_guard" in r:
                guard = r["int8_guard"]
                part += f" (vs fp32, {guard['frames']} held-out frames: recall {guard['recall']:.3f}"
                part += f", agreement {guard['agreement']:.3f})"
            lines.append(f"| {r['detector']} | {part} | {r['ms_per_frame']:.2f} | {g} | {rate} | {share} |")
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
