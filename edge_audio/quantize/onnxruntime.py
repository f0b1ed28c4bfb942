"""ONNX Runtime's INT8: static QDQ (``ort_static``, ``ort_static_per_tensor``) and dynamic (``ort_dynamic``), and the
analyses of a QDQ graph (which operators stay float, each layer's sensitivity).

* ``ort_static``: ONNX Runtime static quantization, QDQ format, per-channel INT8 weights, activations calibrated
  on clips from the training folds (MinMax, Entropy or Percentile). BatchNorm is folded into the convolutions
  before export, so the INT8 weights are the folded ones. On a CPU without an INT8 dot-product instruction
  (VNNI/AMX) the weights use 7 bits (``reduce_range``) to avoid saturation in ONNX Runtime's AVX2 kernels.
* ``ort_static_per_tensor``: the same with one scale per weight tensor (the classic source of accuracy loss in
  depthwise CNNs, kept for comparison).
* ``ort_dynamic``: ONNX Runtime dynamic quantization (weights INT8, activations quantized on the fly).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_dynamic, quantize_static

from ..errors import ModelFileError
from ..export import strip_for_deployment
from ..machine import cpu_int8_dot_product
from ..metrics import classification_metrics
from ..runtimes import open_model
from ..runtimes.onnxruntime import onnx_session
from ..storage import atomic_write_bytes
from .calibration import CALIBRATION_METHODS, CalibrationReader, quiet_quantizer
from .registry import Method, QuantizationInputs, register


def _preprocessed(fp32_path: Path, scratch: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (shape inference, graph optimisation) before quantization.

    A failure here is an error of the quantization (never skipped quietly: the quantized graph would differ).
    """
    out = scratch / "preprocessed.onnx"
    with quiet_quantizer():
        quant_pre_process(str(fp32_path), str(out), skip_symbolic_shape=True)
    return out


def _write_deployed(quantized: Path, out_path: Path) -> None:
    """The quantizer's output, stripped for deployment with short tensor names, written atomically to
    ``out_path``."""
    proto = strip_for_deployment(onnx.load(str(quantized)), short_names=True)
    onnx.checker.check_model(proto)
    atomic_write_bytes(out_path, proto.SerializeToString())


def quantize_onnx_static(fp32_path: str | os.PathLike, out_path: str | os.PathLike, calibration: np.ndarray,
                         calibration_method: str = "minmax", per_channel: bool = True,
                         nodes_to_quantize: list[str] | None = None, reduce_range: bool | None = None,
                         activations: str = "int8", quant_format: str = "qdq") -> Path:
    """Static INT8 of an FP32 ONNX model, calibrated on ``calibration``: signed INT8 weights, ``activations``
    ``"int8"`` (S8S8, the default), ``"int16"`` (symmetric, zero point 0: TFLite's 16x8 scheme) or ``"uint8"``
    (U8S8), in ``quant_format`` ``"qdq"`` (the default) or ``"qoperator"`` (uint8 and qoperator only for
    ``benchmarks/int8_findings.py``, which compares them).

    ``reduce_range`` quantizes weights to 7 bits; None (the default) turns it on exactly when the CPU has no INT8
    dot-product instruction (:func:`edge_audio.machine.cpu_int8_dot_product`). Measured here (AVX2 only): full
    8-bit weights cost 4-15 accuracy points to saturation in ONNX Runtime's AVX2 kernels, 7-bit weights none.
    ``nodes_to_quantize`` limits quantization to those nodes (used for the per-layer sensitivity analysis).
    """
    if reduce_range is None:
        reduce_range = not cpu_int8_dot_product()
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    input_name = onnx_session(fp32_path).get_inputs()[0].name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edge-audio-quant-") as scratch:
        source = _preprocessed(fp32_path, Path(scratch))
        tmp_out = Path(scratch) / "int8.onnx"
        with quiet_quantizer():
            quantize_static(str(source), str(tmp_out), CalibrationReader(calibration, input_name),
                            quant_format={"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}[quant_format],
                            per_channel=per_channel, reduce_range=reduce_range,
                            activation_type={"int8": QuantType.QInt8, "uint8": QuantType.QUInt8,
                                             "int16": QuantType.QInt16}[activations],
                            weight_type=QuantType.QInt8,
                            calibrate_method=CALIBRATION_METHODS[calibration_method],
                            nodes_to_quantize=nodes_to_quantize,
                            extra_options={"ActivationSymmetric": activations == "int16", "WeightSymmetric": True})
        _write_deployed(tmp_out, out_path)
    return out_path


def quantize_onnx_dynamic(fp32_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """ONNX Runtime dynamic INT8 of an FP32 ONNX model (weights INT8, activations quantized at run time)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edge-audio-quant-") as scratch:
        source = _preprocessed(Path(fp32_path), Path(scratch))
        tmp_out = Path(scratch) / "int8.onnx"
        with quiet_quantizer():
            quantize_dynamic(str(source), str(tmp_out), weight_type=QuantType.QInt8)
        _write_deployed(tmp_out, out_path)
    return out_path


def quantizable_nodes(path: str | os.PathLike) -> list[str]:
    """Names of the Conv and Gemm/MatMul nodes of an ONNX model, in graph order (the layers that carry weights)."""
    graph = onnx.load(str(path)).graph
    return [node.name for node in graph.node if node.op_type in ("Conv", "Gemm", "MatMul")]


def evaluate_onnx(path: str | os.PathLike, features: np.ndarray, labels: np.ndarray, num_classes: int,
                  threads: int = 1) -> dict:
    """Metrics of the ONNX model at ``path`` computed from its own outputs on ``features`` (clips, mels, frames).

    Raises :class:`~edge_audio.errors.ModelFileError` naming the file when it is corrupt or does not take
    these features.
    """
    logits = open_model(path, "onnxruntime", threads=threads).predict(features[:, None])
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ModelFileError(f"ONNX model {path} outputs shape {logits.shape[1:]}, expected ({num_classes},) logits")
    return classification_metrics(labels, logits.argmax(axis=1), num_classes)


def layer_sensitivity(fp32_path: str | os.PathLike, calibration: np.ndarray, features: np.ndarray,
                      labels: np.ndarray, num_classes: int, calibration_method: str = "minmax",
                      threads: int = 1) -> list[dict]:
    """Quantize one weighted layer at a time (per-channel, then per-tensor) and measure the accuracy drop of each.

    Returns one row per (layer, granularity): ``layer``, ``op``, ``per_channel``, ``accuracy``, ``drop``
    (points below the FP32 model on the same clips).
    """
    baseline = evaluate_onnx(fp32_path, features, labels, num_classes, threads)["accuracy"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-audio-sensitivity-") as scratch:
        source = _preprocessed(Path(fp32_path), Path(scratch))
        ops = {node.name: node.op_type for node in onnx.load(str(source)).graph.node}
        for index, node in enumerate(quantizable_nodes(source)):
            for per_channel in (True, False):
                out = Path(scratch) / f"layer{index}-{int(per_channel)}.onnx"
                quantize_onnx_static(source, out, calibration, calibration_method, per_channel, [node])
                accuracy = evaluate_onnx(out, features, labels, num_classes, threads)["accuracy"]
                rows.append({"layer": f"{index}: {ops[node]} {node}", "op": ops[node], "per_channel": per_channel,
                             "accuracy": accuracy, "drop": round(baseline - accuracy, 4)})
    return rows


def float_operators(path: str | os.PathLike) -> dict[str, int]:
    """Operator types of a QDQ model that still run in floating point, with counts.

    In QDQ form ONNX Runtime runs a node in INT8 when each of its activation inputs comes from a
    DequantizeLinear and each output feeds a QuantizeLinear; any other compute node stays float.
    """
    graph = onnx.load(str(path)).graph
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {init.name for init in graph.initializer}
    counts: dict[str, int] = {}
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            continue
        activations = [name for name in node.input if name and name not in initializers]
        fed_int8 = activations and all(
            name in producers and producers[name].op_type == "DequantizeLinear" for name in activations)
        feeds_int8 = all(consumer.op_type == "QuantizeLinear" for output in node.output
                         for consumer in consumers.get(output, [])) and any(
            output in consumers for output in node.output)
        if not (fed_int8 and feeds_int8):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def static_qdq(per_channel: bool) -> Callable[[QuantizationInputs, Path], dict]:
    """The static QDQ variant's writer, per channel or per tensor (OpenVINO's INT8 runs the same file)."""

    def apply(inputs: QuantizationInputs, out: Path) -> dict:
        quantize_onnx_static(inputs.fp32_onnx, out, inputs.calibration, inputs.calibration_method, per_channel,
                             reduce_range=inputs.reduce_range)
        return {"format": "QDQ", "per_channel": per_channel, "activations": "int8",
                "float_operators": float_operators(out),
                "weights": "int8 (7-bit range)" if inputs.reduce_range else "int8",
                "reduce_range": inputs.reduce_range, "calibration_method": inputs.calibration_method,
                "calibration_clips": len(inputs.calibration)}
    return apply


def _ort_dynamic(inputs: QuantizationInputs, out: Path) -> dict:
    quantize_onnx_dynamic(inputs.fp32_onnx, out)
    return {"weights": "int8", "activations": "dynamic"}


register(Method(name="ort_static", runtime="onnxruntime", int8_weights=True, int8_activations=True,
                description="ONNX Runtime static QDQ, per-channel INT8 weights, calibrated INT8 activations, "
                "BatchNorm folded", apply=static_qdq(per_channel=True), default=True, book=True, derived=True,
                reference=True, bench=True))
register(Method(name="ort_static_per_tensor", runtime="onnxruntime", int8_weights=True, int8_activations=True,
                description="the same with one scale per weight tensor", apply=static_qdq(per_channel=False)))
register(Method(name="ort_dynamic", runtime="onnxruntime", int8_weights=True, int8_activations=False,
                description="ONNX Runtime dynamic INT8: weights INT8, activations quantized at run time",
                apply=_ort_dynamic))
