"""The identity budget (detection bound, perfect linking) against cases counted by hand
(IDF1 = 2 IDTP / (ground-truth boxes + predicted boxes))."""

from __future__ import annotations

import numpy as np
import pytest

from adfl_deploy.errors import ConfigError
from adfl_deploy.evaluation.identity_budget import box_people, identity_budget


def track(pid, frames, x=100, flag=1):
    return [(f, pid, x, 50, 40, 100, flag, 1, 1.0) for f in frames]


def rows(*tracks):
    return np.array([r for t in tracks for r in t], np.float64).reshape(-1, 9)


#: person 1: 10 frames in cam1, then 10 in cam2; person 2: 10 frames in cam2 (30 boxes)
GT = {"cam1": rows(track(1, range(1, 11))), "cam2": rows(track(1, range(11, 21)), track(2, range(1, 11), x=300))}


def test_a_run_that_only_fails_to_link_loses_everything_to_association():
    hyp = {"cam1": rows(track(7, range(1, 11))), "cam2": rows(track(8, range(11, 21)), track(9, range(1, 11), x=300))}
    b = identity_budget(GT, hyp)
    # as scored: 1<->7 and 2<->9, IDTP 20 of 30 + 30 boxes; linked or boxed: every box right
    assert b.run == pytest.approx(40 / 60)
    assert b.linked == pytest.approx(1.0) and b.bound == pytest.approx(1.0)
    assert b.association_loss == pytest.approx(20 / 60) and b.tracking_loss == pytest.approx(0.0)
    assert (b.splits_merged, b.missed_link_loss, b.wrong_link_loss) == pytest.approx((1.0, 20 / 60, 0.0))
    assert b.detection_loss == pytest.approx(0.0)


def test_misses_false_positives_and_a_hop_split_the_losses():
    hyp = {
        # person 1 missed on frames 9-10; a false positive (id 4) on frames 1-3 that covers nobody
        "cam1": rows(track(7, range(1, 9)), track(4, range(1, 4), x=500)),
        # id 9 follows person 2, then hops onto person 1 (frames 11-14); id 8 has person 1 after
        "cam2": rows(track(9, range(1, 11), x=300), track(9, range(11, 15)), track(8, range(15, 21))),
    }
    b = identity_budget(GT, hyp)
    predicted = 8 + 3 + 10 + 4 + 6  # 31 boxes against 30 ground-truth boxes
    # bound: 28 boxes cover someone (8 + 10 + 4 + 6)
    assert b.bound == pytest.approx(2 * 28 / (30 + predicted))
    # linked: id 9 goes to person 2 (10 boxes against 4), so its 4 boxes on person 1 stay wrong
    assert b.linked == pytest.approx(2 * (8 + 6 + 10) / (30 + predicted))
    # as scored: 1<->7 (8 boxes), 2<->9 (10)
    assert b.run == pytest.approx(2 * (8 + 10) / (30 + predicted))
    assert (b.detection_loss, b.tracking_loss) == pytest.approx((5 / 61, 8 / 61))


def test_missed_and_wrong_links_are_told_apart():
    hyp = {
        # id 7: person 1 in cam1, and wrongly person 2's first 4 frames in cam2 (id 7 is person 1's)
        "cam1": rows(track(7, range(1, 11))),
        # id 8 has the rest of person 2; id 9 is person 1 in cam2, a link not made
        "cam2": rows(track(7, range(1, 5), x=300), track(8, range(5, 11), x=300), track(9, range(11, 21))),
    }
    b = identity_budget(GT, hyp)  # 30 ground-truth boxes, 30 predicted
    assert b.run == pytest.approx(2 * 16 / 60)  # best: 1<->7 (10) and 2<->8 (6)
    assert b.linked == pytest.approx(1.0)  # every segment shows one person
    # missed link made (9 joins person 1's cam1 segment), the wrong one kept: 20 + 6 boxes
    assert b.splits_merged == pytest.approx(2 * 26 / 60)
    assert (b.missed_link_loss, b.wrong_link_loss) == pytest.approx((20 / 60, 8 / 60))


def test_two_segments_of_one_person_at_once_do_not_both_count():
    gt = {"cam1": rows(track(1, range(1, 21)))}
    # id 8 duplicates the person (4 px off) over frames 5-20 while id 7 holds them over 1-10
    hyp = {"cam1": rows(track(7, range(1, 11)), track(8, range(5, 21), x=104))}
    b = identity_budget(gt, hyp)
    # 20 people-boxes, 26 predicted; one box a frame can be the person: 20 at best
    assert b.bound == pytest.approx(2 * 20 / 46)
    # both segments are the person's, but on frames 5-10 only id 7's box (the one paired) keeps it
    assert b.linked == pytest.approx(2 * 20 / 46)
    assert b.run == pytest.approx(2 * 16 / 46)  # id 8 covers the person on 16 frames


def test_pairing_covers_as_many_people_as_possible():
    # IoUs (hand): person 1 - box 5: 9/22, person 1 - box 6: 11/15, person 2 - box 5: 13/23,
    # person 2 - box 6: 15/16. The largest IoU sum pairs 1-5 (below 0.5) and 2-6; the pairing
    # that covers both people is 1-6 and 2-5.
    gt = rows([(1, 1, 14, 0, 11, 10, 1, 1, 1.0)], [(1, 2, 13, 0, 16, 10, 1, 1, 1.0)])
    hyp = rows([(1, 5, 16, 0, 20, 10, 1, 1, 1.0)], [(1, 6, 14, 0, 15, 10, 1, 1, 1.0)])
    assert box_people(gt, hyp).tolist() == [2, 1]
    assert identity_budget({"cam1": gt}, {"cam1": hyp}).bound == pytest.approx(1.0)


def test_boxes_pair_one_to_one_per_frame_at_iou_one_half():
    gt = rows(track(1, [1]), track(2, [1], x=130))  # two people overlapping (IoU 0.14)
    hyp = rows(track(5, [1], x=128), track(6, [1], x=102), track(7, [1], x=160))  # id 7: IoU 0.14 with person 2
    assert box_people(gt, hyp).tolist() == [2, 1, -1]


def test_a_box_on_an_ignored_person_is_neither_a_hit_nor_a_false_positive():
    gt = {"cam1": rows(track(1, range(1, 6)), track(2, range(1, 6), x=300, flag=0))}
    hyp = {"cam1": rows(track(3, range(1, 6)), track(4, range(1, 6), x=300))}
    assert box_people(gt["cam1"], hyp["cam1"]).tolist() == [1] * 5 + [-1] * 5  # never paired with person 2
    b = identity_budget(gt, hyp)
    assert (b.run, b.linked, b.bound) == pytest.approx((1.0, 1.0, 1.0))


def test_results_for_a_camera_without_ground_truth_are_refused():
    with pytest.raises(ConfigError, match="no ground truth"):
        identity_budget(GT, {"cam9": rows(track(1, range(1, 6)))})
