"""Cross-camera association: tracklets get global identities by matching their embeddings
against a gallery of known people.

Per tick, the tracklets that still lack a global id are matched to global identities with the
Hungarian algorithm on cosine distance (an identity's distance is its closest gallery
embedding), under the constraints users expect:

- one global id is never in two places at once: not two live tracks of the same camera, and not
  a track in another camera that is still being seen;
- optional camera-transition windows (a small topology: camera A -> B takes between t_min and
  t_max seconds), also learned online from confident links;
- handover (off by default since 2026-12-03, ``transition_relax``): someone who has just left a
  camera (live nowhere, last seen at most ``handover_seconds`` ago) or whose walk fits a window
  may match on weaker appearance (``transition_relax`` x the threshold), but only when that
  pairing is the one plausible pairing for both the tracklet and the identity - look-alikes who
  walked off together are left to appearance alone, since the relaxed threshold cannot tell
  them apart;
- a match needs a distance below ``match_threshold``; otherwise a new identity starts. Left
  empty, the pipeline calibrates it for its embedding (``adfl_deploy.association.calibration``);
- a new track that is near an identity but not under the threshold is not decided yet: it waits
  up to ``unsure_wait_seconds`` for more crops (``associate`` returns no decision for it, and is
  asked again with its next descriptor); a track that ends is decided at once (``final``).
  Most wrong links were decided on a relaxed threshold, most missed ones sat just above the
  strict one: a few more crops sort both out.
- a track the tracker lost before its id was decided, whose person it then found again as a
  newer track of the same camera (started after the lost one was last reported, so their rows
  never share a frame), may join the newer track's identity when it ends, instead of leaving a
  short fragment under an id of its own (``Tracklet.since`` / ``until``).

Late evidence may show that two identities are one person: they are merged into the older id
and the merge is a decision of its own, so earlier records are never rewritten silently.
``associate`` returns its decisions (typed events); nobody patches them afterwards.

Cost stays bounded on cameras that run for days: galleries live in one array (``GalleryBank``)
so a tick costs one matrix product of its embeddings with every gallery, not a Python loop per
identity; that product serves matching and the merge check (a pair of identities can only come
closer through new embeddings: a track's newer descriptor replacing its older one takes one out,
which can only move them apart); identities unseen for ``forget_after_seconds`` retire.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from adfl_deploy.association.camera_centring import CameraCentring
from adfl_deploy.association.transitions import TransitionModel
from adfl_deploy.errors import ConfigError
from adfl_deploy.events import Box, Decision, GlobalIdAssigned, GlobalIdMerged

INFEASIBLE = 1e6
#: thresholds used when none is given or calibrated (tuned for the shipped model on Con-ReID)
UNCALIBRATED_MATCH = 0.35
#: a merge compares two identities' closest embeddings, the most optimistic of their distances,
#: so it needs a stricter threshold than a match (chosen on the tuning scenes, seeds 5-8)
MERGE_FRACTION = 0.5


#: field -> the behaviour a config pickled before the field existed had
PICKLED_BEFORE = {"gallery_entries": "update", "unsure_wait_seconds": 0.0}


@dataclass(frozen=True)
class AssociationConfig:
    #: cosine distance below which a tracklet joins an identity; null = calibrated per embedding
    #: at ``false_match_rate`` (``adfl_deploy.association.calibration``)
    match_threshold: float | None = None
    #: the calibrated threshold's operating point: the share of different-person pairs of
    #: crops (held-out people, different cameras) that fall under it; null = the embedding's
    #: own (``false_match_rate`` of the embedder: 1% for the shipped models, 2% for the colour
    #: histogram; ``adfl_deploy.association.calibration``)
    false_match_rate: float | None = None
    #: stricter distance for merging two identities; null = MERGE_FRACTION x match_threshold
    merge_threshold: float | None = None
    gallery_size: int = 10
    #: what an identity's gallery holds: "tracklet" one entry per track, its latest descriptor
    #: (the last ``gallery_size`` tracks: the person as each camera saw them); "update" every
    #: descriptor its tracks sent (until 2026-12-02: a long track fills the gallery with
    #: snapshots of its own running mean and pushes the other cameras' views out)
    gallery_entries: Literal["update", "tracklet"] = "tracklet"
    #: "cam1->cam2" -> (min_seconds, max_seconds) to walk from cam1 to cam2; absent pairs are free
    transitions: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: an identity unseen for this long retires (a later sighting starts a new id); 0 = never
    forget_after_seconds: float = 1800.0
    #: learn camera-to-camera walking times from confident links (``transitions`` overrides)
    learn_transitions: bool = True
    #: a candidate whose transit fits a learned or known window (or, before one is known, who
    #: has just left a camera: ``handover_seconds``) may match up to this factor x
    #: match_threshold, when it is the only plausible pairing for both sides (after
    #: ``unsure_wait_seconds``); 1 = appearance alone decides (the default since 2026-12-03:
    #: waiting for more crops links more of the same people and far fewer wrong ones; 1.3 before)
    transition_relax: float = 1.0
    #: before a camera pair has a learned or known window, an identity that left a camera at
    #: most this many seconds ago (and is live nowhere) counts as walking over: it gets the
    #: ``transition_relax`` threshold too; 0 = only learned or known windows relax
    handover_seconds: float = 8.0
    #: seconds added on both sides of a learned window
    transition_margin_seconds: float = 2.0
    #: confident links per camera pair before its window is used
    transition_min_samples: int = 3
    #: embeddings a new track gathers before it is linked to a global identity (its MOT rows
    #: wait and are written with the id decided); 1 = link on the first embedding
    min_evidence: int = 2
    #: which embeddings count toward ``min_evidence``: "whole" only crops that show the person
    #: whole (not cut by the picture's border, not overlapping another box: a person walking in
    #: is linked once fully in view), "any" every crop
    evidence: Literal["whole", "any"] = "whole"
    #: a new track is linked after this long at the latest, whatever its evidence
    max_delay_seconds: float = 2.0
    #: a new track that is not under the match threshold of any identity but near one (a
    #: feasible identity within ``unsure_margin`` x the threshold) waits up to this long, from
    #: when it was first offered, for more crops: they often bring the right identity under the
    #: threshold or move a look-alike away. Only then may it link at a relaxed threshold
    #: (``transition_relax``) or start a new identity; links under the match threshold never
    #: wait, and a track that ends first is decided with what it has. 0 = decide at once
    #: (until 2026-12-03)
    unsure_wait_seconds: float = 4.0
    #: "near" for ``unsure_wait_seconds``, as a factor of the match threshold (at least
    #: ``transition_relax``: a track that may link on the relaxed threshold waits first)
    unsure_margin: float = 1.3
    #: compare embeddings with each camera's running mean taken out (its colour cast, blur and
    #: background, shared by everyone it sees; ``adfl_deploy.association.camera_centring``);
    #: the calibrated threshold is then calibrated on centred embeddings too
    camera_centring: bool = True
    #: pseudo-samples of zero in each camera's running mean, so its first few people are not
    #: centred on themselves
    camera_centring_prior: float = 20.0
    #: embeddings per camera after which its mean forgets the oldest (an exponential average
    #: over about this many), so it follows the light of a camera that runs for days
    camera_centring_window: int = 2000

    def __setstate__(self, state: dict) -> None:
        """A config pickled before a field existed (an ``adfl associate`` snapshot) keeps that
        field's behaviour of then, not today's default (``PICKLED_BEFORE``)."""
        self.__dict__.update({**PICKLED_BEFORE, **state})

    def __post_init__(self) -> None:
        for name in ("match_threshold", "merge_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value <= 2.0:
                raise ConfigError(f"association.{name}: {value} is not a cosine distance in (0, 2]")
        if self.gallery_size < 1:
            raise ConfigError(f"association.gallery_size: {self.gallery_size}; an identity needs at least 1 embedding")
        if not 1.0 <= self.transition_relax <= 2.0 or self.transition_min_samples < 1 or self.transition_margin_seconds < 0:
            raise ConfigError(
                "association: transition_relax must be in [1, 2], transition_min_samples >= 1, transition_margin_seconds >= 0"
            )
        if self.min_evidence < 1 or not 0 <= self.max_delay_seconds <= 60:
            raise ConfigError("association: min_evidence must be >= 1 and max_delay_seconds in [0, 60]")
        if not 0 <= self.unsure_wait_seconds <= 60:
            raise ConfigError(f"association.unsure_wait_seconds: {self.unsure_wait_seconds}; use seconds in [0, 60], 0 = no wait")
        if not 1.0 <= self.unsure_margin <= 2.0:
            raise ConfigError(f"association.unsure_margin: {self.unsure_margin}; use a factor in [1, 2], e.g. 1.3")
        if self.false_match_rate is not None and not 0.0 < self.false_match_rate < 1.0:
            raise ConfigError(f"association.false_match_rate: {self.false_match_rate}; use a share in (0, 1), e.g. 0.01")
        if not 1 <= self.camera_centring_window <= 10**7:
            raise ConfigError(
                f"association.camera_centring_window: {self.camera_centring_window}; use embeddings >= 1, e.g. 2000"
            )
        if not 0 <= self.camera_centring_prior < 1e6:
            raise ConfigError(
                f"association.camera_centring_prior: {self.camera_centring_prior}; use pseudo-samples >= 0, e.g. 20"
            )
        if self.gallery_entries not in ("update", "tracklet"):
            raise ConfigError(f"association.gallery_entries: {self.gallery_entries!r}; use 'update' or 'tracklet'")
        if self.evidence not in ("whole", "any"):
            raise ConfigError(f"association.evidence: {self.evidence!r}; use 'whole' or 'any'")
        if not (self.forget_after_seconds >= 0 and math.isfinite(self.forget_after_seconds)):
            raise ConfigError(f"association.forget_after_seconds: {self.forget_after_seconds}; use seconds >= 0 (0 = never)")
        for pair, (lo, hi) in self.transitions.items():
            if "->" not in pair or not 0 <= lo <= hi:
                raise ConfigError(f"association.transitions.{pair}: expected 'camA->camB': [min_s, max_s] with 0 <= min <= max")


@dataclass(frozen=True)
class Tracklet:
    camera: str
    track_id: int
    embedding: np.ndarray  # unit vector
    time: float  # seconds
    frame: int | None = None  # where the evidence comes from, for the decision's record
    box: Box | None = None
    #: when its track was first reported (None: unknown)
    since: float | None = None
    #: a track that is ending: when it was last reported (None: unknown, or not ending)
    until: float | None = None


@dataclass
class Identity:
    global_id: int
    #: camera -> (live track id or None, last time seen)
    seen: dict = field(default_factory=dict)

    def last_seen(self) -> tuple[str, float] | None:
        return max(((cam, t) for cam, (_, t) in self.seen.items()), key=lambda ct: ct[1], default=None)

    @property
    def last_time(self) -> float:
        last = self.last_seen()
        return last[1] if last else -math.inf


class GalleryBank:
    """Every identity's last ``size`` embeddings in one (rows, size, dim) array, so the
    similarity of a tick's embeddings to all identities is one matrix product over the whole
    array (no per-identity loop, no copy). Rows of retired or merged identities are reused.
    An embedding may carry a key (its track): a newer embedding with the same key replaces it."""

    #: row -> the key of each embedding it holds (None: unkeyed); absent in banks pickled before keys
    keys: dict | None = None

    def __init__(self, size: int) -> None:
        self.size = size
        self.emb: np.ndarray | None = None  # (capacity, size, dim) float32
        self.count = np.zeros(0, np.int64)  # embeddings held per row
        self.owner = np.zeros(0, np.int64)  # global id per row, 0 = free
        self.row: dict[int, int] = {}  # global id -> row
        self._free: list[int] = []

    def _grow(self, dim: int) -> None:
        capacity = 0 if self.emb is None else len(self.emb)
        new = max(16, 2 * capacity)
        emb = np.zeros((new, self.size, dim), np.float32)
        if self.emb is not None:
            emb[:capacity] = self.emb
        self.emb = emb
        self.count = np.concatenate([self.count, np.zeros(new - capacity, np.int64)])
        self.owner = np.concatenate([self.owner, np.zeros(new - capacity, np.int64)])
        self._free.extend(range(new - 1, capacity - 1, -1))

    def add(self, gid: int, embeddings: np.ndarray, keys: list | None = None) -> None:
        """Append ``embeddings`` to ``gid``'s gallery (the oldest beyond ``size`` drop out);
        ``keys``: one per embedding, an earlier embedding under the same key is replaced."""
        embeddings = np.atleast_2d(np.asarray(embeddings, np.float32))
        if gid not in self.row:
            if not self._free:
                self._grow(embeddings.shape[1])
            self.row[gid] = self._free.pop()
            self.owner[self.row[gid]] = gid
        if self.keys is None:
            self.keys = {}
        r = self.row[gid]
        new_keys = list(keys) if keys is not None else [None] * len(embeddings)
        if len(new_keys) != len(embeddings):
            raise ValueError(f"GalleryBank.add: {len(new_keys)} keys for {len(embeddings)} embeddings")
        old_keys = self._row_keys(r)
        replaced = {k for k in new_keys if k is not None}
        keep = [i for i, k in enumerate(old_keys) if k is None or k not in replaced]
        held = np.concatenate([self.emb[r, : self.count[r]][keep], embeddings])[-self.size :]
        self.emb[r, : len(held)] = held
        self.count[r] = len(held)
        self.keys[r] = ([old_keys[i] for i in keep] + new_keys)[-self.size :]

    def gallery(self, gid: int) -> np.ndarray:
        r = self.row[gid]
        return self.emb[r, : self.count[r]]

    def gallery_keys(self, gid: int) -> list:
        return list(self._row_keys(self.row[gid]))

    def _row_keys(self, r: int) -> list:
        """The keys of row ``r``'s embeddings (all None for a row filled before keys existed)."""
        return (self.keys or {}).get(r) or [None] * int(self.count[r])

    def remove(self, gid: int) -> None:
        r = self.row.pop(gid)
        if self.keys is not None:
            self.keys.pop(r, None)
        self.count[r] = 0
        self.owner[r] = 0
        self._free.append(r)

    def similarity(self, queries: np.ndarray) -> np.ndarray:
        """(len(queries), capacity): each query's cosine similarity to each row's closest
        gallery embedding; -inf for free rows (``owner`` names each row's identity)."""
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        if self.emb is None:
            return np.zeros((len(queries), 0), np.float32)
        capacity, size, dim = self.emb.shape
        used = np.flatnonzero(self.count)
        high = int(used[-1]) + 1 if len(used) else 0  # rows are handed out lowest first
        out = np.full((len(queries), capacity), -np.inf, np.float32)
        if high:
            sims = (self.emb[:high].reshape(high * size, dim) @ queries.T).reshape(high, size, len(queries))
            valid = np.arange(size)[None, :] < self.count[:high, None]
            out[:, :high] = np.where(valid[:, :, None], sims, -np.inf).max(axis=1).T
        return out

    def distances(self, queries: np.ndarray) -> tuple[list[int], np.ndarray]:
        """(global ids, (len(queries), len(ids)) cosine distance to each identity's closest
        gallery embedding)."""
        ids = list(self.row)
        rows = np.fromiter((self.row[g] for g in ids), np.int64, len(ids))
        return ids, 1.0 - self.similarity(queries)[:, rows].astype(np.float64)


class Associator:
    """``associate(tracklets) -> decisions``; ``assignment`` maps (camera, track id) to global id."""

    #: per-camera centring (``AssociationConfig.camera_centring``); None also for associators
    #: pickled before it existed (``adfl associate`` snapshots), which matched raw embeddings
    centring: CameraCentring | None = None
    #: (camera, track id) -> time it was first offered, for new tracks not linked yet
    #: (``unsure_wait_seconds``); None in associators pickled before it existed
    waiting: dict | None = None
    #: (camera, track id) -> when that track was first reported (``Tracklet.since``), for tracks
    #: with an identity; None in associators pickled before it existed
    started: dict | None = None

    def __init__(self, config: AssociationConfig = AssociationConfig()) -> None:
        self.config = config
        self.match_threshold = UNCALIBRATED_MATCH if config.match_threshold is None else config.match_threshold
        self.merge_threshold = MERGE_FRACTION * self.match_threshold if config.merge_threshold is None else config.merge_threshold
        self.identities: dict[int, Identity] = {}
        self.assignment: dict[tuple[str, int], int] = {}
        #: every global id handed out and not merged away (retired ones included)
        self.global_ids: set[int] = set()
        self.bank = GalleryBank(config.gallery_size)
        self.transit_model = TransitionModel(config.transition_margin_seconds, config.transition_min_samples)
        #: close identity pairs that could not merge yet (re-checked every tick)
        self._pending: set[tuple[int, int]] = set()
        self._ids = itertools.count(1)
        self.waiting = {}
        self.started = {}
        self.centring = (
            CameraCentring(config.camera_centring_prior, config.camera_centring_window) if config.camera_centring else None
        )

    def _window(self, first: str, second: str) -> tuple[float, float] | None:
        """Walking time from ``first`` to ``second``: the known topology, else what was learned."""
        known = self.config.transitions.get(f"{first}->{second}")
        if known is not None or not self.config.learn_transitions:
            return known
        return self.transit_model.window(first, second)

    def _transit(self, identity: Identity, t: Tracklet) -> tuple[str, float] | None:
        """(camera, seconds) since ``identity`` was last seen, when that was in another camera
        (its track there may still be held by the tracker, which waits before giving up)."""
        last = identity.last_seen()
        if last is None or last[0] == t.camera:
            return None
        return last[0], t.time - last[1]

    def _threshold(self, identity: Identity, t: Tracklet) -> float:
        """The match threshold for this pair: looser when the walk between cameras fits a
        window, or, where no window is known yet, when the identity has just left a camera."""
        if self.config.transition_relax == 1.0:
            return self.match_threshold
        relaxed = self.match_threshold * self.config.transition_relax
        transit = self._transit(identity, t)
        window = self._window(transit[0], t.camera) if transit else None
        if window is not None:
            return relaxed if window[0] <= transit[1] <= window[1] else self.match_threshold
        if self._just_left(identity, t.time):
            return relaxed
        return self.match_threshold

    def _just_left(self, identity: Identity, now: float) -> bool:
        """Live nowhere, and last seen at most ``handover_seconds`` ago."""
        if not self.config.handover_seconds or any(track is not None for track, _ in identity.seen.values()):
            return False
        return now - identity.last_time <= self.config.handover_seconds

    def _feasible(self, identity: Identity, t: Tracklet, final: bool = False) -> bool:
        live_here = identity.seen.get(t.camera, (None, 0.0))[0]
        if live_here is not None and live_here != t.track_id and not (final and self._replaced_by(t, live_here)):
            return False  # the same person cannot be two tracks in one camera
        for cam, (track, when) in identity.seen.items():
            if cam != t.camera and track is not None and t.time - when < 1.0:
                return False  # still being seen elsewhere right now
        last = identity.last_seen()
        window = self._window(last[0], t.camera) if last and last[0] != t.camera else None
        if window:
            lo, hi = window
            if not lo <= t.time - last[1] <= hi:
                return False
        return True

    def _replaced_by(self, ending: Tracklet, live: int) -> bool:
        """Did track ``live`` of ``ending``'s camera start after ``ending`` was last reported?
        Then the tracker lost ``ending`` and found its person again as ``live`` (their rows never
        share a frame), and an ending track still without an identity may join ``live``'s."""
        started = (self.started or {}).get((ending.camera, live))
        return ending.until is not None and started is not None and started > ending.until

    def _compatible(self, a: Identity, b: Identity) -> bool:
        """Could a and b be one person? Not if both are live in one camera, live in two cameras
        at once, or their sightings break a camera-transition window."""
        for cam_a, (track_a, time_a) in a.seen.items():
            for cam_b, (track_b, time_b) in b.seen.items():
                if track_a is not None and track_b is not None:
                    return False
                if cam_a == cam_b:
                    continue
                first, second, gap = (cam_a, cam_b, time_b - time_a) if time_b >= time_a else (cam_b, cam_a, time_a - time_b)
                window = self._window(first, second)
                if window and not window[0] <= gap <= window[1]:
                    return False
        return True

    def _add(self, identity: Identity, t: Tracklet) -> None:
        per_track = self.config.gallery_entries == "tracklet"
        self.bank.add(identity.global_id, t.embedding, [(t.camera, t.track_id)] if per_track else None)
        if t.since is not None:
            if self.started is None:
                self.started = {}
            self.started[(t.camera, t.track_id)] = t.since
        live_here = identity.seen.get(t.camera, (None, 0.0))[0]
        if live_here is None or live_here == t.track_id:
            identity.seen[t.camera] = (t.track_id, t.time)
        # else: an ending track joined the identity its camera's newer track holds (``_replaced_by``)

    def end_track(self, camera: str, track_id: int, time: float) -> None:
        """The tracker dropped this track: its identity is no longer live in that camera."""
        gid = self.assignment.get((camera, track_id))
        if gid is not None and gid in self.identities:
            seen = self.identities[gid].seen
            if seen.get(camera, (None, 0.0))[0] in (None, track_id):  # not a newer track's sighting
                seen[camera] = (None, time)
        if self.waiting:
            self.waiting.pop((camera, track_id), None)
        if self.started:
            self.started.pop((camera, track_id), None)

    def _match(self, new: list[Tracklet], dist: np.ndarray, final: bool = False) -> tuple[dict[int, int], set[int]]:
        """(row in ``new`` -> global id, rows that wait for more crops), by minimum-cost
        assignment over feasible candidates; ``dist``: (len(new), bank rows) distances. Only
        rows within the match threshold are checked for feasibility, so the Python work does
        not grow with the identities."""
        relaxed_limit = self.match_threshold * self.config.transition_relax
        # a young track waits while a relaxed link is possible too, so relaxation wider than the
        # margin still links after the wait instead of starting a new identity at once
        near_factor = max(self.config.unsure_margin, self.config.transition_relax)
        near_limit = self.match_threshold * near_factor if self.config.unsure_wait_seconds else 0.0
        loosest = max(relaxed_limit, near_limit)
        close = np.flatnonzero((dist < loosest).any(axis=0))
        if not len(close):
            return {}, set()
        ids = [int(self.bank.owner[c]) for c in close]
        cost = np.full((len(new), len(close)), INFEASIBLE)
        plausible = np.zeros((len(new), len(close)), bool)  # feasible and within the relaxed threshold
        near = np.zeros((len(new), len(close)), bool)  # feasible and within unsure_margin x the threshold
        for j, (col, gid) in enumerate(zip(close, ids)):
            identity = self.identities.get(gid)
            for i, t in enumerate(new):
                if identity is None or dist[i, col] >= loosest or not self._feasible(identity, t, final):
                    continue
                near[i, j] = dist[i, col] < near_limit
                if dist[i, col] >= relaxed_limit:
                    continue
                plausible[i, j] = True
                if dist[i, col] < self._threshold(identity, t):
                    cost[i, j] = dist[i, col]
        # a match that needs the relaxed threshold is taken only when it is the one plausible
        # pairing for both sides: look-alikes walking together are left to appearance alone
        relaxed = (cost < INFEASIBLE) & (cost >= self.match_threshold)
        crowded = (plausible.sum(axis=1, keepdims=True) > 1) | (plausible.sum(axis=0, keepdims=True) > 1)
        cost[relaxed & crowded] = INFEASIBLE
        young = self._may_wait(new, final)
        cost[young[:, None] & relaxed] = INFEASIBLE  # a relaxed link waits for more crops first
        rows, cols = linear_sum_assignment(cost)
        matched = {r: ids[c] for r, c in zip(rows, cols) if cost[r, c] < INFEASIBLE}
        unsure = {i for i in np.flatnonzero(young & near.any(axis=1)).tolist() if i not in matched}
        return matched, unsure

    def _may_wait(self, new: list[Tracklet], final: bool) -> np.ndarray:
        """Which of ``new`` were first offered less than ``unsure_wait_seconds`` ago (none
        when ``final``: a track that ends is decided with what it has)."""
        wait = self.config.unsure_wait_seconds
        young = np.zeros(len(new), bool)
        if final or not wait:
            return young
        if self.waiting is None:
            self.waiting = {}
        for i, t in enumerate(new):
            young[i] = t.time - self.waiting.setdefault((t.camera, t.track_id), t.time) < wait
        return young

    def associate(self, tracklets: list[Tracklet], final: bool = False) -> list[Decision]:
        """Update identities with this tick's tracklets; returns the decisions made (new
        assignments, then merges), in order. Tracks that already have an identity add their
        evidence first; then one matrix product gives every tracklet's distance to every
        identity, for matching the new ones and for finding merge candidates. A new track
        near an identity but not under the threshold may get no decision yet
        (``unsure_wait_seconds``); ``final``: decide every new track now (it is ending)."""
        now = max((t.time for t in tracklets), default=0.0)
        self._retire(now)
        if self.centring is not None:
            centred = self.centring.centre_tick([t.camera for t in tracklets], [t.embedding for t in tracklets])
            tracklets = [dataclasses.replace(t, embedding=e) for t, e in zip(tracklets, centred)]
        decisions: list[Decision] = []
        owner: dict[int, int] = {}  # tracklet index -> its identity
        for i, t in enumerate(tracklets):
            gid = self.assignment.get((t.camera, t.track_id))
            if gid in self.identities:
                self._add(self.identities[gid], t)
                owner[i] = gid
        new_rows = [i for i in range(len(tracklets)) if i not in owner]
        dist = 1.0 - self.bank.similarity(np.stack([t.embedding for t in tracklets])).astype(np.float64) if tracklets else None
        matched, unsure = self._match([tracklets[i] for i in new_rows], dist[new_rows], final) if new_rows else ({}, set())
        for k, i in enumerate(new_rows):
            t = tracklets[i]
            gid = matched.get(k)
            if gid is None and k in unsure:
                continue  # no decision yet: it waits for more crops
            if self.waiting:
                self.waiting.pop((t.camera, t.track_id), None)
            if gid is not None and self.config.learn_transitions:
                self._learn(self.identities[gid], t, dist[i])
            if gid is None:
                gid = next(self._ids)
                self.identities[gid] = Identity(gid)
                self.global_ids.add(gid)
            self._add(self.identities[gid], t)
            self.assignment[(t.camera, t.track_id)] = gid
            owner[i] = gid
            decisions.append(GlobalIdAssigned(t.camera, t.track_id, gid, t.time, k not in matched, t.frame, t.box))
        candidates = self._merge_candidates(tracklets, owner, dist, new_rows) if tracklets else set()
        decisions += self._merge(candidates | self._pending, now)
        return decisions

    #: a link teaches a transit time only when this sure (fraction of the match threshold)
    CONFIDENT = 0.8

    def _learn(self, identity: Identity, t: Tracklet, dist_row: np.ndarray) -> None:
        transit = self._transit(identity, t)
        row = self.bank.row.get(identity.global_id)
        if transit is None or row is None or dist_row[row] >= self.CONFIDENT * self.match_threshold:
            return
        self.transit_model.observe(transit[0], t.camera, transit[1])

    def _merge_candidates(self, tracklets: list[Tracklet], owner: dict[int, int], dist: np.ndarray, new_rows: list[int]) -> set:
        """Identity pairs that this tick's embeddings brought within ``merge_threshold``:
        each embedding against every gallery (``dist``, computed before the new tracks' own
        embeddings joined the bank), and every embedding against the new ones."""
        pairs = set()
        rows, cols = np.nonzero(dist < self.merge_threshold)
        for i, col in zip(rows.tolist(), cols.tolist()):
            if i not in owner:
                continue  # a track waiting for more crops belongs to no identity yet
            other = int(self.bank.owner[col])
            if other and other != owner[i]:
                pairs.add((min(owner[i], other), max(owner[i], other)))
        if new_rows:  # the new tracks' embeddings were not in the bank yet: compare them here
            every = np.stack([t.embedding for t in tracklets])
            close = np.argwhere(1.0 - every @ every[new_rows].T < self.merge_threshold)
            for i, k in close.tolist():
                if i not in owner or new_rows[k] not in owner:
                    continue
                a, b = owner[i], owner[new_rows[k]]
                if a != b:
                    pairs.add((min(a, b), max(a, b)))
        return pairs

    def gallery_distance(self, a: int, b: int) -> float:
        """1 - the largest cosine similarity between any embedding of a and any of b."""
        return float(1.0 - (self.bank.gallery(a) @ self.bank.gallery(b).T).max())

    def _merge(self, candidates: set, time: float) -> list[GlobalIdMerged]:
        """Merge candidate pairs whose galleries agree (closer than ``merge_threshold``,
        stricter than matching) and whose sightings are compatible, older id kept, in id order.
        A close pair that cannot be one person yet (both still live, say) waits in
        ``_pending`` and is checked again every tick until it merges or drifts apart. After a
        merge, pairs of the merged id continue as pairs of the kept one: later in this pass if
        they sort after the current pair, else next tick - the same outcome as checking every
        pair in id order every tick, at the cost of the pairs that are actually close."""
        merges = []
        queue = sorted(candidates)
        self._pending = set()
        while queue:
            a, b = queue.pop(0)
            if a not in self.identities or b not in self.identities:
                continue
            distance = self.gallery_distance(a, b)
            if distance >= self.merge_threshold:
                continue
            if not self._compatible(self.identities[a], self.identities[b]):
                self._pending.add((a, b))
                continue
            self._absorb(a, b)
            merges.append(GlobalIdMerged(a, b, distance, time))
            later, self._pending = self._rename(queue, b, a), self._rename(self._pending, b, a)
            queue = sorted({pair for pair in later if pair > (a, b)})
            self._pending |= {pair for pair in later if pair <= (a, b)}
        return merges

    @staticmethod
    def _rename(pairs, old: int, new: int) -> set:
        """``pairs`` with identity ``old`` renamed ``new`` (pairs that become one id dropped)."""
        out = set()
        for a, b in pairs:
            a, b = (new if a == old else a), (new if b == old else b)
            if a != b:
                out.add((min(a, b), max(a, b)))
        return out

    def _absorb(self, kept: int, merged: int) -> None:
        a, b = self.identities[kept], self.identities.pop(merged)
        self.bank.add(kept, self.bank.gallery(merged), self.bank.gallery_keys(merged))
        self.bank.remove(merged)
        for cam, seen in b.seen.items():
            if cam not in a.seen or seen[1] > a.seen[cam][1]:
                a.seen[cam] = seen
        for key, gid in self.assignment.items():
            if gid == merged:
                self.assignment[key] = kept
        self.global_ids.discard(merged)

    def _retire(self, now: float) -> None:
        """Identities unseen for ``forget_after_seconds`` (and not live anywhere) leave the
        gallery; their ended tracks leave ``assignment``."""
        horizon = self.config.forget_after_seconds
        if not horizon:
            return
        old = [
            gid
            for gid, ident in self.identities.items()
            if now - ident.last_time > horizon and all(track is None for track, _ in ident.seen.values())
        ]
        if not old:
            return
        for gid in old:
            del self.identities[gid]
            self.bank.remove(gid)
        gone = set(old)
        self.assignment = {k: g for k, g in self.assignment.items() if g not in gone}
