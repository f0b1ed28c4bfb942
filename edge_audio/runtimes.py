"""Runtimes side by side: one model in every installed runtime and precision, timed interleaved on this machine.

A *deployment* is a (runtime, precision) that loads the model: ONNX Runtime FP32 and static INT8 (QDQ, the
``ort_static`` scheme, ``reduce_range`` following the CPU), LiteRT (XNNPACK) FP32 and full-integer INT8 (the
``tflite_int8`` files of :mod:`edge_audio.tflite`), and OpenVINO FP32, bf16 where the CPU has it, and the QDQ
INT8 file, each with its precision stated (:mod:`edge_audio.ov_runtime`), when ``openvino`` is installed. A runtime
that is not installed is reported as absent, never as an error; a runtime that is installed but refuses a file
reports its error in that cell.

Every deployment of a model is timed in one interleaved loop (A, B, C, A, B, C, ...), batch 1, one thread, so the
machine's drift hits all alike and the ratios are fair. **The machine's limits** (:func:`gemm_floors`) are the
single-thread throughputs of an FP32 and an INT8 matrix product through the runtimes' own kernels (the best of
ONNX Runtime's and LiteRT's, and for FP32 PyTorch's matmul too); a latency divided by its model's floor in its
precision says how far the runtime is from what the hardware allows.
"""
from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .export import export_to_onnx
from .machine import matmul_throughput
from .profile import interleaved_times, latency_summary, onnx_call
from .quantize import quantize_onnx_static
from .tflite import TFLiteModel, onnx_to_tflite

#: The runtimes this module knows, by the module that provides each.
RUNTIME_MODULES = {"onnxruntime": "onnxruntime", "litert": "ai_edge_litert", "openvino": "openvino"}


def installed_runtimes() -> dict[str, bool]:
    """Which of :data:`RUNTIME_MODULES` are installed."""
    return {name: importlib.util.find_spec(module) is not None for name, module in RUNTIME_MODULES.items()}


@dataclass
class Deployment:
    """A (runtime, precision) of one model: its batch-1 call, or why it could not be made."""

    runtime: str
    precision: str
    call: Callable[[], object] | None = None
    file_bytes: int | None = None
    error: str | None = None
    latency: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.runtime} {self.precision}"


def _attempt(runtime: str, precision: str, make: Callable[[], tuple[Callable[[], object], int]]) -> Deployment:
    try:
        call, size = make()
        call()  # a runtime that loads a file but fails to run it is caught here, not in the timing loop
        return Deployment(runtime, precision, call, size)
    except Exception as exc:  # a runtime's refusal is a result of the comparison, reported in its cell
        message = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        return Deployment(runtime, precision, error=f"{type(exc).__name__}: {message}")


def deployments(fp32_onnx: Path, input_shape: tuple[int, ...], calibration: np.ndarray, folder: Path,
                reduce_range: bool) -> list[Deployment]:
    """Every (runtime, precision) of the FP32 ONNX model at ``fp32_onnx`` (per-clip ``input_shape``), its INT8
    files calibrated on ``calibration`` and written under ``folder``; absent runtimes are left out (see
    :func:`installed_runtimes`)."""
    import os

    installed = installed_runtimes()
    ort_int8 = folder / "ort_int8.onnx"
    full_int8 = folder / "full_int8.onnx"
    result = [
        _attempt("onnxruntime", "fp32", lambda: (onnx_call(fp32_onnx, input_shape), os.path.getsize(fp32_onnx))),
        _attempt("onnxruntime", "int8", lambda: (onnx_call(quantize_onnx_static(
            fp32_onnx, ort_int8, calibration, reduce_range=reduce_range), input_shape), os.path.getsize(ort_int8))),
    ]
    if installed["litert"]:
        fp32_tflite, int8_tflite = folder / "fp32.tflite", folder / "int8.tflite"
        result += [
            _attempt("litert", "fp32", lambda: (TFLiteModel(onnx_to_tflite(fp32_onnx, fp32_tflite)).call(),
                                                os.path.getsize(fp32_tflite))),
            _attempt("litert", "int8", lambda: (TFLiteModel(onnx_to_tflite(quantize_onnx_static(
                fp32_onnx, full_int8, calibration, reduce_range=False), int8_tflite)).call(),
                os.path.getsize(int8_tflite))),
        ]
    if installed["openvino"]:
        from .ov_runtime import OpenVINOModel, bf16_supported

        def openvino(path: Path, precision: str):
            return lambda: (OpenVINOModel(path, precision).call(input_shape), os.path.getsize(path))

        result += [_attempt("openvino", "fp32", openvino(fp32_onnx, "f32"))]
        if bf16_supported():
            result += [_attempt("openvino", "bf16", openvino(fp32_onnx, "bf16"))]
        result += [_attempt("openvino", "int8 (QDQ)", openvino(ort_int8, "int8"))]
    return result


def time_interleaved(items: list[Deployment], runs: int = 200, warmup: int = 20) -> None:
    """Time every working deployment of ``items`` in one interleaved loop; fills each one's ``latency``."""
    working = [d for d in items if d.call is not None]
    times = interleaved_times([d.call for d in working], runs, warmup)
    for row, deployment in enumerate(working):
        deployment.latency = latency_summary(times[row], warmup)


def gemm_floors(m: int = 256, k: int = 512, n: int = 512, runs: int = 30) -> dict:
    """This machine's single-thread matrix-product throughput (GOP/s, 2 ops per multiply-add) in FP32 and INT8,
    through the runtimes' own kernels: an ``(m, k) x (k, n)`` product, as a 1x1 convolution over ``m`` positions
    (what every runtime runs as a GEMM), in ONNX Runtime (FP32 and static INT8) and LiteRT (FP32 and full-integer),
    all timed in one interleaved loop; the FP32 figures also count PyTorch's matmul
    (:func:`edge_audio.machine.matmul_throughput`). The best of each precision is its floor: no kernel here ran
    faster. Returns ``{"fp32": {"gops": {...}, "best": ...}, "int8": {...}, "shape": [m, k, n]}``."""
    side = int(round(m ** 0.5))
    if side * side != m:
        raise ValueError(f"m must be a square number of positions, got {m}")
    torch.manual_seed(0)
    layer = nn.Conv2d(k, n, 1).eval()
    ops = 2.0 * m * k * n
    shape = (k, side, side)
    with tempfile.TemporaryDirectory(prefix="edge-audio-gemm-") as scratch:
        scratch = Path(scratch)
        fp32 = export_to_onnx(layer, scratch / "gemm.onnx", input_shape=(1, *shape))
        calibration = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
        int8 = quantize_onnx_static(fp32, scratch / "gemm_int8.onnx", calibration, reduce_range=False)
        items = [_attempt("onnxruntime", "fp32", lambda: (onnx_call(fp32, shape), 0)),
                 _attempt("onnxruntime", "int8", lambda: (onnx_call(int8, shape), 0))]
        if installed_runtimes()["litert"]:
            for precision, graph in (("fp32", fp32), ("int8", int8)):
                items.append(_attempt("litert", precision, lambda graph=graph, precision=precision: (TFLiteModel(
                    onnx_to_tflite(graph, scratch / f"gemm_{precision}.tflite")).call(), 0)))
        time_interleaved(items, runs=runs, warmup=5)
    floors = {"shape": [m, k, n]}
    for precision in ("fp32", "int8"):
        rates = {item.runtime: round(ops / (item.latency["min_ms"] / 1000.0) / 1e9, 1) if item.call else None
                 for item in items if item.precision == precision}
        if precision == "fp32":
            rates["pytorch"] = matmul_throughput(1)
        found = [rate for rate in rates.values() if rate]
        floors[precision] = {"gops": rates, "best": max(found) if found else None}
    return floors
