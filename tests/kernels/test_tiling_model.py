"""The float32 re-statement of the kernels' algorithms (tiling_model.py) against the float64
oracle, under several tilings, plus mutations of the parts that can go wrong independently of
tiling (addressing, lane masks, butterflies, chunk indices, the rescale): each must fail.

What this does not do: check the CUDA source (see tiling_model's docstring); that is
test_cuda_kernels.py, on a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import op_reference as ref
import tiling_model as model

CASES = {
    # rows not a multiple of the key tile; value rows wider than one lane slice (C = 256 > 32)
    "spatial_attention": [(2, 64, 5, 3), (1, 256, 4, 4)],
    # query rows of 12 and 30 dims: the last lane slice partly masked
    "channel_attention": [(2, 13, 4, 3), (1, 40, 6, 5)],
    # locations across several key tiles with a partial last tile
    "hyper_attention": [(2, 64 * 3, 25, 8)],
    "spatial_gate": [(2, 16, 7, 9)],
    "channel_gate": [(2, 37, 3, 3)],
    # more than one chunk of logits per sample, ending mid-chunk
    "hyper_gate": [(2, 20, 31, 29)],
}
# the kernels' tiling, then degenerate and odd ones (online softmax is exact for any)
TILINGS = {
    "kernel": {},
    "odd": {"key_tile": 3, "threads": 7, "chunk": 1000, "gate_threads": 32},
    "one": {"key_tile": 1, "threads": 1, "chunk": 97, "gate_threads": 64},
}


def run(op: str, inputs, tiling: dict):
    if op in ("spatial_attention", "channel_attention"):
        return model.OPS[op](*inputs, key_tile=tiling.get("key_tile"))
    if op == "hyper_attention":
        return model.hyper_attention(*inputs, threads=tiling.get("threads"))
    kind = op.split("_")[0]
    logits, x = (None, inputs[0]) if kind == "hyper" else inputs
    return model.softmax_gate(kind, logits, x, chunk=tiling.get("chunk"), threads=tiling.get("gate_threads"))


def rel_error(op: str, inputs, tiling=TILINGS["kernel"]) -> float:
    want = ref.OPS[op](*inputs)
    return float(np.abs(run(op, inputs, tiling) - want).max() / np.abs(want).max())


@pytest.mark.parametrize("tiling", list(TILINGS))
@pytest.mark.parametrize("op,shape", [(op, s) for op, shapes in CASES.items() for s in shapes])
def test_tiling_model_matches_the_oracle(op, shape, tiling):
    inputs = ref.random_inputs(op, *shape, np.random.default_rng(7), scale=0.5)
    assert rel_error(op, inputs, TILINGS[tiling]) <= 1e-5


def test_shapes_cover_the_tile_and_lane_edges():
    assert 5 * 3 % model.KEY_TILE and 13 % model.KEY_TILE  # partial key tiles
    assert 4 * 3 % model.WARP and 6 * 5 % model.WARP  # channel rows end mid-lane-slice
    assert 25 * 8 * 3 > model.HYPER_THREADS and (25 * 8 * 3) % model.HYPER_THREADS
    assert 20 * 31 * 29 > model.GATE_CHUNK and (20 * 31 * 29) % model.GATE_CHUNK


@pytest.mark.parametrize("op", ["channel_attention", "spatial_attention", "hyper_gate"])
def test_stage3_sized_logits(op):
    """Logits of hundreds (post-ReLU stage-3 features): nearly one-hot rows, exp range edges."""
    inputs = ref.random_inputs(op, 1, 64, 4, 3, np.random.default_rng(8), scale=6.0)
    got = run(op, inputs, TILINGS["kernel"])
    assert np.isfinite(got).all()
    assert rel_error(op, inputs) <= 1e-4


def test_butterfly_gives_every_lane_the_total():
    lanes = np.arange(32, dtype=np.float32)
    assert (model.butterfly_sum(lanes) == 496).all()  # 0 + 1 + ... + 31
    stats = model.warp_merge([(np.float32(v), np.float32(1)) for v in range(32)])
    # max 31, sum of exp(v - 31) for v = 0..31 = sum_k e^-k, k = 0..31
    want = sum(np.exp(-k) for k in range(32))
    assert all(st[0] == 31 and abs(st[1] - want) < 1e-5 for st in stats)


def test_empty_statistics_merge_to_nothing():
    assert model.merge(model.EMPTY, model.EMPTY) == model.EMPTY
    assert model.merge(model.EMPTY, (np.float32(3), np.float32(2))) == (3, 2)
    # a 32-thread block over 5 logits: 27 threads hold empty statistics
    m, s = model.chunk_stats(np.array([0, 1, 2, 3, 4], np.float32), 32)
    assert m == 4 and abs(s - sum(np.exp(-k) for k in range(5))) < 1e-6


# --- mutations: each breaks one part of the model the way a kernel could be broken -------------

INPUTS = {op: ref.random_inputs(op, *CASES[op][0], np.random.default_rng(9), scale=0.5) for op in CASES}


def _mutants():
    swapped = lambda f: lambda *a: tuple(model.RowLayout(L.sample, L.dim, L.row) for L in f(*a))  # noqa: E731
    return {
        # 1c addressed with 1s's strides (rows and dims swapped)
        "channel layout": ("channel_attention", "channel_layout", lambda c, p: model.RowLayout(c * p, 1, p)),
        "spatial layouts": ("spatial_attention", "spatial_layouts", swapped(model.spatial_layouts)),
        # the last lane slice's mask dropped (d < dim off by one slice)
        "lane mask": ("channel_attention", "lane_dims", lambda dim: _drop_last_slice(dim)),
        # butterfly stopping at offset 2: lanes miss half the sum
        "butterfly": ("channel_attention", "butterfly_sum", _short_butterfly),
        # 2c reading its logits as 2s does (i % HW instead of i / HW)
        "gate index": ("channel_gate", "logit_index", lambda kind, i, p: i % p if kind == "channel" else i),
        # merge forgetting to rescale the smaller side
        "merge rescale": ("hyper_gate", "merge", lambda a, b: (max(a[0], b[0]), np.float32(a[1] + b[1]))),
        # the online-softmax update without its rescale exp(m - m') of the running sums
        "row rescale": ("channel_attention", "rescale", lambda m, m_new: np.ones_like(m)),
        "hyper rescale": ("hyper_attention", "rescale", lambda m, m_new: np.ones_like(m)),
        # block merge keeping only warp 0
        "block merge": ("hyper_gate", "block_merge", lambda stats: model.warp_merge(stats[:32])[0]),
    }


def _drop_last_slice(dim):
    d, mask = lane_dims_orig(dim)
    mask = mask.copy()
    mask[:, -1] = False
    return d, mask


def _short_butterfly(partial):
    lanes = np.arange(32)
    for offset in (16, 8, 4, 2):
        partial = (partial + partial[..., lanes ^ offset]).astype(np.float32)
    return partial


lane_dims_orig = model.lane_dims


@pytest.mark.parametrize("name", list(_mutants()))
def test_mutants_fail(name, monkeypatch):
    op, attribute, mutant = _mutants()[name]
    assert rel_error(op, INPUTS[op]) <= 1e-5  # the model itself passes
    monkeypatch.setattr(model, attribute, mutant)
    try:
        error = rel_error(op, INPUTS[op])
    except IndexError:  # addressed outside the buffer: caught as well
        return
    assert error > 1e-3, f"mutant '{name}' still matches the oracle"
