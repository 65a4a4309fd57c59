"""HOTA / DetA / AssA against a case worked by hand from Luiten et al. 2021's definition, the
multi-camera joint sequence through ``mtmc.score``, and - where TrackEval is importable - TrackEval's
own ``HOTA.eval_sequence`` on random sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adfl_deploy.evaluation.hota import ALPHAS, hota, hota_from_similarity
from adfl_deploy.evaluation.mtmc import _iou, score


def box(x, w=40, h=100):
    return [x, 50, w, h]


def frame(gt, pred):
    """gt / pred: {id: box}."""
    return (
        np.array(list(gt), int),
        np.array(list(gt.values()), float).reshape(-1, 4),
        np.array(list(pred), int),
        np.array(list(pred.values()), float).reshape(-1, 4),
    )


def id_switch_case():
    # gt A (id 1) in frames 1-4 at x=100, gt B (id 2) in frames 1-2 at x=300 (far apart: IoU 0).
    # Predicted x (10) follows A in frames 1-2; y (11) follows B in frames 1-2, then switches to A
    # in frames 3-4 - in frame 4 shifted by 8 px: IoU = (40-8)*100 / (2*4000 - 32*100) = 2/3.
    A, B = box(100), box(300)
    return [
        frame({1: A, 2: B}, {10: A, 11: B}),
        frame({1: A, 2: B}, {10: A, 11: B}),
        frame({1: A}, {11: A}),
        frame({1: A}, {11: box(108)}),
    ]


#: the hand-worked HOTA of ``id_switch_case`` (derivation below)
ID_SWITCH_HOTA = (13 * 2 / 3 + 6 * math.sqrt(15) / 7) / 19


def test_hota_of_an_id_switch_worked_by_hand():
    frames = id_switch_case()
    # Every row and column of every similarity matrix has one non-zero, so each soft share is 1:
    # potential matches (A,x)=2, (A,y)=2, (B,y)=2; detections A 4, B 2, x 2, y 4. Alignment
    # A-x 2/(4+2-2)=1/2, A-y 2/(4+4-2)=1/3, B-y 2/(2+4-2)=1/2, so each frame matches the box it
    # overlaps (frames 1-2: A-x, B-y; frames 3-4: A-y).
    #
    # alpha <= 0.65 (13 of the 19 thresholds; 2/3 > 0.65): all 6 matches are TPs, no FN, no FP.
    #   DetA = 6/6 = 1. A(c) = TPA / (TPA + FNA + FPA) per TP:
    #   A-x: 2/(4+2-2) = 1/2 (x2), A-y: 2/(4+4-2) = 1/3 (x2), B-y: 2/(2+4-2) = 1/2 (x2)
    #   AssA = (1 + 2/3 + 1) / 6 = 4/9; HOTA = sqrt(1 * 4/9) = 2/3; LocA = (5 + 2/3) / 6 = 17/18
    # alpha >= 0.70 (6 thresholds): frame 4's match fails: 5 TP, 1 FN (A), 1 FP (y).
    #   DetA = 5/7. A-x: 1/2 (x2), A-y: 1/(4+4-1) = 1/7 (x1), B-y: 1/2 (x2)
    #   AssA = (1 + 1/7 + 1) / 5 = 3/7; HOTA = sqrt(5/7 * 3/7) = sqrt(15)/7; LocA = 1
    assert len(ALPHAS) == 19 and sum(a <= 2 / 3 for a in ALPHAS) == 13
    expected_hota = ID_SWITCH_HOTA
    expected_deta = (13 * 1 + 6 * 5 / 7) / 19  # = 121/133
    expected_assa = (13 * 4 / 9 + 6 * 3 / 7) / 19  # = 526/1197
    s = hota(frames, _iou)
    assert s.hota == pytest.approx(expected_hota, abs=1e-9)  # 0.6298
    assert s.deta == pytest.approx(121 / 133, abs=1e-9)
    assert expected_deta == pytest.approx(121 / 133)
    assert s.assa == pytest.approx(expected_assa, abs=1e-9)
    assert s.loca == pytest.approx((13 * 17 / 18 + 6) / 19, abs=1e-9)
    assert s.detre == pytest.approx((13 + 6 * 5 / 6) / 19) and s.detpr == pytest.approx((13 + 6 * 5 / 6) / 19)


def test_global_alignment_decides_an_ambiguous_frame():
    # HOTA's matching is not plain IoU: in frame 3, predicted 10 and 11 overlap gt 1 equally
    # (IoU 0.5 each), but 10 has followed gt 1 for frames 1-2, so the alignment picks 10.
    # Soft shares: frames 1-2 add 1 each to (1,10); in frame 3 each pair's share is
    # IoU / (column sum + row sum - IoU) = 0.5 / (0.5 + 1.0 - 0.5) = 0.5. So (1,10) = 2.5, (1,11) = 0.5.
    # Alignment 1-10: 2.5/(3+3-2.5) = 5/7, 1-11: 0.5/(3+1-0.5) = 1/7 -> frame 3 matches 1-10.
    # alpha <= 0.5 (10 thresholds): 3 TP, FP 1 (11); A(1-10) = 3/(3+3-3) = 1; DetA 3/4; HOTA sqrt(3/4)
    # alpha > 0.5 (9 thresholds): frame 3 fails: 2 TP, FN 1, FP 2; A(1-10) = 2/(3+3-2) = 1/2; DetA 2/5
    sim3 = np.array([[0.5, 0.5]])
    frames = [([1], [10], [[1.0]]), ([1], [10], [[1.0]]), ([1], [10, 11], sim3)]
    s = hota_from_similarity(frames)
    low = sum(a <= 0.5 + 1e-12 for a in ALPHAS)
    assert low == 10
    assert s.assa == pytest.approx((low * 1 + (19 - low) * 0.5) / 19)
    assert s.deta == pytest.approx((low * 3 / 4 + (19 - low) * 2 / 5) / 19)
    assert s.hota == pytest.approx((low * math.sqrt(3 / 4) + (19 - low) * math.sqrt(2 / 5 * 1 / 2)) / 19)


def test_empty_sequences():
    assert math.isnan(hota_from_similarity([]).hota)
    assert hota_from_similarity([([1, 2], [], np.zeros((2, 0)))]).hota == 0.0  # all missed
    assert hota_from_similarity([([], [5], np.zeros((0, 1)))]).deta == 0.0  # all false


def write(path, rows):
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def track(pid, frames, x=100):
    return [(f, pid, x, 50, 40, 100, 1, 1, 1.0) for f in frames]


def test_joint_hota_rewards_one_id_across_cameras(tmp_path):
    # person 1: 10 frames in cam1 then 10 in cam2; person 2: 10 frames in cam2 (boxes exact)
    gt = {
        "cam1": write(tmp_path / "gt1.txt", track(1, range(1, 11))),
        "cam2": write(tmp_path / "gt2.txt", track(1, range(11, 21)) + track(2, range(1, 11), x=300)),
    }
    same = score(gt, gt)
    assert same.hota == pytest.approx(1.0) and same.assa == pytest.approx(1.0) and same.deta == pytest.approx(1.0)
    # person 1 gets id 7 in cam1 and id 8 in cam2: each camera alone is perfect, jointly
    # A(1,7) = 10/(20+10-10) = 1/2, A(1,8) = 1/2, A(2,9) = 1 -> AssA = (5 + 5 + 10)/30 = 2/3
    hyp = {
        "cam1": write(tmp_path / "h1.txt", track(7, range(1, 11))),
        "cam2": write(tmp_path / "h2.txt", track(8, range(11, 21)) + track(9, range(1, 11), x=300)),
    }
    s = score(gt, hyp)
    assert all(c.hota == pytest.approx(1.0) for c in s.cameras)
    assert s.deta == pytest.approx(1.0) and s.assa == pytest.approx(2 / 3)
    assert s.hota == pytest.approx(math.sqrt(2 / 3))


def _random_sequence(rng, frames=30, people=4, ids=6):
    """Random frames with TrackEval's data layout and ours: noisy boxes, dropped and extra
    detections, id switches."""

    def boxes(n):
        return np.stack([rng.uniform(0, 400, n), rng.uniform(0, 100, n), np.full(n, 40.0), np.full(n, 90.0)], 1)

    out = []
    for _ in range(frames):
        g = rng.choice(people, size=rng.integers(0, people + 1), replace=False)
        gb = boxes(len(g))
        keep = rng.random(len(g)) < 0.8
        pb = gb[keep] + rng.normal(0, 8, (int(keep.sum()), 4)) * [1, 1, 0.3, 0.3]
        pb = np.concatenate([pb, boxes(rng.integers(0, 2))])
        p = rng.choice(ids, size=len(pb), replace=False)
        out.append((g, gb, p, pb))
    return out


@pytest.mark.parametrize("case", ["hand", 0, 1, 2, 3, 4])
def test_equals_trackeval_where_it_is_installed(case):
    trackeval = pytest.importorskip("trackeval")  # not a dependency: see adfl_deploy/evaluation/hota.py
    seq = id_switch_case() if case == "hand" else _random_sequence(np.random.default_rng(case))
    gt_labels = np.unique(np.concatenate([g for g, *_ in seq]))
    pr_labels = np.unique(np.concatenate([p for *_, p, _ in seq]))
    data = {
        "num_gt_dets": sum(len(g) for g, *_ in seq),
        "num_tracker_dets": sum(len(p) for *_, p, _ in seq),
        "num_gt_ids": len(gt_labels),
        "num_tracker_ids": len(pr_labels),
        "gt_ids": [np.searchsorted(gt_labels, g) for g, *_ in seq],
        "tracker_ids": [np.searchsorted(pr_labels, p) for *_, p, _ in seq],
        "similarity_scores": [trackeval.datasets._base_dataset._BaseDataset._calculate_box_ious(gb, pb) for _, gb, _, pb in seq],
    }
    ref = trackeval.metrics.HOTA().eval_sequence(data)
    ours = hota(seq, _iou)
    assert ours.hota == pytest.approx(float(np.mean(ref["HOTA"])), abs=1e-12)
    assert ours.deta == pytest.approx(float(np.mean(ref["DetA"])), abs=1e-12)
    assert ours.assa == pytest.approx(float(np.mean(ref["AssA"])), abs=1e-12)
    assert ours.loca == pytest.approx(float(np.mean(ref["LocA"])), abs=1e-12)
    if case == "hand":
        assert float(np.mean(ref["HOTA"])) == pytest.approx(ID_SWITCH_HOTA, abs=1e-9)
