"""``adfl search``: where else, and when, was this person? Ranked global identities of a run's
identity store (``adfl.db``) for a query crop or a stored identity."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES = """examples:
  adfl search --db out/demo/track/adfl.db --image crop.jpg            ranked identities (table)
  adfl search --db out/demo/track/adfl.db --image crop.jpg --top 5 --json hits.json --sheet hits.png
  adfl search --db out/demo/track/adfl.db --identity 3                where identity 3 was, and its look-alikes
"""

#: the largest query image accepted (bytes); a person crop is a few kilobytes
MAX_IMAGE_BYTES = 10 * 1024 * 1024


def add_parser(sub) -> None:
    p = sub.add_parser(
        "search",
        help="ranked global identities of a run's store for a query crop or an identity",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", required=True, help="the run's identity store (RUN/adfl.db) or its run folder")
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--image", help="a crop of one person (JPEG/PNG)")
    query.add_argument("--identity", type=int, help="a global id of the run: its sightings and its look-alikes")
    p.add_argument("--top", type=int, default=10, help="identities to list (default 10)")
    p.add_argument("--model", help="the run's model, if its recorded path does not exist here (checked by fingerprint)")
    p.add_argument("--json", metavar="PATH", help="write the hits as JSON ('-' for standard output instead of the table)")
    p.add_argument("--sheet", metavar="PNG", help="write a contact sheet: the query beside each hit's best crops")


def db_path(value: str) -> Path:
    from adfl_deploy.store import DB_NAME

    path = Path(value)
    return path / DB_NAME if path.is_dir() else path


def read_image(path: str | Path, limit: int = MAX_IMAGE_BYTES):
    """A query image file, decoded from its bytes; one line if it is missing, too large or not
    an image."""
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.web.images import decode_image

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such image; pass a crop of one person (JPEG or PNG)")
    if path.stat().st_size > limit:
        raise ConfigError(f"{path}: {path.stat().st_size} bytes is more than {limit}; pass a crop of one person")
    return decode_image(path.read_bytes(), str(path))


def format_time(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{secs:04.1f}"


def table(hits, title: str) -> str:
    lines = [
        title,
        f"{'rank':>4}  {'identity':>8}  {'score':>6}  {'first seen':>10}  {'last seen':>9}  {'tracklets':>9}  cameras",
    ]
    for h in hits:
        i = h.identity
        lines.append(
            f"{h.rank:>4}  {h.global_id:>8}  {h.score:>6.3f}  {format_time(i.first_seen):>10}  "
            f"{format_time(i.last_seen):>9}  {i.tracklets:>9}  {', '.join(i.cameras)}"
        )
    if not hits:
        lines.append("  (no identities in the store yet)")
    return "\n".join(lines)


def contact_sheet(query, hits, store, thumbs_per_hit: int = 4, size: tuple[int, int] = (128, 64)):
    """One row per hit: the query, then the hit's best crops, labelled with rank, id and score."""
    import cv2
    import numpy as np

    h, w = size
    label_w = 190
    rows = []
    for hit in hits or [None]:
        row = np.full((h + 8, label_w + (thumbs_per_hit + 1) * (w + 6) + 6, 3), 255, np.uint8)
        if query is not None:
            row[4 : 4 + h, 6 : 6 + w] = cv2.resize(query, (w, h))
        x = label_w
        if hit is not None:
            cv2.putText(row, f"#{hit.rank} id {hit.global_id}", (w + 14, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
            cv2.putText(row, f"score {hit.score:.3f}", (w + 14, 62), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (60, 60, 60), 1)
            cv2.putText(row, ",".join(hit.identity.cameras)[:14], (w + 14, 84), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (60, 60, 60), 1)
            for thumb_id in hit.identity.thumbnails[:thumbs_per_hit]:
                data = store.thumbnail(thumb_id)
                image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
                if image is not None:
                    row[4 : 4 + h, x : x + w] = cv2.resize(image, (w, h))
                x += w + 6
        rows.append(row)
    return np.concatenate(rows)


def run(args) -> int:
    from adfl_deploy.errors import ConfigError
    from adfl_deploy.files import atomic_file
    from adfl_deploy.store import Store
    from adfl_deploy.store.search import hit_dict

    if args.top < 1:
        raise ConfigError(f"--top {args.top}: list at least 1 identity")
    store = Store(db_path(args.db))
    try:
        query_image = None
        report: dict = {"db": str(store.path), "model": store.model.describe()}
        if args.image:
            query_image = read_image(args.image)
            hits = store.search(store.embed(query_image, args.model), args.top)
            title = f"{args.image}: {len(hits)} identities in {store.path}, most similar first"
            report["query"] = {"image": args.image}
        else:
            if args.model:
                store.check_model(args.model)
            found = store.identities([args.identity], sightings=True)
            if not found:
                raise ConfigError(f"{store.path}: no identity {args.identity}; adfl serve shows the gallery of identities")
            me = found[0]
            hits = store.search(store.identity_vector(args.identity), args.top, exclude=args.identity)
            title = (
                f"identity {me.global_id}: seen in {', '.join(me.cameras)} from {format_time(me.first_seen)} to "
                f"{format_time(me.last_seen)}\n"
                + "\n".join(
                    f"  {s.camera} track {s.track_id}: {format_time(s.start_time)} - {format_time(s.end_time)}"
                    for s in me.sightings
                )
                + "\nlook-alikes (possibly the same person under another id):"
            )
            report["query"] = {"identity": args.identity, "sightings": [s.__dict__ for s in me.sightings]}
        report["hits"] = [hit_dict(h) for h in hits]
        if args.json == "-":
            print(json.dumps(report, indent=2))
        else:
            print(table(hits, title))
            if args.json:
                with atomic_file(args.json) as fh:
                    fh.write(json.dumps(report, indent=2) + "\n")
                print(f"wrote {args.json}", file=sys.stderr)
        if args.sheet:
            import cv2

            sheet = contact_sheet(query_image, hits, store)
            ok, data = cv2.imencode(".png", sheet)
            with atomic_file(args.sheet, "wb") as fh:
                fh.write(data.tobytes())
            print(f"wrote {args.sheet}", file=sys.stderr)
    finally:
        store.close()
    return 0
