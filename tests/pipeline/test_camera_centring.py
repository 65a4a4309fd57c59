"""Per-camera embedding centring against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from adfl_deploy.association.associator import AssociationConfig, Associator, Tracklet
from adfl_deploy.association.camera_centring import CameraCentring, centre_per_camera
from adfl_deploy.errors import ConfigError


def test_running_mean_is_shrunk_by_the_prior_and_applied_before_the_sample_joins():
    centring = CameraCentring(prior=1.0)
    # first sample of a camera: nothing to take out yet
    np.testing.assert_allclose(centring.centre("a", np.array([1.0, 0.0])), [1.0, 0.0])
    # mean = (1, 0) / (1 sample + 1 pseudo-sample) = (0.5, 0); (0, 1) - (0.5, 0) = (-0.5, 1), norm sqrt(1.25)
    np.testing.assert_allclose(centring.centre("a", np.array([0.0, 1.0])), np.array([-0.5, 1.0]) / np.sqrt(1.25), rtol=1e-6)
    np.testing.assert_allclose(centring.mean("a"), [1 / 3, 1 / 3])  # (1, 1) / (2 + 1)
    # another camera has its own mean
    assert centring.mean("b") is None
    np.testing.assert_allclose(centring.centre("b", np.array([0.0, 1.0])), [0.0, 1.0])


def test_a_shared_camera_offset_is_removed_exactly_offline():
    """The same five people seen by two cameras, each adding its own large offset: raw, a
    person is closer to other people in the same camera than to themself in the other; with
    each camera's mean taken out, one person's two embeddings are the same vector."""
    rng = np.random.default_rng(0)
    people = rng.normal(size=(5, 32))
    offsets = 4.0 * rng.normal(size=(2, 32))
    raw = np.concatenate([people + offsets[0], people + offsets[1]])
    cameras = np.repeat([1, 2], 5)
    centred = centre_per_camera(raw, cameras)
    # reference: the offset and each camera's people-mean cancel, leaving person - mean person
    # (up to each row's positive scale, which the renormalisation removes)
    reference = people - people.mean(axis=0)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    np.testing.assert_allclose(centred[:5], reference, atol=1e-9)
    np.testing.assert_allclose(centred[5:], reference, atol=1e-9)
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    raw_same = np.sum(raw[:5] * raw[5:], axis=1)
    raw_other_same_camera = (raw[:5] @ raw[:5].T)[~np.eye(5, dtype=bool)]
    assert raw_same.max() < raw_other_same_camera.min()  # the camera dominates the raw embedding


def _scene(assoc: Associator, offsets: np.ndarray, people: np.ndarray) -> dict:
    """cam1 sees people 0-4 and cam2 people 5-9 for 30 ticks; both leave; then cam2 sees
    people 0-4 under new track ids. Returns each (camera, track) -> global id."""
    rng = np.random.default_rng(1)

    def emb(person: int, cam: int) -> np.ndarray:
        v = people[person] + offsets[cam] + 0.05 * rng.normal(size=people.shape[1])
        return v / np.linalg.norm(v)

    for tick in range(30):
        assoc.associate(
            [Tracklet("cam1", k, emb(k, 0), float(tick), tick) for k in range(5)]
            + [Tracklet("cam2", k, emb(5 + k, 1), float(tick), tick) for k in range(5)]
        )
    for k in range(5):
        assoc.end_track("cam1", k, 30.0)
        assoc.end_track("cam2", k, 30.0)
    for tick in range(40, 43):
        assoc.associate([Tracklet("cam2", 10 + k, emb(k, 1), float(tick), tick) for k in range(5)])
    return dict(assoc.assignment)


def test_centring_links_people_across_cameras_whose_offset_hides_them():
    rng = np.random.default_rng(2)
    people = rng.normal(size=(10, 64))
    offsets = 1.5 * rng.normal(size=(2, 64))
    raw = _scene(
        Associator(AssociationConfig(match_threshold=0.5, learn_transitions=False, camera_centring=False)), offsets, people
    )
    centred = _scene(
        Associator(
            AssociationConfig(match_threshold=0.5, learn_transitions=False, camera_centring=True, camera_centring_prior=5)
        ),
        offsets,
        people,
    )
    # raw, the camera offset keeps every returning person apart from their cam1 identity (they
    # are taken for the people cam2 saw before, and cam1's people for each other) ...
    assert all(raw[("cam2", 10 + k)] != raw[("cam1", k)] for k in range(5))
    assert len({centred[("cam1", k)] for k in range(5)} | {centred[("cam2", k)] for k in range(5)}) == 10
    # ... centred, each is linked to it
    assert all(centred[("cam2", 10 + k)] == centred[("cam1", k)] for k in range(5))


def test_negative_prior_is_refused():
    with pytest.raises(ConfigError, match="camera_centring_prior"):
        AssociationConfig(camera_centring_prior=-1.0)


def test_a_ticks_embeddings_are_centred_with_the_means_from_before_it_in_any_order():
    first, second = CameraCentring(prior=0.0), CameraCentring(prior=0.0)
    for c in (first, second):
        c.centre("a", np.array([1.0, 0.0, 0.0]))
    tick = [("a", np.array([0.0, 1.0, 0.0])), ("b", np.array([0.0, 0.0, 1.0])), ("a", np.array([0.0, 0.0, 1.0]))]
    one = first.centre_tick([c for c, _ in tick], [e for _, e in tick])
    other = second.centre_tick([c for c, _ in tick[::-1]], [e for _, e in tick[::-1]])[::-1]
    # both of camera a's centred on the mean before the tick, (1, 0, 0); b's first is itself
    reference = [np.array([-1.0, 1.0, 0.0]) / np.sqrt(2), np.array([0.0, 0.0, 1.0]), np.array([-1.0, 0.0, 1.0]) / np.sqrt(2)]
    for got in (one, other):
        for g, r in zip(got, reference):
            np.testing.assert_allclose(g, r, rtol=1e-6)
    np.testing.assert_allclose(first.mean("a"), [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(second.mean("a"), first.mean("a"))
    np.testing.assert_allclose(second.mean("b"), first.mean("b"))


def test_after_its_window_a_cameras_mean_forgets_the_oldest_embeddings():
    a, b, c, d = (np.eye(4)[i] for i in range(4))
    centring = CameraCentring(prior=0.0, window=2)
    for e in (a, b):
        centring.centre("cam", e)
    np.testing.assert_allclose(centring.mean("cam"), (a + b) / 2)  # a plain mean up to the window
    centring.centre("cam", c)  # beyond it, the older ones count (1 - 1/2) each time
    np.testing.assert_allclose(centring.mean("cam"), ((a + b) / 2 + c) / 2)
    # two in one tick, in either order: the older sum scaled twice
    for tick in ([c, d], [d, c]):
        other = CameraCentring(prior=0.0, window=2)
        for e in (a, b):
            other.centre("cam", e)
        other.centre_tick(["cam", "cam"], tick)
        np.testing.assert_allclose(other.mean("cam"), ((a + b) / 4 + c + d) / 2)


def test_a_window_below_one_is_refused():
    with pytest.raises(ConfigError, match="camera_centring_window"):
        AssociationConfig(camera_centring_window=0)


def test_a_broken_embedding_passes_unchanged_and_stays_out_of_the_mean():
    centring = CameraCentring(prior=0.0)
    centring.centre("a", np.array([1.0, 0.0]))
    nan, zero = np.array([np.nan, 1.0]), np.zeros(2)
    got = centring.centre_tick(["a", "a", "a"], [nan, zero, np.array([0.0, 1.0])])
    assert np.isnan(got[0][0]) and not got[1].any()  # returned as they came: a zero matches nobody
    np.testing.assert_allclose(got[2], np.array([-1.0, 1.0]) / np.sqrt(2))
    np.testing.assert_allclose(centring.mean("a"), [0.5, 0.5])  # (1, 0) and (0, 1) only
    np.testing.assert_allclose(centring.centre("a", np.array([1.0, 1.0])), [np.sqrt(0.5), np.sqrt(0.5)])


def test_an_associator_pickled_before_centring_existed_matches_raw_embeddings():
    import pickle

    old = Associator(AssociationConfig(match_threshold=0.5))
    del old.__dict__["centring"]  # what a snapshot of an older version restores
    restored = pickle.loads(pickle.dumps(old))
    assert restored.centring is None
    restored.associate([Tracklet("cam1", 1, np.array([1.0, 0.0], np.float32), 0.0)])
    np.testing.assert_array_equal(restored.bank.gallery(restored.assignment[("cam1", 1)])[0], [1.0, 0.0])
