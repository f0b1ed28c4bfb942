"""Should a supernet's pick be fine-tuned from its inherited weights or retrained from scratch? (issue 37, item 4)

    python benchmarks/supernet_finetune_or_retrain.py [--subnets 10] [--output-dir DIR]

On the book's data and settings (``Settings.book()``), inside the search's proxy split (the validation and test
folds are never read), it takes the book's supernet (trained, or loaded from ``--output-dir``'s cache: a book run's
output folder makes it instant) and ``--subnets`` sub-networks spread over the space by parameters, and trains each
twice with the proxy search's settings: from scratch, and fine-tuned from its inherited weights (BatchNorm
recalibrated, as the supernet scores it). It prints each one's supernet score and both accuracies on the proxy
fold, the mean paired difference (fine-tuned - retrained) over the sub-networks with its 95% t-interval, and which
to keep: fine-tuning only when the interval lies above zero, since retraining needs no supernet and is the
baseline protocol every other model follows.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

from edge_audio.machine import cpu_name
from edge_audio.settings import Settings
from edge_audio.steps.data import prepare_data
from edge_audio.steps.search import proxy_split, supernet_scorer
from edge_audio.supernet_search import BOOK_SPACE, spread_over_params, structural_costs
from edge_audio.train import train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subnets", type=int, default=10, help="sub-networks compared (default 10, at least 3)")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-audio-finetune-") as scratch:
        output = args.output_dir or Path(scratch)
        settings = Settings.book(output_dir=str(output), device="cpu")
        data = prepare_data(settings)
        split = proxy_split(settings.protocol.splits(data.dataset.folds)[-1], settings.proxy_train_folds)
        started = time.perf_counter()
        scorer, trained = supernet_scorer(data.features, split, settings, data.layout.cache)
        supernet_seconds = time.perf_counter() - started
        config = settings.search.proxy_train_config()
        shape, classes = data.features.config.shape, data.num_classes
        rows, seconds = [], {"retrained": 0.0, "fine-tuned": 0.0}
        for index, arch in enumerate(spread_over_params(BOOK_SPACE, max(3, args.subnets), settings.seed, shape,
                                                        classes)):
            spec = BOOK_SPACE.spec(arch, f"subnet{index}")
            accuracy = {}
            for how, initial in (("retrained", None), ("fine-tuned", scorer.model(arch, spec["name"]))):
                started = time.perf_counter()
                run = train_model(spec, data.features, split, config, output / "finetune-or-retrain", "cpu", False,
                                  initial=initial)
                seconds[how] += time.perf_counter() - started
                accuracy[how] = run.val["accuracy"]
            rows.append((arch, structural_costs(arch, shape, classes)["params"], scorer.score(arch)["accuracy"],
                         accuracy["retrained"], accuracy["fine-tuned"]))
    print(f"{cpu_name()}; proxy split: train folds {list(split.train_folds)}, scored on fold {split.val_fold} "
          f"({len(scorer.y)} clips); supernet {settings.supernet_epochs} epochs ({trained['seconds']:.0f} s when "
          f"trained; {supernet_seconds:.0f} s here), each sub-network {config.epochs} epochs")
    print(f"training: retrained {seconds['retrained']:.0f} s, fine-tuned {seconds['fine-tuned']:.0f} s in all")
    print(f"{'params':>8} {'supernet %':>10} {'retrained %':>11} {'fine-tuned %':>12}  architecture")
    for arch, params, inherited, retrained, tuned in rows:
        print(f"{params:>8,} {inherited:>10.2f} {retrained:>11.2f} {tuned:>12.2f}  "
              f"{'-'.join(map(str, arch['channels']))} k{arch['kernel_size']} fc{arch['fc_size']} {arch['pool']}")
    differences = np.array([tuned - retrained for *_, retrained, tuned in rows])
    mean, half = differences.mean(), stats.t.ppf(0.975, len(differences) - 1) * stats.sem(differences)
    keep = "fine-tune" if mean - half > 0 else "retrain"
    print(f"fine-tuned - retrained: {mean:+.2f} points, 95% interval {mean - half:+.2f} to {mean + half:+.2f} over "
          f"{len(differences)} sub-networks: keep {keep}"
          + ("" if keep == "fine-tune" else " (fine-tuning is not shown better; retraining needs no supernet)"))


if __name__ == "__main__":
    main()
