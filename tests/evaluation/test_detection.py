"""Detection precision, recall and AP@0.5 against a case worked by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adfl_deploy.evaluation import detection


def _gt(frame, left, top, consider, pid):
    return [frame, pid, left, top, 10, 10, consider, 1, 1.0]


#: frame 1: people A (0,0) and B (20,0); frame 2: person C (0,0) and D (50,50), D mostly hidden (flag 0)
GT = np.array([_gt(1, 0, 0, 1, 1), _gt(1, 20, 0, 1, 2), _gt(2, 0, 0, 1, 3), _gt(2, 50, 50, 0, 4)], float)
#: (frame, left, top, width, height, confidence)
DETS = np.array(
    [
        [1, 1, 0, 10, 10, 0.9],  # A, IoU 0.818: true positive (taken first: higher confidence)
        [1, 0, 0, 10, 10, 0.8],  # A again, IoU 1.0 but A is taken: false positive
        [1, 25, 0, 10, 10, 0.7],  # B at IoU 50/150 = 0.33 < 0.5: false positive
        [2, 0, 0, 10, 10, 0.6],  # C: true positive
        [2, 50, 50, 10, 10, 0.95],  # on the hidden D: neither
    ]
)


def test_precision_recall_and_ap_of_a_hand_worked_case():
    s = detection.score(GT, DETS)
    # ranked (D ignored): 0.9 TP, 0.8 FP, 0.7 FP, 0.6 TP; 3 people to find (A, B, C)
    # precision 1, 1/2, 1/3, 1/2 at recall 1/3, 1/3, 1/3, 2/3; envelope 1, 1/2, 1/2, 1/2
    # AP = 1/3 * 1 + (2/3 - 1/3) * 1/2 = 1/2
    assert (s.ground_truth, s.detections, s.true_positives) == (3, 4, 2)
    assert s.precision == pytest.approx(0.5)
    assert s.recall == pytest.approx(2 / 3)
    assert s.ap50 == pytest.approx(0.5)


def test_a_perfect_detector_scores_one_and_none_scores_zero_recall():
    found = np.array([[r[0], r[2], r[3], r[4], r[5], 0.9] for r in GT if r[6] > 0])
    perfect = detection.score(GT, found)
    assert (perfect.precision, perfect.recall, perfect.ap50) == (1.0, 1.0, 1.0)
    nothing = detection.score(GT, np.zeros((0, 6)))
    assert nothing.recall == 0.0 and nothing.ap50 == 0.0 and np.isnan(nothing.precision)


def test_the_command_scores_a_detector_on_a_scene_and_writes_json(scene, tmp_path, capsys):
    from adfl_deploy.cli import main

    assert main(["mtmc", str(scene.root), "--detectors", "motion", "--out", str(tmp_path / "det")]) == 0
    report = json.loads((tmp_path / "det" / "detection.json").read_text())
    (row,) = report["rows"]
    assert row["detector"] == "motion" and set(row["cameras"]) == set(scene.cameras)
    assert 0.0 <= row["recall"] <= 1.0 and row["ground_truth"] > 0
    assert "| motion |" in capsys.readouterr().out
    # the pipeline passes boxes down to 0.2 to the tracker; precision and recall are reported
    # where boxes lead tracks (the tracker's first round, 0.5), as before that change
    assert report["operating_point"] == {"min_confidence": 0.5, "min_height": 24}


def test_an_unknown_detector_is_one_line_before_anything_runs(scene, tmp_path, capsys):
    from adfl_deploy.cli import main

    assert main(["mtmc", str(scene.root), "--detectors", "motion,no-such-detector", "--out", str(tmp_path / "det")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-detector" in err[0] and "motion" in err[0]
    assert not (tmp_path / "det").exists()
