"""Cross-camera association on hand-made embeddings with known answers."""

from __future__ import annotations

import numpy as np

from adfl_deploy.association.associator import AssociationConfig, Associator, Tracklet


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, np.float64)
    return v / np.linalg.norm(v)


def test_people_keep_their_global_id_across_cameras_hungarian_not_greedy():
    assoc = Associator(AssociationConfig(match_threshold=0.5))
    ids = assoc.associate([Tracklet("cam1", 1, unit(1, 0, 0), 0.0), Tracklet("cam1", 2, unit(0.7, 0.7, 0), 0.0)])
    g1, g2 = ids[("cam1", 1)], ids[("cam1", 2)]
    assert g1 != g2
    for t in (1, 2):
        assoc.end_track("cam1", t, 5.0)
    # in cam2, track 7 is a bit closer to person 2 than to person 1, and track 8 is closer to
    # person 2 still: greedy (7 first) would give 7 -> person 2 and leave 8 with person 1
    a, b = unit(0.9, 0.45, 0.0), unit(0.55, 0.83, 0.0)
    assert 1 - a @ unit(0.7, 0.7, 0) < 1 - a @ unit(1, 0, 0)
    ids = assoc.associate([Tracklet("cam2", 7, a, 10.0), Tracklet("cam2", 8, b, 10.0)])
    assert ids[("cam2", 7)] == g1 and ids[("cam2", 8)] == g2  # the minimum-total assignment


def test_one_identity_is_not_two_tracks_in_one_camera():
    assoc = Associator()
    first = assoc.associate([Tracklet("cam1", 1, unit(1, 0), 0.0)])[("cam1", 1)]
    second = assoc.associate([Tracklet("cam1", 1, unit(1, 0), 1.0), Tracklet("cam1", 2, unit(1, 0.01), 1.0)])
    assert second[("cam1", 1)] == first and second[("cam1", 2)] != first


def test_dissimilar_people_get_new_ids():
    assoc = Associator(AssociationConfig(match_threshold=0.2))
    a = assoc.associate([Tracklet("cam1", 1, unit(1, 0), 0.0)])[("cam1", 1)]
    assoc.end_track("cam1", 1, 1.0)
    b = assoc.associate([Tracklet("cam2", 1, unit(0, 1), 5.0)])[("cam2", 1)]
    assert a != b
    assert [e["new"] for e in assoc.events if e["event"] == "global_id_assigned"] == [True, True]


def test_camera_transition_window():
    cfg = AssociationConfig(transitions={"cam1->cam2": (5.0, 20.0)})
    assoc = Associator(cfg)
    g = assoc.associate([Tracklet("cam1", 1, unit(1, 0), 0.0)])[("cam1", 1)]
    assoc.end_track("cam1", 1, 10.0)
    too_soon = assoc.associate([Tracklet("cam2", 1, unit(1, 0), 12.0)])[("cam2", 1)]
    assert too_soon != g  # 2 s after leaving cam1: not physically possible
    assoc2 = Associator(cfg)
    g = assoc2.associate([Tracklet("cam1", 1, unit(1, 0), 0.0)])[("cam1", 1)]
    assoc2.end_track("cam1", 1, 10.0)
    assert assoc2.associate([Tracklet("cam2", 1, unit(1, 0), 18.0)])[("cam2", 1)] == g


def test_late_evidence_merges_two_ids_and_logs_it():
    assoc = Associator(AssociationConfig(match_threshold=0.05, merge_threshold=0.04))
    first = assoc.associate([Tracklet("cam1", 1, unit(1, 0.0), 0.0)])[("cam1", 1)]
    assoc.end_track("cam1", 1, 2.0)
    # seen in cam2 from a poor angle (distance 0.11): no match, no merge - a second identity
    other = assoc.associate([Tracklet("cam2", 4, unit(1, 0.5), 5.0)])[("cam2", 4)]
    assert other != first
    assoc.end_track("cam2", 4, 6.0)
    # a better view in cam2 (distance 0.02 to the first) bridges the two galleries
    assoc.associate([Tracklet("cam2", 4, unit(1, 0.2), 6.0)])
    merges = [e for e in assoc.events if e["event"] == "global_id_merged"]
    assert merges and merges[0]["kept"] == first and merges[0]["merged"] == other
    assert assoc.assignment[("cam2", 4)] == first
    assigned = [e for e in assoc.events if e["event"] == "global_id_assigned"]
    assert assigned[1]["global_id"] == other  # the past record is kept as it was
