"""Step 3 (chapter 3): compress every baseline with every method, run each variant, and publish it.

Per (baseline, method), one :func:`~edge_audio.storage.cached` entry keyed by the FP32 model (its ONNX file's
SHA-256 and training run), the method, the calibration (clips, method, seed), ``reduce_range``, the timing
settings, the machine and the library versions. The entry holds the variant's file and what was measured: its
accuracy from its own outputs on the test fold, its size, and its latency timed interleaved with its FP32 twin
in the same runtime and threads. The file is published as ``models/<model>_<method>.<ext>`` on every run.

A method that cannot handle a model (ONNX Runtime or the quantizer refuses it, the file is unusable) gives an
error row and the others go on; the chapter states every such failure in its prose, and its invariants check
that it did. Anything else (a bug) stops the step with its traceback.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import torch
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from ..errors import ModelFileError
from ..export import export_waveform_model, onnx_predict, onnx_session
from ..features import LogMelFrontEnd, load_audio
from ..machine import machine_identity, versions
from ..parameters import Settings
from ..profile import ONNX_RUNTIME, TORCH_RUNTIME, compare_latency, onnx_call, onnx_latency, torch_call, torch_threads
from ..quantize import METHODS, QuantizationInputs, calibration_set, check_methods, evaluate_onnx
from ..results import upsert_results
from ..storage import cached, publish
from ..train import evaluate, predict
from .baselines import BaselineResult
from .data import PreparedData

#: Bump when a quantization record gains or changes fields, so cached entries are recomputed.
QUANT_VERSION = 3
#: Failures that mean "this method cannot handle this model": reported as an error row, the others go on.
QUANTIZATION_FAILURES = (ModelFileError, RuntimeError, onnx.checker.ValidationError, ort_errors.Fail,
                         ort_errors.InvalidArgument, ort_errors.InvalidGraph, ort_errors.NotImplemented,
                         ort_errors.RuntimeException, ort_errors.InvalidProtobuf, ort_errors.EPFail)
#: Record fields a variant shares with its FP32 baseline.
SHARED_FIELDS = ("model", "architecture", "dataset", "context", "protocol", "protocol_kind", "params", "macs", "flops",
                 "flop_counter_flops", "seed", "features", "train", "class_names", "machine", "threads")


@dataclass
class QuantizationResult:
    """One (model, method): its record, or the error that stopped it (``record`` is then None)."""

    model: str
    method: str
    record: dict | None
    error: str | None = None


def _measure(baseline: BaselineResult, method_name: str, data: PreparedData, settings: Settings,
             calibration: np.ndarray, reduce_range: bool, folder: Path) -> dict:
    """Quantize one baseline with one method into ``folder``, evaluate the variant from its own outputs, and time
    it against its FP32 twin in the same runtime and threads, interleaved."""
    method = METHODS[method_name]
    model = baseline.deployed_run.load_model()
    split = baseline.deployed_run.split
    x_test, y_test = data.features.select([split.test_fold])
    input_shape = (1, *data.feature_config.shape)
    artifact = folder / f"variant{method.suffix}"
    threads, runs = settings.latency_threads, settings.latency_runs
    if method.runtime == "onnxruntime":
        onnx_session(baseline.onnx_path)  # an unusable FP32 file is named here, not deep inside the quantizer
    quantization = method.apply(QuantizationInputs(model, baseline.onnx_path, calibration,
                                                   settings.calibration_method, reduce_range), artifact)
    if method.runtime == "pytorch":
        quantized = _load_torch_variant(model, artifact)
        metrics = evaluate(quantized, x_test, y_test, data.num_classes)
        twin_metrics = evaluate(model, x_test, y_test, data.num_classes)
        with torch_threads(threads), torch.inference_mode():
            latency, twin_latency = compare_latency(torch_call(quantized, input_shape), torch_call(model, input_shape),
                                                    runs)
        runtime_name, twin_size = TORCH_RUNTIME, baseline.record["size_bytes"]
    else:
        metrics = evaluate_onnx(artifact, x_test, y_test, data.num_classes, threads)
        twin_metrics = evaluate_onnx(baseline.onnx_path, x_test, y_test, data.num_classes, threads)
        latency, twin_latency = compare_latency(onnx_call(artifact, input_shape, threads),
                                                onnx_call(baseline.onnx_path, input_shape, threads), runs)
        runtime_name, twin_size = ONNX_RUNTIME, os.path.getsize(baseline.onnx_path)
    latency, twin_latency = ({**t, "threads": threads, "runtime": runtime_name} for t in (latency, twin_latency))
    size = os.path.getsize(artifact)
    return {
        "test_folds": [split.test_fold], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
        "per_class_accuracy": metrics["per_class_accuracy"], "confusion": metrics["confusion"], "size_bytes": size,
        "latency": {method.runtime: latency}, "latency_ms": latency["median_ms"],
        "fp32": {"accuracy": twin_metrics["accuracy"], "size_bytes": twin_size,
                 "latency_ms": twin_latency["median_ms"], "latency": twin_latency},
        "size_ratio": round(twin_size / size, 3), "speedup": round(twin_latency["median_ms"] / latency["median_ms"], 3),
        "accuracy_drop": round(twin_metrics["accuracy"] - metrics["accuracy"], 4),
        "slower_than_fp32": latency["median_ms"] > twin_latency["median_ms"], "quantization": quantization,
    }


def _load_torch_variant(model: torch.nn.Module, artifact: Path) -> torch.nn.Module:
    """The PyTorch dynamic variant rebuilt from its saved state dict (what a user loading the file gets)."""
    from ..quantize import quantize_torch_dynamic

    variant = quantize_torch_dynamic(model)
    with warnings.catch_warnings():  # packed quantized weights load through torch's deprecated TypedStorage
        warnings.filterwarnings("ignore", "TypedStorage is deprecated")
        variant.load_state_dict(torch.load(artifact, weights_only=False))
    return variant.eval()


def quantize_models(data: PreparedData, settings: Settings, baselines: list[BaselineResult],
                    methods: list[str] | None = None) -> list[QuantizationResult]:
    """Compress every baseline with every method (default: ``settings.methods``), measure each variant, publish
    it, and upsert the records. Calibration clips are drawn (seeded) from the training folds of each baseline's
    split. See the module docstring for what is cached and which failures give an error row."""
    methods = settings.methods if methods is None else methods
    check_methods(methods, settings.calibration_method)
    reduce_range = not data.machine["int8_dot_product"]
    library = versions()
    results = []
    for baseline in baselines:
        run = baseline.deployed_run
        x_train, _ = data.features.select(run.split.train_folds)
        calibration = calibration_set(x_train, settings.calibration_size, seed=settings.seed)
        for name in methods:
            method = METHODS[name]
            key = {"fp32": baseline.record["onnx_sha256"], "run": run.key, "method": name,
                   "calibration": {"clips": len(calibration), "method": settings.calibration_method,
                                   "seed": settings.seed},
                   "reduce_range": reduce_range, "threads": settings.latency_threads, "runs": settings.latency_runs,
                   "machine": machine_identity(), "version": QUANT_VERSION,
                   "versions": {n: library[n] for n in ("torch", "onnx", "onnxruntime")}}
            try:
                entry = cached(data.layout.cache / "quantized", key, lambda folder: _measure(
                    baseline, name, data, settings, calibration, reduce_range, folder), name=f"{baseline.name}-{name}")
            except QUANTIZATION_FAILURES as exc:
                message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                results.append(QuantizationResult(baseline.name, name, None, f"{type(exc).__name__}: {message}"))
                continue
            published = data.layout.models / method.artifact(baseline.name)
            record = {**{k: baseline.record[k] for k in SHARED_FIELDS}, **entry.value,
                      "variant": name, "method": name, "runtime": method.runtime, "precision": "int8",
                      "int8_weights": method.int8_weights,
                      "accuracy_std": None, "artifact": os.path.relpath(published, data.layout.root),
                      "artifact_sha256": publish(entry.file(f"variant{method.suffix}"), published),
                      "artifact_source": os.path.relpath(entry.file(f"variant{method.suffix}"), data.layout.root)}
            results.append(QuantizationResult(baseline.name, name, record))
    upsert_results(data.layout.logs, [r.record for r in results if r.record is not None])
    return results


def quantization_table(results: list[QuantizationResult]) -> pd.DataFrame:
    """The quantization table, one row per (model, method): the reference columns (FP32 -> INT8 size ratio,
    speedup, accuracy drop), the absolute numbers, a flag where INT8 is slower than FP32, and the error of any
    (model, method) that failed."""
    rows = []
    for result in results:
        r = result.record
        if r is None:
            rows.append({"Model": result.model, "Method": result.method, "Error": result.error})
            continue
        rows.append({
            "Model": r["model"], "Method": r["method"], "Size ratio": r["size_ratio"], "Speedup": r["speedup"],
            "Drop (points)": r["accuracy_drop"], "INT8 acc (%)": r["accuracy"],
            "INT8 size (kB)": round(r["size_bytes"] / 1e3, 1),
            "FP32 size (kB)": round(r["fp32"]["size_bytes"] / 1e3, 1),
            "INT8 (ms)": r["latency_ms"], "FP32 (ms)": r["fp32"]["latency_ms"],
            "Flag": "INT8 slower: keep FP32" if r["slower_than_fp32"] else "", "Error": "",
        })
    table = pd.DataFrame(rows)
    if not table["Error"].fillna("").astype(bool).any():
        table = table.drop(columns="Error")
    return table.set_index("Model")


def failure_note(results: list[QuantizationResult]) -> str:
    """A sentence for the chapter's prose: every (model, method) that failed and why, or that none did."""
    failed = [r for r in results if r.error]
    if not failed:
        return f"All {len(results)} (model, method) pairs were quantized and evaluated; none failed."
    listed = "; ".join(f"{r.model} with {r.method} ({r.error})" for r in failed)
    return (f"**{len(failed)} of {len(results)} (model, method) pairs failed** and are absent from every table, "
            f"figure and record: {listed}.")


#: How close the raw-audio ONNX model's logits must be to the PyTorch model's on cached features.
WAVEFORM_TOLERANCE = 1e-3


def export_deployable(data: PreparedData, baseline: BaselineResult, clips: int = 16, threads: int = 1) -> dict:
    """Export ``models/<name>_waveform.onnx`` (front end in the graph) and compare it with the package's pipeline.

    The export is cached by the training run, the feature settings and the library versions, and published on
    every call. The first ``clips`` clips of the test fold go through both paths: files -> :func:`load_audio` ->
    the ONNX graph, and the cached log-mels -> the PyTorch model. Returns the maximum absolute logit difference,
    whether it is within :data:`WAVEFORM_TOLERANCE`, whether the predictions agree, and the file's size.
    """
    run = baseline.deployed_run
    config = data.feature_config
    library = versions()
    key = {"run": run.key, "features": config.to_dict(),
           "versions": {n: library[n] for n in ("torch", "onnx", "onnxscript", "librosa")}}

    def export(folder: Path) -> dict:
        export_waveform_model(run.load_model(), LogMelFrontEnd(config), config.num_samples, folder / "model.onnx")
        return {"size_bytes": os.path.getsize(folder / "model.onnx")}

    entry = cached(data.layout.cache / "waveform", key, export, name=f"waveform-{baseline.name}")
    path = data.layout.models / f"{baseline.name}_waveform.onnx"
    publish(entry.file("model.onnx"), path)
    mask = data.features.folds == run.split.test_fold
    paths = data.dataset.table["path"].to_numpy()[mask][:clips]
    waves = np.stack([load_audio(p, config) for p in paths])
    # batch 1, as a device runs it (the exported STFT graph has a fixed batch dimension of 1)
    onnx_logits = onnx_predict(onnx_session(path, threads), waves, name=str(path))
    torch_logits = predict(run.load_model(), data.features.features[mask][:clips])
    difference = float(np.abs(onnx_logits - torch_logits).max())
    return {"model": baseline.name, "path": os.path.relpath(path, data.layout.root),
            "size_bytes": os.path.getsize(path), "clips": len(paths), "max_abs_logit_difference": difference,
            "tolerance": WAVEFORM_TOLERANCE, "within_tolerance": difference <= WAVEFORM_TOLERANCE,
            "predictions_agree": bool((onnx_logits.argmax(1) == torch_logits.argmax(1)).all()),
            "latency": onnx_latency(path, (config.num_samples,), threads, 50)}
