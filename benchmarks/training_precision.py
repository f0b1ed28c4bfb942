"""Training in bf16 autocast against FP32 on this CPU: time and test accuracy per model and seed (issue 35).

    python benchmarks/training_precision.py [--output-dir DIR] [--models nano small medium] [--seeds 0 1]

Prepares the book's synthetic dataset (book values) in --output-dir, then trains each model once per seed on the
holdout split with the book's training settings, once in FP32 and once with the training step's forward pass and
loss in bf16 autocast (what :func:`edge_audio.train.training_precision` picks on a CPU with native bf16), and
prints a table: seconds and test / validation accuracy per precision, and the time ratio. Runs go to their own
cache folders under --output-dir/precision-benchmark, so the book's cache is left alone. On a CPU without native
bf16 the bf16 column is emulated and slow: that is why the package trains in FP32 there.
"""
from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import torch

from edge_audio import train
from edge_audio.machine import cpu_isa, cpu_name
from edge_audio.models import spec_from_config
from edge_audio.settings import Settings
from edge_audio.steps.data import prepare_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("/tmp/edge-audio-precision"))
    parser.add_argument("--models", nargs="+", default=["nano", "small", "medium"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    args = parser.parse_args()
    settings = Settings.book(output_dir=str(args.output_dir), seeds=[0])
    data = prepare_data(settings, progress=False)
    split = settings.protocol.splits(data.dataset.folds)[-1]
    contexts = {"fp32": contextlib.nullcontext, "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}
    print(f"{cpu_name()} ({', '.join(cpu_isa())}), {torch.get_num_threads()} threads")
    print("| model | seed | FP32 (s) | bf16 (s) | FP32 / bf16 | FP32 test / val (%) | bf16 test / val (%) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        spec = spec_from_config(name)
        for seed in args.seeds:
            config = train.TrainConfig(**{**settings.train.to_dict(), "seed": seed})
            row = {}
            for precision, context in contexts.items():
                train.mixed_precision = lambda device, context=context: context()
                started = time.perf_counter()
                run = train.train_model(spec, data.features, split, config,
                                        args.output_dir / "precision-benchmark" / precision, "cpu", False)
                seconds = run.train_seconds if run.reused else time.perf_counter() - started
                row[precision] = (seconds, run.test["accuracy"], run.val["accuracy"])
            (fp32_s, fp32_test, fp32_val), (bf16_s, bf16_test, bf16_val) = row["fp32"], row["bf16"]
            print(f"| {name} | {seed} | {fp32_s:.1f} | {bf16_s:.1f} | {fp32_s / bf16_s:.2f} | "
                  f"{fp32_test:.2f} / {fp32_val:.2f} | {bf16_test:.2f} / {bf16_val:.2f} |", flush=True)


if __name__ == "__main__":
    main()
