"""The kernels' algorithms (NumPy model of their tiling) against the float64 oracle, on shapes
that end mid-tile and mid-chunk."""

from __future__ import annotations

import numpy as np
import pytest

import op_reference as ref
import tiling_model as model

CASES = {
    # rows not a multiple of the key tile; value rows wider than one lane slice
    "spatial_attention": [(2, 64, 5, 3), (1, 256, 4, 4)],
    "channel_attention": [(2, 13, 4, 3), (1, 40, 6, 5)],
    # locations across several key tiles with a partial last tile
    "hyper_attention": [(2, 64 * 3, 25, 8)],
    "spatial_gate": [(2, 16, 7, 9)],
    "channel_gate": [(2, 37, 3, 3)],
    # more than one GATE_CHUNK of logits per sample, ending mid-chunk
    "hyper_gate": [(2, 20, 31, 29)],
}


@pytest.mark.parametrize("op,shape", [(op, s) for op, shapes in CASES.items() for s in shapes])
def test_tiling_model_matches_the_oracle(op, shape):
    inputs = ref.random_inputs(op, *shape, np.random.default_rng(7), scale=0.5)
    want = ref.OPS[op](*inputs)
    got = model.OPS[op](*inputs)
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 1e-5 * scale


def test_shapes_cover_the_tile_edges():
    assert 5 * 3 % model.KEY_TILE and 13 % model.KEY_TILE  # partial key tiles
    assert 25 * 8 * 3 > model.HYPER_THREADS and (25 * 8 * 3) % model.HYPER_THREADS
    assert 20 * 31 * 29 > model.GATE_CHUNK and (20 * 31 * 29) % model.GATE_CHUNK


def test_online_softmax_survives_huge_logits():
    inputs = ref.random_inputs("channel_attention", 1, 16, 3, 3, np.random.default_rng(8), scale=40.0)
    got = model.channel_attention(*inputs)
    assert np.isfinite(got).all()
    want = ref.channel_attention(*inputs)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
