"""``edge-audio bench``: the performance numbers the README quotes, measured on this machine.

Prints (and optionally writes as JSON):

* training throughput (samples/s) of each preset: batch 32, channels_last, AdamW, on random log-mels;
* feature extraction throughput (clips/s) on a freshly generated synthetic dataset, all cores;
* each preset's single-thread latency in PyTorch eager and ONNX Runtime, its FLOP floor, and the ratios.

``--runtimes`` (:func:`run_runtime_benchmarks`) instead times each preset in every installed runtime and precision.

This is a benchmark, not a test: it asserts nothing, it reports. The goal it tracks: ONNX Runtime single-thread
FP32 latency within 1.5x of the FLOP floor for every preset.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import FeatureConfig
from .data import load_dataset
from .export import export_to_onnx
from .features import extract_features
from .models import PRESETS, LightweightCNN, preset_spec, untrained_like_trained
from .machine import cores, cpu_isa, cpu_name, matmul_throughput
from .profile import count_macs, profile_model, torch_threads
from .storage import atomic_write_json
from .synth import SynthConfig, generate_dataset

FLOOR_GOAL = 1.5


def training_throughput(name: str, input_shape: tuple[int, ...], batch_size: int = 32, steps: int = 8) -> float:
    """Training samples per second of a preset on all cores (the first 3 steps are warm-up)."""
    torch.manual_seed(0)
    model = LightweightCNN.from_spec(preset_spec(name)).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters())
    x = torch.randn(batch_size, *input_shape).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,))
    for step in range(steps):
        if step == 3:
            start = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return batch_size * (steps - 3) / (time.perf_counter() - start)


def run_benchmarks(latency_runs: int = 200, clips_per_class_per_fold: int = 4, out: str | None = None) -> dict:
    """Measure everything listed in the module docstring; print a report and return it."""
    features = FeatureConfig()
    input_shape = (1, *features.shape)
    count = cores()
    report = {"cpu": cpu_name(), "isa": cpu_isa(), "cores": count, "torch": torch.__version__,
              "matmul_gflops_1thread": matmul_throughput(1), "matmul_gflops_all": matmul_throughput(count)}
    print(f"machine: {report['cpu']} ({', '.join(report['isa'])}), {count} cores; FP32 matmul "
          f"{report['matmul_gflops_1thread']} GFLOP/s (1 thread), {report['matmul_gflops_all']} GFLOP/s "
          f"({count} threads)")

    with tempfile.TemporaryDirectory(prefix="edge-audio-bench-") as scratch:
        scratch = Path(scratch)
        dataset = load_dataset(generate_dataset(scratch / "data", SynthConfig(
            clips_per_class_per_fold=clips_per_class_per_fold), progress=False))
        extracted = extract_features(dataset, features, scratch / "cache", dataset.fingerprint(), progress=False)
        report["feature_extraction"] = {"clips": len(dataset), "seconds": round(extracted.seconds, 2),
                                        "clips_per_second": round(extracted.clips_per_second, 1), "workers": count}
        print(f"feature extraction: {extracted.clips_per_second:.0f} clips/s ({len(dataset)} clips, "
              f"{count} workers, {extracted.seconds:.1f} s)")

        print(f"\n{'preset':<8} {'train/s':>8} {'MFLOPs':>8} {'floor ms':>9} {'torch ms':>9} {'ORT ms':>8} "
              f"{'torch/floor':>12} {'ORT/floor':>10}")
        report["presets"] = {}
        for name in PRESETS:
            with torch_threads(count):
                samples_per_second = training_throughput(name, input_shape)
            model = untrained_like_trained(preset_spec(name))
            export_to_onnx(model, scratch / f"{name}.onnx", input_shape=(1, *input_shape))
            profile = profile_model(model, input_shape, scratch / f"{name}.onnx", report["matmul_gflops_1thread"],
                                    threads=1, runs=latency_runs)
            row = {"train_samples_per_second": round(samples_per_second, 1), "flops": profile["flops"],
                   "floor_ms": profile["flop_floor_ms"],
                   "pytorch_ms": profile["latency"]["pytorch"]["median_ms"],
                   "onnxruntime_ms": profile["latency"]["onnxruntime"]["median_ms"],
                   **{f"{k}_floor_ratio": v for k, v in profile["latency_floor_ratio"].items()}}
            report["presets"][name] = row
            print(f"{name:<8} {row['train_samples_per_second']:>8.1f} {row['flops'] / 1e6:>8.1f} "
                  f"{row['floor_ms']:>9.3f} {row['pytorch_ms']:>9.3f} {row['onnxruntime_ms']:>8.3f} "
                  f"{row['pytorch_floor_ratio']:>12.2f} {row['onnxruntime_floor_ratio']:>10.2f}")
    worst = max(r["onnxruntime_floor_ratio"] for r in report["presets"].values())
    report["goal_onnxruntime_within_floor_ratio"] = {"goal": FLOOR_GOAL, "worst": worst, "met": worst <= FLOOR_GOAL}
    print(f"\ngoal: ONNX Runtime single-thread latency within {FLOOR_GOAL}x of the FLOP floor for every preset: "
          f"{'met' if worst <= FLOOR_GOAL else 'NOT met'} (worst ratio {worst:.2f})")
    if out:
        atomic_write_json(out, report)
    return report


def run_runtime_benchmarks(latency_runs: int = 200, presets: list[str] | None = None,
                           out: str | None = None) -> dict:
    """``edge-audio bench --runtimes``: every preset (untrained: latency does not depend on the weights' values) in
    every installed runtime and precision (:mod:`edge_audio.runtimes`), timed interleaved, one thread, batch 1,
    at the book's feature shape; each latency as a speedup over ONNX Runtime FP32 and as a ratio to the machine's
    floor in its precision (bf16 against FP32's), and each file's size ratio to the FP32 ONNX file. Prints a
    table, returns it."""
    from .machine import cpu_int8_dot_product
    from .runtimes import deployments, gemm_floors, installed_runtimes, time_interleaved

    input_shape = (1, *FeatureConfig().shape)  # the book's front end
    floors = gemm_floors()
    fp32_gflops, int8_gops = floors["fp32"]["best"], floors["int8"]["best"]
    reduce_range = not cpu_int8_dot_product()
    report = {"cpu": cpu_name(), "isa": cpu_isa(), "threads": 1, "batch": 1, "input_shape": list(input_shape),
              "installed": installed_runtimes(), "gemm_floors": floors,
              "reduce_range": reduce_range, "models": {}}
    absent = [name for name, found in report["installed"].items() if not found]
    print(f"machine: {report['cpu']} ({', '.join(report['isa'])}); one thread, batch 1, input {input_shape}")
    print(f"floors: FP32 GEMM {fp32_gflops} GFLOP/s (best of {floors['fp32']['gops']}); INT8 GEMM {int8_gops} GOP/s "
          f"(best of {floors['int8']['gops']}); runtimes absent: {', '.join(absent) or 'none'}")
    rng = np.random.default_rng(0)
    calibration = rng.standard_normal((8, *input_shape)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="edge-audio-runtimes-") as scratch:
        for name in presets or list(PRESETS):
            folder = Path(scratch) / name
            folder.mkdir()
            model = untrained_like_trained(preset_spec(name))
            fp32 = export_to_onnx(model, folder / "fp32.onnx", input_shape=(1, *input_shape))
            macs = count_macs(model, input_shape)["macs"]
            items = deployments(fp32, input_shape, calibration, folder, reduce_range)
            time_interleaved(items, runs=latency_runs)
            baseline = next(d for d in items if d.name == "onnxruntime fp32").latency["median_ms"]
            fp32_bytes = os.path.getsize(fp32)
            rows = {}
            print(f"\n{name} ({macs / 1e6:.1f} M MACs; FP32 floor {2 * macs / fp32_gflops / 1e6:.3f} ms, INT8 floor "
                  f"{2 * macs / int8_gops / 1e6 if int8_gops else float('nan'):.3f} ms)")
            print(f"  {'runtime precision':<26} {'median ms':>10} {'vs ORT FP32':>12} {'x floor':>8} "
                  f"{'size ratio':>11}")
            for d in items:
                if d.call is None:
                    rows[d.name] = {"error": d.error}
                    print(f"  {d.name:<26} {'failed: ' + d.error}")
                    continue
                median = d.latency["median_ms"]
                floor_gops = int8_gops if d.precision.startswith("int8") else fp32_gflops
                floor_ms = 2 * macs / floor_gops / 1e6 if floor_gops else float("nan")
                rows[d.name] = {**d.latency, "speedup_vs_onnxruntime_fp32": round(baseline / median, 3),
                                "floor_ratio": round(median / floor_ms, 2), "file_bytes": d.file_bytes,
                                "size_ratio_vs_fp32_onnx": round(fp32_bytes / d.file_bytes, 3)}
                print(f"  {d.name:<26} {median:>10.3f} {baseline / median:>11.2f}x {median / floor_ms:>8.2f} "
                      f"{fp32_bytes / d.file_bytes:>10.2f}x")
            report["models"][name] = {"macs": macs, "deployments": rows}
    if out:
        atomic_write_json(out, report)
    return report
