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
import statistics
import time
from pathlib import Path

from tqdm import tqdm

from adfl_deploy.errors import ConfigError
from adfl_deploy.evaluation.identity_budget import run_budget
from adfl_deploy.evaluation.scene_eval import slug
from adfl_deploy.scene import load_scene

COLUMNS = ["mtmc_idf1", "linked_perfectly", "detection_bound", "detection_loss", "tracking_loss", "association_loss"]


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", type=Path, help="an adfl mtmc --sweep output folder (sweep.json and runs/)")
    p.add_argument("--methods", default="", help="only methods whose label contains this text")
    p.add_argument("--out", type=Path, default=None, help="JSON file (default SWEEP/identity-budget.json)")
    args = p.parse_args()
    if not (args.sweep / "sweep.json").is_file():
        raise SystemExit(f"{args.sweep}: no sweep.json; give the --out folder of an adfl mtmc --sweep run")
    sweep = json.loads((args.sweep / "sweep.json").read_text())
    rows = [r for r in sweep["rows"] if args.methods in r["method"]]
    if not rows:
        raise SystemExit(f"{args.sweep}: no method label contains {args.methods!r}")
    out = []
    for r in tqdm(rows, desc="budget", unit="run"):
        run = args.sweep / "runs" / r["scene"]["name"] / slug(r["method"])
        try:
            budget = run_budget(load_scene(r["scene"]["root"]), run)
        except ConfigError as exc:
            raise SystemExit(f"{run}: {exc}") from None
        out.append({"scene": r["scene"]["name"], "method": r["method"], **budget.as_dict()})
    methods = list(dict.fromkeys(r["method"] for r in out))
    print("| method | scenes | " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " |")
    print("|---|---:|" + "---:|" * len(COLUMNS))
    aggregates = []
    for m in methods:
        mine = [r for r in out if r["method"] == m]
        aggregates.append({"method": m, "scenes": len(mine), **{c: mean_sd([r[c] for r in mine]) for c in COLUMNS}})
        print(f"| {m} | {len(mine)} | " + " | ".join(aggregates[-1][c] for c in COLUMNS) + " |")
    command = ["python", "benchmarks/identity_budget.py", str(args.sweep)] + (["--methods", args.methods] if args.methods else [])
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(command),
        "sweep_command": sweep.get("command"),
        "aggregates": aggregates,
        "rows": out,
    }
    path = args.out or args.sweep / "identity-budget.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
