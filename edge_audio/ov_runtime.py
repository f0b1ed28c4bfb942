"""OpenVINO sessions of the project's ONNX files, with the inference precision stated, never left to the default.

OpenVINO's CPU plugin picks its own precision when none is given: bf16 on a CPU with bf16 instructions (AVX-512
BF16, AMX), FP32 elsewhere. That silently changes what is computed, so every session here names its precision
(``"f32"`` or ``"bf16"``) and reports the one the compiled model really uses. ``"int8"`` is for a static QDQ
file: OpenVINO runs its quantized operators in INT8 (its low-precision transformations read the Q/DQ pairs) and
everything else in FP32, pinned as for ``"f32"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ModelFileError


def bf16_supported() -> bool:
    """Whether OpenVINO's CPU plugin can run bf16 on this CPU."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def openvino_version() -> str:
    """The runtime's name and version, for records."""
    import openvino as ov

    return f"openvino {ov.__version__.split('-')[0]} CPU"


@dataclass
class OpenVINOModel:
    """An ONNX file compiled by OpenVINO for the CPU, one thread by default, in ``precision`` (``f32``, ``bf16``,
    or ``int8`` for a QDQ file); batch-first inputs in the package's layout, float logits out."""

    path: Path
    precision: str = "f32"
    threads: int = 1

    def __post_init__(self):
        import openvino as ov

        self.path = Path(self.path)
        if not self.path.is_file():
            raise ModelFileError(f"model {self.path} not found")
        if self.precision == "bf16" and not bf16_supported():
            raise RuntimeError("this CPU has no bf16 support in OpenVINO (no AVX-512 BF16 or AMX): it would run FP32")
        core = ov.Core()
        if self.precision not in ("f32", "bf16", "int8"):
            raise ValueError(f"precision must be f32, bf16 or int8, got {self.precision!r}")
        hint = "f32" if self.precision == "int8" else self.precision  # int8: the Q/DQ pairs decide, the rest f32
        self.compiled = core.compile_model(core.read_model(str(self.path)), "CPU", {
            "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": self.threads, "NUM_STREAMS": 1})
        used = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.precision_used = {"bf16": "bf16", "f32": "f32"}.get(used, used)
        self.request = self.compiled.create_infer_request()

    def predict(self, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Logits of every clip of ``inputs`` (batch first), in batches."""
        outputs = []
        for start in range(0, len(inputs), batch_size):
            batch = np.ascontiguousarray(inputs[start:start + batch_size], dtype=np.float32)
            outputs.append(next(iter(self.request.infer([batch]).values())).astype(np.float32))
        return np.concatenate(outputs)

    def call(self, input_shape: tuple[int, ...]) -> Callable[[], object]:
        """A batch-1 inference call on a fixed random input of per-clip ``input_shape`` (for latency)."""
        x = np.random.default_rng(0).standard_normal((1, *input_shape)).astype(np.float32)
        return lambda: self.request.infer([x])

