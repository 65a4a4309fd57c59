"""An evaluation that cannot be tuned to: every method on many generated scenes (seeds, camera
counts, lengths, crowd sizes), reported as mean ± sample standard deviation over the scenes.

A change to association or embedding counts when its gain over the scenes is larger than the
spread between them, not when it wins on one scene. Seed 0 is the demo's scene; the sweep's
seeds default to 1-4, and a change is to be tuned on other seeds than the ones reported.

``parse_spec("seeds=1-4,cameras=3,4,seconds=60")`` -> ``SweepSpec``; ``scene_configs(spec)`` ->
one ``SceneConfig`` per combination; ``run_sweep`` runs and scores every scene x method
(``scene_eval.evaluate``); ``aggregate(rows)`` -> per method mean ± sd and n of each metric.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adfl_deploy.errors import AdflError, ConfigError
from adfl_deploy.evaluation.mtmc import defined_mean
from adfl_deploy.evaluation.scene_eval import DEFAULT_METHODS, Method, evaluate, slug
from adfl_deploy.pipeline import PipelineConfig
from adfl_deploy.scene import SceneConfig, generate

#: spec key -> SceneConfig field (singular and plural spellings accepted)
KEYS = {"seeds": "seed", "seed": "seed", "cameras": "cameras", "camera": "cameras", "seconds": "seconds", "people": "people"}
#: seeds reported by default: seed 0 is the demo's scene
DEFAULT_SEEDS = (1, 2, 3, 4)

#: the demo's comparison: the demo's detector pair (FastestDet + motion where it finds nobody),
#: FastestDet alone, the motion detector and the embeddings on ground-truth boxes
SWEEP_METHODS = list(DEFAULT_METHODS)

#: (key, column header, value from one row's score) - what is averaged over the scenes
METRICS: list[tuple[str, str, Callable[[dict], float]]] = [
    ("mtmc_idf1", "MTMC IDF1", lambda s: s["idf1"]),
    ("mtmc_hota", "MTMC HOTA", lambda s: s["hota"]),
    ("mtmc_deta", "MTMC DetA", lambda s: s["deta"]),
    ("mtmc_assa", "MTMC AssA", lambda s: s["assa"]),
    ("purity", "purity", lambda s: s["purity"]),
    ("fragmentation", "fragmentation", lambda s: s["fragmentation"]),
    ("idf1_per_camera", "IDF1 (mean/cam)", lambda s: defined_mean(c["idf1"] for c in s["cameras"])),
]


@dataclass(frozen=True)
class SweepSpec:
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    cameras: tuple[int, ...] = (SceneConfig.cameras,)
    seconds: tuple[float, ...] = (SceneConfig.seconds,)
    people: tuple[int, ...] = (SceneConfig.people,)


def _values(key: str, text: str) -> list:
    """``"3"`` -> [3], ``"1-4"`` -> [1, 2, 3, 4]; seconds are numbers (``"60"``, ``"7.5"``), never ranges."""
    number = float if KEYS[key] == "seconds" else int
    m = re.fullmatch(r"(\d+)-(\d+)", text)
    if m and number is float:
        raise ConfigError(f"sweep {key}={text}: list the lengths instead of a range, e.g. {key}=60,120,180")
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise ConfigError(f"sweep {key}={text}: a range runs upwards, e.g. {key}={hi}-{lo}")
        return list(range(lo, hi + 1))
    try:
        value = number(text)
    except ValueError:
        kind = "a number" if number is float else "a whole number"
        raise ConfigError(f"sweep {key}={text}: expected {kind} or a range like 3-5") from None
    if number is float and not math.isfinite(value):
        raise ConfigError(f"sweep {key}={text}: expected a finite number")
    return [value]


def parse_spec(text: str) -> SweepSpec:
    """``seeds=1-4,cameras=3-5,seconds=60,120,people=12``: comma-separated; a token with ``=``
    starts a key, tokens without continue its list. Omitted keys take the demo scene's value
    (3 cameras, 60 s, 12 people), except seeds, 1-4. Every combination is one scene."""
    found: dict[str, list] = {}
    key = None
    for token in (t.strip() for t in text.split(",")):
        if not token:
            raise ConfigError(f"sweep {text!r}: empty item; write e.g. seeds=1-4,cameras=3,4,seconds=60")
        if "=" in token:
            name, token = (part.strip() for part in token.split("=", 1))
            if name not in KEYS:
                raise ConfigError(
                    f"sweep key {name!r} unknown; use seeds, cameras, seconds or people (e.g. seeds=1-4,cameras=3-5)"
                )
            key = KEYS[name]
            if key in found:
                raise ConfigError(f"sweep key {name!r} given twice; list its values once, e.g. {name}=3,4")
            found[key] = []
        elif key is None:
            raise ConfigError(f"sweep {text!r}: {token!r} has no key; write e.g. seeds=1-4,cameras=3,4")
        found[key] += _values(key, token)
    fields = {"seed": "seeds", "cameras": "cameras", "seconds": "seconds", "people": "people"}
    spec = SweepSpec(**{fields[k]: tuple(dict.fromkeys(v)) for k, v in found.items()})
    scene_configs(spec)  # every combination checked now (SceneConfig's ranges), before any work
    return spec


def scene_configs(spec: SweepSpec) -> list[SceneConfig]:
    """One scene per combination, grouped by (cameras, seconds, people), seeds innermost."""
    return [
        SceneConfig(cameras=c, seconds=s, people=p, seed=seed)
        for c, s, p, seed in itertools.product(spec.cameras, spec.seconds, spec.people, spec.seeds)
    ]


def scene_name(config: SceneConfig) -> str:
    return f"cam{config.cameras}-{config.seconds:g}s-{config.people}p-seed{config.seed}"


def metrics_of(score: dict) -> dict[str, float]:
    """The averaged metrics of one scored run (``dataclasses.asdict(MtmcScore)``)."""
    return {key: float(value(score)) for key, _, value in METRICS}


def mean_sd(values: list[float]) -> dict:
    """Mean, sample standard deviation (n - 1; nan for one value) and n of the defined values."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    n = len(values)
    return {
        "mean": float(np.mean(values)) if n else float("nan"),
        "sd": float(np.std(values, ddof=1)) if n > 1 else float("nan"),
        "n": n,
    }


def aggregate(rows: list[dict]) -> list[dict]:
    """Per method (in first-seen order): n scenes and mean ± sd of every metric over them."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    out = []
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        out.append(
            {
                "method": method,
                "n": len(mine),
                "metrics": {key: mean_sd([r["metrics"][key] for r in mine]) for key, _, _ in METRICS},
            }
        )
    return out


def _cell(stat: dict, digits: int) -> str:
    if not math.isfinite(stat["mean"]):
        return "-"
    sd = f" ± {stat['sd']:.{digits}f}" if math.isfinite(stat["sd"]) else ""
    return f"{stat['mean']:.{digits}f}{sd}"


def markdown(aggregates: list[dict]) -> str:
    header = "| method | scenes | " + " | ".join(h for _, h, _ in METRICS) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(METRICS)]
    for a in aggregates:
        cells = [_cell(a["metrics"][key], 2 if key == "fragmentation" else 3) for key, _, _ in METRICS]
        lines.append(f"| {a['method']} | {a['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_sweep(
    spec: SweepSpec,
    methods: list[Method],
    scene_root: str | Path,
    out: str | Path,
    progress: bool = True,
    base: PipelineConfig | None = None,
) -> list[dict]:
    """Generate (or reuse) every scene under ``scene_root``, run and score every method on it
    under ``out/runs/SCENE/METHOD``; one row per scene x method. ``base`` carries the pipeline
    settings every run shares (an ablation's change). The first failure stops the sweep with its
    one-line error, naming the scene and method."""
    import warnings

    from tqdm import tqdm

    configs = scene_configs(spec)
    rows = []
    with (
        warnings.catch_warnings(),
        tqdm(total=len(configs) * len(methods), desc="sweep", unit="run", disable=not progress) as bar,
    ):
        # short scenes leave a camera nobody walks through: its empty gt.txt is expected here
        warnings.filterwarnings("ignore", message="loadtxt: input contained no data")
        for config in configs:
            name = scene_name(config)
            bar.set_postfix_str(f"{name}: scene", refresh=True)
            scene = _step(name, "scene", generate, config, Path(scene_root) / name, progress=False)
            for method in methods:
                bar.set_postfix_str(f"{name}: {method.label}", refresh=True)
                result = _step(name, method.label, evaluate, scene, method, Path(out) / "runs" / name / slug(method.label), base)
                rows.append(
                    {
                        "scene": {"name": name, **dataclasses.asdict(config), "root": str(scene.root)},
                        **result,
                        "metrics": metrics_of(result["score"]),
                    }
                )
                bar.update()
    return rows


def _step(scene: str, what: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except AdflError as exc:
        exc.args = (f"sweep scene {scene}, {what}: {exc}",)
        raise


def code_version() -> str | None:
    """``git describe --always --dirty`` of the source tree the sweep ran (None outside a clone):
    the numbers belong to that code."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
