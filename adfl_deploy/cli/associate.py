"""``adfl associate``: the central associator of several edge nodes (``adfl track --publish``)."""

from __future__ import annotations

import argparse
import logging

from adfl_deploy.stop_signals import on_stop_signals

EXAMPLES = """examples:
  redis-server --port 6379 --appendonly yes                  # the broker (persistent streams)
  adfl associate --broker redis://127.0.0.1:6379/adfl --out out/associate
  adfl track --source cam1=a.mp4 --source cam2=b.mp4 --publish redis://127.0.0.1:6379/adfl --node n1 --out out/n1
  adfl associate --broker redis://10.0.0.2:6379/adfl --until-done   # exit once every node has finished
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "associate",
        help="central associator: global identities for the tracklets of many edge nodes (Redis Streams)",
        description="Read every edge node's tracklets (adfl track --publish) through a Redis consumer group, give "
        "global identities with the same association as a single adfl track process, and publish the decisions to "
        "STREAM:decisions, which the nodes read to label their outputs. A restart (even after kill -9) replays that "
        "journal and continues where it stopped. Health and lag go to the log and OUT/summary.json.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--broker", required=True, metavar="redis://HOST:PORT/STREAM", help="the stream the nodes publish to")
    p.add_argument("--config", help="YAML/JSON AssociationConfig (the association section of a pipeline config works too)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an association field, e.g. match_threshold=0.3 (default: the first node's calibrated one)",
    )
    p.add_argument("--out", default="out/associate", help="folder for summary.json (default out/associate)")
    p.add_argument("--consumer", default="associator-1", help="consumer name in the group (keep it across restarts)")
    p.add_argument(
        "--nodes",
        default="",
        metavar="NAME,NAME",
        help="the nodes of this deployment, waited for from the start (else the first moments are solved without a node "
        "that is still starting)",
    )
    p.add_argument("--node-timeout", type=float, default=10.0, help="seconds of silence after which a node is not waited for")
    p.add_argument("--summary-seconds", type=float, default=5.0, help="log health and rewrite summary.json this often")
    p.add_argument(
        "--snapshot-seconds",
        type=float,
        default=60.0,
        help="save the associator's state in OUT this often, so a restart replays only the journal after it (0 = never)",
    )
    p.add_argument("--until-done", action="store_true", help="exit once every node that spoke has said bye and all is decided")
    p.add_argument("--max-seconds", type=float, default=0.0, help="exit after this long (0 = run until stopped)")


def _association_config(args):
    from adfl_deploy import config
    from adfl_deploy.association import AssociationConfig

    base = AssociationConfig()
    if args.config:
        import yaml

        from adfl_deploy.errors import ConfigError

        try:
            with open(args.config) as fh:
                data = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise ConfigError(f"--config {args.config}: {exc.strerror or exc}") from None
        if isinstance(data, dict) and isinstance(data.get("association"), dict):
            data = data["association"]
        base = config.from_dict(AssociationConfig, data, "association")
    return config.with_overrides(base, {}, args.set)


def run(args) -> int:
    from adfl_deploy.broker.central import CentralAssociator
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.files import safe_name

    if not args.node_timeout > 0 or not args.summary_seconds > 0 or not args.snapshot_seconds >= 0:
        raise ConfigError("--node-timeout and --summary-seconds must be > 0, --snapshot-seconds >= 0")
    central = CentralAssociator(
        args.broker,
        _association_config(args),
        consumer=args.consumer,
        node_timeout=args.node_timeout,
        out=args.out,
        summary_seconds=args.summary_seconds,
        snapshot_seconds=args.snapshot_seconds,
        expect_nodes=[safe_name(n.strip(), "node name") for n in args.nodes.split(",") if n.strip()],
    )
    logging.getLogger("adfl_deploy.broker").setLevel(logging.INFO)
    print(f"adfl associate: reading {central.where} (consumer {args.consumer}); decisions to {central.where.results}")
    with _signals(central):
        summary = central.run(until_done=args.until_done, max_seconds=args.max_seconds)
    health = summary["health"]
    print(
        f"{summary['messages'].get('tr', 0)} tracklets from {len(health.get('nodes', {}))} nodes, "
        f"{summary['messages'].get('decisions', 0)} decisions, {len(summary['global_ids'])} global ids; "
        f"decision latency p99 {summary['decision_latency_ms_p99'] or 0:.1f} ms; pending {health.get('pending')}; "
        f"wrote {args.out}/summary.json"
    )
    return 0


def _signals(central):
    """SIGINT/SIGTERM -> ``central.request_stop()``: the run loop ends and the summary is written."""
    return on_stop_signals(lambda signum, _frame: central.request_stop())
