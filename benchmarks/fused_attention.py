"""Fused CUDA kernels vs the unfused PyTorch composite, per op, at the attn3 shape of ResNet50
at 384x128 (C=1024, 24x8), batch 1/8/32, fp32 and fp16. GPU only; needs `make native`.

    python benchmarks/fused_attention.py --out results/fused_attention.json [--markdown FILE.md]

Prints a Markdown table (with its header) and writes JSON (git commit, device, driver, CUDA and
torch versions, command, numbers); --markdown also writes the table, headed by the device line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys

import numpy as np
import torch

from adfl_deploy.config import atomic_write_text
from adfl_deploy.train.models.attention import ops
from adfl_deploy.train.models.attention.cuda_kernels import use_cuda_kernels


def inputs(op, batch, c, h, w, dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    t = lambda *s: 0.1 * torch.randn(*s, device="cuda", dtype=dtype, generator=g)  # noqa: E731
    alpha = torch.tensor([0.5], device="cuda", dtype=dtype)
    return {
        "spatial_attention": lambda: [
            t(batch, c // 8, h, w),
            t(batch, c // 8, h, w),
            t(batch, c, h, w),
            t(batch, c, h, w),
            alpha,
        ],
        "channel_attention": lambda: [t(batch, c, h, w), alpha],
        "hyper_attention": lambda: [t(batch, c // 64, h, w) for _ in range(3)],
        "spatial_gate": lambda: [t(batch, 1, h, w), t(batch, c, h, w)],
        "channel_gate": lambda: [t(batch, c), t(batch, c, h, w)],
        "hyper_gate": lambda: [t(batch, c, h, w)],
    }[op]()


def time_ms(fn, iters=50) -> float:
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(iters):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        samples.append(start.elapsed_time(end))
    return float(np.median(samples))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="results/fused_attention.json")
    parser.add_argument("--batch", default="1,8,32")
    parser.add_argument("--markdown", help="also write the Markdown table here")
    args = parser.parse_args()
    if not torch.cuda.is_available() or not use_cuda_kernels():
        print("needs a CUDA device and build/libadfl_kernels.so (make native)", file=sys.stderr)
        return 2
    c, h, w = 1024, 24, 8
    rows = []
    header = ["| op | dtype | batch | fused (ms) | unfused (ms) | speedup |", "|---|---|---:|---:|---:|---:|"]
    lines = list(header)
    print(*header, sep="\n", flush=True)
    for dtype in (torch.float32, torch.float16):
        for batch in (int(b) for b in args.batch.split(",")):
            for op in ops.OPS:
                x = inputs(op, batch, c, h, w, dtype)
                composite = ops.COMPOSITES[op][0]
                with torch.no_grad():
                    fused = time_ms(lambda op=op, x=x: ops.OPS[op](*x))
                    unfused = time_ms(lambda composite=composite, x=x: composite(*x))
                rows.append(
                    {
                        "op": op,
                        "dtype": str(dtype).split(".")[-1],
                        "batch": batch,
                        "fused_ms": fused,
                        "unfused_ms": unfused,
                        "speedup": unfused / fused,
                    }
                )
                lines.append(f"| {op} | {rows[-1]['dtype']} | {batch} | {fused:.3f} | {unfused:.3f} | {unfused / fused:.2f}x |")
                print(lines[-1], flush=True)
    driver = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True
    ).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "git_commit": commit,
        "device": torch.cuda.get_device_name(),
        "driver": driver,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "command": " ".join(sys.argv),
        "shape": {"C": c, "H": h, "W": w},
        "results": rows,
    }
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        title = (
            f"Fused vs unfused attention, C={c} {h}x{w}: {report['device']} (driver {driver}), CUDA "
            f"{torch.version.cuda}, torch {torch.__version__}, commit {commit[:10]}, {report['date'][:10]}"
        )
        atomic_write_text(args.markdown, title + "\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
