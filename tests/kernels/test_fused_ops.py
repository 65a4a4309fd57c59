"""Every fused op: the float64 oracle vs the torch custom op vs the ONNX function body on ONNX
Runtime, on random and real inputs, plus numerical safety and autograd."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from adfl_deploy.export.onnx_ops import DOMAIN, OP_TYPES, VERSION, function_proto
from adfl_deploy.train.models.attention import ops

import op_reference as ref

OP_NAMES = list(OP_TYPES)
# attn3 of a ResNet18 at 256x128 (C=256, 16x8) and a small odd shape
SHAPES = [(2, 256, 16, 8), (3, 64, 5, 7)]


def run_torch(op: str, inputs: list[np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return ops.OPS[op](*[torch.from_numpy(a) for a in inputs]).numpy()


def run_onnx_function(op: str, inputs: list[np.ndarray]) -> np.ndarray:
    """A one-node model whose node is the custom op; ORT runs it through the local function."""
    op_type, names = OP_TYPES[op]
    out_shape = inputs[{"spatial_attention": 3, "hyper_attention": 2, "spatial_gate": 1, "channel_gate": 1}.get(op, 0)].shape
    graph = helper.make_graph(
        [helper.make_node(op_type, names, ["y"], domain=DOMAIN)],
        op,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape) for n, a in zip(names, inputs)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, VERSION)],
        functions=[function_proto(op_type)],
    )
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, dict(zip(names, inputs)))[0]


def _reverse_positions(a: np.ndarray) -> np.ndarray:
    """Reverse the order of the H*W positions of a (B, C, H, W) tensor (others untouched)."""
    if a.ndim != 4:
        return a
    b, c, h, w = a.shape
    return np.ascontiguousarray(a.reshape(b, c, h * w)[:, :, ::-1].reshape(b, c, h, w))


def fp32_baseline_error(op: str, inputs: list[np.ndarray], want: np.ndarray) -> float:
    """Max error of the same equations evaluated in plain float32 NumPy, in two summation
    orders (every op is equivariant to a joint permutation of the H*W positions), so the
    baseline reflects fp32 rounding rather than one lucky order."""
    ref.DTYPE = np.float32
    try:
        natural = ref.OPS[op](*inputs).astype(np.float64)
        reversed_ = _reverse_positions(ref.OPS[op](*[_reverse_positions(a) for a in inputs]).astype(np.float64))
    finally:
        ref.DTYPE = np.float64
    return float(max(np.abs(natural - want).max(), np.abs(reversed_ - want).max()))


def assert_close(got, want, what, baseline: float = 0.0, terms: int = 0):
    """Error relative to the output scale below 1e-5 or, where large logits make fp32 itself
    inaccurate, within 4x the error of a plain fp32 evaluation of the same equations (the
    flash-attention criterion, with room for the different summation orders of BLAS). A sum of
    ``terms`` fp32 numbers in one running order drifts by about sqrt(terms) roundings (NumPy's
    pairwise sums, the baseline, far less): the relative bound is at least 4 sqrt(terms) u."""
    scale = max(np.abs(want).max(), 1e-30)
    err = np.abs(got.astype(np.float64) - want).max()
    relative = max(1e-5, 4 * np.sqrt(terms) * np.finfo(np.float32).eps / 2)  # unit roundoff 6e-8
    assert err <= max(relative * scale, 4 * baseline), (
        f"{what}: max error {err:.2e} (scale {scale:.2e}, fp32 baseline {baseline:.2e})"
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", OP_NAMES)
def test_random_inputs(op, shape):
    inputs = ref.random_inputs(op, *shape, np.random.default_rng(0), scale=0.3)
    want = ref.OPS[op](*inputs)
    assert_close(run_torch(op, inputs), want, "torch")
    assert_close(run_onnx_function(op, inputs), want, "onnx function")


@pytest.fixture(scope="module")
def real_features():
    """Stage-3 features of real crops through a ResNet18 (as the attention module sees them)."""
    import torchvision

    from adfl_deploy.assets import load_sample_crops
    from adfl_deploy.model.preprocess import Preprocessing, to_blob

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    blob = torch.from_numpy(to_blob(load_sample_crops()[:4], Preprocessing(256, 128)))
    with torch.no_grad():
        x = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(blob)))))))
    return x.numpy()  # (4, 256, 16, 8), post-ReLU


@pytest.mark.parametrize("op", OP_NAMES)
def test_real_inputs(op, real_features):
    x = real_features
    b, c, h, w = x.shape
    rng = np.random.default_rng(1)
    proj = lambda out: np.einsum("oc,bchw->bohw", rng.standard_normal((out, c)).astype(np.float32) / np.sqrt(c), x)  # noqa: E731
    alpha = np.array([0.7], np.float32)
    inputs = {
        "spatial_attention": [proj(c // 8), proj(c // 8), proj(c), x, alpha],
        "channel_attention": [x, alpha],
        "hyper_attention": [proj(4), proj(4), proj(4)],
        "spatial_gate": [proj(1), x],
        "channel_gate": [x.mean(axis=(2, 3)), x],
        "hyper_gate": [x],
    }[op]
    inputs = [np.ascontiguousarray(a, dtype=np.float32) for a in inputs]
    want = ref.OPS[op](*inputs)
    baseline = fp32_baseline_error(op, inputs, want)
    # the hyper gate's softmax runs over all C*H*W = 32768 entries (Eq. 14): its fp32 sums drift
    # by ~1e-5 of the scale in a running order (measured 1.1e-5 with torch on an AVX2-only CPU)
    terms = c * h * w if op == "hyper_gate" else 0
    assert_close(run_torch(op, inputs), want, "torch", baseline, terms)
    assert_close(run_onnx_function(op, inputs), want, "onnx function", baseline, terms)


@pytest.mark.parametrize("op", OP_NAMES)
def test_large_logits_do_not_overflow(op):
    inputs = ref.random_inputs(op, 2, 64, 4, 4, np.random.default_rng(2), scale=30.0)  # logits ~1e4
    want = ref.OPS[op](*inputs)
    assert np.isfinite(want).all()
    baseline = fp32_baseline_error(op, inputs, want)
    for got, what in ((run_torch(op, inputs), "torch"), (run_onnx_function(op, inputs), "onnx")):
        assert np.isfinite(got).all(), what
        assert_close(got, want, what, baseline)


@pytest.mark.parametrize("op", OP_NAMES)
def test_all_equal_logits_give_uniform_weights(op):
    b, c, h, w = 1, 64, 3, 5
    one = np.ones((b, c, h, w), np.float32)
    inputs = {
        "spatial_attention": [np.zeros((b, 8, h, w), np.float32)] * 2 + [one * 2, one, np.array([1.0], np.float32)],
        "channel_attention": [one, np.array([1.0], np.float32)],
        "hyper_attention": [
            np.zeros((b, 1, h, w), np.float32),
            np.ones((b, 1, h, w), np.float32),
            np.arange(h * w, dtype=np.float32).reshape(b, 1, h, w),
        ],
        "spatial_gate": [np.zeros((b, 1, h, w), np.float32), one],
        "channel_gate": [np.zeros((b, c), np.float32), one],
        "hyper_gate": [one],
    }[op]
    # uniform weights: attention averages its values; gates become 1/N
    expected = {
        "spatial_attention": one * 2 + one,
        "channel_attention": one + one,
        "hyper_attention": np.full((b, 1, h, w), (h * w - 1) / 2, np.float32),
        "spatial_gate": one / (h * w),
        "channel_gate": one / c,
        "hyper_gate": one / (c * h * w),
    }[op]
    np.testing.assert_allclose(run_torch(op, inputs), expected, rtol=1e-5)
    np.testing.assert_allclose(run_onnx_function(op, inputs), expected, rtol=1e-5)


@pytest.mark.parametrize("op", OP_NAMES)
def test_autograd_through_the_composite(op):
    inputs = [
        torch.from_numpy(a.astype(np.float64)).requires_grad_()
        for a in ref.random_inputs(op, 1, 16, 2, 2, np.random.default_rng(3), 0.5)
    ]
    assert torch.autograd.gradcheck(ops.OPS[op], tuple(inputs))


def test_fused_model_matches_unfused_for_every_attention_module():
    import warnings

    from adfl_deploy.model.variants import ATTENTION_MODULES
    from adfl_deploy.train.models import create_model

    x = torch.randn(2, 3, 128, 64)
    for name in [f"attn3-{m}" for m in ATTENTION_MODULES] + ["AF3-cat-256-attn3-1sum"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = create_model(f"{name}@resnet18").eval()
        for n, p in model.named_parameters():
            if n.endswith("alpha"):
                p.data.fill_(0.5)
        with torch.no_grad():
            plain = model(x)
            fused = model.set_fused(True)(x)
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5 * float(plain.abs().max()), msg=name)
