"""Full-integer TFLite, the format microcontrollers run (TensorFlow Lite Micro with CMSIS-NN), post-training and
after quantization-aware training, at 8 and 4 bits, mixed, and with 16-bit activations.

* ``tflite_int8``: full-integer TFLite (int8 weights, activations, input and output), written by
  :func:`edge_audio.tflite.onnx_to_tflite` from the ``ort_static`` QDQ graph with full 8-bit weights, run in
  LiteRT; its FP32 twin is the FP32 TFLite model of the same ONNX graph, timed in LiteRT too. Its memory is counted
  on the QDQ graph it was written from and cross-checked against TensorFlow Lite Micro's own arena
  (:func:`edge_audio.tflite.tflm_arena`).
* ``tflite_int4``: the same with 4-bit weights (per output channel for convolutions, per tensor for fully
  connected layers, packed two to a byte: TFLite's ``INT4``), post-training: the FP32 weights rounded to the
  4-bit grid (:func:`~edge_audio.quantize.weights.round_to_weight_grid`), then calibrated and written like
  ``tflite_int8``.
* ``tflite_mixed``: 4 or 8 bits per layer (:func:`~edge_audio.quantize.weights.layer_bits_for_budget`: the layers
  whose rounding to 4 bits moves the outputs least on the calibration clips, per byte saved, until the weights fit
  ``mixed_weight_fraction`` of their 8-bit bytes), int8 activations, post-training.
* ``tflite_int16x8``: full-integer TFLite with int16 activations (symmetric) and int8 weights, TFLite's "16x8"
  scheme, for models whose activations lose at 8 bits; int64 biases.
* ``qat_int8``, ``qat_int4``: quantization-aware training (:mod:`edge_audio.quantize.qat`): the model, with
  BatchNorm folded, fine-tuned on its split's training folds through fake quantization of the deployed scheme, then
  written exactly like ``tflite_int8`` and ``tflite_int4``: chapter 3 pairs each with the post-training variant of
  the same bit width.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..export import export_to_onnx, fold_batchnorm
from ..runtimes.onnxruntime import onnx_session
from .onnxruntime import quantize_onnx_static
from .qat import QAT_OPTIONS, quantization_aware_training
from .registry import Method, QuantizationInputs, register
from .weights import layer_bits_for_budget, per_layer_bits, round_to_weight_grid


#: The bit widths of the full-integer methods, most bits first (chapter 3's order).
BIT_WIDTHS = ("w8 a16", "w8 a8", "w4/8 a8", "w4 a8")
#: The QDQ graph a TFLite variant is written from, kept beside it (its memory is counted on it).
TFLITE_SOURCE_GRAPH = "source.qdq.onnx"


def _tflite_int8(inputs: QuantizationInputs, out: Path) -> dict:
    from ..runtimes.tflm import tflm_arena
    from ..tflite import onnx_to_tflite

    source = out.with_name(TFLITE_SOURCE_GRAPH)
    # full 8-bit weights: the 7-bit range only works around ONNX Runtime's AVX2 kernels, not a TFLite runtime
    quantize_onnx_static(inputs.fp32_onnx, source, inputs.calibration, inputs.calibration_method, per_channel=True,
                         reduce_range=False)
    onnx_to_tflite(source, out)
    return {"format": "TFLite full-integer", "activations": "int8", "input": "int8", "output": "int8",
            "weights": "int8, per output channel (convolutions), per tensor (fully connected)",
            "reduce_range": False, "calibration_method": inputs.calibration_method,
            "calibration_clips": len(inputs.calibration), "source_graph": source.name, "tflm": tflm_arena(out)}


def uncalibrated_tflite(fp32_path: str | os.PathLike, out: str | os.PathLike, weight_bits: int = 8) -> Path:
    """The full-integer TFLite model of an FP32 ONNX model with ``weight_bits``-bit weights (``tflite_int8``,
    ``tflite_int4``) written to ``out`` before any training, calibrated on two random clips: what the search
    measures a candidate's deployed costs on."""
    from ..tflite import onnx_to_tflite

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


def _full_integer(bits: int | None, qat: bool = False,
                  activation_bits: int = 8) -> Callable[[QuantizationInputs, Path], dict]:
    """A full-integer TFLite variant with ``bits``-bit weights (None: per layer, by :func:`layer_bits_for_budget`
    under the ``mixed_weight_fraction`` option) and ``activation_bits``-bit activations, post-training or (``qat``)
    after quantization-aware training: the folded model's weights on the grid, exported, calibrated by ONNX Runtime
    (static QDQ, full 8-bit weights) and written by :func:`edge_audio.tflite.onnx_to_tflite`."""

    def apply(inputs: QuantizationInputs, out: Path) -> dict:
        from ..runtimes.tflm import tflm_arena
        from ..tflite import onnx_to_tflite

        model = fold_batchnorm(inputs.model)
        mixed = None if bits is not None else layer_bits_for_budget(model, inputs.calibration,
                                                                    inputs.options["mixed_weight_fraction"])
        layer_bits = per_layer_bits(model, bits if mixed is None else mixed["layer_bits"])
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


register(Method(name="tflite_int8", runtime="litert", int8_weights=True, int8_activations=True,
                description="full-integer TFLite (int8 weights, activations, input and output) from the static QDQ "
                "graph, run in LiteRT (XNNPACK)", apply=_tflite_int8, full_integer_tflite=True, ram_graph="source",
                bits="w8 a8", default=True, book=True, derived=True, bench=True))
register(Method(name="tflite_int4", runtime="litert", int8_weights=True, int8_activations=True,
                description="full-integer TFLite with 4-bit weights (packed int4) and int8 activations, "
                "post-training", apply=_full_integer(4), full_integer_tflite=True, ram_graph="source", weight_bits=4,
                bits="w4 a8", default=True, book=True))
register(Method(name="tflite_mixed", runtime="litert", int8_weights=True, int8_activations=True,
                description="full-integer TFLite with 4 or 8 bits per layer, the least sensitive layers at 4 until "
                "the weights fit mixed_weight_fraction of their 8-bit bytes; int8 activations, post-training",
                apply=_full_integer(None), full_integer_tflite=True, ram_graph="source", weight_bits=4,
                options=("mixed_weight_fraction",), bits="w4/8 a8", book=True))
register(Method(name="tflite_int16x8", runtime="litert", int8_weights=True, int8_activations=False,
                description="full-integer TFLite with int16 activations and int8 weights (TFLite's 16x8 scheme), "
                "post-training", apply=_full_integer(8, activation_bits=16), full_integer_tflite=True,
                ram_graph="source", activation_bits=16, bits="w8 a16"))
register(Method(name="qat_int8", runtime="litert", int8_weights=True, int8_activations=True,
                description="full-integer TFLite (int8) after quantization-aware fine-tuning",
                apply=_full_integer(8, qat=True), full_integer_tflite=True, ram_graph="source", trains=True,
                options=QAT_OPTIONS, bits="w8 a8"))
register(Method(name="qat_int4", runtime="litert", int8_weights=True, int8_activations=True,
                description="full-integer TFLite with 4-bit weights after quantization-aware fine-tuning",
                apply=_full_integer(4, qat=True), full_integer_tflite=True, ram_graph="source", weight_bits=4,
                trains=True, options=QAT_OPTIONS, bits="w4 a8", default=True, book=True))
