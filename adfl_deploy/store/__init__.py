"""The identity store: every run's ``adfl.db`` (SQLite, WAL) with cameras, tracklets, their best
crops, global identities, merges and embeddings, written by the pipeline subscriber
``StoreWriter`` (sink ``store``) and searched by image or identity (``Store``,
``adfl search``, ``adfl serve``)."""

from adfl_deploy.store.model import ModelFingerprint, fingerprint
from adfl_deploy.store.schema import DB_NAME, SCHEMA_VERSION, migrate, open_reader, open_writer
from adfl_deploy.store.search import Hit, IdentityInfo, Store, VectorIndex

__all__ = [
    "DB_NAME",
    "Hit",
    "IdentityInfo",
    "ModelFingerprint",
    "SCHEMA_VERSION",
    "Store",
    "VectorIndex",
    "fingerprint",
    "migrate",
    "open_reader",
    "open_writer",
]
