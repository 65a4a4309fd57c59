"""Copy the real images the generated demo scene is made of into the package (run once by a
maintainer; the result is committed under adfl_deploy/assets/scene/).

People: 16 Con-ReID identities from the held-out test split (query ids and distractor ids; none
is a training id of the shipped models), 4 crops per real camera (c1-c6), evenly spaced in frame
order. (Backgrounds: tools/ship_scene_backgrounds.py.) Calibration
crops (adfl_deploy/assets/calibration_crops/): 15 further held-out ids, 3 cameras x 2 crops.

    python tools/ship_scene_assets.py ../shared/data
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

PEOPLE = [
    "0019",
    "0020",
    "0022",
    "0028",
    "0045",
    "0049",
    "0072",
    "0075",
    "0082",
    "0094",
    "0106",
    "0107",
    "0108",
    "0113",
    "0125",
    "0145",
]
#: held-out test ids that are not in the scene either: the association threshold of each
#: embedding is calibrated on them (adfl_deploy/association/calibration.py), never on the scene
CALIBRATION = [
    "0004",
    "0006",
    "0034",
    "0046",
    "0052",
    "0064",
    "0065",
    "0074",
    "0099",
    "0100",
    "0118",
    "0127",
    "0129",
    "0132",
    "0154",
]
CALIBRATION_CAMERAS, CALIBRATION_PER_CAMERA = 3, 2
PER_CAMERA = 4


def main(data: Path, out: Path) -> None:
    reid = data / "con-reid"
    split = json.loads((reid / "split_ids.json").read_text())
    assert not set(PEOPLE) & set(split["train"]), "scene people must not be training ids"
    people = out / "people"
    shutil.rmtree(people, ignore_errors=True)
    people.mkdir(parents=True)
    for pid in PEOPLE:
        for cam in range(1, 7):
            files = sorted(p for d in ("query", "bounding_box_test") for p in (reid / d).glob(f"{pid}_c{cam}s*.jpg"))
            files = [p for p in files if cv2.imread(str(p)).std() >= 2]
            files.sort(key=lambda p: int(p.stem.split("_")[2]))
            picks = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(PER_CAMERA, len(files)))]
            for p in dict.fromkeys(picks):
                shutil.copy(p, people / p.name)
    assert not set(CALIBRATION) & (set(split["train"]) | set(PEOPLE)), "calibration ids must be unseen and not in the scene"
    calibration = out.parent / "calibration_crops"
    shutil.rmtree(calibration, ignore_errors=True)
    calibration.mkdir()
    for pid in CALIBRATION:
        cams = sorted({int(p.name[6]) for d in ("query", "bounding_box_test") for p in (reid / d).glob(f"{pid}_c*.jpg")})
        for cam in cams[:CALIBRATION_CAMERAS]:
            files = sorted(p for d in ("query", "bounding_box_test") for p in (reid / d).glob(f"{pid}_c{cam}s*.jpg"))
            files = [p for p in files if cv2.imread(str(p)).std() >= 2]
            for p in dict.fromkeys(
                files[int(i)] for i in np.linspace(0, len(files) - 1, min(CALIBRATION_PER_CAMERA, len(files)))
            ):
                shutil.copy(p, calibration / p.name)
    print(f"{len(list(people.iterdir()))} crops -> {out}; {len(list(calibration.iterdir()))} calibration crops -> {calibration}")


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"),
        Path(__file__).resolve().parents[1] / "adfl_deploy/assets/scene",
    )
