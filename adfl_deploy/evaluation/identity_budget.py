"""Where a run's MTMC IDF1 goes: to the detector, to per-camera tracking, or to cross-camera
association. The run is scored on its own boxes:

1. as it is (its global ids);
2. **linked perfectly**: every (camera, global id) segment relabelled by the person it covered
   most, so each person's segments share one id - what the run would score had every
   cross-camera (and same-camera) link been right, keeping the tracker's boxes and its swaps
   (a majority vote, not an optimum: see ``relabel_segments``);
3. **identified perfectly**: every box relabelled by the person it matches (one-to-one per frame,
   IoU >= 0.5, as the scoring pairs them) - the detection bound: boxes that match nobody stay
   false positives, people with no box stay misses.

Detection costs 1 - (3), per-camera tracking (segments that cover more than one person) (3) -
(2), association (2) - (1). A fourth score splits the association loss: the run with only its
missed links made (``merge_splits``: rightly linked segments of one person joined, wrong links
left alone); what that gains is the cost of missed links, the rest of the cost of wrong ones.
Measured this way because a target like "MTMC IDF1 >= 0.80 end to end" is only reachable if
the detection bound is above it (README, cross-camera identity). A segment or box that matches
nobody gets an id of its own, so it can never join a person (and on an ignored person, consider
flag 0, the scoring drops it as it drops the run's own).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from adfl_deploy.evaluation import mtmc

#: ids given to boxes and segments that match nobody start here (above any real id)
_UNMATCHED = 10**9
#: a person's label where it sits beside the run's own ids (``merge_splits``)
_PERSON = 5 * 10**8


@dataclass(frozen=True)
class IdentityBudget:
    run: float  # MTMC IDF1 as scored
    linked: float  # with perfect linking of the run's (camera, global id) segments
    bound: float  # with every matched box given its person: the detection bound
    #: with the run's right links kept and its missed ones made: every segment that shows its
    #: global id's person joins that person's other such segments; wrong links stay as they are
    splits_merged: float = float("nan")

    @property
    def detection_loss(self) -> float:
        return 1.0 - self.bound

    @property
    def tracking_loss(self) -> float:
        return self.bound - self.linked

    @property
    def association_loss(self) -> float:
        return self.linked - self.run

    @property
    def missed_link_loss(self) -> float:
        """The part of the association loss that links not made cost (people split over ids)."""
        return self.splits_merged - self.run

    @property
    def wrong_link_loss(self) -> float:
        """The rest: segments linked to an id that mostly shows someone else."""
        return self.linked - self.splits_merged

    def as_dict(self) -> dict[str, float]:
        return {
            "mtmc_idf1": self.run,
            "linked_perfectly": self.linked,
            "detection_bound": self.bound,
            "detection_loss": self.detection_loss,
            "tracking_loss": self.tracking_loss,
            "association_loss": self.association_loss,
            "splits_merged": self.splits_merged,
            "missed_link_loss": self.missed_link_loss,
            "wrong_link_loss": self.wrong_link_loss,
        }


def box_people(gt: np.ndarray, hyp: np.ndarray) -> np.ndarray:
    """Per row of ``hyp``: the scored ground-truth person its box is paired with, -1 where none.
    Per frame, as many pairs at IoU >= 0.5 as possible, then the largest total IoU among those
    (the matching motmetrics makes when nothing carries over), so no other pairing covers more
    people. (A box on an ignored person gets -1 here and is dropped by the scoring.)"""
    people = np.full(len(hyp), -1, np.int64)
    scored = gt[gt[:, 6] > 0]
    for f in np.unique(hyp[:, 0]):
        rows, g = np.flatnonzero(hyp[:, 0] == f), scored[scored[:, 0] == f]
        if not len(g):
            continue
        iou = mtmc._iou(g[:, 2:6], hyp[rows, 2:6])
        valid = iou >= mtmc.IOU_THRESHOLD
        for r, c in zip(*linear_sum_assignment(-np.where(valid, 1.0 + iou, 0.0))):
            if valid[r, c]:
                people[rows[c]] = int(g[r, 1])
    return people


def relabel_segments(hyp: np.ndarray, people: np.ndarray, fresh) -> np.ndarray:
    """``hyp`` with each of its ids replaced by the person most of its paired boxes show (a
    segment that shows nobody: a fresh id from the iterator ``fresh``). Where two segments
    given one person meet in a frame, only the box paired with that person (else the first)
    keeps the id there; the others get fresh ids, as one id cannot be two boxes at once.

    Majority relabelling stands in for the best linking: it cannot pass the detection bound,
    but on a crowded scene it can score a little below the run itself (a segment's minority
    boxes may be worth more to the run's own ids)."""
    out = hyp.copy()
    for gid in np.unique(hyp[:, 1]):
        mine = hyp[:, 1] == gid
        person = _majority(people[mine])
        out[mine, 1] = next(fresh) if person is None else person
    return _one_box_per_label(out, people, fresh)


def _majority(people: np.ndarray) -> int | None:
    """The person most of these paired boxes show (the first seen on a tie), None if none is."""
    shown = Counter(people[people >= 0].tolist())
    return shown.most_common(1)[0][0] if shown else None


def _one_box_per_label(out: np.ndarray, people: np.ndarray, fresh, offset: int = 0) -> np.ndarray:
    """Per frame, a label on several boxes stays only on the box paired with its person (label -
    ``offset``), else on the first; the other boxes get fresh ids."""
    for f in np.unique(out[:, 0]):
        rows = np.flatnonzero(out[:, 0] == f)
        for label in np.unique(out[rows, 1]):
            same = rows[out[rows, 1] == label]
            if len(same) < 2:
                continue
            owner = same[people[same] == label - offset]
            keep = owner[0] if len(owner) else same[0]
            for r in same[same != keep]:
                out[r, 1] = next(fresh)
    return out


def merge_splits(results: dict[str, np.ndarray], people: dict[str, np.ndarray], fresh) -> dict[str, np.ndarray]:
    """The run with its missed links made and nothing else changed: each global id goes to the
    person most of its paired boxes show (over every camera); a (camera, id) segment whose own
    majority is that person is relabelled by the person, so all of a person's rightly linked
    segments share one id; the other segments (wrong links, or showing nobody) keep their ids."""
    every_id = np.concatenate([hyp[:, 1] for hyp in results.values()])
    every_person = np.concatenate(list(people.values()))
    owner = {gid: _majority(every_person[every_id == gid]) for gid in np.unique(every_id)}
    out = {}
    for camera, hyp in results.items():
        merged, mine = hyp.copy(), people[camera]
        for gid in np.unique(hyp[:, 1]):
            segment = hyp[:, 1] == gid
            person = _majority(mine[segment])
            if person is not None and person == owner[gid]:
                merged[segment, 1] = _PERSON + person
        out[camera] = _one_box_per_label(merged, mine, fresh, offset=_PERSON)
    return out


def relabel_boxes(hyp: np.ndarray, people: np.ndarray, fresh) -> np.ndarray:
    """``hyp`` with every paired box's id replaced by its person, every other box given a fresh id."""
    out = hyp.copy()
    out[:, 1] = [p if p >= 0 else next(fresh) for p in people]
    return out


def identity_budget(gt_rows: dict[str, np.ndarray], result_rows: dict[str, np.ndarray]) -> IdentityBudget:
    """The scores of one run (camera -> MOTChallenge rows, as ``mtmc.score_rows`` takes)."""
    fresh = iter(range(_UNMATCHED, _UNMATCHED + 10**8))
    empty = np.zeros((0, 10))
    results = {camera: result_rows.get(camera, empty) for camera in gt_rows}
    people = {camera: box_people(gt, results[camera]) for camera, gt in gt_rows.items()}
    linked = {camera: relabel_segments(results[camera], people[camera], fresh) for camera in gt_rows}
    boxed = {camera: relabel_boxes(results[camera], people[camera], fresh) for camera in gt_rows}
    return IdentityBudget(
        mtmc.score_rows(gt_rows, result_rows).idf1,
        mtmc.score_rows(gt_rows, linked).idf1,
        mtmc.score_rows(gt_rows, boxed).idf1,
        mtmc.score_rows(gt_rows, merge_splits(results, people, fresh)).idf1,
    )


def run_budget(scene, run_dir: str | Path) -> IdentityBudget:
    """``identity_budget`` of an ``adfl track`` run folder (``mot/CAMERA.txt``) on its scene."""
    gt = {camera: mtmc.read_mot(scene.gt(camera)) for camera in scene.cameras}
    results = {camera: mtmc.read_mot(Path(run_dir) / "mot" / f"{camera}.txt") for camera in scene.cameras}
    return identity_budget(gt, results)
