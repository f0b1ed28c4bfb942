"""``edge-audio bench``: the performance numbers the README quotes, measured on this machine.

Prints (and optionally writes as JSON):

* training throughput (samples/s) of each preset: batch 32, channels_last, AdamW, on random log-mels;
* feature extraction throughput (clips/s) on a freshly generated synthetic dataset, all cores;
* each preset's single-thread latency in PyTorch eager and ONNX Runtime, its FLOP floor, and the ratios.

``--runtimes`` (:func:`run_runtime_benchmarks`) instead times each preset in every installed runtime
(:data:`edge_audio.runtimes.RUNTIMES`): its FP32 twin and the methods marked ``bench`` that run there, all
interleaved, against **the machine's limits** (:func:`gemm_floors`): the single-thread throughputs of an FP32 and
an INT8 matrix product through the runtimes' own kernels (the best of ONNX Runtime's and LiteRT's, and for FP32
PyTorch's matmul too). A latency divided by its model's floor in its precision says how far the runtime is from
what the hardware allows. A runtime that is not installed is reported absent, never as an error; one that is
installed but refuses a file reports its error in that cell.

This is a benchmark, not a test: it asserts nothing, it reports. The goal it tracks: ONNX Runtime single-thread
FP32 latency within 1.5x of the FLOP floor for every preset.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .features import FeatureConfig
from .data import load_dataset
from .export import export_to_onnx
from .features import extract_features
from .models import PRESETS, LightweightCNN, preset_spec, untrained_like_trained
from .machine import cores, cpu_isa, cpu_name, matmul_throughput
from .profile import count_macs, interleaved_times, latency_summary, profile_model
from .quantize import METHODS, QuantizationInputs, bench_methods
from .runtimes import RUNTIMES, FP32Model, installed_runtimes
from .runtimes.pytorch import save_checkpoint, torch_threads
from .storage import atomic_write_json
from .synth import SynthConfig, generate_dataset

FLOOR_GOAL = 1.5


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


def _attempt(runtime: str, precision: str, make: Callable[[], Path]) -> Deployment:
    """The deployment whose file ``make`` writes, opened in ``runtime`` at ``precision`` and run once."""
    try:
        path = make()
        call = RUNTIMES[runtime].session(path, precision).call()
        call()  # a runtime that loads a file but fails to run it is caught here, not in the timing loop
        return Deployment(runtime, precision, call, os.path.getsize(path))
    except Exception as exc:  # a runtime's refusal is a result of the comparison, reported in its cell
        message = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        return Deployment(runtime, precision, error=f"{type(exc).__name__}: {message}")


def deployments(model: FP32Model, torch_model, calibration: np.ndarray, folder: Path, reduce_range: bool,
                runtimes: tuple[str, ...] | None = None) -> list[Deployment]:
    """Every installed runtime's (of ``runtimes``, default all) FP32 twin of ``model`` and its variants by each
    method the registry marks ``bench`` (:func:`edge_audio.quantize.bench_methods`) that runs there, calibrated on
    ``calibration``, written under ``folder``."""
    result = []
    for name, runtime in RUNTIMES.items():
        if (runtimes and name not in runtimes) or not runtime.installed():
            continue
        result.append(_attempt(name, "fp32", lambda: runtime.twin(model, folder)))
        for method in (METHODS[m] for m in bench_methods() if METHODS[m].runtime == name):
            inputs = QuantizationInputs(torch_model, model.onnx, calibration, "minmax", reduce_range)
            out = folder / method.artifact("bench")
            result.append(_attempt(name, method.precision, lambda: (method.apply(inputs, out), out)[1]))
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
    layer = torch.nn.Conv2d(k, n, 1).eval()
    ops = 2.0 * m * k * n
    shape = (k, side, side)
    with tempfile.TemporaryDirectory(prefix="edge-audio-gemm-") as scratch:
        scratch = Path(scratch)
        fp32 = FP32Model(export_to_onnx(layer, scratch / "gemm.onnx", input_shape=(1, *shape)), scratch / "none")
        calibration = np.random.default_rng(0).standard_normal((4, *shape)).astype(np.float32)
        items = deployments(fp32, layer, calibration, scratch, reduce_range=False, runtimes=("onnxruntime", "litert"))
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
            files = FP32Model(export_to_onnx(model, scratch / f"{name}.onnx", input_shape=(1, *input_shape)),
                              save_checkpoint(model, scratch / f"{name}.pth", input_shape))
            profile = profile_model(model, input_shape, files, report["matmul_gflops_1thread"], threads=1,
                                    runs=latency_runs)
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
    every installed runtime and precision (:func:`deployments`), timed interleaved, one thread, batch 1,
    at the book's feature shape; each latency as a speedup over ONNX Runtime FP32 and as a ratio to the machine's
    floor in its precision (bf16 against FP32's), and each file's size ratio to the FP32 ONNX file. Prints a
    table, returns it."""
    from .machine import cpu_int8_dot_product

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
            files = FP32Model(fp32, save_checkpoint(model, folder / "fp32.pth", input_shape))
            macs = count_macs(model, input_shape)["macs"]
            items = deployments(files, model, calibration, folder, reduce_range)
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
