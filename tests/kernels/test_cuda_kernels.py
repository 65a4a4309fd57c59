"""The CUDA kernels against the float64 oracle (GPU only; needs `make native`).

Tolerances (issue 4): fp32 1e-5 relative to the output scale, fp16 2e-3 relative - plus, for
fp16, a few units of the smallest subnormal (2^-24): the Type II gates' outputs are tiny
(softmax weights of ~1/(C*H*W) times x) and fall into fp16's subnormal range, where no fp16
implementation can be more precise than its rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import op_reference as ref
from adfl_deploy.train.models.attention import ops
from adfl_deploy.train.models.attention.cuda_kernels import library_path, use_cuda_kernels

pytestmark = pytest.mark.gpu

# attn2/attn3/attn4 of ResNet50 at 384x128 and 256x128 (C, H, W), plus a ResNet18 attn3 shape
SHAPES = [(512, 48, 16), (1024, 24, 8), (2048, 24, 8), (512, 32, 16), (1024, 16, 8), (256, 8, 4)]


@pytest.fixture(scope="module", autouse=True)
def kernels():
    if not use_cuda_kernels():
        pytest.skip(f"kernel library not built at {library_path()} (run make native)")


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 2e-3)])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("op", list(ops.OPS))
def test_kernel_matches_oracle(op, batch, shape, dtype, tol):
    inputs = ref.random_inputs(op, batch, *shape, np.random.default_rng(0), scale=0.1)
    cast = [torch.from_numpy(a).to("cuda", dtype) for a in inputs]
    want = ref.OPS[op](*[t.float().cpu().numpy() for t in cast])  # oracle on the rounded inputs
    got = ops.OPS[op](*cast).float().cpu().numpy()
    scale = np.abs(want).max()
    floor = 4 * 2.0**-24 if dtype == torch.float16 else 0.0
    err = np.abs(got - want).max()
    assert err <= tol * scale + floor, f"{op} {shape} {dtype}: max error {err:.2e} at output scale {scale:.2e}"
