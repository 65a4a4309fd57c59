"""``adfl track``: the multi-camera re-identification pipeline."""

from __future__ import annotations

import argparse
import sys

EXAMPLES = """examples:
  adfl track                                      # no sources: the generated demo scene (out/scene)
  adfl track --source cam1=door.mp4 --source cam2=hall.mp4 --out out/track
  adfl track --source cam1=rtsp://10.0.0.5/stream --source cam2=0 --model out/edge --backend auto
  adfl track --config track.yaml                  # every field of the pipeline config (see --print-config)
  adfl track --source cam1=a.mp4 --publish redis://10.0.0.2:6379/adfl --node door   # an edge node (adfl associate)
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "track",
        help="detect, track and re-identify people across cameras (video, folders, RTSP/HTTP, webcams)",
        description="Run source -> detect -> track -> embed -> associate -> sinks on several cameras and write "
        "events.jsonl, MOTChallenge files with global ids (mot/CAMERA.txt), annotated videos and a mosaic, and "
        "summary.json (frames, FPS, per-stage latency). A camera that dies is reconnected, then dropped, while "
        "the others continue. SIGINT or SIGTERM ends the run after the current tick with every output closed and "
        "summary.json written (exit 130 for SIGINT, 0 for SIGTERM, the way services are stopped).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", action="append", default=[], metavar="NAME=PATH_OR_URL", help="one per camera")
    p.add_argument("--config", help="YAML/JSON PipelineConfig")
    p.add_argument(
        "--model",
        help="exported artefact folder, or edge / baseline (the shipped models) or colour-histogram (default: edge)",
    )
    p.add_argument("--backend", help="auto, onnxruntime-cpu, onnxruntime-cuda, torch")
    p.add_argument(
        "--detector",
        help=(
            "fastestdet+motion-quarter (default: the shipped network plus a motion detector's boxes where it finds "
            "nobody; fixed cameras), fastestdet (shipped, 512x288 input), fastestdet@WIDTHxHEIGHT (e.g. "
            "fastestdet@640x352 for people small in the frame), motion, yolo-fastest (person-only Darknet, "
            "yolo-fastest@WIDTHxHEIGHT too), a Darknet .cfg path or a YOLOv5/v8 ONNX path; A+B fuses two"
        ),
    )
    p.add_argument("--out", help="output folder")
    p.add_argument("--max-frames", type=int, help="stop each camera after this many frames")
    p.add_argument("--no-video", action="store_true", help="skip the annotated videos and the mosaic")
    p.add_argument("--show", action="store_true", help="live mosaic window (needs a display and GUI OpenCV)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field, e.g. association.merge_threshold=0.3",
    )
    p.add_argument(
        "--publish",
        metavar="redis://HOST:PORT/STREAM",
        help="edge node: send each tracklet to a central associator (adfl associate) over Redis Streams and label this "
        "node's outputs with the global ids it decides",
    )
    p.add_argument("--node", help="this node's name in its messages (default: the host name)")
    p.add_argument(
        "--publish-buffer-disk",
        action="store_true",
        help="while the broker is away, hold messages in --out/publish-buffer.jsonl instead of memory",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args) -> int:
    from adfl_deploy import config
    from adfl_deploy.pipeline.core import PipelineConfig
    from adfl_deploy.pipeline.core import run as run_pipeline

    base = config.load(PipelineConfig, args.config) if args.config else PipelineConfig()
    flags = {
        "sources": args.source or None,
        **{key: getattr(args, key) or None for key in ("model", "backend", "detector", "out")},
        "max_frames": args.max_frames,
        "write_videos": False if args.no_video else None,
        "show": True if args.show else None,
        "publish.url": args.publish,
        "publish.node": args.node,
        "publish.buffer_disk": True if args.publish_buffer_disk else None,
    }
    data = config.to_dict(config.with_overrides(base, flags, args.set))
    if not data["sources"] and not args.print_config:  # the embedded default: the generated scene
        from adfl_deploy.scene import SceneConfig, generate

        scene = generate(SceneConfig(), "out/scene")
        data["sources"] = scene.sources()
        print(
            f"no --source given: tracking the generated demo scene in {scene.root} (adfl scene) with the "
            f"{data['detector']} detector"
        )
    cfg = config.from_dict(PipelineConfig, data)
    if args.print_config:
        print(config.dumps(cfg), end="")
        return 0
    summary = run_pipeline(cfg)
    cams = ", ".join(f"{n}: {c.frames} frames ({c.state})" for n, c in summary.cameras.items())
    stopped = f"stopped by {summary.ended_by} after {summary.ticks} ticks; " if summary.ended_by.startswith("SIG") else ""
    print(
        f"{stopped}{cams}; {len(summary.global_ids)} global ids; {summary.events} events; "
        f"{summary.median_fps:.1f} FPS per live camera (median)"
    )
    names = {
        "events": "events.jsonl",
        "mot": "mot/",
        "videos": "video/",
        "mosaic": "mosaic.avi",
        "summary": "summary.json",
        "store": "adfl.db",
    }
    print(f"wrote {cfg.out}: run.json, config.yaml, " + ", ".join(names.get(s, s) for s in summary.outputs))
    if not summary.live_cameras:
        print(
            "adfl track: error: no camera delivered a frame ("
            + ", ".join(f"{n}: {c.state}" for n, c in summary.cameras.items())
            + "); check the sources (adfl track -v says why each was dropped)",
            file=sys.stderr,
        )
        return 1
    return 130 if summary.ended_by == "SIGINT" else 0
