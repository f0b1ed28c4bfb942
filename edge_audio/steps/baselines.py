"""Step 2 (chapter 2): train the baselines on the dataset's own folds, export, profile and publish them; and
retrain the smallest by knowledge distillation (see the section "Knowledge distillation" below).

Per model and training seed: one training run per split of the protocol (:func:`edge_audio.train.train_model`,
cached and resumable). Per split and seed, an *export* (cached by the run and the library versions):
the model's ``fp32.pth`` and ``model.onnx``, checked against PyTorch, and the ONNX model's own evaluation of the
split's test and validation folds (what chapter 3 quantizes, seed by seed). For the first seed's deployed split (the
one testing on the dataset's last fold), a *profile* (cached by the export, the timing settings, the machine and
the versions): MACs, FLOPs, latency in PyTorch and ONNX Runtime, the FLOP floor. The deployed export's files are
published as ``models/<name>_fp32.pth`` and ``models/<name>.onnx`` every time the step runs.

A record's ``test`` evaluation pools every test fold's clips per seed (n, correct, the predictions) and averages
over the training seeds (:func:`edge_audio.stats.over_seeds`): its accuracy is the mean over seeds, with an
interval that holds which clips and how training fell, and each seed's evaluation kept in ``by_seed``. ``val`` is
the same on the validation folds: what every pick is made on. Two trained models are compared over seeds
(:func:`edge_audio.stats.seeded_difference`).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

from ..cards import model_card, write_card
from ..errors import ParameterError
from ..executor import run_jobs
from ..export import export_to_onnx
from ..runtimes import FP32Model, open_model
from ..runtimes.pytorch import save_checkpoint
from ..machine import machine_identity, versions
from ..memory import device_memory
from ..metrics import classification_metrics
from ..models import spec_from_config
from ..settings import Settings
from ..profile import profile_model
from ..records import TrainedRecord, make_record, publish_artifact, with_fields
from ..results import pick_key, upsert_results
from ..stats import test_and_val
from ..storage import CacheEntry, cached
from ..features import FeatureSet
from ..train import Distillation, Split, TrainResult, predict, train_model
from .data import PreparedData

#: Bump when an export or a profile gains or changes fields, so cached ones are recomputed.
EXPORT_VERSION = 3
PROFILE_VERSION = 4
#: How close the exported ONNX model's logits must be to PyTorch's (max absolute difference on test clips).
ONNX_TOLERANCE = 1e-4


@dataclass
class BaselineResult:
    """One baseline: its training runs, its exports (one per split of the first seed), record and files."""

    name: str
    runs: list[TrainResult]  # the first seed's runs, one per split of the protocol
    exports: list[CacheEntry]  # the first seed's, one per split: fp32.pth, model.onnx and the ONNX evaluations
    record: dict
    model_path: Path  # the published FP32 checkpoint, models/<name>_fp32.pth
    seed_runs: dict[int, list[TrainResult]]  # every seed's runs
    seed_exports: dict[int, list[CacheEntry]]  # every seed's exports

    @property
    def deployed_run(self) -> TrainResult:
        """The run whose model is published and profiled: the split testing on the dataset's last fold."""
        return self.runs[-1]

    @property
    def onnx_path(self) -> Path:
        """The deployed run's FP32 ONNX export in its cache entry."""
        return self.exports[-1].file("model.onnx")

    @property
    def fp32_files(self) -> FP32Model:
        """The deployed run's FP32 files: ONNX export and PyTorch checkpoint (what every runtime's twin comes from)."""
        return FP32Model(self.onnx_path, self.exports[-1].file("fp32.pth"))


def _export(run: TrainResult, features: FeatureSet, cache: Path) -> CacheEntry:
    """A run's model saved, exported to ONNX, checked against PyTorch, and evaluated by ONNX Runtime on the run's
    test and validation folds of ``features``; cached under ``cache``."""
    library = versions()
    key = {"run": run.key, "version": EXPORT_VERSION,
           "versions": {name: library[name] for name in ("torch", "onnx", "onnxruntime", "onnxscript")}}

    def export(folder: Path) -> dict:
        model = run.load_model()
        save_checkpoint(model, folder / "fp32.pth", (1, *features.config.shape))
        export_to_onnx(model, folder / "model.onnx", input_shape=(1, 1, *features.config.shape))
        session = open_model(folder / "model.onnx")
        evaluations, difference = {}, 0.0
        for part, folds in (("test", [run.split.test_fold]), ("val", [run.split.val_fold])):
            x, y = features.select(folds)
            logits = session.predict(x[:, None])
            difference = max(difference, float(np.abs(logits - predict(model, x)).max()))
            evaluations[part] = classification_metrics(y, logits.argmax(1), features.num_classes)
        return {"size_bytes": os.path.getsize(folder / "fp32.pth"), "onnx_max_abs_difference": difference,
                **evaluations}

    return cached(cache / "exports", key, export, name=f"export-{run.spec['name']}")


def _profile(export: CacheEntry, run: TrainResult, input_shape: tuple[int, ...], matmul_gflops: float, cache: Path,
             settings: Settings) -> CacheEntry:
    """The deployed model's MACs, FLOPs, latencies and FLOP floor (from this machine's ``matmul_gflops``) on one
    clip of ``input_shape``; cached under ``cache``."""
    library = versions()
    key = {"export": export.path.name, "input": input_shape, "threads": settings.latency_threads,
           "runs": settings.latency_runs, "machine": machine_identity(), "version": PROFILE_VERSION,
           "versions": {name: library[name] for name in ("torch", "onnx", "onnxruntime")}}
    return cached(cache / "profiles", key, lambda folder: profile_model(
        run.load_model(), input_shape, FP32Model(export.file("model.onnx"), export.file("fp32.pth")), matmul_gflops,
        settings.latency_threads, settings.latency_runs), name=f"profile-{run.spec['name']}")


def train_baselines(data: PreparedData, settings: Settings, model_configs: list | None = None,
                    progress: bool = False,
                    distillation: Callable[[Split, int], Distillation] | None = None,
                    initial: nn.Module | None = None) -> list[BaselineResult]:
    """Train (or load) every model of ``model_configs`` (default: ``settings.model_configs``) under the run's
    protocol and training seeds, export and profile it, publish ``models/<name>_fp32.pth`` and
    ``models/<name>.onnx``, and upsert its record into ``logs/all_results.json``. With ``distillation``, each
    run also learns from the soft targets it returns for the run's split and seed (:func:`distill_students`);
    with ``initial`` (a model of the one config given), each run starts from its weights (fine-tuning)."""
    specs = [spec_from_config(config) for config in (settings.model_configs if model_configs is None
                                                     else model_configs)]
    names = [spec["name"] for spec in specs]
    if len(set(names)) != len(names):
        raise ParameterError(f"model config names must be unique, got {names}")
    protocol = settings.protocol
    splits = protocol.splits(data.dataset.folds)
    context = data.context(settings)

    configs = {seed: dataclasses.replace(settings.train, seed=seed) for seed in settings.training_seeds}

    def job(spec: dict, split: Split, config) -> tuple:
        """train_model's arguments for one run: the same wherever the run is computed."""
        return (spec, data.features, split, config, data.layout.cache / "runs", settings.device, progress, None,
                None if distillation is None else distillation(split, config.seed), initial)

    run_jobs(settings, train_model, [job(spec, split, config) for spec in specs for config in configs.values()
                                     for split in splits], "training runs", progress, gpu=True)
    results = []
    for spec in specs:
        seed_runs = {seed: [train_model(*job(spec, split, config)) for split in splits]
                     for seed, config in configs.items()}
        runs = seed_runs[settings.training_seeds[0]]
        deployed = runs[-1]
        seed_exports = {seed: [_export(run, data.features, data.layout.cache) for run in seed_run]
                        for seed, seed_run in seed_runs.items()}
        exports = seed_exports[settings.training_seeds[0]]
        profile_entry = _profile(exports[-1], deployed, (1, *data.feature_config.shape),
                                 data.machine["matmul_gflops_1thread"], data.layout.cache, settings)
        profile = profile_entry.value
        test, val = test_and_val({seed: [(run.test, run.val) for run in seed_run] for seed, seed_run in
                                  seed_runs.items()}, splits)
        model_path = data.layout.models / f"{spec['name']}_fp32.pth"
        onnx_published = data.layout.models / f"{spec['name']}.onnx"
        record = make_record(TrainedRecord, **{
            "model": spec["name"], "variant": "fp32", "precision": "fp32", "int8_weights": False,
            "int8_activations": False, "full_integer_tflite": False,
            "runtime": "onnxruntime", "latency_ms": profile["latency"]["onnxruntime"]["median_ms"],
            "architecture": deployed.spec, "dataset": data.summary(), "context": context,
            "protocol": context["protocol"], "protocol_kind": protocol.kind,
            "test_folds": [run.split.test_fold for run in runs],
            "accuracy": test["accuracy"], "accuracy_std": test["fold_std"], "test": test,
            "val_accuracy": val["accuracy"], "val": val,
            "macro_f1": round(float(np.mean([run.test["macro_f1"] for run in runs])), 4),
            "per_class_accuracy": deployed.test["per_class_accuracy"], "confusion": deployed.test["confusion"],
            "class_names": data.dataset.class_names,
            "size_bytes": exports[-1].value["size_bytes"],
            **device_memory(exports[-1].file("model.onnx")),
            **{k: profile[k] for k in ("params", "onnx_size_bytes", "macs", "flops", "flop_counter_flops",
                                       "flop_gap_percent", "latency", "flop_floor_ms", "latency_floor_ratio")},
            "onnx_max_abs_difference": max(e.value["onnx_max_abs_difference"] for e in exports),
            "threads": settings.latency_threads, "seed": settings.training_seeds[0],
            "features": data.feature_config.to_dict(), "train": settings.train.to_dict(),
            "best_epoch": deployed.best_epoch,
            "epochs_run": deployed.epochs_run,
            "train_seconds": round(sum(r.train_seconds for rs in seed_runs.values() for r in rs), 2),
            "device": deployed.device,
            "artifact": publish_artifact(exports[-1].file("fp32.pth"), model_path, data.layout.root),
            "onnx_artifact": publish_artifact(exports[-1].file("model.onnx"), onnx_published, data.layout.root),
            "profile_source": os.path.relpath(profile_entry.path, data.layout.root),
            "run_keys": [r.key for rs in seed_runs.values() for r in rs], "machine": data.machine,
        })
        write_card(model_card(record), onnx_published)
        results.append(BaselineResult(spec["name"], runs, exports, record, model_path, seed_runs, seed_exports))
    upsert_results(data.layout.logs, [r.record for r in results])
    return results


# ---------------------------------------------------------------------------------------------------------------
# Knowledge distillation
# ---------------------------------------------------------------------------------------------------------------
# Students trained against a teacher's soft targets as well as the labels.
#
# A *student* is one of the run's baselines (``distill_students``), retrained from scratch under the same protocol,
# seeds and settings with :class:`~edge_audio.train.Distillation`: the teacher is the baseline picked by validation
# accuracy (``distill_teacher = "best"``) or the mean logits of the three best (``"ensemble"``). For every split and
# seed, the teacher is that split's and seed's own run, and its logits are on that split's training clips only, so
# no validation or test clip reaches a student through its teacher. The teacher's logits are cached like any run
# (``cache/teachers``, keyed by the teacher runs and the features, verified when loaded).
#
# A distilled model is a trained model like any other (train_baselines exports, profiles and publishes it as
# ``models/<student>_kd_fp32.pth``), with ``source = "distilled"`` and its ``distillation`` (the student it repeats,
# the teachers, temperature and weight); chapter 3 quantizes it (quantization.quantize_students) and the frontier
# weighs it like the others. distillation_pairs pairs each with the same architecture trained from labels alone,
# on the same test clips.

#: Bump when the teacher's outputs change what they hold.
TEACHER_VERSION = 1
#: How many of the best baselines (by validation accuracy) the ``"ensemble"`` teacher averages.
ENSEMBLE_SIZE = 3
#: The suffix of a distilled model's name: ``nano`` distilled is ``nano_kd``.
SUFFIX = "_kd"


def pick_teachers(baselines: list[BaselineResult], kind: str, split_index: int = -1) -> list[BaselineResult]:
    """The teacher models (``kind``, checked by the parameter table) of protocol split ``split_index`` (-1: the
    deployed split): the baseline picked by that split's own validation fold (its runs' validation accuracy, mean
    over seeds; then :func:`~edge_audio.results.pick_key`'s order), or the :data:`ENSEMBLE_SIZE` best
    (``ensemble``). Each split's teacher is chosen on a fold of that split, never on the fold that tests it."""
    def key(baseline: BaselineResult) -> tuple:
        accuracy = float(np.mean([runs[split_index].val["accuracy"] for runs in baseline.seed_runs.values()]))
        return pick_key({**baseline.record, "val_accuracy": accuracy})

    ranked = sorted(baselines, key=key, reverse=True)
    return ranked[:1] if kind == "best" else ranked[:ENSEMBLE_SIZE]


def pick_students(baselines: list[BaselineResult], students: int | list[str]) -> list[str]:
    """The names of the baselines to distil: the ``students`` smallest by parameters, or those named."""
    if isinstance(students, int):
        return [b.name for b in sorted(baselines, key=lambda b: b.record["params"])[:students]]
    unknown = [s for s in students if s not in {b.name for b in baselines}]
    if unknown:
        raise ParameterError(f"distill_students {unknown} are not baselines of this run "
                             f"({', '.join(b.name for b in baselines)})")
    return list(students)


def teacher_logits(teacher_runs: list[TrainResult], data: PreparedData, split: Split) -> CacheEntry:
    """The teachers' mean logits on ``split``'s training clips (in ``features.select`` order); cached."""
    key = {"runs": [run.key for run in teacher_runs], "features": data.features.key,
           "train_folds": list(split.train_folds), "version": TEACHER_VERSION}

    def compute(folder: Path) -> dict:
        x, _ = data.features.select(split.train_folds)
        logits = np.mean([predict(run.load_model(), x) for run in teacher_runs], axis=0).astype(np.float32)
        np.save(folder / "logits.npy", logits, allow_pickle=False)
        return {"clips": len(x), "teachers": [run.spec["name"] for run in teacher_runs]}

    return cached(data.layout.cache / "teachers", key, compute, name="teacher")


@dataclass
class Teacher:
    """The teacher of a run's students (``distill_teacher`` among the baselines, chosen per protocol split) and how
    it teaches (``distill_temperature``, ``distill_weight``)."""

    baselines: list[BaselineResult]
    data: PreparedData  # the data the teacher was trained on (its features make its logits)
    settings: Settings

    @classmethod
    def of(cls, data: PreparedData, settings: Settings, baselines: list[BaselineResult]) -> "Teacher":
        return cls(baselines, data, settings)

    @property
    def models(self) -> list[BaselineResult]:
        """The deployed split's teachers (what a distilled record names)."""
        return pick_teachers(self.baselines, self.settings.distill_teacher)

    def info(self, student_of: str) -> dict:
        """A distilled model's ``distillation`` field."""
        return {"teachers": [t.name for t in self.models], "teacher_kind": self.settings.distill_teacher,
                "temperature": self.settings.distill_temperature, "weight": self.settings.distill_weight,
                "student_of": student_of}

    def soft_targets(self, split: Split, seed: int) -> Distillation:
        """The soft targets on ``split``'s training clips: those of the teachers chosen for that split, from their
        own runs on that split and seed. A split inside one of the protocol's (the search's proxy split, whose folds
        are all training folds of the deployed split) is taught by the runs of the protocol split that trained on
        all its folds, with that split's teachers."""
        splits = self.settings.protocol.splits(self.data.dataset.folds)
        inside = [i for i, s in enumerate(splits) if {*split.train_folds, split.val_fold} <= set(s.train_folds)]
        index = splits.index(split) if split in splits else inside[-1]
        runs = [teacher.seed_runs[seed][index]
                for teacher in pick_teachers(self.baselines, self.settings.distill_teacher, index)]
        entry = teacher_logits(runs, self.data, split)
        return Distillation(np.load(entry.file("logits.npy"), allow_pickle=False),
                            {"runs": [run.key for run in runs]}, self.settings.distill_temperature,
                            self.settings.distill_weight)


def distill_students(data: PreparedData, settings: Settings, baselines: list[BaselineResult],
                     progress: bool = False) -> list[BaselineResult]:
    """Train (or load) every student of ``settings.distill_students`` against its teacher, under the run's
    protocol and seeds, and upsert their records (replacing this run's earlier distilled ones)."""
    by_name = {b.name: b for b in baselines}
    names = pick_students(baselines, settings.distill_students)
    teacher = Teacher.of(data, settings, baselines)
    students = []
    for name in names:
        config = {**by_name[name].deployed_run.spec, "name": name + SUFFIX}
        [student] = train_baselines(data, settings, [config], progress, distillation=teacher.soft_targets)
        student.record = with_fields(student.record, source="distilled", distillation=teacher.info(name))
        students.append(student)
    context = data.context(settings)["key"]
    upsert_results(data.layout.logs, [s.record for s in students],
                   drop=lambda r: r.get("source") == "distilled" and r["context"]["key"] == context)
    return students
