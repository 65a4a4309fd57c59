"""Search the identity store: which global identities look like this crop, and where and when
each was seen.

The vectors are the store's float32 BLOBs, held in memory as one (N, D) matrix and searched
exactly with one matrix-vector product (NumPy/BLAS): an identity's score is the highest cosine
similarity between the query and any of its embedded crops. ``VectorIndex.refresh`` reads only
the rows added since the last call, so a web app over a live run stays current. (sqlite-vec
reads the same BLOB layout, but Python's ``sqlite3`` here is built without extension loading,
and at 100,000 vectors an exact BLAS search already answers in tens of milliseconds; see the
README's store section.)
"""

from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from adfl_deploy.errors import ConfigError, OutputError
from adfl_deploy.store.model import ModelFingerprint, fingerprint
from adfl_deploy.store.schema import open_reader, read_meta


@dataclass
class Sighting:
    """One tracklet of an identity: a camera, from when to when."""

    camera: str
    track_id: int
    start_time: float
    end_time: float
    start_frame: int
    end_frame: int


@dataclass
class IdentityInfo:
    global_id: int
    cameras: list[str]
    first_seen: float
    last_seen: float
    tracklets: int
    thumbnails: list[int]  # thumbnail row ids, best first
    sightings: list[Sighting] = field(default_factory=list)


@dataclass
class Hit:
    rank: int
    global_id: int
    score: float  # cosine similarity of the best-matching stored crop
    identity: IdentityInfo


class VectorIndex:
    """Every stored embedding in memory, with the tracklet it belongs to.

    The rows live in a buffer that grows by doubling, so a live run's new rows are appended in
    place (amortised O(new rows)) instead of copying the whole matrix on every refresh; they are
    read from SQLite in chunks, never all at once."""

    CHUNK = 8192

    def __init__(self, conn: sqlite3.Connection, dim: int = 0) -> None:
        self.conn = conn
        self.dim = dim
        self._vectors = np.zeros((0, dim), np.float32)
        self._tracklets = np.zeros(0, np.int64)
        self.count = 0
        self.last_id = 0
        self._ids: np.ndarray | None = None
        self._ids_key: tuple[int, int] = (-1, -1)

    @property
    def vectors(self) -> np.ndarray:
        """(N, D) float32, one row per stored embedding in id order (a view: do not keep it
        across a refresh)."""
        return self._vectors[: self.count]

    @property
    def tracklets(self) -> np.ndarray:
        return self._tracklets[: self.count]

    def _reserve(self, needed: int) -> None:
        if needed <= len(self._vectors):
            return
        capacity = max(needed, 2 * len(self._vectors), 1024)
        vectors = np.empty((capacity, self.dim), np.float32)
        vectors[: self.count] = self._vectors[: self.count]
        tracklets = np.empty(capacity, np.int64)
        tracklets[: self.count] = self._tracklets[: self.count]
        self._vectors, self._tracklets = vectors, tracklets

    def refresh(self) -> int:
        """Read the embeddings added since the last call; returns how many."""
        cursor = self.conn.execute("SELECT id, tracklet_id, vector FROM embeddings WHERE id > ? ORDER BY id", (self.last_id,))
        added = 0
        while rows := cursor.fetchmany(self.CHUNK):
            sizes = {len(r[2]) for r in rows}
            dim = len(rows[0][2]) // 4
            if len(sizes) != 1 or dim == 0 or dim * 4 != len(rows[0][2]) or (self.dim and dim != self.dim):
                raise ConfigError(
                    f"the store holds embeddings of {sorted(s // 4 for s in sizes)} dimensions, its model {self.dim}; "
                    "the store is damaged: re-run adfl track"
                )
            if not self.dim:
                self.dim = dim
                self._vectors = self._vectors.reshape(0, dim)
            self._reserve(self.count + len(rows))
            end = self.count + len(rows)
            self._vectors[self.count : end] = np.frombuffer(b"".join(r[2] for r in rows), "<f4").reshape(len(rows), dim)
            self._tracklets[self.count : end] = [r[1] for r in rows]
            self.count, self.last_id = end, rows[-1][0]
            added += len(rows)
        return added

    def identity_of_rows(self) -> np.ndarray:
        """Each stored row's global id now (merges applied), -1 where its track has none yet.
        Re-read only when another connection has committed since (``PRAGMA data_version``) or
        rows were added: a finished run's mapping is read once."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._ids is not None and self._ids_key == (version, len(self.tracklets)):
            return self._ids
        self._ids = self._read_identity_of_rows()
        self._ids_key = (version, len(self.tracklets))
        return self._ids

    def _read_identity_of_rows(self) -> np.ndarray:
        pairs = np.array(self.conn.execute("SELECT id, COALESCE(global_id, -1) FROM tracklets").fetchall(), np.int64).reshape(
            -1, 2
        )
        lookup = np.full(int(pairs[:, 0].max(initial=0)) + 1, -1, np.int64)
        lookup[pairs[:, 0]] = pairs[:, 1]
        known = self.tracklets < len(lookup)
        out = np.full(len(self.tracklets), -1, np.int64)
        out[known] = lookup[self.tracklets[known]]
        return out

    def search(self, query: np.ndarray, top: int = 10, exclude: int | None = None) -> list[tuple[int, float]]:
        """The ``top`` identities by best cosine similarity to ``query`` (a unit vector):
        ``[(global_id, score), ...]``, best first (ties: lower id first)."""
        query = np.asarray(query, np.float32).ravel()
        if len(self.vectors) == 0:
            return []
        if query.shape[0] != self.dim:
            raise ConfigError(f"query has {query.shape[0]} dimensions, the store {self.dim}; use the run's model")
        scores = self.vectors @ query
        ids = self.identity_of_rows()
        keep = ids >= 0
        if exclude is not None:
            keep &= ids != exclude
        if not keep.any():
            return []
        kept = ids[keep]
        best = np.full(int(kept.max()) + 1, -np.inf, np.float32)
        np.maximum.at(best, kept, scores[keep])
        present = np.flatnonzero(np.isfinite(best))
        order = present[np.lexsort((present, -best[present]))][:top]
        return [(int(g), float(best[g])) for g in order]


#: SQLite's INTEGER range: an id outside it names nothing (and would not even bind)
_MAX_ID = 2**63 - 1


def _reads_store(method):
    """SQLite errors met while reading (a page damaged after the header, a table dropped, a
    file truncated under a running reader) become one line that says what to do."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise OutputError(
                f"{self.path}: cannot read the identity store ({exc}); it is damaged or was cut short: "
                f"re-run adfl track, or salvage it with: sqlite3 {self.path} .recover"
            ) from None

    return wrapper


class Store:
    """A run's ``adfl.db`` opened read-only: identities, thumbnails, search."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = open_reader(self.path)
        try:
            self.meta = self._read_meta()
            try:
                self.model = ModelFingerprint.from_meta(self.meta)
            except ConfigError as exc:
                raise ConfigError(f"{self.path}: {exc}") from None
        except BaseException:
            self.conn.close()
            raise
        self.index = VectorIndex(self.conn, self.model.dim)
        self._embedder = None

    @_reads_store
    def _read_meta(self) -> dict[str, str]:
        return read_meta(self.conn)

    @_reads_store
    def refresh(self) -> int:
        """Read the embeddings added since the last call (a live run's new rows)."""
        return self.index.refresh()

    def close(self) -> None:
        self.conn.close()

    # -- the model ----------------------------------------------------------------------------
    def check_model(self, model: str | None = None) -> ModelFingerprint:
        """The fingerprint of ``model`` (default: the one the run recorded) if it is the run's
        model; else one line naming both."""
        given = model if model is not None else (self.model.path or self.model.model)
        try:
            mine = fingerprint(given)
        except ConfigError as exc:
            raise ConfigError(
                f"{self.path}: the run's model {self.model.describe()} cannot be loaded here ({exc}); pass it with --model"
            ) from None
        if not mine.same_model(self.model):
            raise ConfigError(
                f"{self.path} was made with {self.model.describe()}, not {mine.describe()}; search it with the run's model "
                "(--model) or search a store made with this one"
            )
        return mine

    def embedder(self, model: str | None = None):
        if self._embedder is None:
            from adfl_deploy.runtime import create_embedder

            checked = self.check_model(model)
            self._embedder = create_embedder(checked.path or checked.model)
        return self._embedder

    def embed(self, image: np.ndarray, model: str | None = None) -> np.ndarray:
        return self.embedder(model).embed([image])[0]

    # -- reading ------------------------------------------------------------------------------
    @_reads_store
    def search(self, query: np.ndarray, top: int = 10, exclude: int | None = None) -> list[Hit]:
        self.index.refresh()
        ranked = self.index.search(query, top, exclude)
        infos = {i.global_id: i for i in self.identities([g for g, _ in ranked])}
        return [Hit(rank + 1, gid, score, infos[gid]) for rank, (gid, score) in enumerate(ranked) if gid in infos]

    @_reads_store
    def identity_vector(self, global_id: int) -> np.ndarray:
        """The unit mean of an identity's stored embeddings (a query for look-alikes)."""
        self.index.refresh()
        rows = self.index.identity_of_rows() == global_id
        if not rows.any():
            raise ConfigError(f"{self.path}: no identity {global_id} with embeddings; adfl search --db ... lists the identities")
        mean = self.index.vectors[rows].astype(np.float64).mean(axis=0)
        return (mean / max(np.linalg.norm(mean), 1e-12)).astype(np.float32)

    @_reads_store
    def identities(self, only: list[int] | None = None, sightings: bool = False) -> list[IdentityInfo]:
        """Identities that have tracklets (merged ones live on in the kept id), by first seen."""
        where, args = "WHERE t.global_id IS NOT NULL", []
        if only is not None:
            only = [int(g) for g in only if -_MAX_ID <= int(g) <= _MAX_ID]
            if not only:
                return []
            where += f" AND t.global_id IN ({','.join('?' * len(only))})"
            args = list(only)
        rows = self.conn.execute(
            "SELECT t.global_id, group_concat(DISTINCT t.camera), MIN(t.start_time), MAX(t.end_time), COUNT(*) "
            f"FROM tracklets t {where} GROUP BY t.global_id ORDER BY MIN(t.start_time), t.global_id",
            args,
        ).fetchall()
        out = []
        for gid, cams, first, last, count in rows:
            thumbs = [
                r[0]
                for r in self.conn.execute(
                    "SELECT h.id FROM thumbnails h JOIN tracklets t ON t.id = h.tracklet_id WHERE t.global_id = ? "
                    "ORDER BY h.quality DESC, h.id LIMIT 6",
                    (gid,),
                )
            ]
            info = IdentityInfo(int(gid), sorted(cams.split(",")), float(first or 0), float(last or 0), int(count), thumbs)
            if sightings:
                info.sightings = [
                    Sighting(*r)
                    for r in self.conn.execute(
                        "SELECT camera, track_id, start_time, end_time, start_frame, end_frame FROM tracklets "
                        "WHERE global_id = ? ORDER BY start_time, camera",
                        (gid,),
                    )
                ]
            out.append(info)
        return out

    @_reads_store
    def thumbnail(self, thumb_id: int) -> bytes | None:
        if not 0 <= int(thumb_id) <= _MAX_ID:
            return None
        row = self.conn.execute("SELECT jpeg FROM thumbnails WHERE id = ?", (thumb_id,)).fetchone()
        return None if row is None else bytes(row[0])

    @_reads_store
    def live_frame(self) -> tuple[int | None, bytes | None]:
        row = self.conn.execute("SELECT tick, jpeg FROM live WHERE id = 1").fetchone()
        return (None, None) if row is None else (row[0], bytes(row[1]))

    @_reads_store
    def finished(self) -> bool:
        """Whether the run closed its store (cheap: one meta row)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'finished'").fetchone()
        return row is not None and row[0] == "1"

    @_reads_store
    def run_info(self) -> dict:
        meta = read_meta(self.conn)
        count = self.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        cams = self.conn.execute("SELECT name, frames, first_time, last_time FROM cameras ORDER BY name").fetchall()
        return {
            "run_id": meta.get("run_id"),
            "started": meta.get("started"),
            "finished": meta.get("finished") == "1",
            "model": self.model.describe(),
            "cameras": [{"name": n, "frames": f, "first_time": a, "last_time": b} for n, f, a, b in cams],
            "embeddings": count,
            "identities": self.conn.execute(
                "SELECT COUNT(DISTINCT global_id) FROM tracklets WHERE global_id IS NOT NULL"
            ).fetchone()[0],
            "store_stats": json.loads(meta["store_stats"]) if "store_stats" in meta else None,
        }

    @_reads_store
    def latency(self, last: int = 300) -> dict:
        """Per-stage p50/p99 ms over the last ``last`` ticks (the store's own cost included)."""
        stages = ("detect", "track", "embed", "associate", "sink", "store")
        rows = np.array(
            self.conn.execute(f"SELECT {', '.join(stages)} FROM ticks ORDER BY tick DESC LIMIT ?", (last,)).fetchall(),
            dtype=np.float64,
        ).reshape(-1, len(stages))
        out = {"ticks": len(rows), "stages": {}}
        for i, stage in enumerate(stages):
            col = rows[:, i][np.isfinite(rows[:, i])] if len(rows) else rows[:, 0]
            out["stages"][stage] = {
                "p50": float(np.median(col)) if len(col) else None,
                "p99": float(np.percentile(col, 99)) if len(col) else None,
            }
        return out


def hit_dict(hit: Hit) -> dict:
    data = asdict(hit)
    data["identity"].pop("sightings", None)
    return data


__all__ = ["Hit", "IdentityInfo", "Sighting", "Store", "VectorIndex", "hit_dict"]
