"""What the deployed files of every preset are made of, and how far each INT8 file is from 4x smaller than FP32.

    python benchmarks/file_sizes.py [--models tiny ds_cnn]

For each preset (untrained, with BatchNorm statistics like a trained model's so that every convolution keeps its
bias, :func:`edge_audio.models.untrained_like_trained`, and calibrated on random inputs: a file's size does not
depend on the values of its weights or scales), it exports the FP32 ONNX file as the book does, quantizes it
(static QDQ, per-channel) and converts that to full-integer TFLite, and prints each file's bytes split into
weights, quantization parameters (scales and zero points: per channel of every convolution, and in TFLite per
channel of every bias too, with int64 zero points) and the rest (graph structure, names). The last column is the
ratio to the FP32 ONNX file, and "ceiling" is the ratio if the file held nothing but its weights and quantization
parameters.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edge_audio.features import FeatureConfig
from edge_audio.export import export_to_onnx
from edge_audio.models import PRESETS, count_parameters, preset_spec, untrained_like_trained
from edge_audio.quantize import quantize_onnx_static
from edge_audio.tflite import onnx_to_tflite


def onnx_parts(path: Path) -> dict[str, int]:
    """Bytes of an ONNX file's weights (float32 or int8/int32 tensors) and quantization parameters (scales,
    zero points); the rest is graph and names."""
    parts = {"weights": 0, "quantization": 0}
    for initializer in onnx.load(str(path)).graph.initializer:
        array = numpy_helper.to_array(initializer)
        kind = "quantization" if initializer.name in _quantization_names(path) else "weights"
        parts[kind] += array.nbytes
    return parts


def _quantization_names(path: Path) -> set[str]:
    """Initializers feeding the scale or zero-point input of a QuantizeLinear or DequantizeLinear node."""
    graph = onnx.load(str(path)).graph
    return {name for node in graph.node if node.op_type in ("QuantizeLinear", "DequantizeLinear")
            for name in node.input[1:]}


def tflite_parts(path: Path) -> dict[str, int]:
    """Bytes of a TFLite file's buffers (weights) and quantization parameters (float32 scales, int64 zero
    points)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(path.read_bytes(), 0))
    weights = sum(len(buffer.data) for buffer in model.buffers if buffer.data is not None)
    quantization = sum(4 * len(t.quantization.scale) + 8 * len(t.quantization.zeroPoint)
                       for t in model.subgraphs[0].tensors
                       if t.quantization is not None and t.quantization.scale is not None)
    return {"weights": weights, "quantization": quantization}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    args = parser.parse_args()
    features = FeatureConfig()
    print(f"input (1, 1, {features.n_mels}, {features.num_frames}); bytes, and the ratio FP32 ONNX / file")
    print(f"{'model':8s} {'params':>8s} {'file':10s} {'bytes':>9s} {'weights':>9s} {'quant':>7s} {'rest':>7s} "
          f"{'ratio':>6s} {'ceiling':>7s}")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            model = untrained_like_trained(preset_spec(name))
            shape = (1, 1, *features.shape)
            fp32 = export_to_onnx(model, Path(scratch) / f"{name}.onnx", input_shape=shape)
            calibration = np.random.default_rng(0).normal(size=(8, *shape[1:])).astype(np.float32)
            int8 = quantize_onnx_static(fp32, Path(scratch) / f"{name}_int8.onnx", calibration)
            tflite = onnx_to_tflite(int8, Path(scratch) / f"{name}_int8.tflite")
            reference = os.path.getsize(fp32)
            for label, path, parts in (("FP32 ONNX", fp32, onnx_parts(fp32)), ("INT8 ONNX", int8, onnx_parts(int8)),
                                       ("INT8 TFLite", tflite, tflite_parts(Path(tflite)))):
                size = os.path.getsize(path)
                rest = size - parts["weights"] - parts["quantization"]
                ceiling = reference / (parts["weights"] + parts["quantization"])
                print(f"{name:8s} {count_parameters(model):8,d} {label:10s} {size:9,d} {parts['weights']:9,d} "
                      f"{parts['quantization']:7,d} {rest:7,d} {reference / size:5.2f}x {ceiling:6.2f}x")


if __name__ == "__main__":
    main()
