"""``adfl bench``: latency/throughput per backend x precision x batch, against the measured peak."""

from __future__ import annotations

import argparse
import gc
import json
from pathlib import Path

EXAMPLES = """examples:
  adfl bench adfl_deploy/assets/edge_model                      # the shipped model, ONNX Runtime
  adfl bench out/edge --precision fp32,int8 --batch 1,8,32
  adfl bench out/edge --compare --checkpoint runs/edge-con-reid/last.pt   # + PyTorch eager, speedups
  adfl bench out/edge --backends tensorrt,onnxruntime-cuda --precision fp32,fp16 --compare \
      --checkpoint runs/edge-con-reid/last.pt --torch-precision fp32,fp16 --batch 1,8,32  # on a GPU
  adfl bench --pipeline                        # whole pipeline: per-stage latency, real-time streams
  adfl bench --pipeline --target-streams 4 --target-fps 10 --streams 1,2,4,6 --seconds 30
  adfl bench --store --run out/demo/track --scene out/scene   # identity store: search accuracy, latency at 100k
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="latency p50/p90/p99, throughput and share of the GEMM peak per backend, precision and batch",
        description="Benchmark an exported model. FLOPs per image come from the sidecar; the machine's fp32 "
        "and int8 GEMM peaks are measured in the same run, so each row reports how close it gets. Writes "
        "bench.json (machine, versions, config, date, rows) and bench.png (latency per image vs batch).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("artifact", nargs="?", help="artefact folder (adfl export); with --pipeline default: the shipped edge model")
    p.add_argument(
        "--backends",
        default="onnxruntime-cpu",
        help="comma list: onnxruntime-cpu, onnxruntime-cuda, tensorrt (the artefact's engine), torch (needs --checkpoint)",
    )
    p.add_argument("--torch-precision", default="fp32", help="PyTorch eager precisions, comma list (fp16 needs a GPU)")
    p.add_argument("--precision", help="comma list of precisions (default: every one the artefact has)")
    p.add_argument(
        "--batch",
        default="1,8,32",
        help="comma list of batch sizes, each 1 to the artefact's max_batch (64 for the shipped models)",
    )
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per row (0 or more)")
    p.add_argument("--iters", type=int, default=20, help="timed calls per row (at least 1)")
    p.add_argument("--compare", action="store_true", help="PyTorch eager vs ONNX Runtime fp32 vs the best path, with speedups")
    p.add_argument("--checkpoint", help="checkpoint for the PyTorch eager rows")
    p.add_argument("--out", help="folder for bench.json and bench.png (default: ARTIFACT/bench, or out/bench-pipeline)")
    g = p.add_argument_group("pipeline benchmark (--pipeline)")
    g.add_argument("--pipeline", action="store_true", help="benchmark the whole multi-camera pipeline on generated scenes")
    g.add_argument(
        "--streams", default="1,2,4,6,12,24,40", help="stream counts for the throughput curve (above 6: scenes side by side)"
    )
    g.add_argument("--target-streams", type=int, default=4, help="streams to run in real time")
    g.add_argument("--target-fps", type=float, default=10.0, help="frame rate of every stream")
    g.add_argument("--seconds", type=float, default=30.0, help="length of the benchmark scenes")
    g.add_argument(
        "--detector",
        default="fastestdet+motion-quarter",
        help="fastestdet+motion-quarter (the demo's, default), fastestdet, motion, motion-half, fastestdet@WIDTHxHEIGHT, "
        "yolo-fastest or a YOLO ONNX",
    )
    g.add_argument(
        "--detect-every",
        type=int,
        help="run the detector on one frame in N per camera, tracking through the others (default: the detector's own, "
        "fastestdet 2, motion 1)",
    )
    st = p.add_argument_group("identity store benchmark (--store)")
    st.add_argument("--store", action="store_true", help="search accuracy on a tracked scene and latency at 100,000 embeddings")
    st.add_argument("--run", default="out/demo/track", help="the adfl track run folder to search (default: the demo's)")
    st.add_argument("--scene", default="out/scene", help="the generated scene that run tracked (its ground truth)")
    st.add_argument("--queries", type=int, default=300, help="query crops cut from ground-truth boxes")
    st.add_argument("--stored", type=int, default=100_000, help="stored embeddings for the latency measurement")
    a = p.add_argument_group("association benchmark (--association)")
    a.add_argument("--association", action="store_true", help="cost of one association tick as the known identities grow")
    a.add_argument("--identities", default="100,1000,10000", help="comma list of identity counts")


def _torch_fn(checkpoint: str, precision: str):
    """(run, on_gpu): PyTorch eager for a training checkpoint, from the torch backend that the
    training side registers (the same runner ``Embedder`` uses for ``backend="torch"``)."""
    from adfl_deploy.runtime.backends import BACKENDS

    return BACKENDS.get("torch").checkpoint_runner(checkpoint, precision)


GPU_BACKENDS = ("tensorrt", "onnxruntime-cuda")


def _measure_peaks() -> dict[str, float]:
    from adfl_deploy.bench.model_bench import measure_gemm_peak

    return {"fp32": measure_gemm_peak("fp32"), "int8": measure_gemm_peak("int8")}


def _comparison(rows: list, batch: int) -> dict | None:
    """PyTorch eager vs ONNX Runtime fp32 vs the fastest exported path at one batch size; eager
    in the best path's precision when it was measured (fp16 on a GPU), else its fastest."""
    at = [r for r in rows if r.batch == batch]
    eager = [r for r in at if r.backend == "torch-eager"]
    exported = [r for r in at if r.backend != "torch-eager"]
    if not eager or not exported:
        return None
    best = min(exported, key=lambda r: r.ms_per_image)
    same = [r for r in eager if r.precision == best.precision]
    reference = min(same or eager, key=lambda r: r.ms_per_image)
    fp32 = next((r for r in exported if r.backend.startswith("onnxruntime") and r.precision == "fp32"), None)
    return {
        "batch": batch,
        "torch_eager": reference.ms_per_image,
        "torch_eager_precision": reference.precision,
        "ort_fp32": fp32.ms_per_image if fp32 else None,
        "best": f"{best.backend} {best.precision}",
        "best_ms": best.ms_per_image,
        "speedup_vs_torch": reference.ms_per_image / best.ms_per_image,
        "speedup_vs_ort_fp32": fp32.ms_per_image / best.ms_per_image if fp32 else None,
    }


def run_pipeline(args) -> int:
    from adfl_deploy.bench.model_bench import machine_info
    from adfl_deploy.bench.pipeline_bench import PipelineBenchConfig, markdown, plot, run_benchmark
    from adfl_deploy.files import atomic_write_text

    cfg = PipelineBenchConfig(
        target_fps=args.target_fps,
        target_streams=args.target_streams,
        streams=tuple(int(s) for s in args.streams.split(",")),
        seconds=args.seconds,
        detector=args.detector,
        detect_every=args.detect_every,
        model=args.artifact or "",
        out=args.out or "out/bench-pipeline",
        capacity_check=True,
        profile=True,
    )
    report = run_benchmark(cfg)
    report = {
        "machine": machine_info(),
        "command": "adfl bench --pipeline " + " ".join(f"{k}={v}" for k, v in vars(args).items() if k != "command"),
        **report,
    }
    out = Path(cfg.out)
    atomic_write_text(out / "bench.json", json.dumps(report, indent=2) + "\n")  # first: nothing printed below can lose it
    print(markdown(report))
    print(_store_cost(report))
    verdict = "meets" if report["realtime_ok"] and cfg.target_streams <= report["max_realtime_streams_estimate"] else "misses"
    idf1 = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731 - several scenes side by side have no one score
    print(
        f"\n{cfg.target_streams} streams at {cfg.target_fps:g} FPS in real time: {verdict} the target "
        f"(run took {report['realtime']['wall_seconds']:.1f} s for {cfg.seconds:g} s of video); "
        f"estimated capacity {report['max_realtime_streams_estimate']} streams; "
        f"MTMC IDF1 offline {idf1(report['idf1_offline'])} vs real time {idf1(report['idf1_realtime'])}"
    )
    plot(report, out / "bench.png")
    print(f"wrote {out / 'bench.json'} and {out / 'bench.png'}")
    return 0


def _store_cost(report: dict) -> str:
    """The identity store's insert cost per tick in each run (its writer thread, off the camera
    loop), and what it dropped."""
    lines = ["", "identity store (adfl.db) per run: writer ms per tick p50/p99, ticks dropped"]
    for r in report.get("throughput", []) + [report.get("realtime", {})]:
        store = r.get("store")
        if store:
            mode = "real-time" if r.get("realtime_paced") else "as fast as possible"
            lines.append(
                f"  {r['streams']} streams, {mode}: {store['write_ms_p50']:.2f} / {store['write_ms_p99']:.2f} ms, "
                f"{store['ticks_dropped']} of {store['ticks_written'] + store['ticks_dropped']} ticks dropped"
            )
    return "\n".join(lines) if len(lines) > 2 else "\nidentity store: not among the run's sinks"


def run_association(args) -> int:
    from adfl_deploy.bench.association_bench import AssociationBenchConfig, markdown, run_benchmark
    from adfl_deploy.bench.model_bench import machine_info
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.files import atomic_write_text

    try:
        counts = tuple(int(n) for n in args.identities.split(","))
    except ValueError:
        raise ConfigError(
            f"--identities {args.identities!r}: expected a comma list of whole numbers, e.g. 100,1000,10000"
        ) from None
    if min(counts) < 1 or max(counts) > 200_000:
        raise ConfigError(f"--identities {args.identities}: use counts from 1 to 200000")
    report = run_benchmark(AssociationBenchConfig(identities=counts))
    report = {"machine": machine_info(), "command": f"adfl bench --association --identities {args.identities}", **report}
    print(markdown(report))
    out = Path(args.out or "out/bench-association")
    atomic_write_text(out / "bench.json", json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / 'bench.json'}")
    return 0


def run_store(args) -> int:
    from adfl_deploy.bench.model_bench import machine_info
    from adfl_deploy.bench.store_bench import StoreBenchConfig, markdown, run_benchmark
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.files import atomic_write_text

    if args.queries < 1 or not 1 <= args.stored <= 2_000_000:
        raise ConfigError("--queries must be >= 1 and --stored 1..2000000")
    cfg = StoreBenchConfig(run=args.run, scene=args.scene, queries=args.queries, stored=args.stored)
    out = Path(args.out or "out/bench-store")
    report = run_benchmark(cfg, out)
    report = {
        "machine": machine_info(),
        "command": f"adfl bench --store --run {args.run} --scene {args.scene} --queries {args.queries} --stored {args.stored}",
        **report,
    }
    print(markdown(report))
    atomic_write_text(out / "bench.json", json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / 'bench.json'}")
    return 0


def _batches(text: str) -> list[int]:
    from adfl_deploy.errors import ConfigError

    try:
        return [int(b) for b in text.split(",")]
    except ValueError:
        raise ConfigError(f"--batch {text!r}: expected a comma list of whole numbers, e.g. 1,8,32") from None


def run(args) -> int:
    if args.store:
        return run_store(args)
    if args.association:
        return run_association(args)
    if args.pipeline:
        return run_pipeline(args)
    if not args.artifact:
        raise ValueError("adfl bench needs an artefact folder (or --pipeline)")
    from adfl_deploy.assets import load_sample_crops
    from adfl_deploy.bench.model_bench import (
        bench_callable,
        check_settings,
        machine_info,
        markdown,
        plot,
        rows_as_dicts,
        with_peak,
    )
    from adfl_deploy.files import atomic_write_text
    from adfl_deploy.model.artifact import load_artifact
    from adfl_deploy.model.preprocess import prepare, to_blob
    from adfl_deploy.runtime.embedder import Embedder

    info = load_artifact(args.artifact)
    batches = _batches(args.batch)
    check_settings(batches, args.warmup, args.iters, info.max_batch)  # before minutes of work
    backends = args.backends.split(",")
    if args.compare and "torch" not in backends:
        backends.append("torch")
    if "torch" in backends and not args.checkpoint:
        raise ValueError("the torch backend needs the weights: pass --checkpoint CKPT")
    precisions = args.precision.split(",") if args.precision else sorted(info.variants or {info.precision: info.onnx})
    if args.compare and "fp32" not in precisions and "fp32" in info.variants:
        precisions.append("fp32")
    if not info.flops_per_image:
        raise ValueError(f"{args.artifact}: the sidecar has no flops_per_image; re-export with this version")
    peaks = _measure_peaks()
    print(
        f"measured peaks: fp32 GEMM {peaks['fp32']:.0f} GFLOP/s, int8 GEMM (u8 x s8) {peaks['int8']:.0f} GOP/s; "
        f"model {info.model.name}: {info.flops_per_image / 1e9:.2f} GFLOP per image"
    )
    crops = load_sample_crops()
    inputs = {batch: [crops[i % len(crops)] for i in range(batch)] for batch in batches}
    measured = []  # (row, the CPU peak it is measured against: None on a GPU)
    # one model at a time, all batches each, PyTorch last: a row's peak RSS is then the process
    # with that model loaded, not with every model before it (torch's libraries stay once loaded)
    for backend in sorted(backends, key=lambda name: name == "torch"):
        if backend == "torch":
            for precision in args.torch_precision.split(","):
                fn, on_gpu = _torch_fn(args.checkpoint, precision)
                for chosen in inputs.values():
                    blob = to_blob(chosen, info.preprocessing)
                    row = bench_callable(fn, "torch-eager", precision, blob, info.flops_per_image, args.warmup, args.iters)
                    measured.append((row, None if on_gpu else precision))
                del fn
            continue
        # a TensorRT engine has one precision (the one it was built from)
        for precision in [None] if backend == "tensorrt" else precisions:
            embedder = Embedder.from_artifact(args.artifact, backend=backend, precision=precision)
            key = None if embedder.backend in GPU_BACKENDS else embedder.precision
            for chosen in inputs.values():
                blob = prepare(chosen, info.preprocessing, info.input_format)  # what the artefact's model takes
                row = bench_callable(
                    embedder.embed_batch,
                    embedder.backend,
                    embedder.precision,
                    blob,
                    info.flops_per_image,
                    args.warmup,
                    args.iters,
                )
                measured.append((row, key))
            del embedder
            gc.collect()
    measured.sort(key=lambda pair: pair[0].batch)  # the table by batch, backends in order
    # the peaks once more after the rows: the best of both, so a busy moment on a shared
    # machine at the start does not inflate every ratio
    after = _measure_peaks()
    peaks = {k: max(peaks[k], after[k]) for k in peaks}
    print(f"peaks, best of before and after: fp32 {peaks['fp32']:.0f} GFLOP/s, int8 {peaks['int8']:.0f} GOP/s")
    rows = [with_peak(row, peaks.get(key, 0.0) if key else 0.0) for row, key in measured]  # no fp16 CPU peak
    print(markdown(rows))
    comparison = []
    if args.compare:
        print(
            "\n| batch | torch eager ms/img | ORT fp32 ms/img | best | best ms/img | vs torch | vs ORT fp32 "
            "|\n|---:|---:|---:|---|---:|---:|---:|"
        )
        for batch in batches:
            c = _comparison(rows, batch)
            if c is None:
                continue
            comparison.append(c)
            ort_fp32 = f"{c['ort_fp32']:.2f}" if c["ort_fp32"] else "-"
            vs_ort = f"{c['speedup_vs_ort_fp32']:.2f}x" if c["speedup_vs_ort_fp32"] else "-"
            print(
                f"| {batch} | {c['torch_eager']:.2f} ({c['torch_eager_precision']}) | {ort_fp32} | {c['best']} | "
                f"{c['best_ms']:.2f} | {c['speedup_vs_torch']:.2f}x | {vs_ort} |"
            )
    out = Path(args.out) if args.out else Path(args.artifact) / "bench"
    report = {
        "machine": machine_info(),
        "command": "adfl bench " + " ".join(f"{k}={v}" for k, v in vars(args).items() if k != "command"),
        "model": info.model.name,
        "flops_per_image": info.flops_per_image,
        "input": [info.preprocessing.height, info.preprocessing.width],
        "peaks_gflop_per_s": peaks,
        "rows": rows_as_dicts(rows),
        "comparison": comparison,
    }
    atomic_write_text(out / "bench.json", json.dumps(report, indent=2) + "\n")
    plot(rows, out / "bench.png")
    print(f"wrote {out / 'bench.json'} and {out / 'bench.png'}")
    return 0
