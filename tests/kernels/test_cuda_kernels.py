"""The CUDA kernels against the float64 oracle (GPU only; needs `make native`).

Selected with `-m gpu`: on a machine with a device a missing library fails (it does not skip).
Cases: small-scale random inputs at the ADFL shapes; inputs in the range of real stage-3
features (logits in the tens to hundreds: nearly one-hot rows); the row kernels at their
H*W / C / C' limits; refusals (types, layout, limits) and an earlier CUDA error left pending.

Tolerances (issue 4): fp32 1e-5 relative to the output scale, fp16 2e-3 relative - or, where
large logits make fp32 itself inexact, 4x a plain fp32 evaluation's error - plus, for
fp16, a few units of the smallest subnormal (2^-24): the Type II gates' outputs are tiny
(softmax weights of ~1/(C*H*W) times x) and fall into fp16's subnormal range, where no fp16
implementation can be more precise than its rounding."""

from __future__ import annotations

import ctypes
import subprocess

import numpy as np
import pytest
import torch

from adfl_deploy.train.models.attention import ops
from adfl_deploy.train.models.attention.cuda_kernels import library_path, use_cuda_kernels

import op_reference as ref

pytestmark = pytest.mark.gpu

# attn2/attn3/attn4 of ResNet50 at 384x128 and 256x128 (C, H, W), plus a ResNet18 attn3 shape
SHAPES = [(512, 48, 16), (1024, 24, 8), (2048, 24, 8), (512, 32, 16), (1024, 16, 8), (256, 8, 4)]
CUDA_ERROR_MEMORY_ALLOCATION = 2


@pytest.fixture(scope="module", autouse=True)
def kernels():
    # selected with -m gpu on a machine with a device: a missing library is a failure, not a skip
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    if not use_cuda_kernels():
        pytest.fail(f"kernel library not built at {library_path()} (cmake -S . -B build && cmake --build build)")


def fp32_baseline(op: str, inputs: list[np.ndarray], want: np.ndarray) -> float:
    """Max error of the same equations evaluated in plain float32 NumPy (the flash-attention
    criterion: a fused kernel should be within a few times what fp32 itself gets)."""
    ref.DTYPE = np.float32
    try:
        return float(np.abs(ref.OPS[op](*inputs).astype(np.float64) - want).max())
    finally:
        ref.DTYPE = np.float64


def check(op, inputs, dtype, tol, what=""):
    cast = [torch.from_numpy(np.ascontiguousarray(a)).to("cuda", dtype) for a in inputs]
    rounded = [t.float().cpu().numpy() for t in cast]
    want = ref.OPS[op](*rounded)  # oracle on the rounded inputs
    got = ops.OPS[op](*cast).float().cpu().numpy()
    assert np.isfinite(got).all(), f"{op} {what}: non-finite output"
    scale = np.abs(want).max()
    floor = 4 * 2.0**-24 if dtype == torch.float16 else 0.0
    bound = max(tol * scale, 4 * fp32_baseline(op, rounded, want)) + floor
    err = np.abs(got - want).max()
    assert err <= bound, f"{op} {what} {dtype}: max error {err:.2e} > {bound:.2e} (output scale {scale:.2e})"


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 2e-3)])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("op", list(ops.OPS))
def test_kernel_matches_oracle(op, batch, shape, dtype, tol):
    inputs = ref.random_inputs(op, batch, *shape, np.random.default_rng(0), scale=0.1)
    check(op, inputs, dtype, tol, str(shape))


def stage3_inputs(op: str, b: int, c: int, h: int, w: int, rng) -> list[np.ndarray]:
    """Inputs in the range of real stage-3 features: post-ReLU x of magnitude ~1 (channel logits
    x_i.x_j over H*W positions in the hundreds: nearly one-hot softmax rows), projections of it
    with logits in the tens, gate logits spread over tens."""
    x = np.abs(rng.standard_normal((b, c, h, w))).astype(np.float32)
    proj = lambda ch, s: (s * rng.standard_normal((b, ch, h, w))).astype(np.float32)  # noqa: E731
    alpha = np.array([0.7], np.float32)
    return {
        "spatial_attention": lambda: [proj(c // 8, 1.0), proj(c // 8, 1.0), proj(c, 1.0), x, alpha],
        "channel_attention": lambda: [x, alpha],
        "hyper_attention": lambda: [proj(max(1, c // 64), 4.0), proj(max(1, c // 64), 4.0), proj(max(1, c // 64), 1.0)],
        "spatial_gate": lambda: [proj(1, 10.0), x],
        "channel_gate": lambda: [(10 * rng.standard_normal((b, c))).astype(np.float32), x],
        "hyper_gate": lambda: [4 * x],
    }[op]()


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 2e-3)])
@pytest.mark.parametrize("shape", [(1024, 24, 8), (256, 16, 8)])
@pytest.mark.parametrize("op", list(ops.OPS))
def test_large_logits(op, shape, dtype, tol):
    check(op, stage3_inputs(op, 2, *shape, np.random.default_rng(1)), dtype, tol, f"stage-3 range {shape}")


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 2e-3)])
def test_row_kernels_at_their_limits(dtype, tol):
    """H*W = 1024 for 1c (32x32), C = 2048 and C' = 1024 for 1s: the largest lane slices."""
    rng = np.random.default_rng(2)
    alpha = np.array([0.7], np.float32)
    x = (0.05 * rng.standard_normal((1, 16, 32, 32))).astype(np.float32)
    check("channel_attention", [x, alpha], dtype, tol, "H*W = 1024")
    q, k = ((0.05 * rng.standard_normal((1, 1024, 4, 4))).astype(np.float32) for _ in range(2))
    v, xs = ((0.5 * rng.standard_normal((1, 2048, 4, 4))).astype(np.float32) for _ in range(2))
    check("spatial_attention", [q, k, v, xs, alpha], dtype, tol, "C = 2048, C' = 1024")


def test_error_paths():
    x16 = torch.rand(1, 8, 4, 4, device="cuda", dtype=torch.float16)
    with pytest.raises(TypeError, match="alpha is torch.float32"):
        ops.OPS["channel_attention"](x16, torch.ones(1, device="cuda"))
    with pytest.raises(ValueError, match="not contiguous"):
        ops.OPS["hyper_gate"](torch.rand(1, 4, 4, 8, device="cuda").permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match="positions 1056 exceeds the kernel limit 1024"):
        ops.OPS["channel_attention"](torch.rand(1, 4, 33, 32, device="cuda"), torch.ones(1, device="cuda"))
    # the next valid call still works (nothing left pending by the refusals)
    y = ops.OPS["hyper_gate"](torch.ones(1, 2, 2, 2, device="cuda"))
    torch.testing.assert_close(y.cpu(), torch.full((1, 2, 2, 2), 1 / 8))


def test_an_earlier_error_is_not_blamed_on_the_kernel():
    """A failed cudaMalloc leaves cudaErrorMemoryAllocation pending (not sticky): the launch must
    succeed and leave nothing pending, instead of returning the earlier error as its own."""
    libs = subprocess.run(["ldd", str(library_path())], capture_output=True, text=True).stdout
    soname = next(line.split("=>")[0].strip() for line in libs.splitlines() if "libcudart.so" in line)
    rt = ctypes.CDLL(soname)  # by soname: the runtime instance already loaded for the kernels
    pointer = ctypes.c_void_p()
    assert rt.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(1 << 60)) == CUDA_ERROR_MEMORY_ALLOCATION
    kernels = ctypes.CDLL(str(library_path()))
    q = torch.ones(1, 1, 4, 4, device="cuda")
    y = torch.empty_like(q)
    stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    ptr = lambda t: ctypes.c_void_p(t.data_ptr())  # noqa: E731
    assert kernels.adfl_hyper_attention_f32(ptr(q), ptr(q), ptr(q), ptr(y), 1, 16, stream) == 0
    torch.cuda.synchronize()
    assert rt.cudaGetLastError() == 0
    torch.testing.assert_close(y.cpu(), torch.ones(1, 1, 4, 4))  # uniform weights over ones
