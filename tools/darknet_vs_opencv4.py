"""Check the Darknet -> ONNX conversion (``adfl_deploy.tracking.darknet``) against OpenCV 4's own
Darknet importer, on real frames: the shared video and the demo scene's cameras.

OpenCV 5 has no Darknet importer, so the reference runs in another Python that has
``opencv-python-headless<5`` (a throwaway venv: ``python3 -m venv /tmp/cv4 &&
/tmp/cv4/bin/pip install "opencv-python-headless<5"``). Both get the same blobs; rows are compared
where OpenCV reports a class score (it zeroes scores below objectness 0.2).

    python tools/darknet_vs_opencv4.py --reference-python /tmp/cv4/bin/python \\
        --scene out/scene --out results/darknet-onnx-vs-opencv4.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from adfl_deploy.bench.model_bench import machine_info
from adfl_deploy.files import atomic_write_text
from adfl_deploy.tracking.darknet import darknet_to_onnx

SHARED = Path("../shared")
CFG = SHARED / "data" / "detectors" / "yolo-fastest-1.1_body" / "yolo-fastest-1.1_body.cfg"
VIDEO = SHARED / "data" / "videos" / "one-by-one-person-detection.mp4"

REFERENCE = """
import sys, cv2, numpy as np
cfg, blobs_path, out_path = sys.argv[1:4]
net = cv2.dnn.readNetFromDarknet(cfg, cfg[:-4] + ".weights")
names = net.getUnconnectedOutLayersNames()
rows = []
for blob in np.load(blobs_path):
    net.setInput(blob[None])
    rows.append(np.concatenate([np.asarray(o).reshape(-1, np.asarray(o).shape[-1]) for o in net.forward(names)]))
np.save(out_path, np.stack(rows))
print(cv2.__version__)
"""


def frames(scene: Path | None, every: int = 50) -> list[np.ndarray]:
    out = []
    for video in [VIDEO] + (sorted(scene.glob("cam*/video.mp4")) if scene else []):
        cap = cv2.VideoCapture(str(video))
        i = 0
        while len(out) < 40:
            ok, frame = cap.read()
            if not ok:
                break
            if i % every == every // 2:
                out.append(cv2.resize(frame, (768, 432), interpolation=cv2.INTER_AREA))
            i += 1
        cap.release()
    return out


def in_opencv_order(rows: np.ndarray, width: int, height: int) -> np.ndarray:
    """Our rows per head are (anchor, y, x); OpenCV's are (y, x, anchor), boxes as fractions of
    the input and score = objectness x class. Heads: stride 32 then 16 (Yolo-Fastest's order)."""
    parts = []
    for stride in (32, 16):
        gh, gw = height // stride, width // stride
        n = 3 * gh * gw
        part, rows = rows[:, :n], rows[:, n:]
        part = part.reshape(len(part), 3, gh, gw, -1).transpose(0, 2, 3, 1, 4).reshape(len(part), n, -1).copy()
        part[..., [0, 2]] /= width
        part[..., [1, 3]] /= height
        part[..., 5] *= part[..., 4]
        parts.append(part)
    return np.concatenate(parts, axis=1)


def compare(reference_python: str, images: list[np.ndarray], width: int, height: int) -> dict:
    blobs = np.stack([cv2.dnn.blobFromImage(f, 1 / 255.0, (width, height), swapRB=True)[0] for f in images])
    session = ort.InferenceSession(
        darknet_to_onnx(CFG, input_size=(width, height)).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    ours = in_opencv_order(session.run(None, {"images": blobs})[0], width, height)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/blobs.npy", blobs)
        done = subprocess.run(
            [reference_python, "-c", REFERENCE, str(CFG.resolve()), f"{tmp}/blobs.npy", f"{tmp}/ref.npy"],
            check=True,
            capture_output=True,
            text=True,
        )
        ref = np.load(f"{tmp}/ref.npy")
    scored = ((ref[..., 5] > 0.05) | (ours[..., 5] > 0.05)) & (ours[..., 4] >= 0.2)
    box_px = np.abs(ours - ref)[..., :4] * [width, height, width, height]
    return {
        "input": [width, height],
        "opencv": done.stdout.strip(),
        "frames": len(images),
        "rows_scored": int(scored.sum()),
        "max_score_difference": float(np.abs(ours[..., 5] - ref[..., 5])[scored].max()),
        "max_box_difference_px": float(box_px[scored].max()),
        "max_objectness_difference": float(np.abs(ours[..., 4] - ref[..., 4]).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-python", required=True, help="a Python with opencv-python-headless<5")
    parser.add_argument("--scene", type=Path, help="a generated scene folder, for its cameras' frames")
    parser.add_argument("--out", type=Path, default=Path("results/darknet-onnx-vs-opencv4.json"))
    args = parser.parse_args()
    images = frames(args.scene)
    rows = [compare(args.reference_python, images, w, h) for w, h in ((320, 320), (512, 288))]
    for row in rows:
        print(json.dumps(row))
    result = {"command": "python " + " ".join(sys.argv), "machine": machine_info(), "cfg": str(CFG), "rows": rows}
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
