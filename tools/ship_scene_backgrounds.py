"""Make the generated scene's empty rooms (run once by a maintainer; the result is committed under
adfl_deploy/assets/scene/backgrounds/ with backgrounds.json, their provenance and geometry).

Each room is a temporal median over a real clip, which removes the people walking through it:

- ``one-by-one``: the shared ``one-by-one-person-detection.mp4`` (768x432, every 5th frame);
- ``people-detection`` and ``worker-zone``: the animated previews (480x270 GIF) of Intel's
  ``people-detection.mp4`` and ``worker-zone-detection.mp4`` - the videos themselves are not in
  the stored snapshot of github.com/intel-iot-devkit/sample-videos, the previews are. In
  ``worker-zone`` the worker stands still in the left half for the second half of the clip, so
  the left half is the median of the first 12 frames (he is in the right half then) and the
  right half the median of the last 24, blended over a 24-pixel seam.

Geometry per room (``floor``: where the floor starts, ``vanish``: the horizon line, where a
person's height would be zero; ``ratio``: person height / (feet - vanish), all as fractions of
the image height) was read off people standing in the clips. All CC BY 4.0, (c) Intel Corporation.

    python tools/ship_scene_backgrounds.py ../shared/data /work/.mirror/intel-iot-devkit+sample-videos/repo
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = "github.com/intel-iot-devkit/sample-videos"
COMMIT = "57978890822836f2b4743852f04f62fc511757e4"
ROOMS = [
    {
        "file": "one-by-one.jpg",
        "name": "office room, wooden floor (one-by-one-person-detection)",
        "source": f"{REPO} @ {COMMIT[:8]}: one-by-one-person-detection.mp4 (also ../shared/data/videos)",
        "made": "temporal median of the 20% of every 5th frame (278) closest to frame 20 (nobody in view)",
        "floor": 0.58,
        "vanish": 0.0,
        "ratio": 0.92,
    },
    {
        "file": "people-detection.jpg",
        "name": "empty office, wooden floor, door (people-detection)",
        "source": f"{REPO} @ {COMMIT[:8]}: preview/people-detection.gif (480x270 preview of people-detection.mp4)",
        "made": "temporal median of the preview's 23 frames, upscaled to 768x432",
        "floor": 0.48,
        "vanish": 0.09,
        "ratio": 0.8,
    },
    {
        "file": "worker-zone.jpg",
        "name": "warehouse floor with painted zones (worker-zone-detection)",
        "source": f"{REPO} @ {COMMIT[:8]}: preview/worker-zone-detection.gif (480x270 preview of worker-zone-detection.mp4)",
        "made": "left half: median of frames 0-11, right half: median of the last 24 frames (71), 24 px seam; upscaled",
        "floor": 0.2,
        "vanish": 0.06,
        "ratio": 0.78,
    },
]
LICENCE = "CC BY 4.0, (c) Intel Corporation"
SIZE = (768, 432)


def _frames(path: Path, step: int = 1) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    frames = []
    index = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        if index % step == 0:
            frames.append(image)
        index += 1
    cap.release()
    assert frames, path
    return np.stack(frames)


def _median(frames: np.ndarray) -> np.ndarray:
    return np.median(frames, axis=0).astype(np.uint8)


def _quietest_median(frames: np.ndarray, empty: int, share: float = 0.2) -> np.ndarray:
    """Median of the ``share`` of frames closest to frame ``empty`` (one with nobody in view):
    someone who stands at the table for half the video stays in a plain median, but not in the
    frames that look like the empty room."""
    reference = frames[empty].astype(np.float32)
    distance = np.abs(frames.astype(np.float32) - reference).mean(axis=(1, 2, 3))
    return _median(frames[np.argsort(distance, kind="stable")[: max(1, int(share * len(frames)))]])


def _preview(mirror: Path, name: str, tmp: Path) -> np.ndarray:
    gif = tmp / f"{name}.gif"
    gif.write_bytes(
        subprocess.run(["git", "-C", str(mirror), "show", f"HEAD:preview/{name}.gif"], check=True, capture_output=True).stdout
    )
    return _frames(gif)


def main(data: Path, mirror: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jpg"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        images = {
            "one-by-one.jpg": _quietest_median(_frames(data / "videos" / "one-by-one-person-detection.mp4", step=5), empty=4),
            "people-detection.jpg": _median(_preview(mirror, "people-detection", Path(tmp))),
        }
        worker = _preview(mirror, "worker-zone-detection", Path(tmp))
        early, late = _median(worker[:12]).astype(np.float32), _median(worker[-24:]).astype(np.float32)
        w = worker.shape[2]
        weight = np.clip((np.arange(w) - (0.4 * w - 12)) / 24.0, 0.0, 1.0)[None, :, None]  # 0 = early, 1 = late
        images["worker-zone.jpg"] = (early * (1 - weight) + late * weight).astype(np.uint8)
    for room in ROOMS:
        image = images[room["file"]]
        if image.shape[1::-1] != SIZE:
            image = cv2.resize(image, SIZE, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(out / room["file"]), image, [cv2.IMWRITE_JPEG_QUALITY, 88])
    listing = {"licence": LICENCE, "rooms": ROOMS}
    (out / "backgrounds.json").write_text(json.dumps(listing, indent=1) + "\n")
    print(f"{len(ROOMS)} rooms -> {out}")


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"),
        Path(sys.argv[2] if len(sys.argv) > 2 else "/work/.mirror/intel-iot-devkit+sample-videos/repo"),
        Path(__file__).resolve().parents[1] / "adfl_deploy/assets/scene/backgrounds",
    )
