"""OpenVINO (CPU): ONNX files, with the inference precision stated, never left to the default.

OpenVINO's CPU plugin picks its own precision when none is given: bf16 on a CPU with bf16 instructions (AVX-512
BF16, AMX), FP32 elsewhere. That silently changes what is computed, so every session here names its precision
(``fp32`` or ``bf16``) and reports the one the compiled model really uses. ``int8`` is for a static QDQ file:
OpenVINO runs its quantized operators in INT8 (its low-precision transformations read the Q/DQ pairs) and
everything else in FP32, pinned as for ``fp32``. The FP32 twin is the FP32 ONNX file with FP32 pinned.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .base import Runtime, predict_batches, random_input


def bf16_supported() -> bool:
    """Whether OpenVINO's CPU plugin can run bf16 on this CPU."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_version() -> str:
    """The runtime's name and version, for records."""
    import openvino as ov

    return f"openvino {ov.__version__.split('-')[0]} CPU"


class OpenVINOSession:
    """An ONNX file compiled by OpenVINO for the CPU in ``precision``; batch-first inputs, float logits out."""

    def __init__(self, path: Path, precision: str = "fp32", threads: int = 1):
        import openvino as ov

        self.path, self.precision = Path(path), precision
        if precision == "bf16" and not bf16_supported():
            raise RuntimeError("this CPU has no bf16 support in OpenVINO (no AVX-512 BF16 or AMX): it would run FP32")
        core = ov.Core()
        hint = "bf16" if precision == "bf16" else "f32"  # int8: the Q/DQ pairs decide, the rest f32
        model = core.read_model(str(self.path))
        self.compiled = core.compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1})
        used = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.precision_used = {"bf16": "bf16", "f32": "fp32"}.get(used, used)
        self.request = self.compiled.create_infer_request()
        shape = model.inputs[0].get_partial_shape()
        self.input_shape = tuple(d.get_length() if d.is_static else 1 for d in list(shape)[1:])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return next(iter(self.request.infer([batch]).values()))

    def predict(self, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Logits of every clip of ``inputs`` (batch first), in batches."""
        return predict_batches(self._run, inputs, batch_size)

    def call(self) -> Callable[[], object]:
        x = random_input(self.input_shape)
        return lambda: self.request.infer([x])


RUNTIME = Runtime("openvino", "openvino", ".onnx", OpenVINOSession, twin=lambda model, folder: model.onnx,
                  version=openvino_version)
