"""Each attention module against the float64 paper oracle (tests/model/paper_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adfl_deploy.train.models.attention import (
    BatchAttention,
    ChannelAttention,
    ChannelGate,
    HyperAttention,
    HyperGate,
    SpatialAttention,
    SpatialGate,
    create_attention,
)

import paper_reference as ref

B, C, H, W = 2, 64, 5, 3  # C = 64 so the hyper attention keeps C' = 1 channel


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def _conv(conv):
    return _np(conv.weight), (None if conv.bias is None else _np(conv.bias))


@pytest.fixture
def x() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(B, C, H, W, dtype=torch.float64)


def _prepared(module: torch.nn.Module, alpha: float = 0.7) -> torch.nn.Module:
    """Float64, eval mode, and a non-zero alpha so the attention term is visible."""
    module = module.double().eval()
    for name, p in module.named_parameters():
        if name.endswith("alpha"):
            p.data.fill_(alpha)
    return module


def _run(module, x):
    with torch.no_grad():
        return _np(module(x))


def test_spatial_1s_matches_eqs_5_6(x):
    m = _prepared(SpatialAttention(C))
    want = np.stack([ref.spatial_attention_1s(_np(s), *_conv(m.query), *_conv(m.key), *_conv(m.value), 0.7) for s in x])
    np.testing.assert_allclose(_run(m, x), want, rtol=1e-10, atol=1e-10)


def test_channel_1c_matches_eqs_7_8(x):
    x = x * 0.3  # keep the C x C logits moderate so the softmax is not one-hot
    m = _prepared(ChannelAttention(C))
    want = np.stack([ref.channel_attention_1c(_np(s), 0.7) for s in x])
    np.testing.assert_allclose(_run(m, x), want, rtol=1e-10, atol=1e-10)


def test_hyper_1h_matches_eq_9(x):
    m = _prepared(HyperAttention(C))
    want = np.stack(
        [ref.hyper_attention_1h(_np(s), *_conv(m.query), *_conv(m.key), *_conv(m.value), *_conv(m.expand), 0.7) for s in x]
    )
    np.testing.assert_allclose(_run(m, x), want, rtol=1e-10, atol=1e-10)


def test_batch_1b_matches_eqs_10_11():
    torch.manual_seed(1)
    f = torch.randn(4, 3, 2, 2, dtype=torch.float64) * 0.3
    m = _prepared(BatchAttention(3))
    np.testing.assert_allclose(_run(m, f), ref.batch_attention_1b(_np(f), 0.7), rtol=1e-10, atol=1e-10)


def test_type2_maps_match_eqs_12_to_14(x):
    s = _prepared(SpatialGate(C))
    c = _prepared(ChannelGate(C))
    h = _prepared(HyperGate(C))
    for sample in x:
        i = _np(sample)
        with torch.no_grad():
            np.testing.assert_allclose(
                _np(s.attention_map(sample[None]))[0], ref.spatial_map_2s(i, _np(s.conv.weight)), rtol=1e-10
            )
            np.testing.assert_allclose(
                _np(c.attention_map(sample[None]))[0],
                ref.channel_map_2c(i, _np(c.mlp[0].weight), _np(c.mlp[2].weight)),
                rtol=1e-10,
            )
            np.testing.assert_allclose(_np(h.attention_map(sample[None]))[0], ref.hyper_map_2h(i), rtol=1e-10)
    np.testing.assert_allclose(
        _run(s, x), np.stack([ref.spatial_map_2s(_np(t), _np(s.conv.weight)) * _np(t) for t in x]), rtol=1e-10
    )


def test_type2_maps_sum_to_one_over_the_documented_axes(x):
    with torch.no_grad():
        assert torch.allclose(SpatialGate(C).double().attention_map(x).sum(dim=(2, 3)), torch.ones(B, 1, dtype=torch.float64))
        assert torch.allclose(ChannelGate(C).double().attention_map(x).sum(dim=1), torch.ones(B, 1, 1, dtype=torch.float64))
        assert torch.allclose(HyperGate(C).attention_map(x).sum(dim=(1, 2, 3)), torch.ones(B, dtype=torch.float64))


def test_wrong_softmax_axis_would_be_caught(x):
    """The oracle discriminates the row-wise softmax of Eq. (7) from a column-wise one."""
    x = x * 0.3
    m = _prepared(ChannelAttention(C))
    got = _run(m, x)[0]
    X = _np(x[0]).reshape(C, -1)
    E = X @ X.T
    Z = np.exp(E - E.max())
    wrong = 0.7 * ((Z / Z.sum(axis=0, keepdims=True)) @ X) + X  # normalised over j, not i
    assert np.abs(got.reshape(C, -1) - wrong).max() > 1e-3


@pytest.mark.parametrize("module", ["1s", "1c", "1h", "1b"])
def test_type1_is_identity_at_init(module, x):
    m = create_attention(module, C).double().eval()
    assert all(float(p.detach()) == 0.0 for n, p in m.named_parameters() if n.endswith("alpha"))
    np.testing.assert_array_equal(_run(m, x), _np(x))


def test_sum_arrangement_of_type1_is_twice_the_input_at_init(x):
    np.testing.assert_array_equal(_run(create_attention("1sum", C).double().eval(), x), 2 * _np(x))


def _spatial_ref(m):
    """The Eq. (5)-(6) oracle bound to a SpatialAttention module's weights."""
    return lambda i: ref.spatial_attention_1s(i, *_conv(m.query), *_conv(m.key), *_conv(m.value), 0.7)


def test_type1_arrangements_compose_as_fig6(x):
    x = x * 0.3
    for token in ("1sc", "1cs", "1sum"):
        m = _prepared(create_attention(token, C))
        spatial = m.spatial if token == "1sum" else (m.first if token == "1sc" else m.second)
        s = _spatial_ref(spatial)
        c = lambda i: ref.channel_attention_1c(i, 0.7)  # noqa: E731
        compose = {"1sc": lambda i: c(s(i)), "1cs": lambda i: s(c(i)), "1sum": lambda i: s(i) + c(i)}[token]
        want = np.stack([compose(_np(t)) for t in x])
        np.testing.assert_allclose(_run(m, x), want, rtol=1e-9, atol=1e-9, err_msg=token)


def test_type2_arrangements_compose_as_fig6_and_eq3(x):
    for token in ("2sc", "2cs", "2sum", "2multiply"):
        m = _prepared(create_attention(token, C))
        if token in ("2sc", "2cs"):
            sg, cg = (m.first, m.second) if token == "2sc" else (m.second, m.first)
        else:
            sg, cg = m.spatial, m.channel
        S = lambda i: ref.spatial_map_2s(i, _np(sg.conv.weight))  # noqa: E731
        Cm = lambda i: ref.channel_map_2c(i, _np(cg.mlp[0].weight), _np(cg.mlp[2].weight))  # noqa: E731
        compose = {
            "2sc": lambda i: Cm(S(i) * i) * (S(i) * i),
            "2cs": lambda i: S(Cm(i) * i) * (Cm(i) * i),
            "2sum": lambda i: S(i) * i + Cm(i) * i,
            "2multiply": lambda i: (Cm(i) * S(i)) * i,
        }[token]
        want = np.stack([compose(_np(t)) for t in x])
        np.testing.assert_allclose(_run(m, x), want, rtol=1e-9, atol=1e-12, err_msg=token)


def test_softmax_is_safe_for_large_logits():
    """Logits of order 1e4 (post-ReLU features at stage 3 reach this) must not overflow."""
    big = torch.full((1, 8, 2, 2), 60.0)
    big[0, 0] = 61.0
    m = _prepared(ChannelAttention(8)).float()
    out = m(big)
    assert torch.isfinite(out).all()
    # channel 0 has the largest dot product with everyone, so every channel attends to it
    np.testing.assert_allclose(out[0, 1].detach().numpy(), 0.7 * 61.0 + 60.0, rtol=1e-6)


def test_all_equal_logits_give_a_uniform_map():
    m = _prepared(HyperGate(4))
    x = torch.ones(1, 4, 3, 3, dtype=torch.float64)
    np.testing.assert_allclose(_np(m.attention_map(x)), np.full((1, 4, 3, 3), 1 / 36))


class TestBatchAttentionInference:
    """1b at inference: documented in BatchAttention's docstring and README."""

    def _batch(self):
        torch.manual_seed(2)
        base = torch.rand(1, 3, 2, 2, dtype=torch.float64)
        # sample 1 is sample 0 scaled up, so sample 0 attends mostly to sample 1
        return torch.cat([base, 3 * base, torch.rand(1, 3, 2, 2, dtype=torch.float64)])

    def test_batch_of_one_gives_one_plus_alpha(self):
        f = self._batch()[:1]
        np.testing.assert_allclose(_run(_prepared(BatchAttention(3)), f), 1.7 * _np(f), rtol=1e-12)

    def test_batch_mode_depends_on_the_other_images(self):
        f = self._batch()
        m = _prepared(BatchAttention(3))
        alone, together = _run(m, f[:1])[0], _run(m, f)[0]
        assert np.abs(alone - together).max() > 0.1

    def test_self_mode_is_batch_independent(self):
        f = self._batch()
        m = _prepared(BatchAttention(3, eval_mode="self"))
        np.testing.assert_allclose(_run(m, f), 1.7 * _np(f), rtol=1e-12)
        m.train()  # training always attends over the batch
        np.testing.assert_allclose(_np(m(f)), ref.batch_attention_1b(_np(f), 0.7), rtol=1e-10)
