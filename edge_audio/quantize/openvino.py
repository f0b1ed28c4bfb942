"""OpenVINO's lower precisions, each against the FP32 file in OpenVINO with FP32 pinned.

* ``openvino_bf16``: not a smaller file but a cheaper arithmetic: the FP32 ONNX file run by OpenVINO with bf16
  inference precision (the CPU plugin's own default where the CPU has bf16 instructions, so measured here rather
  than left implicit). A CPU without bf16 support gives an error row (OpenVINO would silently run FP32). Its RAM is
  counted on the FP32 graph.
* ``openvino_int8``: the ``ort_static`` file run by OpenVINO (a QDQ file is OpenVINO's INT8 input format too; its
  NNCF flow writes the same kind of graph, so it is not needed while the import works).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..runtimes import RUNTIMES
from .onnxruntime import static_qdq
from .registry import Method, QuantizationInputs, register


def _openvino_bf16(inputs: QuantizationInputs, out: Path) -> dict:
    openvino = RUNTIMES["openvino"]
    shutil.copyfile(inputs.fp32_onnx, out)
    used = openvino.session(out, "bf16").precision_used  # raises on a CPU without bf16: it would run FP32
    return {"format": "the FP32 ONNX file", "precision": used, "runtime": openvino.version(),
            "note": "bf16 arithmetic and activations inside OpenVINO; the file keeps FP32 weights"}


def _openvino_int8(inputs: QuantizationInputs, out: Path) -> dict:
    openvino = RUNTIMES["openvino"]
    settings = static_qdq(per_channel=True)(inputs, out)  # the same QDQ file as ort_static, in another runtime
    openvino.session(out, "int8")  # OpenVINO must compile it (older releases refused QDQ files: an error row)
    return {**settings, "runtime": openvino.version(),
            "note": "the ort_static QDQ file; OpenVINO's low-precision transformations run its quantized operators "
                    "in INT8, the rest in FP32"}


register(Method(name="openvino_bf16", runtime="openvino", int8_weights=False, int8_activations=False,
                description="the FP32 ONNX file run by OpenVINO in bf16 (on a CPU with AVX-512 BF16 or AMX); its twin "
                "is the same file in OpenVINO with FP32 pinned", apply=_openvino_bf16, precision="bf16", default=True,
                book=True, bench=True))
register(Method(name="openvino_int8", runtime="openvino", int8_weights=True, int8_activations=True,
                description="the ort_static QDQ file run by OpenVINO (INT8 where quantized, FP32 pinned elsewhere); "
                "its twin is the FP32 file in OpenVINO with FP32 pinned", apply=_openvino_int8, book=True,
                bench=True))
