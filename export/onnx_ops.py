"""The fused attention ops in ONNX: one ``com.adfl`` node each, in two flavours.

- **portable** (``model.onnx``): every custom node has a model-local ONNX function of the same
  name whose body is the standard-op decomposition (MatMul, Softmax, ...), so ONNX Runtime -
  CPU or CUDA EP, no extra library - inlines it and runs the model.
- **tensorrt** (``model.trt.onnx``): the same graph without the local functions and with
  ``plugin_namespace``/``plugin_version`` attributes. TensorRT's ONNX parser prefers a local
  function over a plugin of the same name (its importer looks up built-in ops, then local
  functions, then falls back to the plugin registry by op type), so a file with the functions
  would silently run the decomposition; without them it maps each node to the plugin from
  ``libadfl_plugins.so``.

Names, inputs, types and the op version come from the contract,
``adfl_deploy.model.attention_ops`` (its C++ twin is checked against it by
``tests/kernels/test_op_contract.py``).
"""

from __future__ import annotations

import onnx
import onnxscript
import torch
from onnx import TensorProto, helper

from adfl_deploy.model import attention_ops as contract

DOMAIN = contract.DOMAIN
VERSION = contract.OP_VERSION
PLUGIN_NAMESPACE = contract.PLUGIN_NAMESPACE
PLUGIN_VERSION = contract.PLUGIN_VERSION
BODY_OPSET = 18

#: torch op name -> (ONNX op type, input names)
OP_TYPES = {op.name: (op.op_type, list(op.inputs)) for op in contract.OPS}
_ONNX_TYPE = {"float32": "tensor(float)", "float16": "tensor(float16)"}
#: what the nodes accept: the contract's types (float32, float16), which the plugin implements
FLOAT_TYPES = [_ONNX_TYPE[t] for t in contract.DTYPES]


def _register_schemas() -> None:
    """Register the ops' schemas with onnx (in this process) so onnxscript can emit them and
    the checker knows their arity and types."""
    for op_type, inputs in OP_TYPES.values():
        if onnx.defs.has(op_type, DOMAIN):
            continue
        schema = onnx.defs.OpSchema(
            op_type,
            DOMAIN,
            VERSION,
            "ADFL fused attention op; contract in cuda_kernels/README.md",
            inputs=[onnx.defs.OpSchema.FormalParameter(name, "T") for name in inputs],
            outputs=[onnx.defs.OpSchema.FormalParameter(contract.OUTPUT, "T")],
            type_constraints=[("T", FLOAT_TYPES, "float tensors")],
            attributes=[
                onnx.defs.OpSchema.Attribute(name, onnx.defs.OpSchema.AttrType.STRING, "TensorRT plugin lookup", required=False)
                for name in ("plugin_namespace", "plugin_version")
            ],
        )
        onnx.defs.register_schema(schema)


_register_schemas()
_adfl = onnxscript.values.Opset(DOMAIN, VERSION)


def _translation(op_type: str, n_inputs: int):
    """An onnxscript translation emitting one custom-domain node (same arity as the op)."""
    emit = getattr(_adfl, op_type)
    if n_inputs == 1:
        return lambda a: emit(a)
    if n_inputs == 2:
        return lambda a, b: emit(a, b)
    if n_inputs == 3:
        return lambda a, b, c: emit(a, b, c)
    return lambda a, b, c, d, e: emit(a, b, c, d, e)


def custom_translation_table() -> dict:
    """``torch.onnx.export(..., custom_translation_table=...)`` entries for the adfl ops."""
    from adfl_deploy.train.models.attention import ops  # noqa: F401  (registers torch.ops.adfl)

    return {
        getattr(torch.ops.adfl, name).default: _translation(op_type, len(inputs)) for name, (op_type, inputs) in OP_TYPES.items()
    }


# --- function bodies: the standard-op decomposition of each contract -------------------------


def _const(name: str, values: list[int]):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [len(values)], values))


def _n(op: str, inputs: list[str], outputs: list[str], **attrs):
    return helper.make_node(op, inputs, outputs, **attrs)


def _spatial_attention_body() -> list:
    # e[b, j, i] = q_j . k_i ; a = softmax_i ; out[b, c, j] = sum_i v[b, c, i] a[b, j, i]
    return [
        _const("flat", [0, 0, -1]),
        _n("Reshape", ["q", "flat"], ["qf"]),
        _n("Transpose", ["qf"], ["qt"], perm=[0, 2, 1]),
        _n("Reshape", ["k", "flat"], ["kf"]),
        _n("MatMul", ["qt", "kf"], ["e"]),
        _n("Softmax", ["e"], ["a"], axis=-1),
        _n("Transpose", ["a"], ["at"], perm=[0, 2, 1]),
        _n("Reshape", ["v", "flat"], ["vf"]),
        _n("MatMul", ["vf", "at"], ["o"]),
        _n("Shape", ["x"], ["shape"]),
        _n("Reshape", ["o", "shape"], ["o4"]),
        _n("Mul", ["alpha", "o4"], ["scaled"]),
        _n("Add", ["scaled", "x"], ["y"]),
    ]


def _channel_attention_body() -> list:
    # e[b, j, i] = I_j . I_i ; a = softmax_i ; out_j = sum_i a[j, i] I_i
    return [
        _const("flat", [0, 0, -1]),
        _n("Reshape", ["x", "flat"], ["xf"]),
        _n("Transpose", ["xf"], ["xt"], perm=[0, 2, 1]),
        _n("MatMul", ["xf", "xt"], ["e"]),
        _n("Softmax", ["e"], ["a"], axis=-1),
        _n("MatMul", ["a", "xf"], ["o"]),
        _n("Shape", ["x"], ["shape"]),
        _n("Reshape", ["o", "shape"], ["o4"]),
        _n("Mul", ["alpha", "o4"], ["scaled"]),
        _n("Add", ["scaled", "x"], ["y"]),
    ]


def _hyper_attention_body() -> list:
    # scalar locations: e[b, j, i] = q_j * k_i ; out_j = sum_i softmax_i(e) v_i
    return [
        _const("column", [0, -1, 1]),
        _const("row", [0, 1, -1]),
        _n("Reshape", ["q", "column"], ["qc"]),
        _n("Reshape", ["k", "row"], ["kr"]),
        _n("MatMul", ["qc", "kr"], ["e"]),
        _n("Softmax", ["e"], ["a"], axis=-1),
        _n("Reshape", ["v", "column"], ["vc"]),
        _n("MatMul", ["a", "vc"], ["o"]),
        _n("Shape", ["v"], ["shape"]),
        _n("Reshape", ["o", "shape"], ["y"]),
    ]


def _flat_gate_body(logits: str) -> list:
    # softmax over every entry of each sample's logits, broadcast-multiplied onto x
    return [
        _const("flat", [0, -1]),
        _n("Reshape", [logits, "flat"], ["lf"]),
        _n("Softmax", ["lf"], ["a"], axis=-1),
        _n("Shape", [logits], ["shape"]),
        _n("Reshape", ["a", "shape"], ["a4"]),
        _n("Mul", ["a4", "x"], ["y"]),
    ]


def _channel_gate_body() -> list:
    return [
        _n("Softmax", ["logits"], ["a"], axis=-1),
        _const("axes", [2, 3]),
        _n("Unsqueeze", ["a", "axes"], ["a4"]),
        _n("Mul", ["a4", "x"], ["y"]),
    ]


BODIES = {
    "SpatialAttention": _spatial_attention_body,
    "ChannelAttention": _channel_attention_body,
    "HyperAttention": _hyper_attention_body,
    "SpatialGate": lambda: _flat_gate_body("logits"),
    "ChannelGate": _channel_gate_body,
    "HyperGate": lambda: _flat_gate_body("x"),
}


def function_proto(op_type: str) -> onnx.FunctionProto:
    spec = contract.op(op_type)
    return helper.make_function(
        DOMAIN,
        op_type,
        list(spec.inputs),
        [spec.output],
        BODIES[op_type](),
        opset_imports=[helper.make_opsetid("", BODY_OPSET)],
        doc_string=f"Standard-op decomposition of {DOMAIN}::{op_type} v{VERSION} (see cuda_kernels/README.md)",
    )


def custom_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.domain == DOMAIN]


def _ensure_opset(model: onnx.ModelProto) -> None:
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, VERSION))


def portable_flavour(model: onnx.ModelProto) -> onnx.ModelProto:
    """Attach one local function per custom op type used (ORT and any runtime expand them)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    _ensure_opset(out)
    del out.functions[:]
    for op_type in sorted({n.op_type for n in custom_nodes(out)}):
        out.functions.append(function_proto(op_type))
    return out


def tensorrt_flavour(model: onnx.ModelProto) -> onnx.ModelProto:
    """No local functions (they would hide the plugins) and plugin lookup attributes."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    _ensure_opset(out)
    del out.functions[:]
    for node in custom_nodes(out):
        names = {a.name for a in node.attribute}
        if "plugin_namespace" not in names:
            node.attribute.append(helper.make_attribute("plugin_namespace", PLUGIN_NAMESPACE))
        if "plugin_version" not in names:
            node.attribute.append(helper.make_attribute("plugin_version", PLUGIN_VERSION))
    return out
