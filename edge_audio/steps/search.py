"""Step 4 (chapter 4): the hardware-aware architecture searches and their finalists.

Two searches. :func:`run_supernet_nas`, the book's main one: a weight-sharing supernet trained once on the proxy
split, searched by NSGA-II and the random control at thousands of sub-networks (:mod:`edge_audio.supernet_search`),
its rank fidelity measured against stand-alone training, one measured finalist per deployment profile fine-tuned
from its inherited weights with the baseline protocol and deployed as full-integer TFLite, and the comparison with
the proxy search at equal compute. :func:`run_nas`, the proxy search, described below.

NSGA-II and a random-search control (:mod:`edge_audio.nas`) search under the run's budgets, once per search seed,
and are compared over the seeds (a winner only when the paired test over seeds resolves it); the top-k distinct
architectures of NSGA-II's feasible front (every seed's trials) are retrained with the baseline protocol (as
baselines, by :func:`~edge_audio.steps.baselines.train_baselines`), quantized like chapter 3
(:func:`edge_audio.quantize.derived_methods`, and the full-integer method of the bit width the search deployed it
with), and
the best by the validation accuracy of its deployed file (:func:`deployed_record`) is published as
``models/nas_best_model.*``. Every search record of this run's context is replaced by the new search's, so no stale
candidate or finalist survives a new search.

With ``nas_distill`` the search's proxy runs learn from the teacher (:class:`~edge_audio.steps.baselines.Teacher`,
chapter 2's), and every finalist is trained twice: by distillation (``nas_<k>_kd``) and from labels alone
(``nas_<k>``), paired on the same test clips as chapter 2's students are. Distillation is one switch for the whole
search, not a gene: the teacher's runs trained on the proxy's scoring fold (one of the deployed split's training
folds), so a distilled candidate's search score is optimistic and a gene would favour distillation for that
reason alone; every candidate of one search is scored the same way, and the validation fold, which no teacher
trained on, chooses.

The search never sees the fold that chooses: candidates are scored on a fold taken from the training folds
(:func:`proxy_split`), the finalists and the best model are chosen on the untouched validation fold, and the test
fold reports (the finalist table shows the selection gap: proxy score, validation, test).

A finalist *dominates* a baseline (:func:`dominance`) when it is shown no worse than it by more than the margin in
accuracy (the paired difference's interval on the same test clips), is not slower (the paired test on interleaved
timings) nor bigger (the exact bytes), and is better on one of those counts.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..cards import card_path, read_card, write_card
from ..errors import ParameterError
from ..features import FeatureSet, extract_features
from ..machine import machine_identity, versions
from ..memory import memory_report
from ..nas import (HISTORY_FILE, SAMPLERS, SearchContext, SearchOutcome, Trial, candidate_cost, default_storage,
                   feasible_front, run_search, search_score)
from ..settings import Settings
from ..profile import compare_latency
from ..runtimes import get as get_runtime
from ..npu import npu_report, npu_target, with_npu_arenas
from ..runtimes.tflm import firmware_ram, tflm_arena
from ..quantize import derived_methods, full_integer_method, reference_method, uncalibrated_tflite
from ..records import CandidateRecord, make_record, with_fields
from ..results import as_chosen, pick_key, upsert_results
from ..stats import rank_agreement, seeded_difference, seeds_comparison
from ..executor import run_jobs
from ..storage import atomic_write_json, cached
from ..supernet import Scorer, supernet_run
from ..supernet_search import (BOOK_SPACE, SubnetSearch, SubnetSearchOutcome, SubnetTrial, candidates_for,
                               run_subnet_searches, spread_over_params, structural_costs)
from ..train import Distillation, Split, train_model
from .baselines import SUFFIX, BaselineResult, Teacher, train_baselines
from .data import PreparedData
from .quantization import QuantizationResult, quantize_models

#: The files a search's best model is published as, under ``models/`` (every stem distinct: a file's card is
#: named by its stem).
NAS_BEST_FILES = {"pth": "nas_best_model.pth", "onnx": "nas_best_model.onnx", "int8": "nas_best_model_int8.onnx",
                  "tflite": "nas_best_model_tflite_int8.tflite", "tflite4": "nas_best_model_tflite_int4.tflite",
                  "spec": "nas_best_model.json"}
NAS_SOURCES = ("nas_candidate", "nas_finalist")


def best_model_variants() -> dict[str, str]:
    """The variant each of the best model's files (:data:`NAS_BEST_FILES`) is: FP32, the reference INT8 method's
    and the full-integer methods of 8- and 4-bit weights (a method's file exists when the finalist was compressed
    with it)."""
    return {"onnx": "fp32", "int8": reference_method().name, "tflite": full_integer_method(8).name,
            "tflite4": full_integer_method(4).name}


@dataclass
class NASResult:
    """A search: both searches' trials, the retrained finalists, their INT8 variants, and the best model."""

    search: SearchOutcome
    finalists: list[BaselineResult]  # trained from labels alone
    students: list[BaselineResult]  # the same architectures trained by distillation (nas_distill), else empty
    quantized: list[QuantizationResult]
    best: BaselineResult | None
    best_files: dict[str, Path]  # empty when no candidate met the budgets
    history_path: Path
    fronts: dict[int, list[Trial]]  # generation -> NSGA-II's feasible front after it
    proxy: Split  # what the search scored candidates on (inside the deployed split's training folds)
    deployed: Split  # the split the finalists are chosen (validation fold) and reported (test fold) on
    distillation: Distillation | None  # the teacher's soft targets every proxy run learned from (nas_distill)

    @property
    def models(self) -> list[BaselineResult]:
        """Every retrained finalist: from labels alone, then by distillation."""
        return self.finalists + self.students

    def entries(self) -> list[Trial]:
        """Every trial of every search."""
        return [h for seed in self.search.history for h in self.search.history[seed]]

def dominance(candidate: BaselineResult, baseline: BaselineResult, data: PreparedData, settings: Settings) -> dict:
    """Does ``candidate`` dominate ``baseline``? Accuracy by the difference over seeds on the same test clips at the
    margin (it must be shown no worse by more than the margin; an undetermined difference does not dominate),
    latency by the paired test on their ONNX models timed interleaved (cached), size by the bytes of the FP32
    checkpoints (see the module docstring)."""
    accuracy = seeded_difference(candidate.record["test"], as_chosen(baseline.record)["test"], settings.accuracy_margin)
    library = versions()
    key = {"a": candidate.exports[-1].path.name, "b": baseline.exports[-1].path.name,
           "threads": settings.latency_threads, "runs": settings.latency_runs, "machine": machine_identity(),
           "onnxruntime": library["onnxruntime"]}
    onnxruntime = get_runtime("onnxruntime")
    timing = cached(data.layout.cache / "pair-timings", key, lambda _folder: compare_latency(
        onnxruntime.session(candidate.onnx_path, "fp32", settings.latency_threads).call(),
        onnxruntime.session(baseline.onnx_path, "fp32", settings.latency_threads).call(), settings.latency_runs),
                    name=f"{candidate.name}-{baseline.name}").value
    latency = timing["comparison"]
    size_a, size_b = candidate.record["size_bytes"], baseline.record["size_bytes"]
    no_worse = accuracy["a_no_worse"] and latency["faster"] != "b" and size_a <= size_b
    better = accuracy["verdict"] == "better" or latency["faster"] == "a" or size_a < size_b
    return {"accuracy": accuracy, "latency": latency, "latency_ms": (timing["latency"]["median_ms"],
                                                                     timing["twin"]["median_ms"]),
            "size_bytes": (size_a, size_b), "dominates": no_worse and better}


def _candidate_records(history: list[Trial], data: PreparedData, settings: Settings, split) -> list[dict]:
    """Results records of the trained NAS candidates (the search score on the proxy's fold), one per architecture
    and bit width."""
    search = settings.search
    records = {}
    for h in history:
        key = (h.architecture_key, h.weight_bits)
        if not h.trained or key in records:
            continue
        records[key] = make_record(CandidateRecord, **{
            "model": f"nas-{h.architecture_key[:8]}-w{h.weight_bits}", "variant": "proxy",
            "source": "nas_candidate",
            "precision": "fp32", "int8_weights": False, "accuracy_kind": "proxy", "runtime": "onnxruntime",
            "latency_ms": h.latency_ms, "latency": {"onnxruntime": h.latency}, "architecture": h.spec,
            "dataset": data.summary(), "context": data.context(settings),
            "protocol": f"NAS proxy ({search.proxy_epochs} epochs, folds {list(split.train_folds)}, "
                        f"val fold {split.val_fold})", "protocol_kind": "nas proxy",
            "accuracy": h.proxy_accuracy, "macro_f1": h.proxy_macro_f1, "size_bytes": h.size_bytes,
            "params": h.params, "macs": h.macs, "flops": h.flops, "threads": search.threads,
            "seed": h.seed, "features": {**data.feature_config.to_dict(), "n_mels": h.n_mels},
            "train": search.proxy_train_config().to_dict(),
            "nas": {"sampler": h.sampler, "trial": h.number, "seed": h.seed, "weight_bits": h.weight_bits},
        })
    return list(records.values())


def run_nas(data: PreparedData, settings: Settings, baselines: list[BaselineResult],
            progress: bool = False) -> NASResult:
    """Search under the run's budgets (NSGA-II and the random control), retrain the top-k feasible candidates with
    the baseline protocol, quantize them like chapter 3 (static INT8), and publish the best (by validation
    accuracy) as ``models/nas_best_model.*``; write ``logs/nas_history.json``. Resumes an
    interrupted search from ``settings.storage`` (default: SQLite under ``logs/``).

    When no candidate meets the budgets there are no finalists: ``best`` is None and no best-model file exists
    (a previous search's files are removed, so nothing stale is published).
    """
    settings.budgets, settings.search  # invalid settings fail here, before any training
    features = _FeatureSets(data, progress)
    deployed = settings.protocol.splits(data.dataset.folds)[-1]
    split = proxy_split(deployed, settings.search.proxy_train_folds)
    teacher = Teacher.of(data, settings, baselines) if settings.nas_distill else None
    distillation = None if teacher is None else teacher.soft_targets(split, settings.training_seeds[0])
    outcome = _search(data, settings, features, split, distillation, progress)
    run_key = data.context(settings)["key"]
    candidates = _candidate_records([h for s in SAMPLERS for h in outcome.history[s]], data, settings, split)
    upsert_results(data.layout.logs, candidates,  # every search record of this run's context is replaced
                   drop=lambda r: r.get("source") in NAS_SOURCES and r["context"]["key"] == run_key)
    finalists, students, quantized = [], [], []
    for rank, entry in enumerate(outcome.finalists, start=1):
        finalist, taught, variants = _retrain(rank, entry, dataclasses.replace(data, features=features(entry.n_mels)),
                                              settings, teacher, progress)
        finalists.append(finalist)
        students.extend(taught)
        quantized.extend(variants)
    best, best_files = _publish_best(finalists + students, quantized, data.layout)
    return NASResult(outcome, finalists, students, quantized, best, best_files, data.layout.logs / HISTORY_FILE,
                     _fronts(outcome.history["nsga2"], settings.search.population), split, deployed, distillation)


class _FeatureSets:
    """The run's features, and those of another number of mel bands extracted (cached) when a candidate asks."""

    def __init__(self, data: PreparedData, progress: bool):
        self.data, self.progress = data, progress
        self.sets = {data.feature_config.n_mels: data.features}

    def __call__(self, n_mels: int) -> FeatureSet:
        if n_mels not in self.sets:
            config = dataclasses.replace(self.data.feature_config, n_mels=n_mels)
            self.sets[n_mels] = extract_features(self.data.dataset, config, self.data.layout.cache,
                                                 self.data.fingerprint, progress=self.progress)
        return self.sets[n_mels]


def _search(data: PreparedData, settings: Settings, features: _FeatureSets, split: Split,
            distillation: Distillation | None, progress: bool) -> SearchOutcome:
    """Both searches, once per search seed, in the study this run's identity names (resumed if it exists)."""
    budgets, search = settings.budgets, settings.search
    context = SearchContext(features, data.feature_config.n_mels, split, budgets, search,
                            data.layout.cache / "nas", settings.device, mixed_machines=settings.nas_mixed_machines,
                            distillation=distillation)
    # the machine is not in the study's name: a study records the CPU it was started on and refuses others
    identity = {"dataset": data.fingerprint, "features": {**data.feature_config.to_dict(), "n_mels": None},
                "budgets": budgets.to_dict(), "search": {**asdict(search), "generations": None, "top_k": None},
                "split": asdict(split), "onnxruntime": versions()["onnxruntime"]}
    return run_search(context, settings.searches, settings.storage or default_storage(data.layout.logs), identity,
                      data.layout.logs / HISTORY_FILE, progress)


def _retrain(rank: int, entry: Trial, data: PreparedData, settings: Settings, teacher: Teacher | None,
             progress: bool) -> tuple[BaselineResult, list[BaselineResult], list[QuantizationResult]]:
    """A finalist retrained with the baseline protocol (``nas_<rank>``), with its distilled twin when the search
    distils, each compressed with the derived methods and its searched bit width's full-integer method; their
    records upserted as choices report them (:func:`~edge_audio.results.as_chosen`: under k-fold, on the deployed
    split's test fold only, since the search and the finalists' choice saw the other folds)."""
    spec = {"name": f"nas_{rank}", **entry.spec}
    nas_info = {"trial": entry.number, "seed": entry.seed, "sampler": "nsga2", "weight_bits": entry.weight_bits,
                "proxy_accuracy": entry.proxy_accuracy, "rank": rank}
    methods = list(dict.fromkeys(derived_methods() + [full_integer_method(entry.weight_bits).name]))
    [finalist] = train_baselines(data, settings, [spec], progress)
    trained = [(finalist, {})]
    if teacher is not None:  # the teacher's logits come from its own features, whatever n_mels the student has
        [student] = train_baselines(data, settings, [{**spec, "name": spec["name"] + SUFFIX}], progress,
                                    distillation=teacher.soft_targets)
        trained.append((student, {"distillation": teacher.info(spec["name"])}))
    quantized = []
    for model, taught in trained:
        model.record = as_chosen(with_fields(model.record, source="nas_finalist", nas=nas_info, **taught))
        upsert_results(data.layout.logs, [model.record])
        variants = [result if result.record is None else dataclasses.replace(result, record=as_chosen(result.record))
                    for result in quantize_models(data, settings, [model], methods,
                                                  fields={"source": "nas_finalist", "nas": nas_info, **taught})]
        upsert_results(data.layout.logs, [v.record for v in variants if v.record is not None])
        quantized.extend(variants)
    return finalist, [model for model, taught in trained if taught], quantized


def _fronts(nsga: list[Trial], population: int) -> dict[int, list[Trial]]:
    """NSGA-II's feasible front after each generation."""
    generations = sorted({h.number // population for h in nsga})
    return {g: feasible_front([h for h in nsga if h.number // population <= g]) for g in generations}


def proxy_split(deployed: Split, proxy_train_folds: int | None) -> Split:
    """The split the search scores candidates on, inside the deployed split's training folds: it trains on the
    first of them (the first ``proxy_train_folds``) and scores on the last one. The validation fold, which
    chooses the finalists and the best model, and the test fold, which reports, are never seen by the search."""
    if len(deployed.train_folds) < 2:
        raise ParameterError(f"the search needs at least 2 training folds, to score its candidates on one of them "
                             f"and keep the validation fold {deployed.val_fold} for choosing; this protocol leaves "
                             f"{list(deployed.train_folds)}: use a dataset with more folds")
    inner = deployed.train_folds[-1]
    train = deployed.train_folds[:-1]
    if proxy_train_folds is not None:
        train = train[:proxy_train_folds]
    return Split(train_folds=train, val_fold=inner, test_fold=inner)


def deployed_record(model: BaselineResult, quantized: list[QuantizationResult]) -> dict | None:
    """The record of a finalist's full-integer TFLite variant at the bit width the search chose for it (None when
    that conversion failed)."""
    method = full_integer_method(model.record["nas"]["weight_bits"]).name
    return next((q.record for q in quantized if q.model == model.name and q.method == method and q.record), None)


def _publish_best(models: list[BaselineResult], quantized: list[QuantizationResult],
                  layout) -> tuple[BaselineResult | None, dict[str, Path]]:
    """Copy the best retrained finalist to ``models/nas_best_model.*``: the one whose deployed file (its TFLite
    variant at the searched bit width; :func:`~edge_audio.results.pick_key` on its record, which is validation
    accuracy first) is best, so the bit width is chosen by the validation fold too. A previous search's files are
    removed first, so nothing stale is published when there is no finalist."""
    for name in NAS_BEST_FILES.values():
        (layout.models / name).unlink(missing_ok=True)
        for stale in (card_path(layout.models / name), card_path(layout.models / name).with_suffix(".md")):
            stale.unlink(missing_ok=True)
    if not models:
        return None, {}
    best = max(models, key=lambda m: pick_key(deployed_record(m, quantized) or m.record))
    variants = {kind: next((q.record for q in quantized if q.model == best.name and q.method == method
                            and q.record is not None), None)
                for kind, method in best_model_variants().items() if kind != "onnx"}
    artifacts = {"pth": best.record["artifact"], "onnx": best.record["onnx_artifact"],
                 **{kind: record["artifact"] for kind, record in variants.items() if record is not None}}
    files = {}
    for kind, artifact in artifacts.items():
        source = layout.root / artifact["path"]
        files[kind] = layout.models / NAS_BEST_FILES[kind]
        shutil.copy2(source, files[kind])
        if card_path(source).is_file():  # the card goes with the ONNX files, naming its new file
            write_card(read_card(source), files[kind])
    deployed = deployed_record(best, quantized)
    files["spec"] = layout.models / NAS_BEST_FILES["spec"]
    atomic_write_json(files["spec"], {
        "model": best.name, "architecture": best.record["architecture"], "features": best.record["features"],
        "class_names": best.record["class_names"], "accuracy": best.record["accuracy"],
        "val_accuracy": best.record["val_accuracy"], "size_bytes": best.record["size_bytes"],
        "latency_ms": best.record["latency_ms"], "nas": best.record["nas"],
        "distillation": best.record.get("distillation"),
        "sha256": {kind: artifact["sha256"] for kind, artifact in artifacts.items()},
        "accuracy_by_file": {kind: record["accuracy"] for kind, record in variants.items() if record is not None},
        "deployed": None if deployed is None else {
            "file": files[next(k for k, m in best_model_variants().items() if m == deployed["method"])].name,
            "weight_bits": best.record["nas"]["weight_bits"], "accuracy": deployed["accuracy"],
            "val_accuracy": deployed["val_accuracy"], "size_bytes": deployed["size_bytes"]}})
    return best, files


def nas_feasibility_points(nas: NASResult, baselines: list[BaselineResult], cache: Path) -> pd.DataFrame:
    """The points of the search's constraint-feasibility figure: every candidate of both searches (unlabelled)
    and the baselines (labelled), each marked by whether it meets the budgets. A baseline is counted as a candidate
    is: its full-integer TFLite bytes as size and flash, the whole arena a firmware allocates for that file
    (:func:`edge_audio.runtimes.tflm.firmware_ram`), its validation accuracy."""
    budgets = nas.search.budgets
    points = [{"size_bytes": h.size_bytes, "latency_ms": h.latency_ms, "kind": "nas candidate",
               "feasible": h.feasible, "label": None} for entries in nas.search.history.values() for h in entries]
    npu = budgets.device and budgets.device.npu
    for b in baselines:
        with tempfile.TemporaryDirectory(prefix="edge-audio-baseline-") as scratch:
            deployed = uncalibrated_tflite(b.onnx_path, Path(scratch) / f"{b.name}.tflite")
            size = os.path.getsize(deployed)
            tflm = tflm_arena(deployed)
            ram = firmware_ram(tflm, memory_report(b.onnx_path, full_integer=True)["scratch_bytes"])
            costs = {"macs": b.record["macs"], "peak_ram_bytes": ram["arena_bytes"], "flash_bytes": size,
                     "npu": {} if npu is None else with_npu_arenas(
                         {npu: npu_report(deployed, npu_target(npu), cache)}, tflm)}
        points.append({"size_bytes": size, "latency_ms": b.record["latency_ms"], "kind": "baseline", "label": b.name,
                       "feasible": not budgets.reasons(size, b.record["latency_ms"], b.record["val_accuracy"],
                                                       *budgets.device_costs(costs))})
    return pd.DataFrame(points)


@dataclass
class SupernetFinalist:
    """A deployment profile's finalist: the sub-network picked for it, its measured deployed costs, and the model
    fine-tuned from its inherited weights with the baseline protocol, and its full-integer TFLite variant."""

    profile: str  # a deployment profile's name, or "run budgets"
    pick: SubnetTrial
    measured: dict  # nas.candidate_cost of the untrained architecture: flash, arena, latency, MACs
    device: dict  # the profile's view of the measured costs: ram_bytes, flash_bytes, latency_ms
    model: BaselineResult
    deployed: QuantizationResult


@dataclass
class SupernetResult:
    """The supernet search: the supernet, both searches per seed, rank fidelity, a finalist per profile, and the
    proxy search at equal compute."""

    supernet: dict  # the cached training's record: history, seconds
    outcome: SubnetSearchOutcome
    search: SubnetSearch
    fidelity: dict  # stats.rank_agreement, plus rows (arch, params, supernet score, alone accuracy)
    finalists: list[SupernetFinalist]
    unmet: dict[str, str]  # profile -> why no sub-network could be its finalist
    baselines: list[QuantizationResult]  # the baselines' full-integer TFLite variants (the same bytes a device stores)
    equal_compute: dict  # seed -> both searches' picks within the same seconds, scored alike


def run_supernet_nas(data: PreparedData, settings: Settings, baselines: list[BaselineResult], nas: NASResult,
                     progress: bool = False) -> SupernetResult:
    """Train the supernet on the proxy split (cached), search it with NSGA-II and the random control once per search
    seed, measure its rank fidelity against stand-alone training, pick and measure one finalist per deployment
    profile (``nas_profiles``; none: the run's budgets), fine-tune each from its inherited weights with the baseline
    protocol and deploy it as full-integer TFLite, and compare the search with the proxy search ``nas`` at equal
    compute."""
    profiles = settings.supernet_profiles
    split = nas.proxy
    features = data.features
    scorer, trained_supernet = supernet_scorer(features, split, settings, data.layout.cache)
    search = SubnetSearch(scorer, BOOK_SPACE, settings.budgets, features.config.shape, features.num_classes,
                          settings.supernet_evaluations, -(-settings.supernet_evaluations // SUPERNET_GENERATIONS))
    outcome = run_subnet_searches(search, settings.searches, progress)
    fidelity = _rank_fidelity(scorer, features, split, settings, data.layout.cache / "nas")
    finalists, unmet = [], {}
    targets = [(p.name, p) for p in profiles] or [("run budgets", None)]
    picks = {}
    for name, profile in targets:
        found = _measured_pick(search, outcome, profile, settings, features, data.layout.cache / "nas")
        if isinstance(found, str):
            unmet[name] = found
        else:
            picks[name] = found
    run_key = data.context(settings)["key"]  # a previous supernet search's finalists of this run are replaced
    upsert_results(data.layout.logs, [], drop=lambda r: r.get("source") == "supernet_finalist"
                   and r["context"]["key"] == run_key)
    trained = {}
    for name, (pick, measured, device) in picks.items():
        if pick.key not in trained:
            spec = BOOK_SPACE.spec(pick.arch, f"sn_{len(trained) + 1}")
            # fine-tuned from its inherited weights: better than retraining (benchmarks/supernet_finetune_or_retrain.py)
            [model] = train_baselines(data, settings, [spec], progress,
                                      initial=scorer.model(pick.arch, spec["name"]))
            model.record = as_chosen(with_fields(model.record, source="supernet_finalist",
                                                 supernet={"arch": pick.arch, "score": pick.proxy_accuracy}))
            upsert_results(data.layout.logs, [model.record])
            [variant] = quantize_models(data, settings, [model], [full_integer_method(8).name],
                                        fields={"source": "supernet_finalist"})
            if variant.record is not None:  # a choice reports on the deployed split's test fold (as_chosen)
                variant = dataclasses.replace(variant, record=as_chosen(variant.record))
                upsert_results(data.layout.logs, [variant.record])
            trained[pick.key] = (model, variant)
        model, variant = trained[pick.key]
        finalists.append(SupernetFinalist(name, pick, measured, device, model, variant))
    deployed_baselines = quantize_models(data, settings, baselines, [full_integer_method(8).name])
    return SupernetResult(trained_supernet, outcome, search, fidelity, finalists, unmet, deployed_baselines,
                          _equal_compute(outcome, trained_supernet["seconds"], nas, search, features, split, settings,
                                         data.layout.cache / "nas"))


def supernet_scorer(features: FeatureSet, split: Split, settings: Settings, cache: Path) -> tuple[Scorer, dict]:
    """The run's supernet trained on ``split`` (cached, resumable) and its scorer: sub-networks recalibrated on
    :data:`SCORER_CALIBRATION` training clips drawn with the run's seed, scored on the split's scoring fold; and
    the training's record (history, seconds)."""
    arguments = (BOOK_SPACE, features, split, settings.supernet_epochs, settings.search.proxy_batch_size,
                 settings.search.proxy_lr, settings.seed, cache, settings.device)
    run_jobs(settings, supernet_run, [arguments], "supernet training", gpu=True)
    supernet, entry = supernet_run(*arguments)
    x_train, _ = features.select(split.train_folds)
    draw = np.random.default_rng(settings.seed).choice(len(x_train), min(SCORER_CALIBRATION, len(x_train)),
                                                       replace=False)
    x_proxy, y_proxy = features.select([split.val_fold])
    return Scorer(supernet, x_train[np.sort(draw)], x_proxy, y_proxy), entry.value


#: Training clips a sub-network's BatchNorm is recalibrated on when it is scored.
SCORER_CALIBRATION = 32
#: NSGA-II's generations in a supernet search (its population is the evaluations over this).
SUPERNET_GENERATIONS = 20
#: How many picks per profile are measured before the profile is declared unmet.
MEASURED_PICKS = 5


def _proxy_accuracy(arch: dict, features: FeatureSet, split: Split, settings: Settings, work_dir: Path,
                    distillation: Distillation | None = None) -> float:
    """``arch`` trained alone as the proxy search trains its candidates (its settings and, given, its teacher's
    soft targets; the same cache), scored as it scores them at 8 bits."""
    run = train_model(BOOK_SPACE.spec(arch, "nas-proxy"), features, split, settings.search.proxy_train_config(),
                      work_dir / "proxy_runs", settings.device, False, distillation=distillation)
    return search_score(run, features, split.val_fold, 8)["accuracy"]


def _rank_fidelity(scorer: Scorer, features: FeatureSet, split: Split, settings: Settings, work_dir: Path) -> dict:
    """Kendall's tau between supernet scores and stand-alone proxy training, over ``supernet_fidelity_subnets``
    sub-networks spread over the space by parameters (evenly spaced quantiles of 400 drawn with the run's seed)."""
    archs = spread_over_params(BOOK_SPACE, settings.supernet_fidelity_subnets, settings.seed, features.config.shape,
                               features.num_classes)
    rows = [{"arch": arch, "params": structural_costs(arch, features.config.shape, features.num_classes)["params"],
             "supernet": scorer.score(arch)["accuracy"], "alone": _proxy_accuracy(arch, features, split, settings,
                                                                                   work_dir)}
            for arch in archs]
    return {**rank_agreement([r["supernet"] for r in rows], [r["alone"] for r in rows]), "rows": rows}


def _measured_pick(search: SubnetSearch, outcome: SubnetSearchOutcome, profile, settings: Settings,
                   features: FeatureSet, work_dir: Path):
    """The first sub-network for ``profile`` (None: the run's budgets), in :func:`candidates_for`'s order, whose
    **measured** deployed costs meet it: (pick, measured costs, the profile's view of them); or why there is none."""
    budgets = settings.budgets if profile is None else settings.budgets.for_device(profile)
    candidates = candidates_for(outcome, search, profile)
    if not candidates:
        return "no sub-network of the searches meets it (by its structural costs and its supernet score)"
    reasons = []
    for pick in candidates[:MEASURED_PICKS]:
        measured = candidate_cost(BOOK_SPACE.spec(pick.arch), features.config.shape, features.num_classes,
                                  work_dir / "candidates", settings.search.threads, settings.search.latency_runs, 8,
                                  budgets.device and budgets.device.npu)
        ram, flash, latency = budgets.device_costs(measured)
        broken = budgets.reasons(measured["size_bytes"], measured["latency_ms"], pick.proxy_accuracy, ram, flash,
                                 latency)
        if not broken:
            return pick, measured, {"ram_bytes": ram, "flash_bytes": flash, "latency_ms": latency}
        reasons.append("; ".join(broken))
    return (f"the {len(reasons)} best sub-networks by structure break it once measured: " + " | ".join(reasons))


def _equal_compute(outcome: SubnetSearchOutcome, supernet_seconds: float, nas: NASResult, search: SubnetSearch,
                   features: FeatureSet, split: Split, settings: Settings, work_dir: Path) -> dict:
    """Per seed, each NSGA-II search's pick within the same seconds: the supernet's (its share of the supernet's
    training, which every seed's search shares, then its evaluations in order) and the proxy search's (its trials in
    order), until the smaller of the two totals; each the best feasible sub-network by its own search's score, both
    then scored alike (trained alone as a proxy, with the proxy search's teacher when it distils, and scored on the
    proxy fold with its weights as deployed: a proxy pick's score is already that, at its searched bit width; the
    supernet's pick is scored at 8 bits)."""
    compared = {}
    share = supernet_seconds / len(settings.searches)
    for seed in settings.searches:
        mine = [h for h in outcome.history["nsga2"] if h.seed == seed]
        theirs = sorted((h for h in nas.search.history["nsga2"] if h.seed == seed), key=lambda h: h.number)
        budget = min(share + sum(h.seconds for h in mine), sum(h.seconds for h in theirs))
        spent, within = share, []
        for h in mine:
            spent += h.seconds
            if spent > budget:
                break
            within.append(h)
        spent, proxies = 0.0, []
        for h in theirs:
            spent += h.seconds
            if spent > budget:
                break
            proxies.append(h)
        mine_best = max((h for h in within if h.feasible), key=lambda h: h.proxy_accuracy, default=None)
        theirs_best = max((h for h in proxies if h.feasible), key=lambda h: h.proxy_accuracy, default=None)
        compared[seed] = {
            "seconds": round(budget, 1), "supernet_share": round(share, 1), "supernet_evaluations": len(within),
            "proxy_trials": len(proxies),
            "supernet_pick": None if mine_best is None else mine_best.arch,
            "supernet": None if mine_best is None else _proxy_accuracy(mine_best.arch, features, split, settings,
                                                                        work_dir, nas.distillation),
            "proxy_pick": None if theirs_best is None else theirs_best.spec,
            "proxy": None if theirs_best is None else theirs_best.proxy_accuracy}
    seeds = list(compared)
    comparison = seeds_comparison([compared[s]["supernet"] or 0.0 for s in seeds],
                                  [compared[s]["proxy"] or 0.0 for s in seeds])
    return {"seeds": compared, "comparison": comparison}
