"""``adfl``: one command family over the library. Each subcommand is a small module with
``add_parser`` and ``run``; commands that need PyTorch import it only when they run, so
``adfl --help`` and the runtime commands work on a torch-free install."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from adfl_deploy import __version__
from adfl_deploy.errors import AdflError
from adfl_deploy.optional import installed

#: subcommand -> (module, needs torch)
COMMANDS = {
    "models": ("adfl_deploy.cli.models", True),
    "demo": ("adfl_deploy.cli.demo", False),
    "train": ("adfl_deploy.cli.train", True),
    "eval": ("adfl_deploy.cli.evaluate", False),
    "export": ("adfl_deploy.cli.export", True),
    "bench": ("adfl_deploy.cli.bench", False),
    "track": ("adfl_deploy.cli.track", False),
    "scene": ("adfl_deploy.cli.scene", False),
    "mtmc": ("adfl_deploy.cli.mtmc", False),
    "search": ("adfl_deploy.cli.search", False),
    "serve": ("adfl_deploy.cli.serve", False),
    "associate": ("adfl_deploy.cli.associate", False),
}

EPILOG = """examples:
  adfl models                         table of every paper variant (params, GFLOPs at 384x128)
  adfl models --backbone resnet18     the same for an edge backbone
  adfl demo                           the main job: generated 3-camera scene -> track -> scores
  adfl train --config configs/edge-con-reid.yaml   train (the paper's recipe, resumable)
  adfl eval runs/edge-con-reid/last.pt             rank-1/mAP + ranked-list and attention PNGs
  adfl export runs/edge-con-reid/last.pt --out out/edge --int8   ONNX + INT8 with checks
  adfl bench adfl_deploy/assets/edge_model         latency/throughput vs the measured peak
  adfl track --source cam1=a.mp4 --source cam2=b.mp4   multi-camera re-identification
  adfl scene --cameras 4 --seconds 120                 a scene of real people with ground truth
  adfl mtmc out/scene --results out/track              MTMC IDF1, purity, fragmentation, MOTA
  adfl bench --pipeline                                per-stage latency, max real-time streams
  adfl search --db out/demo/track/adfl.db --image crop.jpg   where else, and when, was this person?
  adfl serve out/demo/track                            web view: live mosaic, identities, search by image
  adfl associate --broker redis://127.0.0.1:6379/adfl  central associator for edge nodes (adfl track --publish URL)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adfl",
        description="ADFL-Deploy: person re-ID from PyTorch training to multi-camera deployment.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"adfl-deploy {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, (module, _) in COMMANDS.items():
        importlib.import_module(module).add_parser(sub)
    return parser


def torch_installed() -> bool:
    return installed("torch")


def _needs_torch(command: str) -> str | None:
    if COMMANDS[command][1] and not torch_installed():
        return f"adfl {command} needs PyTorch: pip install -e '.[train]' (torch==2.14.1, torchvision==0.29.1)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    missing = _needs_torch(args.command)
    if missing:
        print(f"adfl: error: {missing}", file=sys.stderr)
        return 2
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():  # log lines above a progress bar, not on its line
            return importlib.import_module(COMMANDS[args.command][0]).run(args) or 0
    except (AdflError, FileNotFoundError, ValueError) as exc:
        print(f"adfl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permissions, a file that vanished: say which, in one line
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"adfl {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"adfl {args.command}: interrupted", file=sys.stderr)
        return 130


def export_main() -> int:
    """``adfl-export ...``: the same as ``adfl export ...`` (the name the export issue uses)."""
    return main(["export", *sys.argv[1:]])


def bench_main() -> int:
    """``adfl-bench ...``: the same as ``adfl bench ...``."""
    return main(["bench", *sys.argv[1:]])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
