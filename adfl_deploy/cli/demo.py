"""``adfl demo``: the main job on the embedded default, offline and torch-free.

1. Generate (or reuse) the multi-camera scene: real held-out Con-ReID people walking through
   three simulated cameras, with MOTChallenge ground truth (``adfl scene``).
2. Run the pipeline on it (``adfl track``) with the shipped ADFL edge model and the shipped
   COCO detector (FastestDet, with a motion detector's boxes where it finds nobody), writing
   annotated videos, the mosaic, the JSONL event log and MOT files.
3. Score it (``adfl mtmc``) and compare, on the same scene, FastestDet alone, the motion detector and - on
   ground-truth boxes, to isolate re-identification - the edge model, the paper's attention-free
   baseline and a colour histogram.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXAMPLES = """examples:
  adfl demo                                  (what `make demo` runs; about a minute on 2 cores)
  adfl demo --cameras 4 --seconds 120 --scene out/scene-4 --out out/demo-4
  adfl demo --no-compare                     only the main run and its score
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the main job: generated multi-camera scene -> detect, track, re-identify -> scores",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="out/demo", help="folder for the run, the comparison and the mosaic PNG")
    p.add_argument("--scene", default="out/scene", help="scene folder (generated on first use, then reused)")
    p.add_argument("--cameras", type=int, help="simulated cameras (default 3)")
    p.add_argument("--seconds", type=float, help="scene length (default 60)")
    p.add_argument("--people", type=int, help="identities in the scene (default 12)")
    p.add_argument("--seed", type=int, help="scene seed (default 0)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the --scene folder if it holds a scene made with another config (only a folder adfl scene generated)",
    )
    p.add_argument(
        "--detector",
        default="fastestdet+motion-quarter",
        help=(
            "detector of the main run: fastestdet+motion-quarter (default: FastestDet plus motion boxes where it finds "
            "nobody, the best end to end over eight scenes, README), fastestdet, motion, fastestdet@WIDTHxHEIGHT, "
            "yolo-fastest or a YOLO ONNX"
        ),
    )
    p.add_argument("--no-compare", action="store_true", help="skip the comparison runs")


def busiest_frame(scene) -> int:
    """The 0-based frame index at which the most people are visible over all cameras."""
    from adfl_deploy.evaluation.mtmc import read_mot

    counts: dict[int, int] = {}
    for cam in scene.cameras:
        rows = read_mot(scene.gt(cam))
        for frame in rows[rows[:, 6] > 0, 0].astype(int):
            counts[frame] = counts.get(frame, 0) + 1
    return max(counts, key=lambda f: (counts[f], -f)) - 1 if counts else 0


def save_still(video: Path, index: int, png: Path) -> bool:
    import cv2

    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    cap.release()
    return bool(ok) and cv2.imwrite(str(png), image)


def run(args) -> int:
    from adfl_deploy.cli.scene import config_from_args
    from adfl_deploy.evaluation.scene_eval import DEFAULT_METHODS, Method, evaluate, markdown, slug
    from adfl_deploy.files import atomic_write_text
    from adfl_deploy.scene import generate

    out = Path(args.out)
    config = config_from_args(args)
    print(
        f"[1/3] scene: {args.scene} ({config.cameras} cameras, {config.seconds:g} s, {config.people} people; reused when present)"
    )
    scene = generate(config, args.scene, force=args.force)
    known = [m for m in DEFAULT_METHODS if (m.model, m.detector) == ("", args.detector)]
    main = known[0] if known else Method(f"ADFL edge model + {args.detector} detector", "", args.detector)
    print(f"[2/3] tracking with the shipped model: {main.label}")
    rows = [evaluate(scene, main, out / "track", write_videos=True, progress=True)]
    still = out / "mosaic.png"
    save_still(out / "track" / "mosaic.avi", busiest_frame(scene), still)
    if not args.no_compare:
        others = [m for m in DEFAULT_METHODS if (m.model, m.detector) != (main.model, main.detector)]
        print(f"[3/3] comparison on the same scene: {len(others)} more runs")
        rows += [evaluate(scene, m, out / "compare" / slug(m.label)) for m in others]
    table = markdown(rows)
    atomic_write_text(out / "comparison.md", table + "\n")
    atomic_write_text(out / "comparison.json", json.dumps(rows, indent=2) + "\n")
    print(table)
    track = out / "track"
    print(f"\nwrote {track}: mosaic.avi, video/CAM.avi, events.jsonl, mot/CAM.txt, summary.json, mtmc.json, adfl.db")
    print(f"wrote {out}: comparison.md / comparison.json, mosaic.png; the scene and its ground truth: {scene.root}")
    print(f"\nsee who was where (identities, timelines, search by image): adfl serve {track}  -> http://127.0.0.1:8765/")
    return 0
