"""Cross-camera association: tracklets get global identities by matching their embeddings
against a gallery of known people.

Per tick, the tracklets that still lack a global id are matched to global identities with the
Hungarian algorithm on cosine distance (an identity's distance is its closest gallery
embedding), under the constraints users expect:

- one global id is never in two places at once: not two live tracks of the same camera, and not
  a track in another camera that is still being seen;
- optional camera-transition windows (a small topology: camera A -> B takes between t_min and
  t_max seconds);
- a match needs a distance below ``match_threshold``; otherwise a new identity starts. Left
  empty, the pipeline calibrates it for its embedding (``adfl_deploy.association.calibration``).

Late evidence may show that two identities are one person: they are merged into the older id
and the merge is an event, so earlier records are never rewritten silently.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

INFEASIBLE = 1e6
#: thresholds used when none is given or calibrated (tuned for the shipped model on Con-ReID)
UNCALIBRATED_MATCH = 0.35
MERGE_FRACTION = 0.6


@dataclass(frozen=True)
class AssociationConfig:
    #: cosine distance below which a tracklet joins an identity; null = calibrated per embedding
    match_threshold: float | None = None
    #: stricter distance for merging two identities; null = MERGE_FRACTION x match_threshold
    merge_threshold: float | None = None
    gallery_size: int = 10
    #: "cam1->cam2" -> (min_seconds, max_seconds) to walk from cam1 to cam2; absent pairs are free
    transitions: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Tracklet:
    camera: str
    track_id: int
    embedding: np.ndarray  # unit vector
    time: float  # seconds


@dataclass
class Identity:
    global_id: int
    gallery: list = field(default_factory=list)
    #: camera -> (live track id or None, last time seen)
    seen: dict = field(default_factory=dict)

    def distance(self, embedding: np.ndarray) -> float:
        return float(1.0 - max(float(g @ embedding) for g in self.gallery))

    def last_seen(self) -> tuple[str, float] | None:
        return max(((cam, t) for cam, (_, t) in self.seen.items()), key=lambda ct: ct[1], default=None)


class Associator:
    """``associate(tracklets) -> {(camera, track_id): global_id}`` plus an event list."""

    def __init__(self, config: AssociationConfig = AssociationConfig()) -> None:
        self.config = config
        self.match_threshold = UNCALIBRATED_MATCH if config.match_threshold is None else config.match_threshold
        self.merge_threshold = MERGE_FRACTION * self.match_threshold if config.merge_threshold is None else config.merge_threshold
        self.identities: dict[int, Identity] = {}
        self.assignment: dict[tuple[str, int], int] = {}
        self.events: list[dict] = []
        self._ids = itertools.count(1)

    def _feasible(self, identity: Identity, t: Tracklet) -> bool:
        live_here = identity.seen.get(t.camera, (None, 0.0))[0]
        if live_here is not None and live_here != t.track_id:
            return False  # the same person cannot be two tracks in one camera
        for cam, (track, when) in identity.seen.items():
            if cam != t.camera and track is not None and t.time - when < 1.0:
                return False  # still being seen elsewhere right now
        last = identity.last_seen()
        window = self.config.transitions.get(f"{last[0]}->{t.camera}") if last and last[0] != t.camera else None
        if window:
            lo, hi = window
            if not lo <= t.time - last[1] <= hi:
                return False
        return True

    def _compatible(self, a: Identity, b: Identity) -> bool:
        """Could a and b be one person? Not if both are live in one camera, live in two cameras
        at once, or their sightings break a camera-transition window."""
        for cam_a, (track_a, time_a) in a.seen.items():
            for cam_b, (track_b, time_b) in b.seen.items():
                if track_a is not None and track_b is not None:
                    return False
                if cam_a == cam_b:
                    continue
                first, second, gap = ((cam_a, cam_b, time_b - time_a) if time_b >= time_a else (cam_b, cam_a, time_a - time_b))
                window = self.config.transitions.get(f"{first}->{second}")
                if window and not window[0] <= gap <= window[1]:
                    return False
        return True

    def _add(self, identity: Identity, t: Tracklet) -> None:
        identity.gallery = (identity.gallery + [t.embedding])[-self.config.gallery_size :]
        identity.seen[t.camera] = (t.track_id, t.time)

    def end_track(self, camera: str, track_id: int, time: float) -> None:
        """The tracker dropped this track: its identity is no longer live in that camera."""
        gid = self.assignment.get((camera, track_id))
        if gid is not None and gid in self.identities:
            self.identities[gid].seen[camera] = (None, time)

    def associate(self, tracklets: list[Tracklet]) -> dict[tuple[str, int], int]:
        known = [t for t in tracklets if (t.camera, t.track_id) in self.assignment]
        for t in known:
            self._add(self.identities[self.assignment[(t.camera, t.track_id)]], t)
        new = [t for t in tracklets if (t.camera, t.track_id) not in self.assignment]
        ids = list(self.identities)
        if new and ids:
            cost = np.full((len(new), len(ids)), INFEASIBLE)
            for i, t in enumerate(new):
                for j, gid in enumerate(ids):
                    if self._feasible(self.identities[gid], t):
                        cost[i, j] = self.identities[gid].distance(t.embedding)
            rows, cols = linear_sum_assignment(cost)
            matched = {r: ids[c] for r, c in zip(rows, cols) if cost[r, c] < self.match_threshold}
        else:
            matched = {}
        for i, t in enumerate(new):
            gid = matched.get(i)
            if gid is None:
                gid = next(self._ids)
                self.identities[gid] = Identity(gid)
            self._add(self.identities[gid], t)
            self.assignment[(t.camera, t.track_id)] = gid
            self.events.append({"event": "global_id_assigned", "camera": t.camera, "track_id": t.track_id, "global_id": gid, "time": t.time, "new": i not in matched})
        self._merge(max((t.time for t in tracklets), default=0.0))
        return {(t.camera, t.track_id): self.assignment[(t.camera, t.track_id)] for t in tracklets}

    def _merge(self, time: float) -> None:
        """Merge identity pairs whose galleries agree (closer than ``merge_threshold``, stricter
        than matching) and whose sightings are compatible."""
        for a, b in itertools.combinations(sorted(self.identities), 2):
            if a not in self.identities or b not in self.identities:
                continue
            ia, ib = self.identities[a], self.identities[b]
            if not self._compatible(ia, ib):
                continue
            distance = min(ia.distance(e) for e in ib.gallery)
            if distance < self.merge_threshold:
                ia.gallery = (ia.gallery + ib.gallery)[-self.config.gallery_size :]
                for cam, seen in ib.seen.items():
                    if cam not in ia.seen or seen[1] > ia.seen[cam][1]:
                        ia.seen[cam] = seen
                for key, gid in self.assignment.items():
                    if gid == b:
                        self.assignment[key] = a
                del self.identities[b]
                self.events.append({"event": "global_id_merged", "kept": a, "merged": b, "distance": distance, "time": time})
