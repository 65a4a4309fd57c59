"""Association thresholds calibrated per embedding, against hand cases."""

from __future__ import annotations

import numpy as np
import pytest

from adfl_deploy.association.calibration import (
    cross_camera_pairs,
    load_calibration_crops,
    match_threshold,
    threshold_at_false_match_rate,
)
from adfl_deploy.runtime.colour_histogram import ColourHistogramEmbedder


def test_threshold_lets_through_the_requested_share_of_impostor_pairs():
    distances = np.array([0.1, 0.2, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    same = np.array([True, True, False, False, False, False, False, False])
    # six impostor distances 0.5..1.0: a rate of 1/6 lets exactly one (0.5) fall below the threshold
    assert threshold_at_false_match_rate(distances, same, 1 / 6) == pytest.approx(0.6)
    assert threshold_at_false_match_rate(distances, same, 0.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        threshold_at_false_match_rate(distances, np.zeros(8, bool), 0.01)


def test_pairs_are_cross_camera_only():
    emb = np.eye(3)
    distances, same = cross_camera_pairs(emb, np.array([1, 1, 2]), np.array([1, 1, 2]))
    assert len(distances) == 2 and not same.any()  # the (0, 1) pair shares a camera


def test_calibration_crops_are_unseen_ids_with_several_cameras(shared):
    import json

    _, people, cameras = load_calibration_crops()
    split = json.loads((shared / "data" / "con-reid" / "split_ids.json").read_text())
    assert not {f"{p:04d}" for p in people} & set(split["train"])
    assert all(len(set(cameras[people == p])) >= 2 for p in set(people))


def test_each_embedding_gets_its_own_scale():
    from adfl_deploy.assets import EDGE_MODEL
    from adfl_deploy.runtime.embedder import Embedder

    histogram = match_threshold(ColourHistogramEmbedder().embed)
    model = match_threshold(Embedder.from_artifact(EDGE_MODEL).embed)
    assert 0 < histogram < model < 1


def test_the_associator_is_calibrated_at_the_configured_false_match_rate():
    """The histogram's calibrated threshold at a rate r is the impostor-distance quantile r,
    recomputed here from the calibration crops (camera centring off: raw embeddings); unset, the
    rate is the embedder's own (the histogram names 2%) or 1%, and a stricter rate gives a
    stricter threshold. Merges are held to half
    the match threshold."""
    from adfl_deploy.association import AssociationConfig, calibrated_associator

    embedder = ColourHistogramEmbedder()
    crops, people, cameras = load_calibration_crops()
    distances, same = cross_camera_pairs(np.asarray(embedder.embed(crops), np.float64), people, cameras)
    impostors = np.sort(distances[~same])
    for rate in (0.02, 0.001):
        assoc = calibrated_associator(embedder, AssociationConfig(false_match_rate=rate, camera_centring=False))
        assert assoc.match_threshold == pytest.approx(impostors[int(rate * len(impostors))])
        assert assoc.merge_threshold == pytest.approx(0.5 * assoc.match_threshold)
    raw = AssociationConfig(camera_centring=False)  # no rate set: the embedder's own, else 1%

    class Unnamed:  # an embedder that names no operating point of its own
        embed = staticmethod(embedder.embed)

    own = calibrated_associator(embedder, raw)
    assert own.config.false_match_rate == 0.02 and own.match_threshold == pytest.approx(impostors[int(0.02 * len(impostors))])
    default = calibrated_associator(Unnamed(), raw)
    assert default.config.false_match_rate == 0.01
    assert default.match_threshold == pytest.approx(impostors[int(0.01 * len(impostors))])
    assert (
        calibrated_associator(embedder, AssociationConfig(false_match_rate=0.001, camera_centring=False)).match_threshold
        < default.match_threshold
    )


def test_with_camera_centring_the_threshold_is_calibrated_on_centred_crops():
    """Each calibration camera's mean taken out (recomputed here by hand), then the same
    impostor quantile; the associator that centres gets that threshold."""
    from adfl_deploy.association import AssociationConfig, calibrated_associator

    embedder = ColourHistogramEmbedder()
    crops, people, cameras = load_calibration_crops()
    emb = np.asarray(embedder.embed(crops), np.float64)
    for cam in set(cameras.tolist()):
        emb[cameras == cam] -= emb[cameras == cam].mean(axis=0)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    i, j = np.triu_indices(len(emb), 1)
    cross = cameras[i] != cameras[j]
    impostors = np.sort((1.0 - np.sum(emb[i] * emb[j], axis=1))[cross & (people[i] != people[j])])
    expected = impostors[int(0.02 * len(impostors))]  # the histogram's own rate, 2%
    assert match_threshold(embedder.embed, 0.02, centred=True) == pytest.approx(expected)
    assoc = calibrated_associator(embedder)  # centring is the default
    assert assoc.match_threshold == pytest.approx(expected) and assoc.centring is not None
    assert calibrated_associator(embedder, AssociationConfig(camera_centring=False)).match_threshold != pytest.approx(expected)


def test_a_threshold_set_by_hand_has_no_rate_and_an_embedders_bad_rate_is_one_line():
    from adfl_deploy.association import AssociationConfig, calibrated_associator
    from adfl_deploy.errors import ConfigError

    by_hand = calibrated_associator(ColourHistogramEmbedder(), AssociationConfig(match_threshold=0.3))
    assert by_hand.match_threshold == 0.3 and by_hand.config.false_match_rate is None  # summary.json: null

    class Odd(ColourHistogramEmbedder):
        false_match_rate = 1.5

    with pytest.raises(ConfigError, match="embedder colour-histogram: its false_match_rate 1.5"):
        calibrated_associator(Odd(), AssociationConfig())
