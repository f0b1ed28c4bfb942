"""Chapter 2, the baselines: the values its prose quotes, its sentences, the distillation pairs it shows, and its
invariants, over :mod:`edge_audio.steps.baselines`' results."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..claims import Claims
from ..errors import invariant
from ..frontier import learning_curve
from ..glue import counted, glue_all
from ..pipeline import Pipeline
from ..records import holds_artifact
from ..results import as_chosen, chosen_fold, pick_key
from ..settings import Settings
from ..stats import interval_text, seeded_difference
from ..steps.baselines import ONNX_TOLERANCE, BaselineResult
from ..steps.data import PreparedData


#: Published UrbanSound8K accuracies of small models (10-fold cross-validation, real recordings), for scale only:
#: models that fit a microcontroller reach about 70%; LD-CNN (Zhang et al., ICPR 2018) about 79%; ACDNet
#: (Mohaimenuzzaman et al., Pattern Recognition 2023) about 84%.
PUBLISHED_US8K = (("models that fit a microcontroller", 70.0), ("LD-CNN", 79.0), ("ACDNet", 84.0))


@dataclass
class BaselinesChapter:
    """Chapter 2's settings, data, baselines and distilled students, and the claims its sentences make."""

    settings: Settings
    data: PreparedData
    baselines: list[BaselineResult]
    students: list[BaselineResult]
    claims: Claims = field(default_factory=Claims)

    @property
    def records(self) -> list[dict]:
        return [b.record for b in self.baselines]

    def values(self) -> dict:
        """Every value the chapter's prose quotes, distillation's included."""
        margin = self.settings.accuracy_margin
        return {**chapter_values(self.baselines, self.data, self.settings),
                **distillation_values(self.students, self.baselines, margin)}

    def comparisons_with_best(self) -> str:
        return comparisons_with_best(self.baselines, self.claims, self.settings.accuracy_margin)

    def best(self) -> dict:
        """The record picked by validation accuracy, as a choice reports it."""
        return best_and_smallest(self.baselines)[0]

    def learning_curve(self) -> tuple[list[dict], list]:
        return learning_curve(self.records, self.settings.accuracy_margin)

    def distillation_pairs(self) -> list[tuple[dict, dict, dict]]:
        return distillation_pairs(self.students, self.baselines, self.settings.accuracy_margin)

    def check(self) -> str:
        """Chapter 2's invariants, distillation's included; returns a one-line summary."""
        check_students(self.students, self.baselines)
        return check(self.baselines, self.data)


def run(namespace: dict) -> BaselinesChapter:
    """Chapter 2's setup: its settings from ``namespace``, the baselines trained (or loaded) and the students
    distilled, the values glued."""
    settings = Settings.of_chapter("02", namespace)
    pipeline = Pipeline(settings)
    chapter = BaselinesChapter(settings, pipeline.data, pipeline.baselines, pipeline.students)
    glue_all(chapter.values())
    return chapter


def distillation_values(students: list[BaselineResult], baselines: list[BaselineResult], margin: float) -> dict:
    """What chapter 2's distillation section quotes: the teachers, the settings and each verdict's count."""
    verdicts = Counter(comparison["verdict"] for _, _, comparison in distillation_pairs(students, baselines, margin))
    first = students[0].record["distillation"] if students else None
    return {
        "kd_teachers": " + ".join(first["teachers"]) if first else "none",
        "kd_temperature": first["temperature"] if first else 0.0, "kd_weight": first["weight"] if first else 0.0,
        "kd_students_counted": counted(len(students), "student"),
        "kd_verdicts": ", ".join(f"{verdict} {n}" for verdict, n in verdicts.most_common()) if students else "none",
    }


def distillation_pairs(students: list[BaselineResult], baselines: list[BaselineResult],
                       margin: float) -> list[tuple[dict, dict, dict]]:
    """Each distilled model's record, the record of its baseline trained from labels alone, and the comparison of
    the two over seeds (distilled minus labels only, :func:`edge_audio.stats.seeded_difference`) on the same test
    clips at ``margin`` points."""
    by_name = {b.name: b.record for b in baselines}
    pairs = [(s.record, by_name[s.record["distillation"]["student_of"]]) for s in students]
    return [(student, alone, seeded_difference(student["test"], alone["test"], margin)) for student, alone in pairs]


def check_students(students: list[BaselineResult], baselines: list[BaselineResult]) -> None:
    """Chapter 2's invariants of distillation: each distilled model is its baseline's architecture, scored on the
    same test clips, from training runs of its own (never the label-only runs' cache entries)."""
    by_name = {b.name: b.record for b in baselines}
    for student in students:
        record = student.record
        alone = by_name[record["distillation"]["student_of"]]
        invariant({**record["architecture"], "name": alone["model"]} == alone["architecture"], record["model"])
        invariant([e["labels"] for e in record["test"]["by_seed"]] == [e["labels"] for e in alone["test"]["by_seed"]],
                  "a distilled model is scored on its label-only twin's clips")
        invariant(record["val"]["n"] == alone["val"]["n"] and record["test"]["seeds"] == alone["test"]["seeds"],
                  "a distilled model and its label-only twin share their validation clips and seeds")
        invariant(not set(record["run_keys"]) & set(alone["run_keys"]), record["model"])


def best_and_smallest(baselines: list[BaselineResult]) -> tuple[dict, dict]:
    """The record picked by validation accuracy (:func:`edge_audio.results.pick_key`) and the smallest one, as a
    choice reports them (:func:`edge_audio.results.as_chosen`)."""
    records = [b.record for b in baselines]
    return (as_chosen(max(records, key=pick_key)),
            as_chosen(min(records, key=lambda r: r["size_bytes"])))


def chance_sentence(records: list[dict], num_classes: int) -> str:
    """How many baselines are resolvably above chance (the lower end of their test accuracy's 95% interval above
    100 / classes %), said as a finding: a weak model on the user's data is a result to report, not a failure."""
    chance = 100.0 / num_classes
    above = [r for r in records if r["test"]["ci95"][0] > chance]
    sentence = (f"Chance on {counted(num_classes, 'class', 'classes')} is {chance:.1f}%; baselines resolvably above "
                f"it (the lower end of their 95% interval above chance): {len(above)} of {len(records)}")
    if above:
        return sentence + "."
    best = max(records, key=lambda r: r["accuracy"])
    return (sentence + f". None does: the highest test accuracy, {best['model']}'s {best['accuracy']:.2f}% (95% "
            f"interval {interval_text(best['test'])}, n = {best['test']['n']}), does not exclude guessing. These "
            "models have not learned this data yet: more epochs, more clips per class or a look at the labels "
            "come before reading the comparisons below.")


def chapter_values(baselines: list[BaselineResult], data: PreparedData, settings: Settings) -> dict:
    """Every value chapter 2's prose quotes."""
    records = [b.record for b in baselines]
    runs = [r for b in baselines for seed_runs in b.seed_runs.values() for r in seed_runs]
    best, smallest = best_and_smallest(baselines)
    first = records[0]
    _, neighbours = learning_curve(records, settings.accuracy_margin)
    lowest, highest = min(records, key=lambda r: r["accuracy"]), max(records, key=lambda r: r["accuracy"])
    return {
        "protocol_name": first["protocol"], "dataset_name": data.dataset.name, "n_test_clips": int(first["test"]["n"]),
        "n_test_folds": len(first["test_folds"]), "n_trained": sum(not r.reused for r in runs),
        "n_reused": sum(r.reused for r in runs), "threads_used": int(settings.latency_threads),
        "runs_used": int(settings.latency_runs), "margin_used": float(settings.accuracy_margin),
        "margin_points": counted(float(settings.accuracy_margin), "point"),
        "test_folds_counted": counted(len(first["test_folds"]), "test fold"),
        "trained_counted": counted(sum(not r.reused for r in runs), "training run"),
        "threads_counted": counted(int(settings.latency_threads), "thread"),
        "chosen_fold": chosen_fold(best), "best_model": best["model"], "best_val": round(float(best["val_accuracy"]), 2),
        "best_accuracy": round(float(best["accuracy"]), 2), "best_interval": interval_text(best["test"]),
        "best_n": int(best["test"]["n"]), "best_size_mb": round(best["size_bytes"] / 1e6, 3),
        "smallest_model": smallest["model"], "smallest_accuracy": round(float(smallest["accuracy"]), 2),
        "smallest_interval": interval_text(smallest["test"]),
        "size_ratio": round(best["size_bytes"] / smallest["size_bytes"], 1),
        "matmul_gflops": float(first["machine"]["matmul_gflops_1thread"]), "cpu_name": first["machine"]["cpu"],
        "curve_low": round(float(lowest["accuracy"]), 2), "curve_low_model": lowest["model"],
        "curve_high": round(float(highest["accuracy"]), 2), "curve_high_model": highest["model"],
        "curve_resolved": sum(pair.resolved for pair in neighbours), "curve_pairs": len(neighbours),
        "chance_sentence": chance_sentence(records, data.num_classes),
        "curve_published": published_sentence(highest, data),
    }


def published_sentence(highest: dict, data: PreparedData) -> str:
    """Where the most accurate baseline lies against published UrbanSound8K results of small models, for a dataset in
    UrbanSound8K's layout (on the synthetic one, for scale only); for another dataset, that there is none."""
    if data.dataset.layout != "urbansound8k":
        return (f"The published results this curve could be set beside are UrbanSound8K's; {data.dataset.name} is "
                "another dataset, so none are.")
    published = ", ".join(f"{name} about {value:g}%" for name, value in PUBLISHED_US8K)
    lowest, top = min(v for _, v in PUBLISHED_US8K), max(v for _, v in PUBLISHED_US8K)
    where = "below" if highest["accuracy"] < lowest else "above" if highest["accuracy"] > top else "within"
    sentence = (f"Published UrbanSound8K results for small models, on real recordings: {published}; this run's most "
                f"accurate baseline lies {where} that range ({lowest:g}-{top:g}%).")
    if data.synth is not None:
        sentence += (" These clips are synthetic: the comparison is for scale only, the generator is not built to "
                     "reproduce it.")
    return sentence


def comparisons_with_best(baselines: list[BaselineResult], claims: Claims, margin: float) -> str:
    """A Markdown list: the best model against each other baseline, each sentence made from the comparison over
    seeds."""
    best, _ = best_and_smallest(baselines)
    others = [as_chosen(b.record) for b in baselines if b.name != best["model"]]
    return "\n".join(f"- {claims.accuracy(best['model'], r['model'], seeded_difference(best['test'], r['test'], margin))}."
                      for r in others)


def check(baselines: list[BaselineResult], data: PreparedData) -> str:
    """Chapter 2's invariants (an InvariantError names the first that fails); returns a one-line summary. (Whether
    the models beat chance is a finding, stated by :func:`chance_sentence`, not an invariant.)"""
    records = [b.record for b in baselines]
    for record in records:
        # the published files are this run's: their bytes are the ones the record names
        invariant(holds_artifact(record["artifact"], data.layout.root),
                  f"{record['model']}: models/ holds another file")
        invariant(os.path.getsize(data.layout.root / record["artifact"]["path"]) == record["size_bytes"],
                  record["model"])
        invariant(holds_artifact(record["onnx_artifact"], data.layout.root), record["model"])
        # the exported ONNX model computes what the PyTorch model computes
        invariant(record["onnx_max_abs_difference"] < ONNX_TOLERANCE,
                  (record["model"], record["onnx_max_abs_difference"]))
        if record["protocol_kind"] == "holdout":  # the deployed model's accuracy is its confusion matrix's diagonal
            confusion = np.array(record["confusion"])
            deployed = record["test"]["by_seed"][0]["accuracy"]
            invariant(abs(100 * np.trace(confusion) / confusion.sum() - deployed) < 1e-3, record["model"])
        invariant(abs(np.mean(record["test"]["seed_accuracies"]) - record["accuracy"]) < 1e-3, record["model"])
        invariant(record["test_folds"] and all(f in data.dataset.folds for f in record["test_folds"]),
                  "a record's test folds are folds of the dataset")
        invariant(record["test"]["n"] == sum(data.features.select([f])[1].size for f in record["test_folds"]),
                  "a record's test clips are its test folds' clips")
        invariant(record["test"]["ci95"][0] <= record["test"]["accuracy"] <= record["test"]["ci95"][1],
                  "a record's accuracy lies inside its interval")
    return f"all baseline invariants hold ({len(records)} models)"
