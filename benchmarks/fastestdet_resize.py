"""FastestDet's letterbox resize compared on generated scenes: "area" (every source pixel
averaged; the default until 2026-12-02) against "linear" (four neighbours, about 6x cheaper on
this CPU; the default since this comparison), each registered
under its own name, then ``adfl mtmc SCENE --detectors NAMES`` on every scene given (recall /
precision / AP@0.5, the README's table), plus the resize's cost on one core.

    .venv/bin/python benchmarks/fastestdet_resize.py out/sweep/scenes/cam3-60s-12p-seed1 ... --out results/fastestdet-resize-cpu

Writes OUT/<scene>/detection.json and .md per scene and OUT/resize.json (ms per frame, recall
and AP@0.5 pooled over the scenes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from adfl_deploy.cli import main as adfl
from adfl_deploy.tracking.detectors import DETECTORS, FastestDet

VARIANTS = {"fd-area": dict(interpolation="area"), "fd-linear": dict(interpolation="linear")}


def resize_ms(video: Path, interpolation: int, frames: int = 100) -> float:
    cap = cv2.VideoCapture(str(video))
    images = [cap.read()[1] for _ in range(frames)]
    cap.release()
    cv2.setNumThreads(1)
    for image in images[:10]:
        cv2.resize(image, (512, 288), interpolation=interpolation)
    started = time.perf_counter()
    for image in images:
        cv2.resize(image, (512, 288), interpolation=interpolation)
    return 1000 * (time.perf_counter() - started) / len(images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenes", nargs="+")
    parser.add_argument("--out", default="out/fastestdet-resize")
    args = parser.parse_args(argv)
    for name, kwargs in VARIANTS.items():
        if name not in DETECTORS:
            DETECTORS.register(name, lambda filters, kw=kwargs: FastestDet(filters=filters, **kw))
    pooled: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for scene in args.scenes:
        out = Path(args.out) / Path(scene).name
        if adfl(["mtmc", scene, "--detectors", ",".join(VARIANTS), "--out", str(out)]) != 0:
            return 1
        for row in json.loads((out / "detection.json").read_text())["rows"]:
            if row.get("detector") in pooled and "error" not in row:
                pooled[row["detector"]].append(row)
    video = next(Path(args.scenes[0]).glob("*/video.mp4"))
    report = {
        "command": " ".join(["benchmarks/fastestdet_resize.py", *sys.argv[1:]]),
        "scenes": args.scenes,
        "resize_ms_per_frame_one_core": {
            "area": resize_ms(video, cv2.INTER_AREA),
            "linear": resize_ms(video, cv2.INTER_LINEAR),
        },
        "mean_over_scenes": {
            name: {k: float(np.mean([r[k] for r in rows])) for k in ("recall", "precision", "ap50")}
            for name, rows in pooled.items()
        },
    }
    (Path(args.out) / "resize.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["resize_ms_per_frame_one_core"]), json.dumps(report["mean_over_scenes"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
