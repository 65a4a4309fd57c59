"""Which ground-truth people a detector misses on generated scenes, by visibility, and how many
of them a second detector finds: the measurement behind fusing FastestDet with the motion
detector (README, detectors; ``tracking/fusion.py``).

For every ground-truth box to find (consider flag 1) it records the highest confidence of a box
of each detector at IoU >= 0.5, then reports recall at 0.5 (and 0.2, the pipeline's filter) per
visibility band and for the union of the two detectors.

    python benchmarks/detector_misses.py SCENE [SCENE ...] [--detectors fastestdet,motion] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from adfl_deploy.evaluation.detection import CURVE_CONFIDENCE, _xyxy, detect_video
from adfl_deploy.evaluation.mtmc import read_mot
from adfl_deploy.scene import load_scene
from adfl_deploy.tracking.detections import iou_matrix

BANDS = [
    ("all", 0.0, 1.01),
    ("visibility < 0.5", 0.0, 0.5),
    ("0.5-0.8", 0.5, 0.8),
    ("0.8-0.95", 0.8, 0.95),
    ("fully visible (>= 0.95)", 0.95, 1.01),
]


def best_confidence(gt: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """Per ground-truth row: the highest confidence of a detection of its frame at IoU >= 0.5 (0 if none)."""
    best = np.zeros(len(gt))
    for f in np.unique(gt[:, 0]):
        g, d = np.flatnonzero(gt[:, 0] == f), dets[dets[:, 0] == f]
        if len(d):
            iou = iou_matrix(_xyxy(d[:, 1:5]).astype(np.float32), _xyxy(gt[g, 2:6]).astype(np.float32))
            best[g] = np.where(iou >= 0.5, d[:, 5:6], 0.0).max(axis=0)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenes", nargs="+", help="generated scene folders (adfl scene)")
    p.add_argument("--detectors", default="fastestdet,motion", help="two detectors: the first and its helper")
    p.add_argument("--out", default="results/detector-misses-cpu.json")
    args = p.parse_args()
    first, second = args.detectors.split(",")
    visibility, found = [], {first: [], second: []}
    for root in args.scenes:
        scene = load_scene(root)
        for cam in scene.cameras:
            gt = read_mot(scene.gt(cam))
            gt = gt[gt[:, 6] > 0]
            visibility.append(gt[:, 8] if gt.shape[1] > 8 else np.ones(len(gt)))
            for name in found:
                found[name].append(best_confidence(gt, detect_video(name, scene.video(cam), CURVE_CONFIDENCE)))
    vis = np.concatenate(visibility)
    a, b = np.concatenate(found[first]), np.concatenate(found[second])
    rows = []
    for label, lo, hi in BANDS:
        sel = (vis >= lo) & (vis < hi)
        rows.append(
            {
                "band": label,
                "people_to_find": int(sel.sum()),
                f"{first}_recall_at_0.5": float(np.mean(a[sel] >= 0.5)),
                f"{first}_recall_at_0.2": float(np.mean(a[sel] >= 0.2)),
                f"{second}_recall_at_0.5": float(np.mean(b[sel] >= 0.5)),
                "union_recall_at_0.5": float(np.mean((a[sel] >= 0.5) | (b[sel] >= 0.5))),
            }
        )
    print(f"| band | people | {first} @0.5 | {first} @0.2 | {second} @0.5 | union @0.5 |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        v = list(r.values())
        print(f"| {v[0]} | {v[1]} | " + " | ".join(f"{x:.3f}" for x in v[2:]) + " |")
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python", "benchmarks/detector_misses.py", *args.scenes, "--detectors", args.detectors]),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
