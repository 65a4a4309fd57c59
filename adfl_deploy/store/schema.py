"""The identity store's SQLite schema, its migrations and how it is opened.

One database per run (``adfl.db`` beside ``events.jsonl``): cameras, tracklets (camera, start
and end, a box summary), their best crops as small JPEG thumbnails, global identities, merges,
every embedded crop's unit vector (float32 little-endian BLOBs, the layout sqlite-vec reads),
per-tick stage latencies and the latest live mosaic. ``PRAGMA user_version`` is the schema
version; ``MIGRATIONS[i]`` takes a database from version ``i`` to ``i + 1`` inside one
transaction, so an older store is upgraded when a writer opens it and a newer one is refused.

Writers use WAL with ``synchronous=NORMAL``: every committed transaction survives the process
being killed (``kill -9``), a crash only loses the transaction in flight, and readers (``adfl
serve`` on a live run) never block the writer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adfl_deploy.errors import OutputError

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the store
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE cameras (
        name TEXT PRIMARY KEY, first_time REAL, last_time REAL, frames INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE identities (
        global_id INTEGER PRIMARY KEY, created_time REAL, merged_into INTEGER);
    CREATE TABLE tracklets (
        id INTEGER PRIMARY KEY, camera TEXT NOT NULL, track_id INTEGER NOT NULL, global_id INTEGER,
        start_frame INTEGER, end_frame INTEGER, start_time REAL, end_time REAL,
        ended INTEGER NOT NULL DEFAULT 0, boxes INTEGER NOT NULL DEFAULT 0,
        first_box TEXT, last_box TEXT, mean_width REAL, mean_height REAL,
        UNIQUE (camera, track_id));
    CREATE TABLE thumbnails (
        id INTEGER PRIMARY KEY, tracklet_id INTEGER NOT NULL REFERENCES tracklets(id),
        frame INTEGER, time REAL, quality REAL, jpeg BLOB NOT NULL);
    CREATE TABLE merges (id INTEGER PRIMARY KEY, kept INTEGER, merged INTEGER, distance REAL, time REAL);
    CREATE TABLE embeddings (
        id INTEGER PRIMARY KEY, tracklet_id INTEGER NOT NULL REFERENCES tracklets(id),
        frame INTEGER, time REAL, quality REAL, vector BLOB NOT NULL);
    CREATE TABLE ticks (
        tick INTEGER PRIMARY KEY, detect REAL, track REAL, embed REAL, associate REAL, sink REAL,
        live_tracks INTEGER, global_ids INTEGER);
    CREATE TABLE live (id INTEGER PRIMARY KEY CHECK (id = 1), tick INTEGER, jpeg BLOB);
    """,
    # 1 -> 2: the track's aggregated descriptor (search by identity), the writer's own cost per
    # tick, and the indexes the gallery and the search join on
    """
    ALTER TABLE tracklets ADD COLUMN descriptor BLOB;
    ALTER TABLE ticks ADD COLUMN store REAL;
    CREATE INDEX tracklets_global_id ON tracklets (global_id);
    CREATE INDEX thumbnails_tracklet ON thumbnails (tracklet_id);
    CREATE INDEX embeddings_tracklet ON embeddings (tracklet_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
#: the tables every store of the current version has (a reader refuses a file without one)
TABLES = ("meta", "cameras", "identities", "tracklets", "thumbnails", "merges", "embeddings", "ticks", "live")
DB_NAME = "adfl.db"


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: str | Path = "", target: int = SCHEMA_VERSION) -> int:
    """Bring the database to ``target`` one migration (one transaction) at a time; returns the
    version it had. A database newer than this toolkit is refused in one line."""
    found = version(conn)
    if found > SCHEMA_VERSION:
        raise OutputError(
            f"{path or 'the store'}: schema version {found} is newer than this adfl-deploy knows ({SCHEMA_VERSION}); "
            "upgrade adfl-deploy to read it"
        )
    for step in range(found, target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def open_writer(path: str | Path) -> sqlite3.Connection:
    """The writer's connection: WAL, ``synchronous=NORMAL``, schema migrated to the current
    version. Autocommit mode: the caller opens one transaction per tick."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    migrate(conn, path)
    return conn


def open_reader(path: str | Path) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``): search and the web app can never change a run's
    store, and may read it while ``adfl track`` is still writing it. A missing file, a file
    that is not a store, or an old or too new schema is one line."""
    path = Path(path)
    if not path.is_file():
        raise OutputError(f"{path}: no identity store there; pass the adfl.db of an adfl track run (--db RUN/adfl.db)")
    conn = None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=5000")
        found = version(conn)
        conn.execute("SELECT key FROM meta LIMIT 1").fetchall()
        missing = sorted(set(TABLES) - {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")})
    except sqlite3.DatabaseError as exc:
        if conn is not None:
            conn.close()
        raise OutputError(f"{path}: not an identity store ({exc}); pass the adfl.db of an adfl track run") from None
    if missing and found == SCHEMA_VERSION:
        conn.close()
        raise OutputError(f"{path}: not an identity store (no table {', '.join(missing)}); pass the adfl.db of an adfl track run")
    if found != SCHEMA_VERSION:
        conn.close()
        newer = found > SCHEMA_VERSION
        raise OutputError(
            f"{path}: schema version {found}, this adfl-deploy reads {SCHEMA_VERSION}; "
            + ("upgrade adfl-deploy" if newer else "open it once with adfl_deploy.store.open_writer to migrate it")
        )
    return conn


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


__all__ = ["DB_NAME", "MIGRATIONS", "SCHEMA_VERSION", "TABLES", "migrate", "open_reader", "open_writer", "read_meta", "version"]
