"""Training speed on this CPU: bf16 autocast against FP32, and larger batches with a linearly scaled learning
rate, per model and seed: seconds and validation accuracy (issue 35).

    python benchmarks/training_precision.py [--output-dir DIR] [--models nano small ds_cnn] [--seeds 0 1]
                                            [--batch-sizes 32 64 128]

Prepares the book's synthetic dataset (book values) in --output-dir, then trains each model once per seed on the
holdout split with the book's training settings: in FP32 and with the training step's forward pass and loss in
bf16 autocast (what :func:`edge_audio.train.training_precision` picks on a CPU with native bf16) at the book's
batch size, and in bf16 at each larger batch size with the learning rate scaled by the same factor (the linear
scaling rule). It prints a table: seconds, each setting's time against the book's (bf16 where the CPU has it,
batch 32), and validation accuracy (what a setting would be chosen on; no test clip is evaluated). Runs go to their
own cache folders under --output-dir/precision-benchmark, so the book's cache is left alone. On a CPU without
native bf16 the bf16 rows are emulated and slow: that is why the package trains in FP32 there.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from pathlib import Path

import torch

from edge_audio import train
from edge_audio.machine import cpu_isa, cpu_name
from edge_audio.models import spec_from_config
from edge_audio.settings import Settings
from edge_audio.steps.data import prepare_data

CONTEXTS = {"fp32": contextlib.nullcontext, "bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("/tmp/edge-audio-precision"))
    parser.add_argument("--models", nargs="+", default=["nano", "small", "ds_cnn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[32, 64, 128])
    args = parser.parse_args()
    settings = Settings.book(output_dir=str(args.output_dir), seeds=[0])
    data = prepare_data(settings, progress=False)
    split = settings.protocol.splits(data.dataset.folds)[-1]
    book = settings.train
    settings_tried = [("fp32", book.batch_size)] + [("bf16", size) for size in args.batch_sizes]
    print(f"{cpu_name()} ({', '.join(cpu_isa())}), {torch.get_num_threads()} threads; {book.epochs} epochs; "
          f"the book trains in {train.training_precision(torch.device('cpu'))} at batch {book.batch_size}")
    print()
    print("| model | seed | precision, batch (learning rate) | seconds | against the book's | val accuracy (%) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        spec = spec_from_config(name)
        for seed in args.seeds:
            rows = {}
            for precision, size in settings_tried:
                scale = size / book.batch_size
                config = dataclasses.replace(book, seed=seed, batch_size=size, lr=book.lr * scale)
                train.mixed_precision = lambda device, context=CONTEXTS[precision]: context()
                started = time.perf_counter()
                run = train.train_model(spec, data.features, split, config,
                                        args.output_dir / "precision-benchmark" / precision, "cpu", False)
                rows[(precision, size)] = (run.train_seconds if run.reused else time.perf_counter() - started,
                                           run.val["accuracy"], config.lr)
            reference = rows[(train.training_precision(torch.device("cpu")), book.batch_size)][0]
            for (precision, size), (seconds, val, lr) in rows.items():
                print(f"| {name} | {seed} | {precision}, {size} ({lr:g}) | {seconds:.1f} | "
                      f"{reference / seconds:.2f}x | {val:.2f} |", flush=True)


if __name__ == "__main__":
    main()
