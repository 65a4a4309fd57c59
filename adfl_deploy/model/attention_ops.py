"""The fused attention-op contract: the one Python source of names, inputs, types and limits.

Each softmax-attention block of ADFL is one op with the same name everywhere: the PyTorch
custom op ``adfl::<name>`` (``adfl_deploy.train.models.attention.ops``), the ONNX node
``com.adfl::<op_type>`` v1 (``adfl_deploy.export.onnx_ops``), the ctypes launchers of
``libadfl_kernels.so`` (``adfl_deploy.train.models.attention.cuda_kernels``) and the TensorRT
plugin ``<op_type>`` in namespace ``adfl``, version ``1`` (``libadfl_plugins.so``). The C++ side
reads its own table (``cuda_kernels/common/opContract.h``); ``tests/kernels/test_op_contract.py``
loads the built plugin library and checks that it describes exactly this table.

Torch-free and NumPy-free: the runtime may import it.
"""

from __future__ import annotations

from dataclasses import dataclass

DOMAIN = "com.adfl"
OP_VERSION = 1
PLUGIN_NAMESPACE = "adfl"
PLUGIN_VERSION = "1"
OUTPUT = "y"
#: element types every op takes (all inputs and the output of one node share one); the kernels
#: accumulate in float32. No bfloat16: neither the kernels nor the plugin have it.
DTYPES = ("float32", "float16")
#: elements per tensor, batch included (the kernels index with 32-bit ints)
MAX_ELEMENTS = 2**31 - 1
#: row attention keeps a query row as 32 lanes x 32 values, a value row as 32 lanes x 64
ROW_MAX_QUERY_DIM = 32 * 32
ROW_MAX_VALUE_DIM = 32 * 64


@dataclass(frozen=True)
class ShapeLimit:
    """The product of dimensions ``dims`` of input ``input`` must not exceed ``maximum``."""

    name: str
    input: str
    dims: tuple[int, ...]
    maximum: int

    def value(self, shape: tuple[int, ...]) -> int:
        out = 1
        for d in self.dims:
            out *= int(shape[d])
        return out


@dataclass(frozen=True)
class AttentionOp:
    name: str  # torch op adfl::<name>
    op_type: str  # ONNX op type in DOMAIN = TensorRT plugin name
    inputs: tuple[str, ...]
    output_like: str  # the output has this input's shape and type
    limits: tuple[ShapeLimit, ...] = ()
    output: str = OUTPUT
    dtypes: tuple[str, ...] = DTYPES

    @property
    def output_index(self) -> int:
        return self.inputs.index(self.output_like)

    def check_limits(self, shapes: dict[str, tuple[int, ...]]) -> str:
        """'' if ``shapes`` (input name -> shape) are within the kernels' limits, else why not."""
        for limit in self.limits:
            value = limit.value(shapes[limit.input])
            if value > limit.maximum:
                return f"{self.name}: {limit.name} {value} exceeds the kernel limit {limit.maximum}"
        for name, shape in shapes.items():
            count = 1
            for d in shape:
                count *= int(d)
            if count > MAX_ELEMENTS:
                return f"{self.name}: input {name} has more than {MAX_ELEMENTS} elements (32-bit indexing)"
        return ""


OPS: tuple[AttentionOp, ...] = (
    AttentionOp(
        "spatial_attention",
        "SpatialAttention",
        ("q", "k", "v", "x", "alpha"),
        "x",
        (ShapeLimit("channels", "x", (1,), ROW_MAX_VALUE_DIM), ShapeLimit("reduced_channels", "q", (1,), ROW_MAX_QUERY_DIM)),
    ),
    AttentionOp(
        "channel_attention", "ChannelAttention", ("x", "alpha"), "x", (ShapeLimit("positions", "x", (2, 3), ROW_MAX_QUERY_DIM),)
    ),
    AttentionOp("hyper_attention", "HyperAttention", ("q", "k", "v"), "v"),
    AttentionOp("spatial_gate", "SpatialGate", ("logits", "x"), "x"),
    AttentionOp("channel_gate", "ChannelGate", ("logits", "x"), "x"),
    AttentionOp("hyper_gate", "HyperGate", ("x",), "x"),
)

BY_NAME: dict[str, AttentionOp] = {op.name: op for op in OPS}
BY_OP_TYPE: dict[str, AttentionOp] = {op.op_type: op for op in OPS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def op(name: str) -> AttentionOp:
    """The op called ``name`` (torch name or ONNX op type); one-line error otherwise."""
    found = BY_NAME.get(name) or BY_OP_TYPE.get(name)
    if found is None:
        raise KeyError(f"no adfl attention op {name!r}; known: {', '.join(NAMES)}")
    return found


__all__ = [
    "DOMAIN",
    "OP_VERSION",
    "PLUGIN_NAMESPACE",
    "PLUGIN_VERSION",
    "OUTPUT",
    "DTYPES",
    "MAX_ELEMENTS",
    "ROW_MAX_QUERY_DIM",
    "ROW_MAX_VALUE_DIM",
    "ShapeLimit",
    "AttentionOp",
    "OPS",
    "BY_NAME",
    "BY_OP_TYPE",
    "NAMES",
    "op",
]
