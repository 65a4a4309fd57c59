"""FP16 copies of an exported graph, for GPUs: TensorRT (strongly typed: an fp16 engine needs an
fp16 ONNX) and ONNX Runtime's CUDA provider.

ONNX Runtime's own converter (``onnxruntime.transformers.float16``) rewrites every float tensor
and initializer to float16 and keeps the graph's I/O types: the input stays uint8 crops (or
float32), the embedding stays float32. The ``com.adfl`` nodes take float16, which the plugins
support (fp32 accumulation inside); the portable file's local functions carry no float
constants, so their decomposition runs in float16 too. The converter appends the input casts
of a float-input graph at the end of the node list; ``topologically_sorted`` puts them back
where ONNX requires.

What the CPU can and cannot check: ONNX Runtime's CPU provider runs float16 nodes it has no
float16 kernel for in float32 (it inserts casts), so ``fp16_parity`` on the CPU measures the
weights' rounding to float16, not float16 arithmetic. Overflow - the way float16 actually
breaks - is checked separately: ``max_activation`` runs the float32 model with every
intermediate tensor exposed (attention function bodies inlined, so the attention energies are
seen too) and the export refuses FP16 when any comes near float16's largest value.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx

#: float16's largest finite value, and the share of it an activation on real crops may reach
FP16_MAX = 65504.0
FP16_HEADROOM = 0.5


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of ``model`` with its input and output types unchanged."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # values clipped to the fp16 range are reported as warnings
        half = convert_float_to_float16(model, keep_io_types=True)
    nodes = topologically_sorted(half.graph)
    del half.graph.node[:]
    half.graph.node.extend(nodes)
    onnx.checker.check_model(half)
    return half


def topologically_sorted(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The graph's nodes, each after the producers of its inputs (stable: otherwise in file order)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        runnable = [n for n in pending if all(i in ready for i in n.input)]
        if not runnable:
            raise ValueError(f"graph {graph.name!r} has a cycle or an input nobody produces: {pending[0].input}")
        for node in runnable:
            ordered.append(node)
            ready.update(node.output)
        pending = [n for n in pending if n not in runnable]
    return ordered


def max_activation(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> tuple[float, str]:
    """(largest |value|, tensor name) over every float tensor the float32 ``model`` computes."""
    import onnxruntime as ort
    from onnx import inliner

    flat = inliner.inline_local_functions(model)
    names = [o for n in flat.graph.node for o in n.output if o]
    del flat.graph.output[:]
    flat.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    session = ort.InferenceSession(flat.SerializeToString(), providers=["CPUExecutionProvider"])
    values = session.run(None, feeds)
    return max(
        ((float(np.abs(v).max()), name) for v, name in zip(values, names) if v.dtype == np.float32 and v.size),
        default=(0.0, ""),
    )
