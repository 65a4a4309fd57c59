"""``adfl serve``: a small web view of a run's identity store - the live mosaic while ``adfl
track`` runs, the identity gallery with a per-camera timeline for each identity, search by
uploaded image and the per-stage latency. Read-only; binds to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse
import os
import sys

EXAMPLES = """examples:
  adfl serve out/demo/track                       then open http://127.0.0.1:8765/
  adfl serve --db out/track/adfl.db --port 9000   a live run: start it beside adfl track --out out/track
  adfl serve out/track --host 0.0.0.0 --token SECRET   reachable from other machines, with an access token
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="web view of a run: live mosaic, identity gallery and timelines, search by image, latency",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", nargs="?", help="the run folder of adfl track (holding adfl.db)")
    p.add_argument("--db", help="the identity store itself (instead of the run folder)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--token", default=os.environ.get("ADFL_SERVE_TOKEN"), help="access token (default $ADFL_SERVE_TOKEN)")
    p.add_argument("--model", help="the run's model, if its recorded path does not exist here (checked by fingerprint)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest search upload (default 10 MB)")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def url(host: str, port: int, token: str | None = None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def run(args) -> int:
    from adfl_deploy.cli.search import db_path
    from adfl_deploy.errors import ConfigError

    if not (args.run or args.db):
        raise ConfigError("name the run: adfl serve RUN_FOLDER (or --db RUN/adfl.db)")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: use 1..65535")
    if args.max_upload_mb <= 0:
        raise ConfigError(f"--max-upload-mb {args.max_upload_mb}: use megabytes > 0")
    try:
        import uvicorn

        from adfl_deploy.web.app import create_app
    except ImportError as exc:
        raise ConfigError(
            f"adfl serve needs {exc.name}, a base dependency: pip install -e . (or pip install starlette uvicorn)"
        ) from None

    loopback = args.host in LOOPBACK
    # bound to this machine only: refuse requests for other host names (DNS rebinding: a web page
    # elsewhere that re-points its own name at 127.0.0.1 and reads the gallery through the browser)
    hosts = [*LOOPBACK, args.host] if loopback else None
    app = create_app(db_path(args.db or args.run), args.token, args.model, int(args.max_upload_mb * 1024 * 1024), hosts)
    if not loopback and not args.token:
        print("adfl serve: warning: reachable from other machines without --token", file=sys.stderr)
    print(f"serving {app.state.store.path} at {url(args.host, args.port, args.token)} (Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
