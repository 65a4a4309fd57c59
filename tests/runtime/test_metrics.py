"""CMC/mAP against hand-worked cases and an independent float64 reference; re-ranking sanity."""

from __future__ import annotations

import numpy as np
import pytest

from adfl_deploy.evaluation.metrics import cosine_distance, rank_metrics
from adfl_deploy.evaluation.rerank import k_reciprocal_rerank


def reference_metrics(dist, q_pids, g_pids, q_cams, g_cams, max_rank):
    """Written separately from production: per query, walk the gallery sorted by (distance,
    index), skipping same-id-same-camera entries, and count hits by hand."""
    cmc_sum = np.zeros(max_rank)
    aps = []
    for i in range(len(q_pids)):
        ranked = sorted(range(len(g_pids)), key=lambda j: (float(dist[i, j]), j))
        valid = [j for j in ranked if not (g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i])]
        hits_seen, precisions, first_hit = 0, [], None
        for position, j in enumerate(valid, start=1):
            if g_pids[j] == q_pids[i]:
                hits_seen += 1
                precisions.append(hits_seen / position)
                first_hit = position if first_hit is None else first_hit
        if hits_seen == 0:
            continue
        for k in range(max_rank):
            cmc_sum[k] += 1.0 if first_hit <= k + 1 else 0.0
        aps.append(sum(precisions) / hits_seen)
    return cmc_sum / len(aps), sum(aps) / len(aps), len(aps)


def test_hand_worked_case():
    # query pid 1 cam 1; gallery ranked by distance: [1@cam1 (excluded), 2@cam2, 1@cam2, 1@cam3]
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    r = rank_metrics(dist, [1], [1, 2, 1, 1], [1], [1, 2, 2, 3], max_rank=3)
    # after exclusion: [2, 1, 1] -> first hit at rank 2; AP = (1/2 + 2/3) / 2
    np.testing.assert_allclose(r.cmc, [0.0, 1.0, 1.0])
    assert r.mAP == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_ties_are_broken_by_gallery_order():
    dist = np.array([[0.5, 0.5, 0.5]])
    # tied: gallery order [wrong, right, wrong] -> hit at rank 2
    r = rank_metrics(dist, [7], [3, 7, 4], [1], [2, 2, 2], max_rank=3)
    np.testing.assert_allclose(r.cmc, [0.0, 1.0, 1.0])
    assert r.mAP == pytest.approx(0.5)


def test_query_without_a_valid_match_is_skipped_and_counted():
    dist = np.array([[0.1, 0.2], [0.3, 0.1]])
    # query 0 (pid 5, cam 1) only has a same-camera match -> skipped
    r = rank_metrics(dist, [5, 6], [5, 6], [1, 1], [1, 2], max_rank=2)
    assert (r.num_valid, r.num_skipped) == (1, 1)
    assert r.mAP == 1.0


def test_no_valid_query_at_all_is_an_error():
    with pytest.raises(ValueError, match="no query"):
        rank_metrics(np.zeros((1, 1)), [1], [1], [1], [1])


def test_distractors_are_negatives():
    dist = np.array([[0.1, 0.2]])  # a distractor (pid 0) ranks first
    r = rank_metrics(dist, [3], [0, 3], [1], [2, 2], max_rank=2)
    np.testing.assert_allclose(r.cmc, [0.0, 1.0])


@pytest.mark.parametrize("seed", range(5))
def test_random_cases_match_the_reference(seed):
    rng = np.random.default_rng(seed)
    q, g = 12, 40
    q_pids, g_pids = rng.integers(0, 6, q), rng.integers(0, 6, g)
    q_cams, g_cams = rng.integers(1, 4, q), rng.integers(1, 4, g)
    dist = np.round(rng.random((q, g)), 1)  # rounding creates many ties
    want_cmc, want_map, want_valid = reference_metrics(dist, q_pids, g_pids, q_cams, g_cams, 5)
    got = rank_metrics(dist, q_pids, g_pids, q_cams, g_cams, max_rank=5)
    np.testing.assert_allclose(got.cmc, want_cmc)
    assert got.mAP == pytest.approx(want_map) and got.num_valid == want_valid


def test_cosine_distance():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(cosine_distance(a, b), [[0, 1], [1 - np.sqrt(0.5), 1 - np.sqrt(0.5)]], atol=1e-12)


def _clusters(seed=0, ids=6, per_id=6, noise=0.35):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(ids, 16))
    feats = np.concatenate([c + noise * rng.normal(size=(per_id, 16)) for c in centres])
    pids = np.repeat(np.arange(ids), per_id)
    cams = np.tile(np.arange(per_id), ids)
    return feats, pids, cams


def test_rerank_with_lambda_one_keeps_the_original_order():
    feats, pids, cams = _clusters()
    q, g = feats[::3], feats
    d = cosine_distance(q, g)
    rr = k_reciprocal_rerank(d, cosine_distance(q, q), cosine_distance(g, g), k1=5, k2=1, lambda_value=1.0)
    np.testing.assert_array_equal(np.argsort(rr, axis=1, kind="stable"), np.argsort(d, axis=1, kind="stable"))


def test_rerank_helps_on_clustered_features():
    feats, pids, cams = _clusters(noise=0.9)
    qi = np.arange(0, len(feats), 3)
    q, qp, qc = feats[qi], pids[qi], cams[qi]
    d = cosine_distance(q, feats)
    rr = k_reciprocal_rerank(d, cosine_distance(q, q), cosine_distance(feats, feats), k1=5, k2=3)
    before = rank_metrics(d, qp, pids, qc, cams).mAP
    after = rank_metrics(rr, qp, pids, qc, cams).mAP
    assert after > before
