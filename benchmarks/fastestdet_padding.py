"""FastestDet's aspect handling compared on generated scenes: each variant of ``pad_to_aspect``
(None = the frame squeezed into the square input, 4/3, 5/4, 3/2, 1.0 = full letterbox),
``pad_centre`` and ``pad_value`` registered under its own name, then ``adfl mtmc SCENE
--detectors NAMES`` (the same recall / precision / AP@0.5 table as the README's).

    .venv/bin/python benchmarks/fastestdet_padding.py out/scene --out results/detection-cpu-fastestdet-padding/demo

Writes OUT/detection.json and OUT/detection.md (command, machine, code version).
"""

from __future__ import annotations

import argparse
import sys

from adfl_deploy.cli import main as adfl
from adfl_deploy.tracking.detectors import DETECTORS, FastestDet

#: name -> FastestDet keyword arguments; "grey" is 114, "black" 0, "corner" pads below / right only
VARIANTS: dict[str, dict] = {
    "fd-squeeze": dict(pad_to_aspect=None),
    "fd-4x3-grey": dict(pad_to_aspect=4 / 3, pad_value=114),
    "fd-4x3-grey-corner": dict(pad_to_aspect=4 / 3, pad_value=114, pad_centre=False),
    "fd-4x3-black": dict(pad_to_aspect=4 / 3, pad_value=0),
    "fd-4x3-black-corner": dict(pad_to_aspect=4 / 3, pad_value=0, pad_centre=False),
    "fd-3x2-black": dict(pad_to_aspect=3 / 2, pad_value=0),
    "fd-5x4-black": dict(pad_to_aspect=5 / 4, pad_value=0),
    "fd-1x1-grey": dict(pad_to_aspect=1.0, pad_value=114),
    "fd-1x1-grey-corner": dict(pad_to_aspect=1.0, pad_value=114, pad_centre=False),
    "fd-1x1-black": dict(pad_to_aspect=1.0, pad_value=0),
    "fd-1x1-black-corner": dict(pad_to_aspect=1.0, pad_value=0, pad_centre=False),
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
