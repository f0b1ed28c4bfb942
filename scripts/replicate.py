"""Replicate a finished run's model-vs-model verdicts with other training seeds, and count how many agree.

    python scripts/replicate.py [--output-dir output] [-p NAME VALUE ...] [--seeds 3 4 5] [--figure PATH]

Takes the run's settings (the book values, with the same ``-p`` values as the run) and its baselines; trains each
baseline once per seed of ``--seeds`` (disjoint from the run's ``seeds``) on the run's splits, into the run's
cache of training runs (the run's own models, records and published files are left alone: nothing here is
published), and computes every pairwise verdict among the baselines over the run's seeds and over the new ones
(:mod:`edge_audio.replication`). Prints both verdicts of every pair and the agreement: how many verdicts are the
same, how many changed sign, and what share of the verdicts the run resolved the new seeds resolve the same way
(the goal: no sign change, at least 90 %). ``--figure`` saves the two sets' differences against each other.
A user's mistake (a seed of the run among ``--seeds``, an unknown parameter, no finished run) is one line and exit 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import yaml

from edge_audio.errors import UserError
from edge_audio.models import spec_from_config
from edge_audio.replication import agreement, replication_figure, verdicts
from edge_audio.settings import Settings
from edge_audio.stats import over_seeds, pooled
from edge_audio.steps.data import prepare_data
from edge_audio.train import train_model


def evaluations(data, settings: Settings, seeds: list[int]) -> dict[str, dict]:
    """Each baseline's test evaluation over ``seeds`` (trained, or loaded from the run's cache)."""
    splits = settings.protocol.splits(data.dataset.folds)
    models = {}
    for config in settings.model_configs:
        spec = spec_from_config(config)
        per_seed = []
        for seed in seeds:
            train = dataclasses.replace(settings.train, seed=seed)
            runs = [train_model(spec, data.features, split, train, data.layout.cache / "runs", settings.device, True)
                    for split in splits]
            per_seed.append(pooled([run.test for run in runs], [run.split.test_fold for run in runs]))
        models[spec["name"]] = over_seeds(per_seed, seeds)
    return models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--seeds", nargs="+", type=int, default=[3, 4, 5])
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args()
    try:
        settings = Settings.book(output_dir=args.output_dir,
                                 **{name: yaml.safe_load(value) for name, value in args.parameter}).check()
        first = settings.training_seeds
        if set(first) & set(args.seeds) or len(set(args.seeds)) != len(args.seeds):
            raise UserError(f"--seeds {args.seeds} must be distinct and disjoint from the run's seeds {first}")
        if not (settings.layout.logs / "all_results.json").is_file():
            raise UserError(f"no finished run in {settings.layout.root}: run the book (make book) first")
        data = prepare_data(settings)
    except (UserError, yaml.YAMLError) as exc:
        print(f"replicate: {exc}", file=sys.stderr)
        return 2
    margin = settings.accuracy_margin
    original, again = (verdicts(evaluations(data, settings, seeds), margin) for seeds in (first, args.seeds))
    print(f"Every pairwise verdict among the baselines at a {margin:g}-point margin, over seeds {first} and over "
          f"seeds {args.seeds} (difference in points, 95% interval):")
    for (a, b), verdict in original.items():
        other = again[(a, b)]
        print(f"  {a} vs {b}: {verdict['verdict']} {verdict['difference']:+.2f} ({verdict['ci95'][0]:+.2f} to "
              f"{verdict['ci95'][1]:+.2f}) | {other['verdict']} {other['difference']:+.2f} ({other['ci95'][0]:+.2f} "
              f"to {other['ci95'][1]:+.2f})")
    result = agreement(original, again)
    share = "nothing resolved" if result["share"] is None else f"{100 * result['share']:.0f} %"
    print(f"Agreement: {result['same']} of {result['pairs']} verdicts the same; {result['resolved_first']} resolved "
          f"over seeds {first}, {result['resolved_same']} of them resolved the same way over seeds {args.seeds} "
          f"({share}); sign changes: {', '.join(result['sign_changes']) or 'none'}. Goal (no sign change, at least "
          f"90 %): {'met' if result['meets_goal'] else 'NOT met'}.")
    if args.figure is not None:
        replication_figure(original, again, (first, args.seeds)).savefig(args.figure, dpi=110)
        print(f"Figure: {args.figure}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
