"""``adfl eval``: CMC/mAP of a checkpoint or an exported model on any test sets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from adfl_deploy.errors import ConfigError

EXAMPLES = """examples:
  adfl eval runs/edge-con-reid/last.pt                       # on its own training dataset's test split
  adfl eval runs/market/last.pt --test-set dukemtmc=~/data/DukeMTMC-reID   # cross-domain M->D
  adfl eval out/artifact --test-set market-style=../shared/data/con-reid --flip --rerank
  adfl eval edge --test-set market-style=../shared/data/con-reid   # the shipped model; writes out/eval/edge_model
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="rank-1/5/10 and mAP of a checkpoint or exported model (cross-domain in one command)",
        description="Score a checkpoint (.pt, PyTorch) or an exported artefact folder (ONNX Runtime) with the "
        "Market/Duke protocol (same id from the same camera removed from each query's gallery). Writes "
        "metrics.json (with the model's and training config) and PNGs of ranked lists and attention maps.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", help="checkpoint file (.pt), artefact folder (from adfl export), or edge/baseline (shipped)")
    p.add_argument(
        "--test-set",
        action="append",
        default=[],
        metavar="NAME=ROOT",
        help="dataset to test on (market1501, dukemtmc, msmt17, market-style); default: the checkpoint's own",
    )
    p.add_argument("--flip", action="store_true", help="add the features of the mirrored crops (Sec. V-B)")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)")
    p.add_argument(
        "--out",
        help="folder for metrics.json and PNGs (default: eval/ next to the source; out/eval/NAME for a shipped model)",
    )
    p.add_argument("--show", type=int, default=6, help="queries drawn in the ranked-list PNG")


def _load_source(source: Path):
    """(embed function, info dict, torch model or None) for a checkpoint or an artefact."""
    if source.is_dir():
        from adfl_deploy.runtime.embedder import Embedder

        embedder = Embedder.from_artifact(source)
        info = {"kind": "artifact", "backend": embedder.backend, "model": embedder.info.model.name, "train_set": None}
        return embedder.embed, info, None, embedder.info.preprocessing
    from adfl_deploy.train.checkpoint import load_model, preprocessing_of
    from adfl_deploy.train.features import TorchEmbed

    model, state = load_model(source)
    data = state["train_config"]["data"]
    prep = preprocessing_of(state)
    info = {
        "kind": "checkpoint",
        "backend": "torch",
        "model": model.cfg.name,
        "epoch": state["epoch"],
        "train_set": f"{data['dataset']}={data['root']}",
        "train_config": state["train_config"],
    }
    return TorchEmbed(model, prep), info, model, prep


def _resolve_source(name: str) -> Path:
    """A checkpoint or artefact path; ``edge``/``baseline`` name the shipped models."""
    from adfl_deploy.runtime.embedder import SHIPPED_MODELS

    source = Path(name)
    if name in SHIPPED_MODELS and not source.exists():
        source = Path(SHIPPED_MODELS[name])
    if not source.exists():
        raise ConfigError(f"{source}: no such checkpoint or artefact folder (or shipped model: {', '.join(SHIPPED_MODELS)})")
    return source


def default_out(source: Path) -> Path:
    """``eval/`` next to the source, except for a model inside the installed package (a shipped
    model: its folder is read-only in a system install and part of the package's files) or in a
    folder this user cannot write: ``out/eval/<name>`` in the working directory then."""
    import os

    import adfl_deploy

    folder = (source if source.is_dir() else source.parent).resolve()
    package = Path(adfl_deploy.__file__).resolve().parent
    if folder.is_relative_to(package) or not os.access(folder, os.W_OK):
        return Path("out") / "eval" / (source.stem if source.is_file() else folder.name)
    return folder / "eval"


def run(args) -> int:
    from adfl_deploy.evaluation.datasets import load_dataset_spec
    from adfl_deploy.evaluation.reid import evaluate, read_crops
    from adfl_deploy.evaluation.visualize import attention_png, ranked_lists_png
    from adfl_deploy.files import atomic_write_text

    source = _resolve_source(args.source)
    embed, info, model, prep = _load_source(source)
    specs = args.test_set
    if not specs:
        if not info["train_set"]:
            raise ValueError("an exported artefact does not know its dataset: pass --test-set NAME=ROOT")
        specs = [info["train_set"]]
    out = Path(args.out) if args.out else default_out(source)
    datasets = [(spec, load_dataset_spec(spec)) for spec in specs]  # every layout checked before any work
    results, table = (
        [],
        ["| model | train set | test set | rank-1 | rank-5 | rank-10 | mAP |", "|---|---|---|---:|---:|---:|---:|"],
    )
    for spec, dataset in datasets:
        name = dataset.name
        ev = evaluate(embed, dataset, flip=args.flip, rerank=args.rerank, progress=True)
        m = ev.metrics
        results.append({"test_set": spec, **m})
        table.append(
            f"| {info['model']} | {info['train_set'] or '?'} | {name} | {m['rank1']:.3f} | {m['rank5']:.3f} | "
            f"{m['rank10']:.3f} | {m['mAP']:.3f} |"
        )
        step = max(1, len(dataset.query) // max(args.show, 1))
        picks = list(range(0, len(dataset.query), step))[: args.show]
        ranked_lists_png(dataset, ev.distance, picks, out / f"ranked_{name}.png")
        if model is not None and model.attention is not None:
            from adfl_deploy.train.attention_maps import attention_heatmaps

            samples = [dataset.query[i] for i in picks]
            crops = read_crops(samples)
            attention_png(
                crops,
                attention_heatmaps(model, crops, prep),
                [f"{s.pid} c{s.camid}" for s in samples],
                out / f"attention_{name}.png",
            )
    report = {**{k: v for k, v in info.items()}, "source": str(source), "results": results}
    atomic_write_text(out / "metrics.json", json.dumps(report, indent=2) + "\n")
    print("\n".join(table))  # only once every result exists: an error leaves no half table
    print(f"wrote {out / 'metrics.json'} and PNGs in {out}")
    return 0
