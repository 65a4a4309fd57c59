"""MTMC scoring against hand-computed cases (Ristani et al. 2016 IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN))."""

from __future__ import annotations

import numpy as np
import pytest

from adfl_deploy.errors import ConfigError
from adfl_deploy.evaluation.mtmc import score


def write(path, rows):
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def track(pid, frames, x=100, flag=1):
    return [(f, pid, x, 50, 40, 100, flag, 1, 1.0) for f in frames]


@pytest.fixture
def gt(tmp_path):
    # person 1: 10 frames in cam1, then 10 frames in cam2; person 2: 10 frames in cam2
    return {
        "cam1": write(tmp_path / "gt1.txt", track(1, range(1, 11))),
        "cam2": write(tmp_path / "gt2.txt", track(1, range(11, 21)) + track(2, range(1, 11), x=300)),
    }


def test_a_perfect_result_scores_one(gt):
    s = score(gt, gt)
    assert s.idf1 == pytest.approx(1.0) and s.purity == 1.0 and s.fragmentation == 1.0
    assert all(c.mota == pytest.approx(1.0) and c.id_switches == 0 for c in s.cameras)
    assert (s.true_people, s.predicted_ids) == (2, 2)


def test_a_person_who_changes_id_between_cameras_loses_the_second_camera(gt, tmp_path):
    hyp = {
        "cam1": write(tmp_path / "h1.txt", track(7, range(1, 11))),
        "cam2": write(tmp_path / "h2.txt", track(8, range(11, 21)) + track(9, range(1, 11), x=300)),
    }
    s = score(gt, hyp)
    assert all(c.idf1 == pytest.approx(1.0) for c in s.cameras)  # each camera alone is perfect
    # matching 1<->7, 2<->9: IDTP 20, IDFN 10 (person 1 in cam2), IDFP 10 (id 8)
    assert s.idf1 == pytest.approx(2 * 20 / (2 * 20 + 10 + 10))
    assert s.fragmentation == pytest.approx((2 + 1) / 2) and s.purity == 1.0


def test_one_id_on_two_people_halves_purity(gt, tmp_path):
    hyp = {
        "cam1": write(tmp_path / "h1.txt", track(5, range(1, 11))),
        "cam2": write(tmp_path / "h2.txt", track(6, range(11, 21)) + track(5, range(1, 11), x=300)),
    }
    s = score(gt, hyp)
    # id 5 covers person 1 (10 boxes) and person 2 (10 boxes); id 6 is pure (10)
    assert s.purity == pytest.approx((10 + 10) / 30)


def test_predictions_on_hidden_people_are_neither_hits_nor_false_positives(tmp_path):
    gt = {"cam1": write(tmp_path / "gt.txt", track(1, range(1, 6)) + track(2, range(1, 6), x=300, flag=0))}
    hyp = {"cam1": write(tmp_path / "h.txt", track(1, range(1, 6)) + track(4, range(1, 6), x=300))}
    s = score(gt, hyp)
    assert s.cameras[0].mota == pytest.approx(1.0) and s.cameras[0].precision == pytest.approx(1.0)


def test_missing_results_count_as_misses_and_bad_files_fail_in_one_line(gt, tmp_path):
    s = score(gt, {"cam1": gt["cam1"]})
    assert s.cameras[1].mota == pytest.approx(0.0) and s.idf1 < 1.0
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2,3\n")
    with pytest.raises(ConfigError, match="at least 7 columns"):
        score(gt, {"cam1": bad})
    with pytest.raises(ConfigError, match="no ground truth"):
        score(gt, {"cam9": gt["cam1"]})
    assert np.isfinite(s.idf1)
