"""Choose knowledge distillation's defaults on the validation folds (issue 35): teacher, temperature, weight.

    python benchmarks/distillation_settings.py [--output-dir output] [-p NAME VALUE ...]

Reuses a finished book run (default: the book's parameters and ``output/``; pass the same ``-p`` values as that
run): its baselines come from its caches, nothing of it is retrained or published again. For every setting of a
small grid (the teacher: the best baseline or the ensemble of the three best, both picked by validation accuracy;
the temperature; the weight of the soft targets), it trains the run's students (``distill_students``) once per
training seed and protocol split against that teacher (cached like any run, under the run's own cache), and
compares each with the same model trained from labels alone **on the validation folds**, over seeds
(:func:`edge_audio.stats.seeded_difference`). The chosen setting is the one with the highest mean validation
difference over the students, a tie (to 0.01 point) keeping the current default; test clips are never evaluated
here, so the choice is not tuned on them.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import textwrap

import numpy as np
import yaml

from edge_audio.machine import cpu_name
from edge_audio.settings import Settings, book_values
from edge_audio.stats import seeded_difference, test_and_val
from edge_audio.steps.baselines import Teacher, pick_students, train_baselines
from edge_audio.steps.data import prepare_data
from edge_audio.train import train_model

TEACHERS = ("best", "ensemble")
TEMPERATURES = (2.0, 4.0)
WEIGHTS = (0.5, 0.9)


def validation_difference(data, settings: Settings, baseline, teacher: Teacher) -> dict:
    """The student of ``baseline`` taught by ``teacher``, minus ``baseline``, on the validation folds over seeds."""
    spec = {**baseline.deployed_run.spec, "name": baseline.name + "_kd"}
    splits = settings.protocol.splits(data.dataset.folds)
    by_seed = {}
    for seed in settings.training_seeds:
        config = dataclasses.replace(settings.train, seed=seed)
        by_seed[seed] = [(run.test, run.val) for run in (
            train_model(spec, data.features, split, config, data.layout.cache / "runs", settings.device, False,
                        distillation=teacher.soft_targets(split, seed)) for split in splits)]
    _, student = test_and_val(by_seed, splits)  # the deployed split's validation fold: what chooses
    return seeded_difference(student, baseline.record["val"], settings.accuracy_margin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    args = parser.parse_args()
    values = {**book_values(), "output_dir": args.output_dir,
              **{name: yaml.safe_load(value) for name, value in args.parameter}}
    settings = Settings(**values)
    data = prepare_data(settings, progress=False)
    baselines = train_baselines(data, settings)
    students = [b for b in baselines if b.name in pick_students(baselines, settings.distill_students)]
    print(f"{cpu_name()}; students {', '.join(b.name for b in students)}; seeds {settings.training_seeds};\n"
          f"{settings.protocol.describe(data.dataset.folds)}; validation clips only")
    print()
    print("| teacher | T | weight | student | val: student - labels (points, 95% interval) |")
    print("| --- | --- | --- | --- | --- |")
    means, resolved = {}, 0
    for kind, temperature, weight in itertools.product(TEACHERS, TEMPERATURES, WEIGHTS):
        trial = Settings(**{**values, "distill_teacher": kind, "distill_temperature": temperature,
                            "distill_weight": weight})
        teacher = Teacher.of(data, trial, baselines)
        differences = [validation_difference(data, trial, b, teacher) for b in students]
        means[(kind, temperature, weight)] = float(np.mean([d["difference"] for d in differences]))
        resolved += sum(d["verdict"] in ("better", "worse") for d in differences)
        label = kind + (f" ({' + '.join(t.name for t in teacher.models)})" if kind == "ensemble" else
                        f" ({teacher.models[0].name})")
        for student, d in zip(students, differences):
            print(f"| {label} | {temperature:g} | {weight:g} | {student.name} | {d['difference']:+.2f} "
                  f"({d['ci95'][0]:+.2f} to {d['ci95'][1]:+.2f}), {d['verdict']} |", flush=True)
        print(f"| {label} | {temperature:g} | {weight:g} | mean | {means[(kind, temperature, weight)]:+.2f} |")
    top = max(round(mean, 2) for mean in means.values())
    tied = [setting for setting, mean in means.items() if round(mean, 2) == top]
    current = (settings.distill_teacher, settings.distill_temperature, settings.distill_weight)
    kind, temperature, weight = current if current in tied else tied[0]
    print()
    print(textwrap.fill(
        f"Resolved on validation: {resolved} of {len(means) * len(students)} student-vs-labels differences. Chosen on "
        f"validation (the highest mean gain, {top:+.2f} points; a tie keeps the current default): teacher {kind}, "
        f"temperature {temperature:g}, weight {weight:g}" + (" (the current default)." if (kind, temperature, weight)
        == current else f" (the current default is {current[0]}, {current[1]:g}, {current[2]:g}: change it)."), 110))


if __name__ == "__main__":
    main()
