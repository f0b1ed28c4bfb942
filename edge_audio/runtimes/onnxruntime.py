"""ONNX Runtime (CPU): FP32 and QDQ INT8 ONNX files; what the file holds decides the arithmetic."""
from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ModelFileError
from .base import Runtime, predict_batches, random_input


def onnx_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads, one inter-op thread, all optimisations.

    Raises :class:`~edge_audio.errors.ModelFileError` naming the file when it is missing or not a loadable ONNX
    model.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"ONNX model {path} not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
        raise ModelFileError(f"cannot load ONNX model {path}: {str(exc).strip().splitlines()[0][:200]}") from None


class OnnxRuntimeSession:
    """An ONNX file in ONNX Runtime: float inputs in the package's layout, the first output as logits."""

    def __init__(self, path: Path, precision: str = "fp32", threads: int = 1):
        self.path, self.precision = Path(path), precision
        self.session = onnx_session(path, threads)
        self.declared = self.session.get_inputs()[0]
        self.input_shape = tuple(d if isinstance(d, int) else 1 for d in self.declared.shape[1:])

    def predict(self, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Logits of every clip of ``inputs`` (batch first). A file whose declared input does not fit the clips is
        a :class:`~edge_audio.errors.ModelFileError` naming it; a fixed batch dimension (the raw-audio graph's 1) is
        respected."""
        expected = list(self.declared.shape)
        fits = len(expected) == inputs.ndim and all(
            not isinstance(want, int) or want == got for want, got in zip(expected[1:], inputs.shape[1:]))
        if not fits:
            raise ModelFileError(f"ONNX model {self.path} expects input {expected} (batch first), got "
                                 f"{tuple(inputs.shape[1:])} per clip")
        step = expected[0] if isinstance(expected[0], int) else batch_size
        return predict_batches(lambda batch: self.session.run(None, {self.declared.name: batch})[0], inputs, step)

    def call(self) -> Callable[[], object]:
        feed = {self.declared.name: random_input(self.input_shape)}
        return lambda: self.session.run(None, feed)


def onnxruntime_version() -> str:
    return f"onnxruntime {version('onnxruntime')} CPU"


RUNTIME = Runtime("onnxruntime", "onnxruntime", ".onnx", OnnxRuntimeSession,
                  twin=lambda model, folder: model.onnx, version=onnxruntime_version)
