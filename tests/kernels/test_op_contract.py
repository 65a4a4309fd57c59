"""One attention-op contract (issue 13): the Python table (adfl_deploy.model.attention_ops)
against what the built native libraries implement, read through their C APIs on the host (no
GPU, no TensorRT needed: libadfl_plugins.so links only the kernels and cudart), and against what
the torch and ONNX registries were actually given."""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path

import onnx
import pytest

from adfl_deploy.model import attention_ops as contract

BUILD = Path(__file__).resolve().parents[2] / "build"
CUDA_ERROR_INVALID_VALUE = 1


def _load(name: str, env: str) -> ctypes.CDLL:
    path = Path(os.environ.get(env, BUILD / name))
    if not path.is_file():
        pytest.skip(f"{path} not built (cmake -S . -B build && cmake --build build; plugins need TensorRT >= 10 headers)")
    try:
        return ctypes.CDLL(str(path))
    except OSError as e:  # built, but cannot load here: that is a failure, not a skip
        pytest.fail(f"{path} does not load: {e}")


@pytest.fixture(scope="module")
def native_contract() -> dict:
    lib = _load("libadfl_plugins.so", "ADFL_PLUGIN_LIBRARY")
    lib.adfl_op_contract_json.restype = ctypes.c_char_p
    return json.loads(lib.adfl_op_contract_json().decode())


def test_plugin_library_describes_the_python_contract(native_contract):
    c = native_contract
    assert (c["domain"], c["op_version"], c["plugin_namespace"], c["plugin_version"]) == (
        contract.DOMAIN,
        contract.OP_VERSION,
        contract.PLUGIN_NAMESPACE,
        contract.PLUGIN_VERSION,
    )
    assert c["max_elements"] == contract.MAX_ELEMENTS
    assert [o["name"] for o in c["ops"]] == list(contract.NAMES)
    for native, op in zip(c["ops"], contract.OPS):
        assert native["op_type"] == op.op_type, op.name
        assert (native["plugin_namespace"], native["plugin_version"]) == (contract.PLUGIN_NAMESPACE, contract.PLUGIN_VERSION)
        assert native["nb_outputs"] == 1 and native["output"] == op.output, op.name
        assert tuple(native["inputs"]) == op.inputs, op.name
        assert native["output_like"] == op.output_like, op.name
        # types the plugin's supportsFormatCombination accepts, not a second table
        assert tuple(native["dtypes"]) == op.dtypes, op.name
        assert [(lim["name"], lim["input"], tuple(lim["dims"]), lim["max"]) for lim in native["limits"]] == [
            (lim.name, lim.input, lim.dims, lim.maximum) for lim in op.limits
        ], op.name


def test_contract_values_written_out():
    """The contract's numbers, written out by hand from the kernels' design (README, issue 19)."""
    assert contract.DTYPES == ("float32", "float16")  # no bfloat16 anywhere
    assert contract.BY_NAME["channel_attention"].check_limits({"x": (1, 8, 32, 32), "alpha": (1,)}) == ""
    assert "positions 1056" in contract.BY_NAME["channel_attention"].check_limits({"x": (1, 8, 33, 32), "alpha": (1,)})
    spatial = contract.BY_NAME["spatial_attention"]
    ok = {"q": (1, 1024, 2, 2), "k": (1, 1024, 2, 2), "v": (1, 2048, 2, 2), "x": (1, 2048, 2, 2), "alpha": (1,)}
    assert spatial.check_limits(ok) == ""
    assert "channels 2049" in spatial.check_limits({**ok, "x": (1, 2049, 2, 2)})
    assert "reduced_channels 1025" in spatial.check_limits({**ok, "q": (1, 1025, 2, 2)})
    assert "32-bit" in contract.BY_NAME["hyper_gate"].check_limits({"x": (2, 1024, 1024, 1024)})
    assert contract.op("HyperGate") is contract.op("hyper_gate")
    with pytest.raises(KeyError, match="no adfl attention op"):
        contract.op("Softmax")


def test_torch_schemas_follow_the_contract():
    torch = pytest.importorskip("torch")
    from adfl_deploy.train.models.attention import ops  # noqa: F401  (registers torch.ops.adfl)

    for op in contract.OPS:
        schema = getattr(torch.ops.adfl, op.name).default._schema
        assert tuple(a.name for a in schema.arguments) == op.inputs, op.name
        assert len(schema.returns) == 1, op.name


def test_onnx_schemas_follow_the_contract():
    pytest.importorskip("torch")
    from adfl_deploy.export import onnx_ops  # noqa: F401  (registers the com.adfl schemas)

    for op in contract.OPS:
        schema = onnx.defs.get_schema(op.op_type, contract.OP_VERSION, contract.DOMAIN)
        assert tuple(p.name for p in schema.inputs) == op.inputs, op.name
        assert [p.name for p in schema.outputs] == [op.output], op.name
        (constraint,) = schema.type_constraints
        assert sorted(constraint.allowed_type_strs) == ["tensor(float)", "tensor(float16)"], op.name
        body = onnx_ops.function_proto(op.op_type)
        assert tuple(body.input) == op.inputs and list(body.output) == [op.output], op.name


@pytest.fixture(scope="module")
def kernels_lib() -> ctypes.CDLL:
    return _load("libadfl_kernels.so", "ADFL_KERNELS_LIB")


def test_kernel_library_has_every_entry_point(kernels_lib):
    pytest.importorskip("torch")
    from adfl_deploy.train.models.attention.cuda_kernels import entry_points

    for op in contract.OPS:
        for symbol in entry_points(op.name):
            assert hasattr(kernels_lib, symbol), f"{symbol} missing for {op.name}"


def _null() -> ctypes.c_void_p:
    return ctypes.c_void_p(None)


def test_kernel_launchers_refuse_shapes_beyond_the_contract_before_launching(kernels_lib):
    """Null pointers and over-limit shapes: the launchers must answer cudaErrorInvalidValue from
    the arguments alone (safe with or without a GPU: nothing is launched)."""
    for suffix in ("f32", "f16"):
        channel = getattr(kernels_lib, f"adfl_channel_attention_{suffix}")
        # positions = H*W = 1025 > 1024 (32 lanes x 32 values)
        assert channel(_null(), _null(), _null(), 1, 16, 1025, _null()) == CUDA_ERROR_INVALID_VALUE
        spatial = getattr(kernels_lib, f"adfl_spatial_attention_{suffix}")
        # C = 2049 > 2048; then C' = 1025 > 1024
        assert spatial(*[_null()] * 6, 1, 2049, 8, 16, _null()) == CUDA_ERROR_INVALID_VALUE
        assert spatial(*[_null()] * 6, 1, 64, 1025, 16, _null()) == CUDA_ERROR_INVALID_VALUE
        assert channel(_null(), _null(), _null(), -1, 16, 16, _null()) == CUDA_ERROR_INVALID_VALUE
        gate = getattr(kernels_lib, f"adfl_softmax_gate_{suffix}")
        # unknown gate kind; a missing workspace
        assert gate(3, _null(), _null(), _null(), 1, 4, 4, ctypes.c_void_p(16), _null()) == CUDA_ERROR_INVALID_VALUE
        assert gate(2, _null(), _null(), _null(), 1, 4, 4, _null(), _null()) == CUDA_ERROR_INVALID_VALUE
        hyper = getattr(kernels_lib, f"adfl_hyper_attention_{suffix}")
        assert hyper(_null(), _null(), _null(), _null(), 2, 2**30 + 1, _null()) == CUDA_ERROR_INVALID_VALUE  # > 2^31 - 1
    kernels_lib.adfl_softmax_gate_workspace_size.restype = ctypes.c_size_t
    # 8 bytes (max, sum) per chunk of 8192 logits per sample: 3 samples x ceil(20000 / 8192) = 9 chunks
    assert kernels_lib.adfl_softmax_gate_workspace_size(3, 20000) == 3 * 3 * 8
