"""FastestDet's input compared on generated scenes: the square 352x352 file with each variant of
``pad_to_aspect`` (None = the frame squeezed into the square input, 4/3, 5/4, 3/2, 1.0 = full
letterbox), ``pad_centre`` and ``pad_value``, and copies made for other input sizes
(``input_size``, letterboxed), each registered under its own name, then ``adfl mtmc SCENE
--detectors NAMES`` (the same recall / precision / AP@0.5 table as the README's).

    .venv/bin/python benchmarks/fastestdet_padding.py out/scene --out results/detection-cpu-fastestdet-padding/demo

Writes OUT/detection.json and OUT/detection.md (command, machine, code version).
"""

from __future__ import annotations

import argparse
import sys

from adfl_deploy.cli import main as adfl
from adfl_deploy.tracking.detectors import DETECTORS, FastestDet

#: name -> FastestDet keyword arguments; "grey" is 114, "black" 0, "corner" pads below / right
#: only; the fd-WxH ones are letterboxed (black, centred) into a WxH copy of the network
SQUARE = dict(input_size=None)
VARIANTS: dict[str, dict] = {
    "fd-squeeze": dict(SQUARE, pad_to_aspect=None),
    "fd-4x3-grey": dict(SQUARE, pad_to_aspect=4 / 3, pad_value=114),
    "fd-4x3-grey-corner": dict(SQUARE, pad_to_aspect=4 / 3, pad_value=114, pad_centre=False),
    "fd-4x3-black": dict(SQUARE, pad_to_aspect=4 / 3, pad_value=0),
    "fd-4x3-black-corner": dict(SQUARE, pad_to_aspect=4 / 3, pad_value=0, pad_centre=False),
    "fd-3x2-black": dict(SQUARE, pad_to_aspect=3 / 2, pad_value=0),
    "fd-5x4-black": dict(SQUARE, pad_to_aspect=5 / 4, pad_value=0),
    "fd-1x1-grey": dict(SQUARE, pad_to_aspect=1.0, pad_value=114),
    "fd-1x1-grey-corner": dict(SQUARE, pad_to_aspect=1.0, pad_value=114, pad_centre=False),
    "fd-1x1-black": dict(SQUARE, pad_to_aspect=1.0, pad_value=0),
    "fd-1x1-black-corner": dict(SQUARE, pad_to_aspect=1.0, pad_value=0, pad_centre=False),
    "fd-512x288": dict(input_size=(512, 288)),
    "fd-576x320": dict(input_size=(576, 320)),
    "fd-640x352": dict(input_size=(640, 352)),
    "fd-768x448": dict(input_size=(768, 448)),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scene")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list of: " + ", ".join(VARIANTS))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    for name, kwargs in VARIANTS.items():
        DETECTORS.register(name, lambda filters, kwargs=kwargs: FastestDet(filters=filters, **kwargs))
    return adfl(["mtmc", args.scene, "--detectors", args.variants, "--out", args.out])


if __name__ == "__main__":
    sys.exit(main())
