"""Compression (8- and 4-bit weights, 8- and 16-bit activations, quantization-aware training), measured by running the
compressed model: the registry of methods and their implementations.

:data:`METHODS` is the one registry. A method has one name, used everywhere: in the ``methods`` parameter, as the
``variant`` of its records, in its file name (``models/<model>_<method>.onnx``) and in the plots.

* ``pytorch_dynamic``: ``torch.ao.quantization.quantize_dynamic`` on Linear layers, the reference pipeline's
  method. It leaves every convolution in FP32, so for a CNN it barely changes size or speed.
* ``ort_static``: ONNX Runtime static quantization, QDQ format, per-channel INT8 weights, activations calibrated
  on clips from the training folds (MinMax, Entropy or Percentile). BatchNorm is folded into the convolutions
  before export, so the INT8 weights are the folded ones. On a CPU without an INT8 dot-product instruction
  (VNNI/AMX) the weights use 7 bits (``reduce_range``) to avoid saturation in ONNX Runtime's AVX2 kernels.
* ``ort_static_per_tensor``: the same with one scale per weight tensor (the classic source of accuracy loss in
  depthwise CNNs, kept for comparison).
* ``openvino_int8``: the ``ort_static`` file run by OpenVINO (a QDQ file is OpenVINO's INT8 input format too;
  its NNCF flow writes the same kind of graph, so it is not needed while the import works), against the FP32 file
  in OpenVINO with FP32 pinned.
* ``ort_dynamic``: ONNX Runtime dynamic quantization (weights INT8, activations quantized on the fly).
* ``openvino_bf16``: not a smaller file but a cheaper arithmetic: the FP32 ONNX file run by OpenVINO with bf16
  inference precision (the CPU plugin's own default where the CPU has bf16 instructions, so measured here rather
  than left implicit), against the same file in OpenVINO with FP32 pinned. A CPU without bf16 support gives an
  error row (OpenVINO would silently run FP32). Its RAM is counted on the FP32 graph.
* ``tflite_int8``: full-integer TFLite (int8 weights, activations, input and output), written by
  :func:`edge_audio.tflite.onnx_to_tflite` from the ``ort_static`` QDQ graph with full 8-bit weights (the format
  microcontrollers run: TensorFlow Lite Micro with CMSIS-NN), run in LiteRT; its FP32 twin is the FP32 TFLite
  model of the same ONNX graph, timed in LiteRT too. Its memory is counted on the QDQ graph it was written from
  and cross-checked against TensorFlow Lite Micro's own arena (:func:`edge_audio.tflite.tflm_arena`).
* ``tflite_int4``: the same with 4-bit weights (per output channel for convolutions, per tensor for fully
  connected layers, packed two to a byte: TFLite's ``INT4``), post-training: the FP32 weights rounded to the
  4-bit grid (:func:`round_to_weight_grid`), then calibrated and written like ``tflite_int8``.
* ``tflite_mixed``: 4 or 8 bits per layer (:func:`layer_bits_for_budget`: the layers whose rounding to 4 bits
  moves the outputs least on the calibration clips, per byte saved, until the weights fit
  ``mixed_weight_fraction`` of their 8-bit bytes), int8 activations, post-training.
* ``tflite_int16x8``: full-integer TFLite with int16 activations (symmetric) and int8 weights, TFLite's "16x8"
  scheme, for models whose activations lose at 8 bits; int64 biases.
* ``qat_int8``, ``qat_int4``: quantization-aware training (:func:`quantization_aware_training`): the model, with
  BatchNorm folded, fine-tuned on its split's training folds through fake quantization of the deployed scheme
  (per-channel symmetric 8- or 4-bit weights, asymmetric int8 activations at the points where the QDQ graph
  quantizes them, ranges by MinMax over the calibration clips), then written exactly like ``tflite_int8`` and
  ``tflite_int4``: chapter 3 pairs each with the post-training variant of the same bit width.

Every variant's accuracy is computed from its own outputs; its size is its file on disk; its latency is measured
in the same runtime, with the same threads, as its FP32 twin (see :mod:`edge_audio.steps.quantization`).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

with warnings.catch_warnings():
    # ONNX Runtime's calibrator imports tqdm.auto, which warns inside kernels without ipywidgets; import it once,
    # quietly, so the warning does not land in the chapters.
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401

from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quant_pre_process, quantize_dynamic, quantize_static)
from torch import nn

from .errors import ModelFileError, ParameterError
from .export import export_to_onnx, fold_batchnorm, strip_for_deployment
from .machine import cpu_int8_dot_product
from .metrics import classification_metrics
from .names import file_name
from .runtimes import RUNTIMES, open_model
from .runtimes.onnxruntime import onnx_session
from .runtimes.pytorch import DYNAMIC_LINEAR, quantize_dynamic_linear, save_checkpoint
from .storage import atomic_write_bytes
from .train import optimizer_step

CALIBRATION_METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                       "percentile": CalibrationMethod.Percentile}


@dataclass(frozen=True)
class QATConfig:
    """Quantization-aware fine-tuning: epochs (the last is kept), Adam's learning rate (cosine decay to zero),
    batch size and seed (the order of the clips), read from a method's options (:data:`QAT_OPTIONS`)."""

    epochs: int
    lr: float
    batch_size: int
    seed: int

    @classmethod
    def from_options(cls, options: dict) -> "QATConfig":
        return cls(options["qat_epochs"], options["qat_learning_rate"], options["batch_size"], options["seed"])


@dataclass(frozen=True)
class QuantizationInputs:
    """What a method needs: the FP32 model (PyTorch and its ONNX export), calibration clips and settings, the
    values of the parameters it reads (``options``); a method that trains (:attr:`Method.trains`) also the split's
    training clips and their labels."""

    model: nn.Module
    fp32_onnx: Path
    calibration: np.ndarray  # (clips, 1, mels, frames)
    calibration_method: str
    reduce_range: bool  # 7-bit weights (chosen from the CPU; see the module docstring)
    training: tuple[np.ndarray, np.ndarray] | None = None  # (clips, mels, frames) and their labels
    options: dict = field(default_factory=dict)  # the values of the parameters the method reads (Method.options)


@dataclass(frozen=True, kw_only=True)
class Method:
    """A quantization method, every trait named where it is registered (:data:`METHODS`): its one name, the runtime its variant runs in (a name of
    :data:`edge_audio.runtimes.RUNTIMES`; its FP32 twin runs there too, and its file is of that runtime's type), and
    the function that writes the file and returns the settings it used. ``ram_graph`` says which ONNX graph its
    activations are counted on: its own file (``"artifact"``), the FP32 graph (``"fp32"``: a variant whose
    activations stay FP32 in a non-ONNX file), or the QDQ graph it was written from (``"source"``)."""

    name: str
    runtime: str
    int8_weights: bool  # every weight stored in INT8 (what the DCASE profile counts)
    int8_activations: bool  # activations stored in INT8 between operators (what a microcontroller needs)
    description: str
    apply: Callable[[QuantizationInputs, Path], dict]
    full_integer_tflite: bool = False  # a full-integer TFLite file: what a microcontroller runtime executes
    precision: str = "int8"  # what the variant computes in
    ram_graph: str = "artifact"
    weight_bits: int = 8  # bits of the narrowest stored weight (for int8_weights methods)
    activation_bits: int = 8  # bits of a stored activation (for full-integer methods: 8, or 16 for 16x8)
    trains: bool = False  # fine-tunes the model on the split's training clips (QAT)
    options: tuple[str, ...] = ()  # the parameters it reads: their values enter its variant's cache key
    bits: str = ""  # a full-integer method's bit widths: "w8 a8" (weights, activations); "w4/8 a8" per layer

    @property
    def suffix(self) -> str:
        """The extension of the variant's file: its runtime's file type."""
        return RUNTIMES[self.runtime].suffix

    def artifact(self, model: str) -> str:
        """The published file name of ``model``'s variant."""
        return f"{model}_{self.name}{self.suffix}"


def check_methods(methods: list[str], calibration_method: str = "minmax") -> None:
    """Raise :class:`~edge_audio.errors.ParameterError` naming any unknown quantization or calibration method."""
    unknown = [file_name(m, "quantization method") for m in methods if m not in METHODS]
    if unknown:
        raise ParameterError(f"unknown quantization method(s) {unknown}; choose from {', '.join(METHODS)}")
    if calibration_method not in CALIBRATION_METHODS:
        raise ParameterError(f"unknown calibration method {calibration_method!r}; choose from "
                             f"{', '.join(CALIBRATION_METHODS)}")


def calibration_set(features: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` clips drawn without replacement (seeded) from ``features``, shaped ``(n, 1, mels, frames)``.

    Warns and uses every clip there is when fewer than ``count`` are available.
    """
    if count < 1:
        raise ValueError(f"calibration size must be >= 1, got {count}")
    available = len(features)
    if available < count:
        warnings.warn(f"calibration set: {count} clips requested but the training folds hold {available}; "
                      f"calibrating on {available}", stacklevel=2)
        count = available
    chosen = np.sort(np.random.default_rng(seed).choice(available, size=count, replace=False))
    return features[chosen][:, None].astype(np.float32)


class _CalibrationReader(CalibrationDataReader):
    """Feeds calibration clips to ONNX Runtime one at a time (the histogram calibrators, Entropy and
    Percentile, stack per-call outputs and need equal batch sizes; batch 1 is also how the model is deployed)."""

    def __init__(self, clips: np.ndarray, input_name: str):
        self._batches = iter([{input_name: clips[i:i + 1]} for i in range(len(clips))])

    def get_next(self):
        return next(self._batches, None)


@contextlib.contextmanager
def _quiet_quantizer():
    """ONNX Runtime's quantizer logs advice and per-weight notes on the root logger; keep chapters readable."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _preprocessed(fp32_path: Path, scratch: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (shape inference, graph optimisation) before quantization.

    A failure here is an error of the quantization (never skipped quietly: the quantized graph would differ).
    """
    out = scratch / "preprocessed.onnx"
    with _quiet_quantizer():
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
        with _quiet_quantizer():
            quantize_static(str(source), str(tmp_out), _CalibrationReader(calibration, input_name),
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


def uncalibrated_tflite(fp32_path: str | os.PathLike, out: str | os.PathLike, weight_bits: int = 8) -> Path:
    """The full-integer TFLite model of an FP32 ONNX model with ``weight_bits``-bit weights (``tflite_int8``,
    ``tflite_int4``) written to ``out`` before any training, calibrated on two random clips: what the search
    measures a candidate's deployed costs on."""
    from .tflite import onnx_to_tflite

    session = onnx_session(fp32_path)
    declared = session.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in declared.shape]
    clips = np.random.default_rng(0).standard_normal((2, *shape[1:])).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="edge-audio-size-") as scratch:
        source = quantize_onnx_static(fp32_path, Path(scratch) / "int8.onnx", clips, reduce_range=False)
        return onnx_to_tflite(source, Path(out), weight_bits=weight_bits)


def tflite_bytes(fp32_path: str | os.PathLike, weight_bits: int = 8) -> int:
    """The bytes of :func:`uncalibrated_tflite`: the deployed file's bytes, known before training, since a file's
    size does not depend on the values of the weights or of the calibrated scales (checked by the tests against
    the calibrated variants)."""
    with tempfile.TemporaryDirectory(prefix="edge-audio-size-") as scratch:
        return os.path.getsize(uncalibrated_tflite(fp32_path, Path(scratch) / "model.tflite", weight_bits))


def quantize_onnx_dynamic(fp32_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """ONNX Runtime dynamic INT8 of an FP32 ONNX model (weights INT8, activations quantized at run time)."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edge-audio-quant-") as scratch:
        source = _preprocessed(Path(fp32_path), Path(scratch))
        tmp_out = Path(scratch) / "int8.onnx"
        with _quiet_quantizer():
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


# ---------------------------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------------------------

def _pytorch_dynamic(inputs: QuantizationInputs, out: Path) -> dict:
    save_checkpoint(quantize_dynamic_linear(inputs.model), out, inputs.calibration.shape[1:], DYNAMIC_LINEAR)
    return {"layers": "Linear", "dtype": "qint8"}


def _ort_static(per_channel: bool) -> Callable[[QuantizationInputs, Path], dict]:
    def apply(inputs: QuantizationInputs, out: Path) -> dict:
        quantize_onnx_static(inputs.fp32_onnx, out, inputs.calibration, inputs.calibration_method, per_channel,
                             reduce_range=inputs.reduce_range)
        return {"format": "QDQ", "per_channel": per_channel, "activations": "int8",
                "float_operators": float_operators(out),
                "weights": "int8 (7-bit range)" if inputs.reduce_range else "int8",
                "reduce_range": inputs.reduce_range, "calibration_method": inputs.calibration_method,
                "calibration_clips": len(inputs.calibration)}
    return apply


#: The QDQ graph a TFLite variant is written from, kept beside it (its memory is counted on it).
TFLITE_SOURCE_GRAPH = "source.qdq.onnx"


def _tflite_int8(inputs: QuantizationInputs, out: Path) -> dict:
    from .runtimes.tflm import tflm_arena
    from .tflite import onnx_to_tflite

    source = out.with_name(TFLITE_SOURCE_GRAPH)
    # full 8-bit weights: the 7-bit range only works around ONNX Runtime's AVX2 kernels, not a TFLite runtime
    quantize_onnx_static(inputs.fp32_onnx, source, inputs.calibration, inputs.calibration_method, per_channel=True,
                         reduce_range=False)
    onnx_to_tflite(source, out)
    return {"format": "TFLite full-integer", "activations": "int8", "input": "int8", "output": "int8",
            "weights": "int8, per output channel (convolutions), per tensor (fully connected)",
            "reduce_range": False, "calibration_method": inputs.calibration_method,
            "calibration_clips": len(inputs.calibration), "source_graph": source.name, "tflm": tflm_arena(out)}


def _weighted_layers(model: nn.Module) -> list[tuple[nn.Module, int | None]]:
    """Every layer whose weights are stored quantized, with the axis of its scales: convolutions per output
    channel (0), fully connected layers per tensor (None), as :mod:`edge_audio.tflite` writes them."""
    return [(m, 0 if isinstance(m, nn.Conv2d) else None) for m in model.modules() if isinstance(m, (nn.Conv2d,
                                                                                                  nn.Linear))]


def _weight_scale(weight: torch.Tensor, axis: int | None, bits: int) -> torch.Tensor:
    """The symmetric scale of :func:`edge_audio.tflite.symmetric_levels`: the largest magnitude (per output channel,
    or of the tensor) over the top level, 1 where every weight is zero."""
    peak = weight.detach().abs().amax() if axis is None else weight.detach().abs().flatten(1).amax(dim=1)
    return torch.where(peak > 0, peak / (2 ** (bits - 1) - 1), torch.ones_like(peak)).float()


def fake_quantized_weight(weight: torch.Tensor, axis: int | None, bits: int) -> torch.Tensor:
    """``weight`` on the symmetric ``bits``-bit grid, with the straight-through gradient (PyTorch's fake
    quantization ops)."""
    top = 2 ** (bits - 1) - 1
    scale = _weight_scale(weight, axis, bits)
    if axis is None:
        return torch.fake_quantize_per_tensor_affine(weight, float(scale), 0, -top, top)
    zeros = torch.zeros(scale.numel(), dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zeros, axis, -top, top)


def _per_layer(model: nn.Module, bits: int | Sequence[int]) -> list[int]:
    """``bits`` for every weighted layer of ``model``: one width for all, or a list with one per layer."""
    layers = len(_weighted_layers(model))
    per_layer = [bits] * layers if isinstance(bits, int) else list(bits)
    if len(per_layer) != layers:
        raise ValueError(f"{len(per_layer)} bit widths for {layers} weighted layers")
    return per_layer


@torch.no_grad()
def round_to_weight_grid(model: nn.Module, bits: int | Sequence[int]) -> nn.Module:
    """``model`` (in place, returned) with every convolution's and fully connected layer's weights on the grid the
    TFLite writer stores at ``bits`` bits (one width, or one per layer), so that
    :func:`edge_audio.tflite.onnx_to_tflite` writes them exactly (ONNX Runtime's 8-bit symmetric quantization in
    between keeps them: their largest magnitude maps to 127)."""
    for (layer, axis), width in zip(_weighted_layers(model), _per_layer(model, bits)):
        layer.weight.copy_(fake_quantized_weight(layer.weight, axis, width))
    return model


def _kl_from(reference: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean KL divergence of ``logits``' softmax from ``reference``'s, per clip."""
    return float(F.kl_div(F.log_softmax(logits, 1), F.log_softmax(reference, 1), log_target=True,
                          reduction="batchmean"))


@torch.no_grad()
def layer_bits_for_budget(model: nn.Module, calibration: np.ndarray, weight_fraction: float) -> dict:
    """Mixed precision: which weighted layers of ``model`` (BatchNorm folded) take 4 bits so that the weights
    keep at most ``weight_fraction`` of their 8-bit bytes, chosen by sensitivity on the calibration clips alone.

    A layer's sensitivity is how far the model's outputs move (mean KL divergence from the FP32 outputs on the
    calibration clips) when that layer alone is rounded to 4 bits, the others kept at 8. Layers go to 4 bits in
    order of sensitivity per byte saved, least first, until the budget holds. Returns ``layer_bits`` (one per
    layer, in order), ``sensitivity`` and the weights' bytes (8-bit, chosen, budget).
    """
    if not 0.5 <= weight_fraction <= 1.0:
        raise ParameterError(f"mixed_weight_fraction must be in [0.5, 1] (0.5: every layer at 4 bits), "
                             f"got {weight_fraction}")
    clips = torch.from_numpy(np.ascontiguousarray(calibration))
    reference = model.eval()(clips)
    counts = [layer.weight.numel() for layer, _ in _weighted_layers(model)]
    sensitivity = []
    for index in range(len(counts)):
        trial = round_to_weight_grid(copy.deepcopy(model), [4 if i == index else 8 for i in range(len(counts))])
        sensitivity.append(_kl_from(reference, trial(clips)))
    budget = weight_fraction * sum(counts)
    bits = [8] * len(counts)
    for index in sorted(range(len(counts)), key=lambda i: sensitivity[i] / (counts[i] / 2)):
        if sum(n if b == 8 else n / 2 for n, b in zip(counts, bits)) <= budget:
            break
        bits[index] = 4
    return {"layer_bits": bits, "sensitivity": [round(v, 6) for v in sensitivity],
            "weight_bytes_int8": sum(counts), "weight_bytes": int(sum(n if b == 8 else -(-n // 2)
                                                                      for n, b in zip(counts, bits))),
            "weight_budget_bytes": int(budget)}


class _WeightGrid(nn.Module):
    """A parametrization: the latent weight seen through its fake quantization."""

    def __init__(self, axis: int | None, bits: int):
        super().__init__()
        self.axis, self.bits = axis, bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantized_weight(weight, self.axis, self.bits)


def _activation_points(model: nn.Module) -> list[nn.Module]:
    """The modules after whose outputs the QDQ graph quantizes an activation: the input normalisation, every ReLU
    (a convolution's or hidden layer's output, the ReLU fused), average pooling, the global average and the
    logits. Max pooling keeps its input's quantization and needs none."""
    layers = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.ReLU, nn.AvgPool2d,
                                                          nn.AdaptiveAvgPool2d))]
    return layers + [[m for m in model.modules() if isinstance(m, nn.Linear)][-1]]


#: The integer levels of an activation: int8 asymmetric, int16 symmetric (ONNX Runtime's ranges for each).
_ACTIVATION_LEVELS = {8: (-128, 127), 16: (-32767, 32767)}


def _activation_range(low: float, high: float, bits: int) -> tuple[float, int]:
    """ONNX Runtime's scale and zero point of a MinMax range (which always holds zero): asymmetric at 8 bits,
    symmetric (zero point 0) at 16."""
    low, high = min(low, 0.0), max(high, 0.0)
    if bits == 16:
        low, high = -max(-low, high), max(-low, high)
    first, last = _ACTIVATION_LEVELS[bits]
    scale = (high - low) / (last - first) if high > low else 1.0
    return scale, int(round(first - low / scale))


class FakeQuantization:
    """The deployed scheme simulated on a PyTorch model (BatchNorm already folded), as a context manager: inside,
    its weights are seen through :func:`fake_quantized_weight` (straight-through gradients to the latent weights),
    and its input and every output of :func:`_activation_points` through asymmetric int8 fake quantization at the
    ranges :meth:`calibrate` set (MinMax over the calibration clips: ONNX Runtime's rule), at ``activation_bits`` (8,
    or 16 for 16x8). On exit the weights are left on the ``bits``-bit grid and the model is plain again."""

    def __init__(self, model: nn.Module, bits: int | Sequence[int], calibration: np.ndarray,
                 activation_bits: int = 8):
        self.model, self.bits, self.activation_bits = model, bits, activation_bits
        self.calibration = torch.from_numpy(np.ascontiguousarray(calibration))
        self.ranges: dict[int, tuple[float, int]] = {}
        self._observed: dict[int, tuple[float, float]] | None = None
        self._hooks: list = []

    def __enter__(self) -> "FakeQuantization":
        for (layer, axis), width in zip(_weighted_layers(self.model), _per_layer(self.model, self.bits)):
            parametrize.register_parametrization(layer, "weight", _WeightGrid(axis, width))
        self._hooks = [self.model.register_forward_pre_hook(lambda module, args: (self._fake(0, args[0]),))]
        self._hooks += [point.register_forward_hook(lambda module, args, output, i=i: self._fake(i, output))
                        for i, point in enumerate(_activation_points(self.model), start=1)]
        self.calibrate()
        return self

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()
        for layer, _ in _weighted_layers(self.model):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)

    def _fake(self, index: int, tensor: torch.Tensor) -> torch.Tensor:
        if self._observed is not None:  # calibrating: the float activations, as ONNX Runtime's calibrator sees them
            low, high = self._observed.get(index, (np.inf, -np.inf))
            self._observed[index] = (min(low, float(tensor.min())), max(high, float(tensor.max())))
            return tensor
        scale, zero = self.ranges[index]
        low, high = _ACTIVATION_LEVELS[self.activation_bits]
        return torch.fake_quantize_per_tensor_affine(tensor, scale, zero, low, high)

    @torch.no_grad()
    def calibrate(self) -> None:
        """Set every activation's range from the calibration clips, the weights as they are now (eval mode)."""
        self._observed = {}
        try:
            for start in range(0, len(self.calibration), 64):
                self.model(self.calibration[start:start + 64])
            self.ranges = {i: _activation_range(*bounds, self.activation_bits) for i, bounds in self._observed.items()}
        finally:
            self._observed = None


def quantization_aware_training(model: nn.Module, inputs: QuantizationInputs, bits: int) -> dict:
    """Fine-tune ``model`` (BatchNorm already folded; in place) through :class:`FakeQuantization` of the deployed
    scheme at ``bits``-bit weights, and leave its weights on the grid. Returns what the fine-tuning did.

    Cross-entropy on the split's training clips, Adam, cosine decay to zero; the activation ranges are recalibrated
    at the start of each epoch; the model stays in eval mode (folded BatchNorm has no statistics left to update;
    dropout off); the last epoch is kept, so no validation clip chooses. The file is then calibrated again by ONNX
    Runtime on the same clips, as a post-training variant is.
    """
    if inputs.training is None or not set(QAT_OPTIONS) <= set(inputs.options):
        raise ValueError(f"quantization-aware training needs the training clips and the options {QAT_OPTIONS}")
    config = QATConfig.from_options(inputs.options)
    x_train, y_train = inputs.training
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model.eval()
    x, y = torch.from_numpy(np.ascontiguousarray(x_train)).unsqueeze(1), torch.from_numpy(y_train).long()
    steps = max(1, int(np.ceil(len(x) / config.batch_size)))
    history = []
    with FakeQuantization(model, bits, inputs.calibration) as simulated:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps)
        for epoch in range(config.epochs):
            if epoch:
                simulated.calibrate()
            order = torch.randperm(len(x), generator=generator)
            total, correct = 0.0, 0
            for step in range(steps):
                index = order[step * config.batch_size:(step + 1) * config.batch_size]
                logits = model(x[index])
                loss = F.cross_entropy(logits, y[index])
                optimizer_step(loss, optimizer, schedule, f"quantization-aware training diverged at epoch "
                               f"{epoch + 1}, step {step + 1}", "qat_learning_rate")
                total += float(loss.detach()) * len(index)
                correct += int((logits.argmax(1) == y[index]).sum())
            history.append({"train_loss": round(total / len(x), 5),
                            "train_accuracy": round(100.0 * correct / len(x), 3)})
    return {**asdict(config), "train_clips": int(len(x)), "history": history}


def _full_integer(bits: int | None, qat: bool = False,
                  activation_bits: int = 8) -> Callable[[QuantizationInputs, Path], dict]:
    """A full-integer TFLite variant with ``bits``-bit weights (None: per layer, by :func:`layer_bits_for_budget`
    under the ``mixed_weight_fraction`` option) and ``activation_bits``-bit activations, post-training or (``qat``)
    after quantization-aware training: the folded model's weights on the grid, exported, calibrated by ONNX Runtime
    (static QDQ, full 8-bit weights) and written by :func:`edge_audio.tflite.onnx_to_tflite`."""

    def apply(inputs: QuantizationInputs, out: Path) -> dict:
        from .runtimes.tflm import tflm_arena
        from .tflite import onnx_to_tflite

        model = fold_batchnorm(inputs.model)
        mixed = None if bits is not None else layer_bits_for_budget(model, inputs.calibration,
                                                                    inputs.options["mixed_weight_fraction"])
        layer_bits = _per_layer(model, bits if mixed is None else mixed["layer_bits"])
        fine_tuning = quantization_aware_training(model, inputs, bits) if qat else None
        round_to_weight_grid(model, layer_bits)
        source = out.with_name(TFLITE_SOURCE_GRAPH)
        with tempfile.TemporaryDirectory(prefix="edge-audio-grid-") as scratch:
            grid = export_to_onnx(model, Path(scratch) / "grid.onnx", input_shape=(1, *inputs.calibration.shape[1:]))
            quantize_onnx_static(grid, source, inputs.calibration, inputs.calibration_method, per_channel=True,
                                 reduce_range=False, activations=f"int{activation_bits}")
        onnx_to_tflite(source, out, weight_bits=layer_bits)
        activations = f"int{activation_bits}"
        widths = "int4 or int8 by layer" if mixed else f"int{bits}"
        return {"format": "TFLite full-integer", "activations": activations, "input": activations,
                "output": activations,
                "weights": f"{widths}, per output channel (convolutions), per tensor (fully connected)",
                "layer_bits": layer_bits, "training": "quantization-aware" if qat else "post-training",
                **({"qat": fine_tuning} if qat else {}), **({"mixed": mixed} if mixed else {}),
                "reduce_range": False, "calibration_method": inputs.calibration_method,
                "calibration_clips": len(inputs.calibration), "source_graph": source.name, "tflm": tflm_arena(out)}
    return apply


def _openvino_bf16(inputs: QuantizationInputs, out: Path) -> dict:
    openvino = RUNTIMES["openvino"]
    shutil.copyfile(inputs.fp32_onnx, out)
    used = openvino.session(out, "bf16").precision_used  # raises on a CPU without bf16: it would run FP32
    return {"format": "the FP32 ONNX file", "precision": used, "runtime": openvino.version(),
            "note": "bf16 arithmetic and activations inside OpenVINO; the file keeps FP32 weights"}


def _openvino_int8(inputs: QuantizationInputs, out: Path) -> dict:
    openvino = RUNTIMES["openvino"]
    settings = _ort_static(per_channel=True)(inputs, out)  # the same QDQ file as ort_static, in another runtime
    openvino.session(out, "int8")  # OpenVINO must compile it (older releases refused QDQ files: an error row)
    return {**settings, "runtime": openvino.version(),
            "note": "the ort_static QDQ file; OpenVINO's low-precision transformations run its quantized operators "
                    "in INT8, the rest in FP32"}


def _ort_dynamic(inputs: QuantizationInputs, out: Path) -> dict:
    quantize_onnx_dynamic(inputs.fp32_onnx, out)
    return {"weights": "int8", "activations": "dynamic"}


#: The parameters quantization-aware training reads.
QAT_OPTIONS = ("qat_epochs", "qat_learning_rate", "batch_size", "seed")
#: The bit widths of the full-integer methods, most bits first (chapter 3's order).
BIT_WIDTHS = ("w8 a16", "w8 a8", "w4/8 a8", "w4 a8")

#: Every quantization method, by its one name.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method(name="pytorch_dynamic", runtime="pytorch", int8_weights=False, int8_activations=False,
           description="PyTorch dynamic INT8 of the Linear layers; convolutions stay FP32", apply=_pytorch_dynamic,
           ram_graph="fp32"),
    Method(name="ort_static", runtime="onnxruntime", int8_weights=True, int8_activations=True,
           description="ONNX Runtime static QDQ, per-channel INT8 weights, calibrated INT8 activations, BatchNorm "
           "folded", apply=_ort_static(per_channel=True)),
    Method(name="ort_static_per_tensor", runtime="onnxruntime", int8_weights=True, int8_activations=True,
           description="the same with one scale per weight tensor", apply=_ort_static(per_channel=False)),
    Method(name="ort_dynamic", runtime="onnxruntime", int8_weights=True, int8_activations=False,
           description="ONNX Runtime dynamic INT8: weights INT8, activations quantized at run time",
           apply=_ort_dynamic),
    Method(name="tflite_int8", runtime="litert", int8_weights=True, int8_activations=True,
           description="full-integer TFLite (int8 weights, activations, input and output) from the static QDQ "
           "graph, run in LiteRT (XNNPACK)", apply=_tflite_int8, full_integer_tflite=True, ram_graph="source",
           bits="w8 a8"),
    Method(name="tflite_int4", runtime="litert", int8_weights=True, int8_activations=True,
           description="full-integer TFLite with 4-bit weights (packed int4) and int8 activations, post-training",
           apply=_full_integer(4), full_integer_tflite=True, ram_graph="source", weight_bits=4, bits="w4 a8"),
    Method(name="tflite_mixed", runtime="litert", int8_weights=True, int8_activations=True,
           description="full-integer TFLite with 4 or 8 bits per layer, the least sensitive layers at 4 until the "
           "weights fit mixed_weight_fraction of their 8-bit bytes; int8 activations, post-training",
           apply=_full_integer(None), full_integer_tflite=True, ram_graph="source", weight_bits=4,
           options=("mixed_weight_fraction",), bits="w4/8 a8"),
    Method(name="tflite_int16x8", runtime="litert", int8_weights=True, int8_activations=False,
           description="full-integer TFLite with int16 activations and int8 weights (TFLite's 16x8 scheme), "
           "post-training", apply=_full_integer(8, activation_bits=16), full_integer_tflite=True,
           ram_graph="source", activation_bits=16, bits="w8 a16"),
    Method(name="qat_int8", runtime="litert", int8_weights=True, int8_activations=True,
           description="full-integer TFLite (int8) after quantization-aware fine-tuning",
           apply=_full_integer(8, qat=True), full_integer_tflite=True, ram_graph="source", trains=True,
           options=QAT_OPTIONS, bits="w8 a8"),
    Method(name="qat_int4", runtime="litert", int8_weights=True, int8_activations=True,
           description="full-integer TFLite with 4-bit weights after quantization-aware fine-tuning",
           apply=_full_integer(4, qat=True), full_integer_tflite=True, ram_graph="source", weight_bits=4,
           trains=True, options=QAT_OPTIONS, bits="w4 a8"),
    Method(name="openvino_bf16", runtime="openvino", int8_weights=False, int8_activations=False,
           description="the FP32 ONNX file run by OpenVINO in bf16 (on a CPU with AVX-512 BF16 or AMX); its twin is "
           "the same file in OpenVINO with FP32 pinned", apply=_openvino_bf16, precision="bf16"),
    Method(name="openvino_int8", runtime="openvino", int8_weights=True, int8_activations=True,
           description="the ort_static QDQ file run by OpenVINO (INT8 where quantized, FP32 pinned elsewhere); its "
           "twin is the FP32 file in OpenVINO with FP32 pinned", apply=_openvino_int8),
)}
