"""``adfl demo``: the main job until the generated multi-camera scene (demo issue) lands.

1. The shipped edge model (INT8 ONNX, trained on Con-ReID, torch-free runtime) embeds 12 real
   crops of 4 people seen by 3 cameras and matches each crop to the other cameras' crops;
   latency per batch size is measured.
2. With PyTorch installed: the paper's delegate network is built (random weights), exported
   with its attention blocks fused into com.adfl nodes, checked against PyTorch on the same
   crops, and timed on PyTorch eager vs ONNX Runtime with the achieved GFLOP/s.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from adfl_deploy.model_config import DEFAULT_MODEL_NAME


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="shipped model on sample crops, then build -> fused ONNX -> timings",
        description=__doc__,
        epilog="examples:\n  adfl demo                                  (what `make demo` runs)\n"
        "  adfl demo --model attn3-2sum@resnet18 --batch 1,8,32 --out out/demo-r18",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=DEFAULT_MODEL_NAME, help="variant built and exported in part 2 (see `adfl models`)")
    p.add_argument("--out", default="out/demo", help="folder for the exported artefact and results")
    p.add_argument("--batch", default="1,8", help="comma-separated batch sizes to time")
    p.add_argument("--iters", type=int, default=5, help="timed iterations per batch size")


def _row(backend: str, batch: int, lat, flops: float | None) -> dict:
    return {
        "backend": backend,
        "batch": batch,
        "p50_ms": round(lat.p50_ms, 2),
        "p90_ms": round(lat.p90_ms, 2),
        "ms_per_image": round(lat.per_item_ms, 2),
        "images_per_s": round(lat.items_per_s, 1),
        "gflop_per_s": round(flops * lat.items_per_s / 1e9, 1) if flops else None,
    }


def _print_table(rows: list[dict]) -> None:
    print("| backend | batch | p50 ms | p90 ms | ms/image | images/s | GFLOP/s |\n|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        gflops = "-" if r["gflop_per_s"] is None else r["gflop_per_s"]
        print(f"| {r['backend']} | {r['batch']} | {r['p50_ms']} | {r['p90_ms']} | {r['ms_per_image']} | {r['images_per_s']} | {gflops} |")


def shipped_model_part(batches: list[int], iters: int) -> dict:
    from adfl_deploy.assets import EDGE_MODEL, load_sample_crops, sample_crop_labels
    from adfl_deploy.embedder import Embedder
    from adfl_deploy.preprocess import to_blob
    from adfl_deploy.timing import measure

    embedder = Embedder.from_artifact(EDGE_MODEL)
    crops, labels = load_sample_crops(), sample_crop_labels()
    emb = embedder.embed(crops)
    sim = emb @ emb.T
    correct = 0
    print(f"[1/2] shipped model {embedder.info.model.name} ({embedder.precision}, {embedder.dim}-d) on {len(crops)} crops:")
    for i, (pid, cam) in enumerate(labels):
        others = [j for j, (_, c) in enumerate(labels) if c != cam]
        best = max(others, key=lambda j: sim[i, j])
        correct += labels[best][0] == pid
        print(f"  person {pid} cam {cam} -> best match in other cameras: person {labels[best][0]} cam {labels[best][1]} (cos {sim[i, best]:.3f})")
    print(f"  cross-camera rank-1 on the sample crops: {correct}/{len(crops)}")
    rows = []
    for batch in batches:
        blob = to_blob([crops[i % len(crops)] for i in range(batch)], embedder.info.preprocessing)
        rows.append(_row(f"onnxruntime-cpu {embedder.precision}", batch, measure(lambda b=blob: embedder.embed_blob(b), batch, 1, iters), None))
    _print_table(rows)
    return {"model": embedder.info.model.name, "precision": embedder.precision, "sample_rank1": correct / len(crops), "timings": rows}


def fused_export_part(model_name: str, out: Path, batches: list[int], iters: int) -> dict:
    import torch

    from adfl_deploy.assets import load_sample_crops
    from adfl_deploy.embedder import Embedder
    from adfl_deploy.export.onnx_export import export_onnx
    from adfl_deploy.preprocess import to_blob
    from adfl_deploy.timing import measure
    from adfl_deploy.train.models import create_model
    from adfl_deploy.train.models.complexity import count_flops

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(model_name).eval()
    crops = load_sample_crops()
    info = export_onnx(model, out / "artifact", crops)
    print(
        f"[2/2] built {model.cfg.name} (random weights, {model.embedding_dim}-d), exported with fused "
        f"{'+'.join(info.fused_ops) or 'no'} nodes to {out / 'artifact'} (opset {info.opset}, dynamic batch; "
        f"{info.onnx} for ONNX Runtime, {info.onnx_tensorrt} for TensorRT); ONNX Runtime vs PyTorch on "
        f"{len(crops)} crops: max abs err {info.parity['max_abs_error']:.2e}, min cosine {info.parity['min_cosine']:.7f}"
    )
    embedder = Embedder.from_artifact(out / "artifact")
    prep = info.preprocessing
    flops = count_flops(model, (prep.height, prep.width))
    print(f"  timing at {prep.height}x{prep.width} ({flops / 1e9:.1f} GFLOP per image):")
    rows = []
    for batch in batches:
        blob = to_blob([crops[i % len(crops)] for i in range(batch)], prep)
        tensor = torch.from_numpy(blob)

        def eager(t=tensor):
            with torch.no_grad():
                return model(t)

        rows.append(_row("torch-eager fp32", batch, measure(eager, batch, 1, iters), flops))
        rows.append(_row("onnxruntime-cpu fp32", batch, measure(lambda b=blob: embedder.embed_blob(b), batch, 1, iters), flops))
    _print_table(rows)
    return {"model": model.cfg.name, "flops_per_image": flops, "threads": torch.get_num_threads(), "timings": rows}


def run(args) -> int:
    from adfl_deploy.cli import torch_installed
    from adfl_deploy.config import atomic_write_text

    out = Path(args.out)
    batches = [int(b) for b in args.batch.split(",")]
    result = {"shipped_model": shipped_model_part(batches, args.iters)}
    if torch_installed():
        result["fused_export"] = fused_export_part(args.model, out, batches, args.iters)
    else:
        print("[2/2] skipped: PyTorch is not installed (pip install -e '.[train]' to build and export models)")
    atomic_write_text(out / "demo.json", json.dumps(result, indent=2, default=lambda o: float(np.asarray(o))) + "\n")
    print(f"wrote {out / 'demo.json'}")
    return 0
