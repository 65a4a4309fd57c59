"""``adfl models``: every paper variant with its size and cost, counted by torch's FLOP counter."""

from __future__ import annotations

import argparse
import json
import warnings

from adfl_deploy.model.variants import BACKBONES, PAPER_MODEL_NAMES, parse_model_name


def add_parser(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list the ADFL variants with parameters and GFLOPs",
        description="List every variant named in the paper's tables, built for real and measured: "
        "parameters (with and without the training-only classifiers) and GFLOPs of one image "
        "(2 FLOPs per multiply-add, torch.utils.flop_counter).",
        epilog="examples:\n  adfl models\n"
        "  adfl models --backbone resnet18 --input-size 256x128 baseline AF3-cat-256-attn3-1sum\n"
        "  adfl models attn3-1sum@resnet34 --json models.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("names", nargs="*", help="variant names (default: all paper names)")
    p.add_argument("--backbone", choices=BACKBONES, default="resnet50", help="backbone for the paper names")
    p.add_argument("--input-size", default="384x128", help="HxW of the input image")
    p.add_argument("--json", metavar="PATH", help="also write the table as JSON")


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"input size {text!r} must look like 384x128 (height x width)") from None
    return h, w


def model_rows(names, backbone: str, size: tuple[int, int]) -> list[dict]:
    from adfl_deploy.train.models import create_model
    from adfl_deploy.train.models.complexity import count_flops, count_parameters

    rows = []
    for name in names:
        cfg = parse_model_name(name)
        if "@" not in name:
            cfg = cfg.with_(backbone=backbone)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = create_model(cfg)
        heads = [model.head.classifier] + ([model.fused_head.classifier] if model.fused_head else [])
        total = count_parameters(model)
        rows.append(
            {
                "name": cfg.name,
                "embedding_dim": cfg.embedding_dim,
                "params_m": round(total / 1e6, 2),
                "params_inference_m": round((total - sum(count_parameters(h) for h in heads)) / 1e6, 2),
                "gflops": round(count_flops(model, size) / 1e9, 2),
            }
        )
    return rows


def markdown(rows: list[dict], size: tuple[int, int]) -> str:
    lines = [
        f"| variant | embedding | params (M) | params w/o classifier (M) | GFLOPs @ {size[0]}x{size[1]} |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| `{r['name']}` | {r['embedding_dim']} | {r['params_m']:.2f} | {r['params_inference_m']:.2f} | {r['gflops']:.2f} |"
        for r in rows
    ]
    return "\n".join(lines)


def run(args) -> int:
    size = parse_size(args.input_size)
    rows = model_rows(args.names or PAPER_MODEL_NAMES, args.backbone, size)
    print(markdown(rows, size))
    if args.json:
        from adfl_deploy.files import atomic_write_text

        atomic_write_text(args.json, json.dumps({"input_size": list(size), "models": rows}, indent=2) + "\n")
    return 0
