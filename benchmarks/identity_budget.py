"""Where each method's MTMC IDF1 goes, over a finished sweep (``adfl mtmc --sweep ... --out
DIR``): the run as scored, the run with its per-camera id segments linked perfectly, and the
run with every box given its person (the detection bound); the gaps are what the detector, the
per-camera tracker and the cross-camera association cost (``evaluation/identity_budget.py``).
Prints a table of mean ± sample sd per method and writes JSON with every scene's row.

    python benchmarks/identity_budget.py SWEEP_DIR [--methods SUBSTRING] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from tqdm import tqdm

from adfl_deploy.errors import AdflError
from adfl_deploy.evaluation.identity_budget import run_budget
from adfl_deploy.evaluation.scene_eval import check_run_files, slug
from adfl_deploy.evaluation.sweep import mean_sd
from adfl_deploy.files import atomic_write_text
from adfl_deploy.scene import load_scene

COLUMNS = [
    "mtmc_idf1",
    "linked_perfectly",
    "detection_bound",
    "detection_loss",
    "tracking_loss",
    "association_loss",
    "missed_link_loss",
    "wrong_link_loss",
]


def cell(stat: dict) -> str:
    """``mean ± sd`` of a ``sweep.mean_sd`` result (the mean alone for one scene)."""
    return f"{stat['mean']:.3f}" + (f" ± {stat['sd']:.3f}" if math.isfinite(stat["sd"]) else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", type=Path, help="an adfl mtmc --sweep output folder (sweep.json and runs/)")
    p.add_argument("--methods", default="", help="only methods whose label contains this text")
    p.add_argument("--out", type=Path, default=None, help="JSON file (default SWEEP/identity-budget.json)")
    args = p.parse_args()
    try:
        sweep = json.loads((args.sweep / "sweep.json").read_text())
        rows = [r for r in sweep["rows"] if args.methods in r["method"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(
            f"{args.sweep}/sweep.json: cannot read a sweep from it ({type(exc).__name__}: {exc}); give the --out folder of "
            "a finished adfl mtmc --sweep run"
        ) from None
    if not rows:
        which = f"of a method whose label contains {args.methods!r}" if args.methods else "in sweep.json"
        raise SystemExit(f"{args.sweep}: no run {which}")
    out = []
    for r in tqdm(rows, desc="budget", unit="run"):
        run = args.sweep / "runs" / r["scene"]["name"] / slug(r["method"])
        try:
            scene = load_scene(r["scene"]["root"])
            check_run_files(run, scene.cameras)  # its MOT files are the run's own, not an older run's
            budget = run_budget(scene, run)
        except AdflError as exc:
            raise SystemExit(str(exc)) from None
        if abs(budget.run - r["score"]["idf1"]) > 1e-6:
            raise SystemExit(
                f"{run}: scores {budget.run:.4f} now, but sweep.json recorded {r['score']['idf1']:.4f}; "
                "its MOT files changed after the sweep (re-run the sweep)"
            )
        out.append({"scene": r["scene"]["name"], "method": r["method"], **budget.as_dict()})
    methods = list(dict.fromkeys(r["method"] for r in out))
    print("| method | scenes | " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " |")
    print("|---|---:|" + "---:|" * len(COLUMNS))
    aggregates = []
    for m in methods:
        mine = [r for r in out if r["method"] == m]
        aggregates.append({"method": m, "scenes": len(mine), **{c: mean_sd([r[c] for r in mine]) for c in COLUMNS}})
        print(f"| {m} | {len(mine)} | " + " | ".join(cell(aggregates[-1][c]) for c in COLUMNS) + " |")
    command = ["python", "benchmarks/identity_budget.py", str(args.sweep)] + (["--methods", args.methods] if args.methods else [])
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(command),
        "sweep_command": sweep.get("command"),
        "aggregates": aggregates,
        "rows": out,
    }
    print(f"wrote {atomic_write_text(args.out or args.sweep / 'identity-budget.json', json.dumps(report, indent=1))}")


if __name__ == "__main__":
    main()
