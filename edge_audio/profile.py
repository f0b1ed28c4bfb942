"""What a model costs: parameters, bytes on disk, FLOPs and MACs, latency, and this machine's FLOP floor.

Conventions (used everywhere in the book):

* **Size** is the byte count of the serialized artifact on disk (``.pth`` state dict, ``.onnx`` file).
* **MACs** come from thop (``ultralytics-thop``); **FLOPs = 2 x MACs**. Both are cross-checked against
  ``torch.utils.flop_counter.FlopCounterMode``, which counts only convolutions and matrix products (2 FLOPs
  per MAC); the gap is thop's count of BatchNorm, pooling and activations (reported as ``flop_gap_percent``).
* **Latency** is batch 1, after warm-up, the median and 90th percentile over ``runs`` timed calls, with the
  thread count recorded; single-thread is the edge-like figure.
* **The FLOP floor** of a model is its FLOPs divided by the single-thread FP32 matmul throughput measured on
  this machine (:func:`edge_audio.machine.matmul_throughput`); ``latency / floor`` says how far a runtime is
  from the machine's peak on that model.
"""
from __future__ import annotations

import copy
import os
import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .models import count_parameters
from .runtimes import FP32Model
from .runtimes import get as get_runtime
from .stats import latency_comparison


def measure_latency(call: Callable[[], object], runs: int = 200, warmup: int = 20) -> dict:
    """Time ``call`` ``runs`` times after ``warmup`` calls; milliseconds (median, p90, mean, min)."""
    return latency_summary(interleaved_times([call], runs, warmup)[0], warmup)


def latency_summary(times_ms: np.ndarray, warmup: int) -> dict:
    """The summary of timed calls (milliseconds): median, p90, mean, min, the number of runs and of warm-up calls."""
    return {"median_ms": round(float(np.median(times_ms)), 4), "p90_ms": round(float(np.percentile(times_ms, 90)), 4),
            "mean_ms": round(float(times_ms.mean()), 4), "min_ms": round(float(times_ms.min()), 4),
            "runs": int(times_ms.size), "warmup": warmup}


def interleaved_times(calls: list[Callable[[], object]], runs: int = 200, warmup: int = 20) -> np.ndarray:
    """Time ``calls`` interleaved (A, B, C, A, B, C, ...) after ``warmup`` rounds: milliseconds, one row per call.

    Interleaving makes the machine's drift (frequency, neighbours on a shared host) hit every call alike, so their
    ratios are fair even when absolute numbers move between measurements, and the calls pair up for a test.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for _ in range(warmup):
        for call in calls:
            call()
    times = np.empty((len(calls), runs))
    for i in range(runs):
        for row, call in enumerate(calls):
            start = time.perf_counter()
            call()
            times[row, i] = time.perf_counter() - start
    return times * 1000.0


def compare_latency(call: Callable[[], object], twin: Callable[[], object], runs: int = 200,
                    warmup: int = 20) -> dict:
    """Latency of two callables timed interleaved (:func:`interleaved_times`): ``latency`` and ``twin``
    (summaries, as :func:`measure_latency`) and ``comparison`` (:func:`edge_audio.stats.latency_comparison`:
    ``faster`` is ``"a"`` for the call, ``"b"`` for the twin)."""
    times = interleaved_times([call, twin], runs, warmup)
    return {"latency": latency_summary(times[0], warmup), "twin": latency_summary(times[1], warmup),
            "comparison": latency_comparison(times[0], times[1])}


def runtime_latency(runtime: str, path: str | os.PathLike, threads: int = 1, runs: int = 200,
                    precision: str = "fp32") -> dict:
    """Latency of the model file at ``path`` in ``runtime`` (a name of :data:`edge_audio.runtimes.RUNTIMES`), batch
    1, ``threads`` intra-op threads, with the runtime's version."""
    found = get_runtime(runtime)
    result = measure_latency(found.session(path, precision, threads).call(), runs=runs)
    return {**result, "threads": threads, "runtime": found.version()}


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> dict:
    """MACs and FLOPs at batch 1: thop's count, and FlopCounterMode's as a cross-check."""
    from thop import profile as thop_profile

    model = model.eval().cpu()
    x = torch.randn(1, *input_shape)
    probe = copy.deepcopy(model)  # thop adds buffers and hooks to the model it profiles; keep the caller's clean
    with torch.no_grad():
        macs, _ = thop_profile(probe, inputs=(x,), verbose=False)
        with FlopCounterMode(display=False) as counter:
            model(x)
    flops = 2 * int(macs)
    counted = int(counter.get_total_flops())
    return {"macs": int(macs), "flops": flops, "flop_counter_flops": counted,
            "flop_gap_percent": round(100.0 * (flops - counted) / max(counted, 1), 3)}


def profile_model(model: nn.Module, input_shape: tuple[int, ...], files: FP32Model, matmul_gflops: float,
                  threads: int = 1, runs: int = 200) -> dict:
    """Everything :mod:`edge_audio.profile` measures for one FP32 model and its files (checkpoint and ONNX export),
    as a flat record: parameters, MACs and FLOPs, latency in PyTorch eager and ONNX Runtime, the FLOP floor and the
    ratios to it."""
    counts = count_macs(model, input_shape)
    torch_ms = runtime_latency("pytorch", files.checkpoint, threads, runs)
    onnx_ms = runtime_latency("onnxruntime", files.onnx, threads, runs)
    onnx_path = files.onnx
    floor_ms = counts["flops"] / (matmul_gflops * 1e9) * 1000.0
    return {
        "params": count_parameters(model),
        "onnx_size_bytes": os.path.getsize(onnx_path),
        **counts,
        "latency": {"pytorch": torch_ms, "onnxruntime": onnx_ms},
        "flop_floor_ms": round(floor_ms, 4),
        "latency_floor_ratio": {"pytorch": round(torch_ms["median_ms"] / floor_ms, 3),
                                "onnxruntime": round(onnx_ms["median_ms"] / floor_ms, 3)},
    }
