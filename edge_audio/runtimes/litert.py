"""LiteRT (XNNPACK): TFLite files, FP32 or full-integer (int8 or, 16x8, int16 input and output, quantized here with
the tensors' own scales), one clip at a time, as a device runs them. The FP32 twin is the FP32 TFLite model of the same ONNX
graph (:func:`edge_audio.tflite.onnx_to_tflite`)."""
from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ModelFileError
from .base import FP32Model, Runtime, captured_stderr, predict_batches, random_input


class LiteRTSession:
    """A LiteRT interpreter of one ``.tflite`` file, taking float log-mels ``(clips, 1, mels, frames)`` and
    returning float logits whatever the model's own input and output types."""

    def __init__(self, path: Path, precision: str = "fp32", threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.path, self.precision = Path(path), precision
        try:
            with captured_stderr() as log:  # LiteRT announces its XNNPACK delegate on every process's first model
                self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(f"cannot load TFLite model {self.path}: {str(exc).strip().splitlines()[0][:200]}"
                                 ) from None
        unexpected = [line for line in log[0].splitlines() if line and not line.startswith("INFO: ")]
        if unexpected:
            print("\n".join(unexpected), file=sys.stderr)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = tuple(int(d) for d in self.input["shape"][1:])  # NHWC -> the package's (1, mels, frames)
        self.input_shape = (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape

    def _encode(self, batch: np.ndarray) -> np.ndarray:
        x = batch.reshape(self.input["shape"])
        dtype = np.dtype(self.input["dtype"])
        if dtype.kind == "i":  # int8, or int16 (16x8): quantized with the input tensor's own scale
            scale, zero = self.input["quantization"]
            limits = np.iinfo(dtype)
            x = np.clip(np.round(x / scale) + zero, limits.min, limits.max).astype(dtype)
        return x

    def _run(self, batch: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], self._encode(batch))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output["index"])
        if np.dtype(self.output["dtype"]).kind == "i":
            scale, zero = self.output["quantization"]
            return (y.astype(np.float32) - zero) * scale
        return y

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Logits of every clip of ``inputs`` (batch first, each clip of :attr:`input_shape`), one at a time."""
        if tuple(inputs.shape[1:]) != self.input_shape:
            raise ModelFileError(f"TFLite model {self.path} expects input {list(self.input_shape)} per clip, got "
                                 f"{list(inputs.shape[1:])}")
        return predict_batches(self._run, inputs, 1)

    def call(self) -> Callable[[], object]:
        x = self._encode(random_input(self.input_shape))

        def run():
            self.interpreter.set_tensor(self.input["index"], x)
            self.interpreter.invoke()
        return run


def _twin(model: FP32Model, folder: Path) -> Path:
    from ..tflite import onnx_to_tflite

    return onnx_to_tflite(model.onnx, Path(folder) / "twin.tflite")


def litert_version() -> str:
    return f"ai-edge-litert {version('ai-edge-litert')} (XNNPACK)"


RUNTIME = Runtime("litert", "ai_edge_litert", ".tflite", LiteRTSession, twin=_twin, version=litert_version)
