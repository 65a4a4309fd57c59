"""``adfl train``: the paper's training recipe on any supported dataset."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  adfl train --dataset market1501 --root ~/data/Market-1501 --pretrained resnet50.pth
  adfl train --config configs/edge-con-reid.yaml                 # the shipped edge model
  adfl train --config configs/edge-con-reid.yaml --resume runs/edge/last.pt
  adfl train --dataset market-style --root my_crops --set solver.epochs=60 --set amp=bf16
  torchrun --nproc_per_node 4 -m adfl_deploy.cli train --config cfg.yaml   # multi-GPU (DDP)
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an ADFL model (softmax + batch-hard triplet, Eq. 4 schedule, resumable)",
        description="Train an ADFL variant with the paper's recipe (384x128, flip, pad-10 crop, PK 8x4, "
        "softmax + triplet, Adam 3.5e-4 with 20-epoch warm-up, x0.1 at 80 and 130, 150 epochs, "
        "backbone frozen for 5 epochs). Every value is a config field: see --print-config.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML/JSON TrainConfig to start from")
    p.add_argument("--model", help="variant name, e.g. AF3-cat-1024-attn3-1sum (see `adfl models`)")
    p.add_argument("--dataset", help="market1501 | dukemtmc | msmt17 | market-style")
    p.add_argument("--root", help="dataset root folder")
    p.add_argument("--pretrained", help="local torchvision ImageNet state dict for the backbone")
    p.add_argument("--epochs", type=int, help="shortcut for --set solver.epochs=N")
    p.add_argument("--out", help="output folder (checkpoint, logs, config)")
    p.add_argument("--test-set", action="append", default=[], metavar="NAME=ROOT", help="extra (cross-domain) test set")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override any field, e.g. loss.label_smoothing=0.1"
    )
    p.add_argument("--resume", help="continue from a checkpoint written by an earlier run")
    p.add_argument("--stop-after-epoch", type=int, help="end the run after this epoch (resume later)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def resolve_config(args):
    from adfl_deploy import config
    from adfl_deploy.train.config import TrainConfig

    base = config.load(TrainConfig, args.config) if args.config else TrainConfig()
    shortcuts = {
        "model": args.model,
        "pretrained": args.pretrained,
        "out": args.out,
        "data.dataset": args.dataset,
        "data.root": args.root,
        "solver.epochs": args.epochs,
    }
    if args.test_set:
        shortcuts["extra_test_sets"] = list(base.extra_test_sets) + args.test_set
    return config.with_overrides(base, shortcuts, args.set)


def run(args) -> int:
    from adfl_deploy import config
    from adfl_deploy.train.trainer import train

    cfg = resolve_config(args)
    if args.print_config:
        print(config.dumps(cfg), end="")
        return 0
    if not cfg.data.root:
        raise ValueError("no dataset root: pass --root DIR (or data.root in --config)")
    last = train(cfg, resume=args.resume, stop_after_epoch=args.stop_after_epoch)
    print(f"checkpoint: {last}")
    return 0
