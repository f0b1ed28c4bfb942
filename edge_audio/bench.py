"""``edge-audio bench``: the performance numbers the README quotes, measured on this machine.

Prints (and optionally writes as JSON):

* training throughput (samples/s) of each preset: batch 32, channels_last, AdamW, on random log-mels;
* feature extraction throughput (clips/s) on a freshly generated synthetic dataset, all cores;
* each preset's single-thread latency in PyTorch eager and ONNX Runtime, its FLOP floor, and the ratios.

This is a benchmark, not a test: it asserts nothing, it reports. The goal it tracks: ONNX Runtime single-thread
FP32 latency within 1.5x of the FLOP floor for every preset.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import FeatureConfig
from .data import load_dataset
from .export import export_to_onnx
from .features import extract_features
from .models import PRESETS, LightweightCNN, preset_spec
from .machine import cores, cpu_isa, cpu_name, matmul_throughput
from .profile import profile_model, torch_threads
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
            model = LightweightCNN.from_spec(preset_spec(name)).eval()
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
