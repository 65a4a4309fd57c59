"""``adfl mtmc``: score multi-camera tracking on a generated scene, or compare methods on it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXAMPLES = """examples:
  adfl mtmc out/scene --results out/track          score an `adfl track` run (its mot/ files)
  adfl mtmc out/scene --compare                    shipped model vs baselines, detectors vs gt boxes
  adfl mtmc out/scene --compare --detections gt --models edge,baseline,colour-histogram,out/my-model
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "mtmc",
        help="MTMC scoring (per-camera MOTA/IDF1/ID switches, cross-camera IDF1, purity, fragmentation)",
        description="Score MOTChallenge results with global ids against a generated scene's ground truth "
        "(motmetrics): per camera MOTA, IDF1 and ID switches; across cameras the DukeMTMC MTMC IDF1 (one identity "
        "matching over all cameras), global-id purity and fragmentation. With --compare, run the pipeline once per "
        "method and print one table.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scene", help="scene folder made by `adfl scene`")
    p.add_argument("--results", help="an `adfl track` output folder to score")
    p.add_argument("--compare", action="store_true", help="run and score several methods (default: the demo's table)")
    p.add_argument("--models", help="with --compare: comma-separated edge, baseline, colour-histogram or artefact folders")
    p.add_argument("--detections", default="gt", help="with --models: gt (ground-truth boxes), motion, fastestdet or a YOLO ONNX")
    p.add_argument("--out", default="out/mtmc", help="with --compare: folder for each method's run and the table")


def _methods(args):
    from adfl_deploy.assets import BASELINE_MODEL
    from adfl_deploy.evaluation.scene_eval import DEFAULT_METHODS, Method

    if not args.models:
        return DEFAULT_METHODS
    named = {
        "edge": ("ADFL edge model", ""),
        "baseline": ("baseline@resnet18", str(BASELINE_MODEL)),
        "colour-histogram": ("colour histogram", "colour-histogram"),
    }
    methods = []
    for name in args.models.split(","):
        label, model = named.get(name, (name, name))
        methods.append(Method(f"{label} + {args.detections}", model, args.detections))
    return methods


def run(args) -> int:
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.evaluation.scene_eval import evaluate, markdown, row, score_run, slug
    from adfl_deploy.files import atomic_write_text
    from adfl_deploy.pipeline.summary import read_summary
    from adfl_deploy.scene import load_scene

    scene = load_scene(args.scene)
    if args.results:
        summary_path = Path(args.results) / "summary.json"
        if not summary_path.is_file():
            raise ConfigError(f"{args.results} is not an `adfl track` output folder (no summary.json)")
        summary = read_summary(summary_path)
        rows = [row(args.results, score_run(scene, args.results), summary)]
        atomic_write_text(Path(args.results) / "mtmc.json", json.dumps(rows[0], indent=2) + "\n")
    elif args.compare:
        out = Path(args.out)
        rows = [evaluate(scene, m, out / slug(m.label)) for m in _methods(args)]
        atomic_write_text(out / "comparison.json", json.dumps(rows, indent=2) + "\n")
        atomic_write_text(out / "comparison.md", markdown(rows) + "\n")
    else:
        raise ConfigError("nothing to do: pass --results RUN_DIR to score a run, or --compare to run the methods")
    print(markdown(rows))
    return 0
