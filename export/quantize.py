"""INT8 QDQ models: static calibration on real crops through ONNX Runtime's quantization
tooling, per-channel symmetric int8 weights. The quantizer sees standard ops only: the
``com.adfl`` attention nodes and their function bodies stay in floating point, except channel
attention in the ``onnxruntime`` flavour, which ``int8_attention`` then quantizes deliberately.

Two activation flavours, because one file cannot be fast on both targets:

- ``target="onnxruntime"``: asymmetric **uint8** activations. On x86 ONNX Runtime's int8 kernels
  use VNNI's u8 x s8 dot products; measured on this project's CPU (AF3-cat-1024-attn3-1sum,
  384x128, batch 8, random weights): 13.2 ms/crop against 40.3 fp32, while signed activations
  ran at 36.9 (1.1x). Trained weights: results/bench-delegate-cpu.json (3.0x).
- ``target="tensorrt"``: symmetric **int8** activations (zero point 0), what TensorRT's explicit
  quantization accepts.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from adfl_deploy.model.preprocess import FLOAT_NCHW, UINT8_NHWC, Preprocessing, prepare

from .int8_attention import quantize_channel_attention

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


class _CropReader:
    """``CalibrationDataReader`` over batches of crops in the model's input format.

    Also sized and range-selectable (``__len__``, ``set_range``): with ``CalibStridedMinMax``
    ONNX Runtime then calibrates one batch at a time and merges the histograms, instead of
    holding every intermediate tensor of every batch in memory at once (the paper's ResNet50
    at 384x128 needs ~100 MB of activations per crop: 256 crops did not fit in 24 GiB).
    """

    def __init__(self, crops: list[np.ndarray], prep: Preprocessing, input_name: str, input_format: str, batch: int = 8) -> None:
        # equal-sized batches: the histogram calibrators stack them (a short last batch is dropped)
        batch = min(batch, len(crops))
        usable = len(crops) - len(crops) % batch
        self._name = input_name
        self._all = [prepare(crops[i : i + batch], prep, input_format) for i in range(0, usable, batch)]
        self._batches = iter(self._all)

    def __len__(self) -> int:
        return len(self._all)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._batches = iter(self._all[start_index:end_index])

    def get_next(self):
        blob = next(self._batches, None)
        return None if blob is None else {self._name: blob}


def _input_of(model_path: Path) -> tuple[str, str]:
    """(name, input format) of a model's single input, read from the file."""
    graph = onnx.load(str(model_path), load_external_data=False).graph
    (first,) = graph.input
    return first.name, UINT8_NHWC if first.type.tensor_type.elem_type == onnx.TensorProto.UINT8 else FLOAT_NCHW


TARGETS = ("onnxruntime", "tensorrt")
#: the standard ops quantized (the com.adfl attention nodes are never among them). Relu, Add
#: and MaxPool matter for speed, not for the arithmetic: without them every Conv -> Relu and
#: every residual Add leaves int8 for a float round trip (DequantizeLinear -> QuantizeLinear).
#: Measured on the ResNet50 delegate at batch 8: 12.7 ms/crop against 13.9 with Conv/Gemm/MatMul.
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul", "Relu", "Add", "MaxPool")


def quantize_int8(
    src: Path,
    dst: Path,
    crops: list[np.ndarray],
    prep: Preprocessing,
    method: str = "percentile",
    target: str = "onnxruntime",
    op_types: tuple[str, ...] = QUANTIZED_OPS,
) -> Path:
    """Write a QDQ INT8 copy of the ONNX ``src`` to ``dst`` (calibrated on ``crops``) for ``target``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if target not in TARGETS:
        raise ValueError(f"INT8 target {target!r} is not one of {', '.join(TARGETS)}")
    symmetric = target == "tensorrt"
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method {method!r} is not one of {', '.join(CALIBRATION_METHODS)}")
    if not crops:
        raise ValueError("INT8 calibration needs crops: pass --calib DIR with images")
    calibrate = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        out = Path(tmp) / dst.name
        quantize_static(
            str(src),
            str(out),
            _CropReader(crops, prep, *_input_of(src)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=calibrate,
            op_types_to_quantize=list(op_types),
            # TensorRT dequantizes only int8 tensors: keep the biases in float for it
            extra_options={
                "ActivationSymmetric": symmetric,
                "WeightSymmetric": True,
                "CalibTensorRangeSymmetric": symmetric,
                "QuantizeBias": not symmetric,
                "CalibStridedMinMax": 1,  # one batch per collection (any method, despite the name)
            },
        )
        model = onnx.load(str(out))
        if target == "onnxruntime":
            model, _ = quantize_channel_attention(model)
            onnx.save(model, str(out))
        onnx.checker.check_model(model)
        out.replace(dst)
    return dst
