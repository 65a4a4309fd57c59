"""``adfl demo``: the main job until the multi-camera pipeline lands.

Builds an ADFL variant, exports it to ONNX (checked against PyTorch on the shipped crops),
embeds the crops through the torch-free runtime and prints PyTorch-vs-ONNX Runtime timings
with the achieved GFLOP/s. The weights are random until the project ships a trained model, so
the timings and the parity are meaningful and the similarities are not.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from adfl_deploy.model_config import DEFAULT_MODEL_NAME


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="build a model, export it to ONNX, embed sample crops, print timings",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", default=DEFAULT_MODEL_NAME, help="variant name (see `adfl models`)")
    p.add_argument("--out", default="out/demo", help="folder for the exported artefact and results")
    p.add_argument("--batch", default="1,8", help="comma-separated batch sizes to time")
    p.add_argument("--iters", type=int, default=5, help="timed iterations per batch size")


def _timings(model, embedder, crops, batches, iters, flops_per_image):
    import torch

    from adfl_deploy.preprocess import to_blob
    from adfl_deploy.timing import measure

    rows = []
    for batch in batches:
        blob = to_blob([crops[i % len(crops)] for i in range(batch)], embedder.info.preprocessing)
        tensor = torch.from_numpy(blob)

        def torch_eager(tensor=tensor):
            with torch.no_grad():
                return model(tensor)

        for backend, fn in (("torch-eager", torch_eager), ("onnxruntime-cpu", lambda b=blob: embedder.embed_blob(b))):
            lat = measure(fn, batch, warmup=1, iters=iters)
            rows.append(
                {
                    "backend": backend,
                    "batch": batch,
                    "p50_ms": round(lat.p50_ms, 2),
                    "p90_ms": round(lat.p90_ms, 2),
                    "ms_per_image": round(lat.per_item_ms, 2),
                    "images_per_s": round(lat.items_per_s, 1),
                    "gflop_per_s": round(flops_per_image * lat.items_per_s / 1e9, 1),
                }
            )
    return rows


def run(args) -> int:
    import torch

    from adfl_deploy.assets import load_sample_crops
    from adfl_deploy.config import atomic_write_text
    from adfl_deploy.embedder import Embedder
    from adfl_deploy.export.onnx_export import export_onnx
    from adfl_deploy.train.models import create_model
    from adfl_deploy.train.models.complexity import count_flops

    out = Path(args.out)
    batches = [int(b) for b in args.batch.split(",")]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(args.model).eval()
    crops = load_sample_crops()
    print(f"[1/3] built {model.cfg.name} (random weights): embedding {model.embedding_dim}-d")
    info = export_onnx(model, out / "artifact", crops)
    prep = info.preprocessing
    print(
        f"[2/3] exported {out / 'artifact' / info.onnx} (opset {info.opset}, dynamic batch); "
        f"ONNX Runtime vs PyTorch on {len(crops)} crops: max abs err {info.parity['max_abs_error']:.2e}, "
        f"min cosine {info.parity['min_cosine']:.7f}"
    )
    embedder = Embedder.from_artifact(out / "artifact")
    embeddings = embedder.embed(crops)
    flops = count_flops(model, (prep.height, prep.width))
    print(f"[3/3] embedded {len(crops)} crops -> {embeddings.shape}; timing ({flops / 1e9:.1f} GFLOP per image):")
    rows = _timings(model, embedder, crops, batches, args.iters, flops)
    header = "| backend | batch | p50 ms | p90 ms | ms/image | images/s | GFLOP/s |"
    print(header + "\n|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['batch']} | {r['p50_ms']} | {r['p90_ms']} | {r['ms_per_image']} | "
            f"{r['images_per_s']} | {r['gflop_per_s']} |"
        )
    result = {"model": model.cfg.name, "flops_per_image": flops, "threads": torch.get_num_threads(), "timings": rows}
    atomic_write_text(out / "timings.json", json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'artifact'} and {out / 'timings.json'}")
    return 0
