"""The ctypes path to the CUDA kernels checks every input before handing raw pointers to a
launcher that reads them at one width (issue 19, item 2). Host-side: the checks run before the
device is looked at, so CPU tensors reach each of them."""

from __future__ import annotations

import pytest
import torch

from adfl_deploy.train.models.attention.cuda_kernels import check_inputs

f32, f16 = torch.float32, torch.float16


def t(*shape, dtype=f32):
    return torch.zeros(shape, dtype=dtype)


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_fp32_alpha_beside_fp16_activations_is_refused():
    # what autocast produces: fp16 activations, the fp32 parameter alpha
    with pytest.raises(TypeError) as e:
        check_inputs("channel_attention", (t(1, 8, 4, 4, dtype=f16), t(1)))
    msg = _one_line(e)
    assert "alpha is torch.float32" in msg and "x is torch.float16" in msg
    with pytest.raises(TypeError, match="k is torch.float32"):
        check_inputs(
            "spatial_attention",
            (t(1, 2, 4, 4, dtype=f16), t(1, 2, 4, 4), t(1, 16, 4, 4, dtype=f16), t(1, 16, 4, 4, dtype=f16), t(1, dtype=f16)),
        )
    with pytest.raises(TypeError, match="logits is torch.float16"):
        check_inputs("channel_gate", (t(1, 8, dtype=f16), t(1, 8, 4, 4)))


def test_types_outside_the_contract_are_refused():
    with pytest.raises(TypeError, match="float32 or float16") as e:
        check_inputs("hyper_gate", (t(1, 8, 4, 4, dtype=torch.bfloat16),))
    _one_line(e)
    with pytest.raises(TypeError, match="float32 or float16"):
        check_inputs("hyper_gate", (t(1, 8, 4, 4, dtype=torch.float64),))


def test_non_contiguous_inputs_are_refused():
    x = t(1, 4, 4, 8).permute(0, 3, 1, 2)  # (1, 8, 4, 4) in channels-last memory
    with pytest.raises(ValueError, match="x is not contiguous") as e:
        check_inputs("channel_attention", (x, t(1)))
    _one_line(e)
    every_other = t(8, 2)[:, 0].unsqueeze(0)  # (1, 8) with stride 2
    with pytest.raises(ValueError, match="logits is not contiguous"):
        check_inputs("channel_gate", (every_other, t(1, 8, 4, 4)))


def test_shapes_beyond_the_kernel_limits_are_refused():
    # 1c: H*W = 33*32 = 1056 > 1024; 32*32 = 1024 passes the shape checks (and then needs a GPU)
    with pytest.raises(ValueError, match="positions 1056 exceeds the kernel limit 1024") as e:
        check_inputs("channel_attention", (t(1, 4, 33, 32), t(1)))
    _one_line(e)
    with pytest.raises(RuntimeError, match="CUDA device"):
        check_inputs("channel_attention", (t(1, 4, 32, 32), t(1)))
    # 1s: C = 2049 > 2048; C' = 1025 > 1024
    with pytest.raises(ValueError, match="channels 2049 exceeds the kernel limit 2048"):
        check_inputs("spatial_attention", (t(1, 8, 2, 2), t(1, 8, 2, 2), t(1, 2049, 2, 2), t(1, 2049, 2, 2), t(1)))
    with pytest.raises(ValueError, match="reduced_channels 1025 exceeds the kernel limit 1024"):
        check_inputs("spatial_attention", (t(1, 1025, 2, 2), t(1, 1025, 2, 2), t(1, 64, 2, 2), t(1, 64, 2, 2), t(1)))


@pytest.mark.parametrize(
    "op,inputs,match",
    [
        ("channel_attention", (t(1, 8, 4, 4), t(2)), "alpha must have shape"),
        ("channel_attention", (t(8, 4, 4), t(1)), "must be 4-D"),
        ("spatial_attention", (t(1, 2, 4, 4), t(1, 3, 4, 4), t(1, 16, 4, 4), t(1, 16, 4, 4), t(1)), "q, k must be"),
        ("spatial_attention", (t(1, 2, 4, 4), t(1, 2, 4, 4), t(1, 16, 4, 4), t(1, 16, 4, 5), t(1)), "q, k must be"),
        ("spatial_attention", (t(1, 2, 4, 4), t(1, 2, 4, 4), t(1, 8, 4, 4), t(1, 16, 4, 4), t(1)), "v must have x's shape"),
        ("hyper_attention", (t(1, 2, 4, 4), t(1, 2, 4, 4), t(1, 2, 4, 3)), "q, k, v must share one shape"),
        ("spatial_gate", (t(1, 2, 4, 4), t(1, 8, 4, 4)), r"logits must be \(B, 1, H, W\)"),
        ("channel_gate", (t(1, 9), t(1, 8, 4, 4)), r"logits must be \(B, C\)"),
        ("hyper_gate", (t(1, 8, 4, 4), t(1, 8, 4, 4)), "takes 1 inputs"),
    ],
)
def test_shape_rules(op, inputs, match):
    with pytest.raises((ValueError, TypeError), match=match) as e:
        check_inputs(op, inputs)
    _one_line(e)


def test_host_tensors_are_refused_with_the_device_named():
    with pytest.raises(RuntimeError, match="x is on cpu") as e:
        check_inputs("hyper_gate", (t(1, 8, 4, 4),))
    _one_line(e)


@pytest.mark.gpu
def test_inputs_on_two_devices_are_refused():
    if torch.cuda.device_count() < 1:
        pytest.skip("needs a CUDA device")
    with pytest.raises(RuntimeError, match="alpha is on cpu"):
        check_inputs("channel_attention", (t(1, 8, 4, 4).cuda(), t(1)))
    assert check_inputs("channel_attention", (t(1, 8, 4, 4, dtype=f16).cuda(), t(1, dtype=f16).cuda())) == "f16"
