"""``adfl scene``: generate the multi-camera scene with ground truth."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  adfl scene                                   3 cameras, 60 s at 10 FPS, 12 people -> out/scene
  adfl scene --cameras 4 --seconds 180 --people 16 --seed 3 --out out/scene-long
  adfl track --source cam1=out/scene/cam1/video.mp4 ...   (or simply: adfl demo)
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "scene",
        help="generate a multi-camera scene of real people's images with MOTChallenge ground truth",
        description="Write N camera videos in which real people (held-out Con-ReID identities, a different real "
        "camera's crops in each simulated camera) walk across empty real rooms, occlude each other, move between "
        "cameras and come back; with per-camera scale, colour cast, blur and noise. Seeded and deterministic. "
        "Writes camK/video.mp4, camK/gt/gt.txt (global person ids), camK/seqinfo.ini, identities.json, scene.yaml.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default="out/scene", help="scene folder (reused when it holds the same config)")
    p.add_argument("--cameras", type=int, help="simulated cameras, 1-6 (default 3)")
    p.add_argument("--seconds", type=float, help="length of every video (default 60)")
    p.add_argument("--fps", type=float, help="frame rate (default 10)")
    p.add_argument("--people", type=int, help="identities, at most 16 (default 12)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--size", help="WIDTHxHEIGHT, 320x180 to 4096x4096 (default 768x432)")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace an existing scene made with another config (only a folder adfl scene generated)",
    )


def config_from_args(args):
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.scene import SceneConfig

    changes = {k: getattr(args, k) for k in ("cameras", "seconds", "fps", "people", "seed") if getattr(args, k, None) is not None}
    if getattr(args, "size", None):
        try:
            width, height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 768x432") from None
        changes.update(width=width, height=height)
    return SceneConfig(**changes)


def run(args) -> int:
    from adfl_deploy.scene import generate

    scene = generate(config_from_args(args), args.out, force=args.force)
    print(
        f"scene in {scene.root}: "
        + ", ".join(scene.cameras)
        + f" ({scene.config.seconds:g} s at {scene.config.fps:g} FPS, {scene.config.people} people)"
    )
    print("run it: adfl track " + " ".join(f"--source {s}" for s in scene.sources()))
    return 0
