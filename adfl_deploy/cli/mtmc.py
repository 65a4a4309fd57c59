"""``adfl mtmc``: score multi-camera tracking on a generated scene, compare methods on it, or
sweep the methods over many generated scenes (mean ± sd per method)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

EXAMPLES = """examples:
  adfl mtmc out/scene --results out/track          score an `adfl track` run (its mot/ files)
  adfl mtmc out/scene --compare                    shipped model vs baselines, detectors vs gt boxes
  adfl mtmc out/scene --compare --detections gt --models edge,baseline,colour-histogram,out/my-model
  adfl mtmc --sweep seeds=1-4,cameras=3,4,seconds=60           every method on 8 scenes: mean ± sd
  adfl mtmc --sweep seeds=5-9,cameras=3-6,seconds=60,120,people=12 --models edge --detections gt,motion
  adfl mtmc out/scene --detectors                  detection recall/precision/AP@0.5 of every registered detector
  adfl mtmc out/scene --detectors fastestdet,fastestdet@640x352,my-yolo.onnx --out results/detection
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "mtmc",
        help="MTMC scoring (per-camera MOTA/IDF1/ID switches, cross-camera IDF1 and HOTA, purity, fragmentation)",
        description="Score MOTChallenge results with global ids against a generated scene's ground truth "
        "(motmetrics): per camera MOTA, IDF1 and ID switches; across cameras the DukeMTMC MTMC IDF1 (one identity "
        "matching over all cameras), HOTA/DetA/AssA (TrackEval's definition) over the same joint sequence, global-id "
        "purity and fragmentation. With --compare, run the pipeline once per method and print one table. With --sweep, "
        "run every method on every generated scene of the spec and report mean ± sample sd over the scenes.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scene", nargs="?", help="scene folder made by `adfl scene` (not with --sweep)")
    p.add_argument("--results", help="an `adfl track` output folder to score")
    p.add_argument("--compare", action="store_true", help="run and score several methods (default: the demo's table)")
    p.add_argument(
        "--sweep",
        metavar="SPEC",
        help="run the methods on every scene of SPEC, e.g. seeds=1-4,cameras=3-5,seconds=60,120,people=12 "
        "(omitted: seeds 1-4, the demo's 3 cameras, 60 s, 12 people; seed 0 is the demo's scene)",
    )
    p.add_argument(
        "--models", help="with --compare/--sweep: comma-separated edge, baseline, colour-histogram or artefact folders"
    )
    p.add_argument(
        "--detections",
        default="gt",
        help=(
            "with --models: gt (ground-truth boxes), motion, fastestdet, fastestdet@WIDTHxHEIGHT or a YOLO "
            "ONNX; a comma list runs each"
        ),
    )
    p.add_argument(
        "--detectors",
        nargs="?",
        const="all",
        metavar="LIST",
        help="detection quality alone: recall, precision (at the pipeline's confidence filter) and AP@0.5 of each "
        "detector on the scene's ground truth; a comma list of names or YOLO ONNX paths (default: every registered "
        "one)",
    )
    p.add_argument("--scene-root", default="out/sweep/scenes", help="with --sweep: where scenes are made (reused when alike)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --compare/--sweep: a pipeline setting for every run (an ablation), e.g. association.min_evidence=2",
    )
    p.add_argument(
        "--out",
        help="with --compare: each method's run and the table (out/mtmc); --sweep: runs, sweep.json/.md (out/sweep); "
        "--detectors: detection.json/.md (out/detection)",
    )


def _methods(args, default):
    from adfl_deploy.evaluation.scene_eval import methods_from_names

    return methods_from_names(args.models, args.detections) if args.models else default


def _base(args):
    """The pipeline settings every run shares: defaults with ``--set`` applied (None without)."""
    if not args.set:
        return None
    from adfl_deploy import config
    from adfl_deploy.pipeline import PipelineConfig

    return config.with_overrides(PipelineConfig(), {}, args.set)


def run(args) -> int:
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.evaluation.scene_eval import DEFAULT_METHODS, evaluate, markdown, row, score_run, slug
    from adfl_deploy.files import atomic_write_text
    from adfl_deploy.pipeline.summary import read_summary
    from adfl_deploy.scene import load_scene

    if args.sweep:
        if args.scene or args.results or args.compare:
            raise ConfigError("--sweep makes its own scenes (--scene-root); pass no SCENE, --results or --compare with it")
        return _sweep(args)
    if not args.scene:
        raise ConfigError("no scene: pass a folder made by `adfl scene`, or --sweep SPEC to run over generated scenes")
    scene = load_scene(args.scene)
    if args.detectors:
        return _detectors(args, scene)
    if args.results:
        summary_path = Path(args.results) / "summary.json"
        if not summary_path.is_file():
            raise ConfigError(f"{args.results} is not an `adfl track` output folder (no summary.json)")
        summary = read_summary(summary_path)
        rows = [row(args.results, score_run(scene, args.results), summary)]
        atomic_write_text(Path(args.results) / "mtmc.json", json.dumps(rows[0], indent=2) + "\n")
    elif args.compare:
        out = Path(args.out or "out/mtmc")
        rows = [evaluate(scene, m, out / slug(m.label), _base(args)) for m in _methods(args, DEFAULT_METHODS)]
        atomic_write_text(out / "comparison.json", json.dumps(rows, indent=2) + "\n")
        atomic_write_text(out / "comparison.md", markdown(rows) + "\n")
    else:
        raise ConfigError("nothing to do: pass --results RUN_DIR to score a run, or --compare to run the methods")
    print(markdown(rows))
    return 0


def _sweep(args) -> int:
    import shlex

    from adfl_deploy.bench.model_bench import machine_info
    from adfl_deploy.evaluation import sweep
    from adfl_deploy.files import atomic_write_text

    spec = sweep.parse_spec(args.sweep)
    methods = _methods(args, sweep.SWEEP_METHODS)
    out = Path(args.out or "out/sweep")
    configs = sweep.scene_configs(spec)
    print(
        f"sweep: {len(configs)} scenes x {len(methods)} methods = {len(configs) * len(methods)} runs; scenes in {args.scene_root}"
    )
    rows = sweep.run_sweep(spec, methods, args.scene_root, out, base=_base(args))
    aggregates = sweep.aggregate(rows)
    table = sweep.markdown(aggregates)
    chosen = ["--models", args.models, "--detections", args.detections] if args.models else []
    chosen += [f"--set={s}" for s in args.set]
    command = shlex.join(["adfl", "mtmc", "--sweep", args.sweep, *chosen, "--scene-root", args.scene_root, "--out", str(out)])
    report = {
        "command": command,
        "machine": {**machine_info(), "code": sweep.code_version()},
        "spec": {k: list(v) for k, v in dataclasses.asdict(spec).items()},
        "methods": [dataclasses.asdict(m) for m in methods],
        "aggregates": aggregates,
        "rows": rows,
    }
    atomic_write_text(out / "sweep.json", json.dumps(report, indent=2) + "\n")
    header = (
        f"{command}\n\n{report['machine']['date']}, {report['machine']['cpu']} ({report['machine']['cores']} cores), "
        f"code {report['machine']['code']}; mean ± sample sd over {len(configs)} scenes "
        f"(seeds {', '.join(map(str, spec.seeds))}; cameras {', '.join(map(str, spec.cameras))}; "
        f"seconds {', '.join(f'{s:g}' for s in spec.seconds)}; people {', '.join(map(str, spec.people))})\n\n"
    )
    atomic_write_text(out / "sweep.md", header + table + "\n")
    print(table)
    print(f"\nwrote {out / 'sweep.json'} (every scene x method, the aggregates, command, machine) and {out / 'sweep.md'}")
    return 0


def _detectors(args, scene) -> int:
    from adfl_deploy.bench.model_bench import machine_info
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.evaluation import detection
    from adfl_deploy.evaluation.sweep import code_version
    from adfl_deploy.files import atomic_write_text
    from adfl_deploy.pipeline import PipelineConfig
    from adfl_deploy.tracking import DETECTORS
    from adfl_deploy.tracking.detectors import is_detector

    # registered detectors only: a fused pair's helper boxes are capped below the operating point,
    # so its row would repeat its network's (benchmarks/detector_misses.py measures what a pair adds)
    names = DETECTORS.names() if args.detectors == "all" else [n for n in args.detectors.split(",") if n]
    unknown = [n for n in names if not is_detector(n)]
    if unknown or not names:
        raise ConfigError(
            f"--detectors: unknown detector {unknown[0] if unknown else '(none given)'!r}; choose from "
            f"{', '.join(DETECTORS.names())}, fastestdet@WIDTHxHEIGHT, yolo-fastest@WIDTHxHEIGHT or give the path of a "
            "YOLO ONNX or a Darknet .cfg"
        )
    base = _base(args) or PipelineConfig()
    out = Path(args.out or "out/detection")
    print(f"detectors on {scene.root} ({len(scene.cameras)} cameras): {', '.join(names)}")
    # the operating point: boxes confident enough to lead a track (the tracker's first round);
    # lower ones only extend tracks, and AP covers every confidence anyway
    confidence = max(base.min_confidence, base.tracker.high_confidence)
    rows = detection.evaluate_scene(
        scene, names, confidence, base.min_height, progress=lambda r: print(f"  {r['detector']}: done")
    )
    table = detection.markdown(rows)
    report = {
        "command": " ".join(["adfl", "mtmc", str(scene.root), f"--detectors={args.detectors}", "--out", str(out)]),
        "machine": {**machine_info(), "code": code_version()},
        "scene": dataclasses.asdict(scene.config),
        "operating_point": {"min_confidence": confidence, "min_height": base.min_height},
        "iou": detection.IOU_THRESHOLD,
        "real_footage": "none scored: the shared video (one-by-one-person-detection.mp4) has no ground-truth boxes",
        "rows": rows,
    }
    atomic_write_text(out / "detection.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / "detection.md", f"{report['command']}\n\n{table}\n")
    print(table)
    print(f"\nwrote {out / 'detection.json'} and {out / 'detection.md'}")
    return 0
