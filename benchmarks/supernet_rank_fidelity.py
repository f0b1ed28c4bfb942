"""Can a weight-sharing supernet rank sub-networks as training each one alone would? (issue 37, item 3)

    python benchmarks/supernet_rank_fidelity.py [--epochs 8] [--subnets 12] [--output-dir DIR]

On the book's synthetic data (generator 2, the book's clips per class), inside the search's proxy split (the
deployed split's training folds: all but the last train, the last scores; the validation and test folds are never
read), it trains one supernet (:mod:`edge_audio.supernet`: sandwich rule, in-place distillation) and, for
``--subnets`` sub-networks spread over the space by parameters, compares each one's supernet score (inherited
weights, BatchNorm recalibrated on training clips) with its accuracy trained alone for the same epochs (the
package's training, the proxy's settings). It prints the time each part took, the table, and Kendall's tau with its
95% interval (:func:`edge_audio.stats.rank_agreement`): the supernet can be trusted to rank only when the interval
lies above zero, and ranks well only when it lies high.
"""
from __future__ import annotations

import argparse
import dataclasses
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from edge_audio.machine import cpu_name
from edge_audio.models import count_parameters
from edge_audio.settings import Settings
from edge_audio.stats import rank_agreement
from edge_audio.steps.data import prepare_data
from edge_audio.steps.search import proxy_split
from edge_audio.supernet import SupernetSpace, score, train_supernet
from edge_audio.train import train_model


def spread(space: SupernetSpace, count: int, seed: int) -> list[dict]:
    """``count`` distinct sub-networks at evenly spaced quantiles of the parameters of 400 drawn at random."""
    from edge_audio.supernet import Supernet

    rng = random.Random(seed)
    probe = Supernet(space, num_classes=10)
    drawn = {}
    for _ in range(400):
        arch = space.sample(rng)
        drawn[repr(arch)] = (count_parameters(probe.extract(arch)), arch)
    ordered = sorted(drawn.values(), key=lambda item: item[0])
    picks = np.linspace(0, len(ordered) - 1, count).round().astype(int)
    return [ordered[i][1] for i in dict.fromkeys(picks)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8, help="supernet and stand-alone epochs (default 8)")
    parser.add_argument("--subnets", type=int, default=12, help="sub-networks compared (default 12, at least 5)")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-audio-supernet-") as scratch:
        output = args.output_dir or Path(scratch)
        settings = Settings.book(output_dir=str(output), device="cpu")
        data = prepare_data(settings)
        split = proxy_split(settings.protocol.splits(data.dataset.folds)[-1], None)
        x_train, y_train = data.features.select(split.train_folds)
        x_proxy, y_proxy = data.features.select([split.val_fold])
        calibration = x_train[np.random.default_rng(0).choice(len(x_train), 256, replace=False)]
        space = SupernetSpace()
        config = dataclasses.replace(settings.search.proxy_train_config(), epochs=args.epochs)
        started = time.perf_counter()
        supernet, _ = train_supernet(space, x_train, y_train, data.num_classes, args.epochs,
                                     batch_size=config.batch_size, lr=config.lr, seed=settings.seed)
        supernet_seconds = time.perf_counter() - started
        archs = spread(space, args.subnets, settings.seed)
        rows, scoring, alone_seconds = [], [], 0.0
        for index, arch in enumerate(archs):
            started = time.perf_counter()
            inherited = score(supernet, arch, calibration, x_proxy, y_proxy)["accuracy"]
            scoring.append(time.perf_counter() - started)
            spec = space.spec(arch, f"alone{index}")
            started = time.perf_counter()
            run = train_model(spec, data.features, split, config, output / "alone", "cpu", False)
            alone_seconds += time.perf_counter() - started
            rows.append((arch, count_parameters(supernet.extract(arch)), inherited, run.val["accuracy"]))
    print(f"{cpu_name()}; proxy split: train folds {list(split.train_folds)}, scored on fold {split.val_fold} "
          f"({len(y_proxy)} clips); {args.epochs} epochs each")
    print(f"supernet training: {supernet_seconds:.0f} s; scoring a sub-network (BatchNorm recalibrated on "
          f"{len(calibration)} clips): median {1000 * float(np.median(scoring)):.0f} ms; {len(rows)} stand-alone "
          f"trainings: {alone_seconds:.0f} s")
    print(f"{'params':>8} {'supernet %':>10} {'alone %':>8}  architecture")
    for arch, params, inherited, alone in rows:
        print(f"{params:>8,} {inherited:>10.2f} {alone:>8.2f}  {'-'.join(map(str, arch['channels']))} "
              f"k{arch['kernel_size']} fc{arch['fc_size']} {arch['pool']}")
    agreement = rank_agreement([r[2] for r in rows], [r[3] for r in rows])
    if agreement["tau"] is None:
        print("Kendall's tau: undefined (every score tied)")
    else:
        low, high = agreement["ci95"]
        print(f"Kendall's tau (supernet score against training alone): {agreement['tau']:+.3f}, 95% interval "
              f"{low:+.3f} to {high:+.3f}, n = {agreement['n']}: "
              + ("the supernet ranks these sub-networks better than chance" if agreement["resolved"] else
                 "the supernet cannot be trusted to rank these sub-networks"))


if __name__ == "__main__":
    main()
