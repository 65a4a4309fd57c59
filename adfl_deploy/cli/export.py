"""``adfl export``: checkpoint -> ONNX (portable + TensorRT flavour), optional INT8, parity and
accuracy recorded in the sidecar."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  adfl export runs/edge-con-reid/last.pt --out out/edge
  adfl export runs/edge-con-reid/last.pt --out out/edge --int8 --eval-set market-style=../shared/data/con-reid
  adfl export runs/edge-con-reid/last.pt --out out/edge --int8 --bundle int8 adfl_deploy/assets/edge_model
  adfl export runs/edge-con-reid/last.pt --out out/edge --precision fp16 --engine --batch 1:8:32   # on a GPU
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="checkpoint -> ONNX (+ INT8) with parity and accuracy checks",
        description="Export a checkpoint to a dynamic-batch ONNX artefact: model.onnx (portable: the fused "
        "attention nodes carry local functions, so plain ONNX Runtime runs it), model.trt.onnx (the same "
        "graph for TensorRT with build/libadfl_plugins.so), adfl.json (config, preprocessing, sha256, "
        "parity against PyTorch on real crops). By default the model takes resized uint8 BGR crops and "
        "normalises them in the graph (--input float: the float blob). --fp16 adds float16 copies (GPUs), --int8 a "
        "QDQ INT8 model calibrated on real crops; --precision picks the runtime default and the engine's precision.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="checkpoint written by adfl train")
    p.add_argument("--out", required=True, help="artefact folder to write")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx (QDQ, per-channel weights)")
    p.add_argument("--calib", help="folder of crops for INT8 calibration (default: the training crops)")
    p.add_argument(
        "--calib-method",
        default="percentile",
        choices=["minmax", "entropy", "percentile"],
        help="how INT8 activation ranges come from the calibration crops: the full range, the KL-entropy "
        "threshold, or the 99.999th percentile (default)",
    )
    p.add_argument("--eval-set", metavar="NAME=ROOT", help="measure rank-1/mAP of every precision on this split")
    p.add_argument("--max-map-drop", type=float, default=1.0, help="fail if FP16 or INT8 loses more mAP points than fp32 by this")
    p.add_argument("--max-batch", type=int, default=64, help="largest batch of the dynamic axis")
    p.add_argument(
        "--fp16", action="store_true", help="also write model.fp16.onnx and model.trt.fp16.onnx (float16, I/O types kept)"
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "fp16", "int8"],
        help="what the runtime loads by default and what --engine builds (fp16/int8 imply --fp16/--int8)",
    )
    p.add_argument("--bundle", nargs=2, metavar=("PRECISION", "DIR"), help="also write a one-precision copy to DIR")
    p.add_argument(
        "--input",
        default="uint8",
        choices=["uint8", "float"],
        help="uint8 (default): the model takes resized BGR uint8 crops (N, H, W, 3) and normalises them in the "
        "graph; float: normalised float32 blobs (N, 3, H, W), as before",
    )
    p.add_argument("--engine", action="store_true", help="also build a TensorRT engine (needs TensorRT and make native)")
    p.add_argument("--batch", default="1:8:32", metavar="MIN:OPT:MAX", help="TensorRT optimisation profile for the batch axis")


def run(args) -> int:
    from adfl_deploy.export.checkpoint_export import bundle, export_checkpoint
    from adfl_deploy.export.tensorrt_engine import build_engine, parse_batch_range, record_engine, trtexec_command
    from adfl_deploy.model.artifact import tensorrt_onnx_file
    from adfl_deploy.model.preprocess import FLOAT_NCHW, UINT8_NHWC

    batch = parse_batch_range(args.batch)
    info = export_checkpoint(
        args.checkpoint,
        args.out,
        int8=args.int8 or args.precision == "int8",
        fp16=args.fp16 or args.precision == "fp16",
        calib=args.calib,
        calib_method=args.calib_method,
        eval_set=args.eval_set,
        max_map_drop=args.max_map_drop,
        max_batch=args.max_batch,
        default_precision=args.precision,
        input_format=UINT8_NHWC if args.input == "uint8" else FLOAT_NCHW,
    )
    print(
        f"wrote {args.out}: {', '.join(f'{p}={f}' for p, f in info.variants.items())}"
        + (f", tensorrt={info.onnx_tensorrt}" if info.onnx_tensorrt else "")
    )
    print(f"parity vs PyTorch: max abs err {info.parity['max_abs_error']:.2e}, min cosine {info.parity['min_cosine']:.6f}")
    if "int8_min_cosine" in info.parity:
        print(
            f"int8 vs fp32 embeddings: cosine min {info.parity['int8_min_cosine']:.4f}, median "
            f"{info.parity['int8_median_cosine']:.4f} on real crops"
        )
    for precision, acc in info.accuracy.items():
        print(f"{precision}: rank-1 {acc['rank1']:.3f} mAP {acc['mAP']:.3f} on {acc['eval_set']}")
    source = tensorrt_onnx_file(info, info.precision)
    if source:
        print("TensorRT engine (on the device): " + trtexec_command(info, args.out, batch, source))
    if args.engine and source:
        from pathlib import Path

        engine = build_engine(Path(args.out) / source, Path(args.out) / "model.engine", info, batch)
        record_engine(Path(args.out), engine, batch, info.precision)
        print(f"TensorRT engine: {engine}")
    if args.bundle:
        slim = bundle(args.out, args.bundle[1], args.bundle[0])
        print(f"bundled {slim.precision} model in {args.bundle[1]}")
    return 0
