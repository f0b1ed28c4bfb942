"""Compression (8- and 4-bit weights, 8- and 16-bit activations, quantization-aware training), measured by running the
compressed model: the registry of methods (:mod:`~edge_audio.quantize.registry`) and one module per family of
methods, each registering its methods beside their implementation:

* :mod:`~edge_audio.quantize.pytorch`: ``pytorch_dynamic``;
* :mod:`~edge_audio.quantize.onnxruntime`: ``ort_static``, ``ort_static_per_tensor``, ``ort_dynamic``;
* :mod:`~edge_audio.quantize.full_integer`: full-integer TFLite, ``tflite_int8``, ``tflite_int4``, ``tflite_mixed``,
  ``tflite_int16x8``, ``qat_int8``, ``qat_int4``;
* :mod:`~edge_audio.quantize.openvino`: ``openvino_bf16``, ``openvino_int8``.

Beside them: :mod:`~edge_audio.quantize.calibration` (the calibration clips), :mod:`~edge_audio.quantize.weights`
(the weight grid and mixed bits per layer) and :mod:`~edge_audio.quantize.qat` (fake quantization and the
fine-tuning through it).

A method has one name, used everywhere: in the ``methods`` parameter, as the ``variant`` of its records, in its file
name (``models/<model>_<method>.onnx``) and in the plots. Adding a family is one module that calls
:func:`~edge_audio.quantize.registry.register` plus its import line below.

Every variant's accuracy is computed from its own outputs; its size is its file on disk; its latency is measured
in the same runtime, with the same threads, as its FP32 twin (see :mod:`edge_audio.steps.quantization`).
"""
# the families, each registering its methods on import, in the order METHODS lists them
from . import pytorch  # noqa: F401
from . import onnxruntime  # noqa: F401
from . import full_integer  # noqa: F401
from . import openvino  # noqa: F401
from .calibration import calibration_set  # noqa: F401
from .full_integer import BIT_WIDTHS, tflite_bytes, uncalibrated_tflite  # noqa: F401
from .onnxruntime import (evaluate_onnx, float_operators, layer_sensitivity, quantize_onnx_dynamic,  # noqa: F401
                          quantize_onnx_static)
from .qat import FakeQuantization, quantization_aware_training  # noqa: F401
from .registry import (METHODS, Method, QuantizationInputs, bench_methods, check_methods,  # noqa: F401
                       derived_methods, full_integer_method, reference_method, register, selection)
from .weights import fake_quantized_weight, layer_bits_for_budget, round_to_weight_grid  # noqa: F401
