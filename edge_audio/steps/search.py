"""Step 4 (chapter 4): the hardware-aware architecture search and its finalists.

NSGA-II and a random-search control (:mod:`edge_audio.nas`) search under the run's budgets, once per search seed,
and are compared over the seeds (a winner only when the paired test over seeds resolves it); the top-k distinct
architectures of NSGA-II's feasible front (every seed's trials) are retrained with the baseline protocol (as
baselines, by :func:`~edge_audio.steps.baselines.train_baselines`), quantized like chapter 3
(:data:`DERIVED_MODEL_METHODS`, and ``tflite_int4`` for a candidate the search deployed with 4-bit weights), and
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

import pandas as pd

from .. import plots
from ..glue import counted
from ..cards import card_path, read_card, write_card
from ..claims import Claims
from ..errors import ParameterError, invariant
from ..features import FeatureSet, extract_features
from ..frontier import learning_curve
from ..machine import machine_identity, versions
from ..memory import memory_report
from ..nas import HISTORY_FILE, SAMPLERS, closest_candidate, SearchContext, SearchOutcome, default_storage, feasible_front, run_search
from ..settings import Settings
from ..profile import compare_latency
from ..runtimes import get as get_runtime
from ..npu import npu_report, npu_target, with_npu_arenas
from ..runtimes.tflm import firmware_ram, tflm_arena
from ..quantize import uncalibrated_tflite
from ..records import CandidateRecord, make_record, with_fields
from ..results import as_chosen, pick_key, upsert_results
from ..tables import accuracy_verdict, distillation_table, fold_views, view, views
from ..stats import interval_text, seeded_difference
from ..storage import atomic_write_json, cached
from ..train import Split
from .baselines import (SUFFIX, BaselineResult, Teacher, check_students, distillation_pairs, distillation_values,
                        train_baselines)
from .data import PreparedData
from .quantization import DERIVED_MODEL_METHODS, QuantizationResult, quantize_models

#: The files a search's best model is published as, under ``models/`` (every stem distinct: a file's card is
#: named by its stem).
NAS_BEST_FILES = {"pth": "nas_best_model.pth", "onnx": "nas_best_model.onnx", "int8": "nas_best_model_int8.onnx",
                  "tflite": "nas_best_model_tflite_int8.tflite", "tflite_int4": "nas_best_model_tflite_int4.tflite",
                  "spec": "nas_best_model.json"}
#: The variant each of the best model's files is (a method's file exists when the finalist was compressed with it).
NAS_BEST_VARIANTS = {"onnx": "fp32", "int8": "ort_static", "tflite": "tflite_int8", "tflite_int4": "tflite_int4"}
#: The full-integer TFLite method of each weight bit width the search can deploy a candidate with.
DEPLOYED_METHODS = {8: "tflite_int8", 4: "tflite_int4"}
NAS_SOURCES = ("nas_candidate", "nas_finalist")
#: The views of :meth:`NASResult.finalist_table`: the selection gap (search, validation, test), and the costs.
FINALIST_ACCURACY = ("The selection gap: search score, validation, test",
                     ("NAS trial", "Search score (%)", "Val acc (%)", "Test acc (%)", "95% interval",
                      "Deployed acc (%)"))
FINALIST_COST = ("What each finalist costs, FP32 and deployed (full-integer TFLite at the searched bit width)",
                 ("Params", "MMACs", "Size (kB)", "Latency (ms)", "Weights", "Deployed (kB)", "Deployed RAM (kB)"))
FINALIST_ARCHITECTURE = ("The architectures", ("Architecture",))


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
    fronts: dict[int, list[dict]]  # generation -> NSGA-II's feasible front after it
    proxy: Split  # what the search scored candidates on (inside the deployed split's training folds)
    deployed: Split  # the split the finalists are chosen (validation fold) and reported (test fold) on
    figures: dict[str, object] = dataclasses.field(default_factory=dict)  # name -> the figure under reports/

    @property
    def models(self) -> list[BaselineResult]:
        """Every retrained finalist: from labels alone, then by distillation."""
        return self.finalists + self.students

    def finalist_table(self) -> pd.DataFrame:  # shown in the views FINALIST_ACCURACY, _COST, _ARCHITECTURE
        """The finalists, retrained with the baseline protocol, with their deployed variant: the baseline metrics."""
        rows = []
        for model in self.models:
            r, deployed = model.record, deployed_record(model, self.quantized)
            rows.append({"Model": model.name, "NAS trial": f"seed {r['nas']['seed']}, #{r['nas']['trial']}",
                         "Search score (%)": r["nas"]["proxy_accuracy"], "Val acc (%)": r["val_accuracy"],
                         "Test acc (%)": r["accuracy"],
                         "95% interval": interval_text(r["test"]),
                         "Size (kB)": r["size_bytes"] / 1e3,
                         "Latency (ms)": r["latency_ms"], "MMACs": r["macs"] / 1e6,
                         "Params": r["params"], "Weights": f"int{r['nas']['weight_bits']}",
                         "Deployed acc (%)": deployed["accuracy"] if deployed else None,
                         "Deployed (kB)": deployed["size_bytes"] / 1e3 if deployed else None,
                         "Deployed RAM (kB)": deployed["peak_ram_bytes"] / 1e3 if deployed else None,
                         "Architecture": describe_spec(r["architecture"], r["features"]["n_mels"])
                         + (" (distilled)" if "distillation" in r else "")})
        return pd.DataFrame(rows).set_index("Model") if rows else pd.DataFrame()

    def learning_curve(self, baselines: list[BaselineResult], margin: float) -> tuple[list[dict], list]:
        """Chapter 2's learning curve with the finalists added (:func:`edge_audio.frontier.learning_curve`), the
        baselines as a choice reports them (:func:`~edge_audio.results.as_chosen`), on the finalists' clips."""
        return learning_curve([as_chosen(b.record) for b in baselines] + [f.record for f in self.finalists], margin)

    def distillation_pairs(self, margin: float) -> list[tuple[dict, dict, dict]]:
        """Each distilled finalist, the same architecture trained from labels alone, and their paired comparison
        on the same test clips at ``margin`` points (chapter 2's pairs)."""
        return distillation_pairs(self.students, self.finalists, margin)


    # -- what chapter 4 shows ------------------------------------------------------------------------------------
    def entries(self) -> list[dict]:
        """Every trial of every search."""
        return [h for seed in self.search.history for h in self.search.history[seed]]

    def chapter_values(self, settings: Settings) -> dict:
        """The values chapter 4's prose quotes about the searches' settings and outcome."""
        budgets, search = settings.budgets, settings.search
        winner = self.search.winner
        names = {"nsga2": "NSGA-II", "random": "random search"}
        return {
            "nas_proxy_train_folds": ", ".join(map(str, self.proxy.train_folds)),
            "nas_proxy_fold": int(self.proxy.val_fold), "nas_val_fold": int(self.deployed.val_fold),
            "nas_test_fold": int(self.deployed.test_fold), "nas_margin": float(settings.accuracy_margin),
            "nas_trials": int(search.trials), "nas_population": int(search.population),
            "nas_generations": int(search.generations), "nas_seeds": ", ".join(map(str, self.search.seeds)),
            "nas_max_size": float(budgets.max_size_mb), "nas_max_latency": float(budgets.max_latency_ms),
            "nas_min_accuracy": float(budgets.min_accuracy),
            "nas_ram": "no peak-RAM limit" if budgets.max_ram_kb is None else
                       f"peak RAM ≤ {budgets.max_ram_kb:g} kB with INT8 activations (estimated from the graph "
                       "before training)",
            "nas_flash": "no flash limit" if budgets.max_flash_kb is None else
                         f"flash ≤ {budgets.max_flash_kb:g} kB (the full-integer TFLite model's bytes)",
            "nas_device": "no target device" if budgets.device is None else (
                f"the target device {settings.target_device} ({budgets.device.get('description', '')}): RAM, flash "
                f"and an estimated latency ≤ {budgets.max_device_latency_ms:g} ms on it"
                + (", as Vela compiles each candidate for the NPU before training" if "npu" in budgets.device else "")
                if budgets.max_device_latency_ms is not None else f"the target device {settings.target_device}"),
            "nas_winner": {"tie": "neither, resolvably, over the seeds" if len(self.search.seeds) > 1 else
                           "no verdict (one seed)"}.get(winner, f"{names.get(winner)}, resolvably, over the seeds"),
            "nas_bits": " or ".join(f"{bits}" for bits in search.weight_bits) + " bits",
            "nas_int4_trials": counted(sum(h["weight_bits"] == 4 for h in self.entries()), "trial"),
            "nas_int4_finalists": counted(sum(f.record["nas"]["weight_bits"] == 4 for f in self.finalists),
                                          "finalist"),
            "nas_distilled": "from the teacher's soft targets as well as the labels" if self.students else
                             "from the labels alone",
            **{f"nas_{name}": value for name, value in
               distillation_values(self.students, self.finalists, settings.accuracy_margin).items()},
        }

    def summary_table(self) -> pd.DataFrame:
        """Per seed and search: trials trained, feasible, and the best feasible proxy accuracy."""
        return pd.DataFrame([{"seed": seed, "search": sampler, **row}
                             for seed, by_sampler in self.search.summaries.items()
                             for sampler, row in by_sampler.items()]).set_index(["seed", "search"]).rename(columns={
            "trained": "trained (met size and latency)", "feasible": "feasible (all budgets)",
            "best_feasible_accuracy": "best feasible proxy acc (%)", "best_trial": "best trial"})

    def search_verdicts(self, claims: Claims) -> str:
        """NSGA-II against random search over the seeds, each sentence made by ``claims`` from the paired t-test,
        and how many candidates broke a hard budget and were never trained."""
        verdicts = []
        for score, label in (("hypervolume", "hypervolume"), ("best_feasible_accuracy",
                                                              "best feasible proxy accuracy")):
            cmp = self.search.comparison[score]
            spread = (f"{label} {cmp['mean_a']:.4g} ± {cmp['std_a']:.2g} (NSGA-II) against {cmp['mean_b']:.4g} ± "
                      f"{cmp['std_b']:.2g} (random) over {counted(cmp['seeds'], 'seed')}")
            if cmp["p_value"] is None:
                sentence = f"On {spread}, there is no verdict: one seed cannot tell a method from luck"
            elif cmp["better"] is None:
                sentence = (f"On {spread}, the seeds cannot tell NSGA-II from random search (paired t-test p = "
                            f"{cmp['p_value']:.3g})")
            else:
                winner, loser = ("NSGA-II", "random search") if cmp["better"] == "a" else ("random search", "NSGA-II")
                sentence = f"On {spread}, {winner} won over {loser} (paired t-test p = {cmp['p_value']:.3g})"
            verdicts.append(claims.state(sentence, cmp["better"] is not None, cmp["p_value"], cmp["test"]) + ".")
        untrained = sum(not h["trained"] for h in self.entries())
        return (" ".join(verdicts) + f" Across all searches {counted(untrained, 'candidate')} broke the size, latency "
                "or RAM budget and were never trained.")

    def outcome(self, data: PreparedData, budgets) -> list:
        """What the search produced, to display: the finalists' tables, any INT8 failure and the published files;
        or, when nothing met the budgets, the closest candidate and how far it missed (Markdown)."""
        from IPython.display import Markdown

        from .quantization import failure_note

        if not self.finalists:
            entries = self.search.history["nsga2"]  # the finalists come from NSGA-II's front
            near = closest_candidate(entries, budgets)
            control = sum(h["feasible"] for h in self.search.history["random"])
            return [Markdown(
                f"**No candidate of NSGA-II met these budgets** in {len(entries)} trials, so nothing was retrained "
                f"or published" + (f" (the random control found {counted(control, 'feasible candidate')}; a "
                                   "control's candidates never become finalists)" if control else "")
                + f". The closest candidate (trial {near['number']} of {near['sampler']}, "
                f"{'-'.join(map(str, near['spec']['channels']))} {near['spec']['block']}) measured "
                f"{near['size_bytes'] / 1e6:.4f} MB and {near['latency_ms']:.3f} ms"
                + (f" with {near['proxy_accuracy']:.2f} % proxy accuracy" if near["trained"] else " (not trained)")
                + ": " + "; ".join(near["reasons"]) + ". Loosen the budgets or widen the search space.")]
        shown = [*views(self.finalist_table(), FINALIST_ACCURACY, FINALIST_COST, FINALIST_ARCHITECTURE),
                 *fold_views([m.record for m in self.models] + [q.record for q in self.quantized if q.record])]
        if any(q.error for q in self.quantized):
            shown.append(Markdown(failure_note(self.quantized)))
        best, deployed = self.best.record, deployed_record(self.best, self.quantized)
        shown.append(Markdown(
            f"Published: **{self.best.name}** ({best['accuracy']:.2f} % test accuracy in FP32, "
            f"{best['size_bytes'] / 1e3:.1f} kB, {best['latency_ms']:.3f} ms"
            + ("" if deployed is None else f"; deployed with int{best['nas']['weight_bits']} weights: "
               f"{deployed['accuracy']:.2f} %, {deployed['size_bytes'] / 1e3:.1f} kB")
            + ") as " + ", ".join(f"`{p.relative_to(data.layout.root)}`" for p in self.best_files.values()) + "."))
        return shown

    def distillation_outcome(self, margin: float) -> list:
        """What distillation did to the finalists, to display: the teacher and the verdicts (Markdown) and each
        distilled finalist beside the same architecture trained from labels alone (chapter 2's table); or that
        the search ran without it."""
        from IPython.display import Markdown

        if not self.students:
            return [Markdown("This search ran without distillation (`nas_distill` is off, or no finalist met the "
                             "budgets).")]
        values = distillation_values(self.students, self.finalists, margin)
        return [Markdown(f"Teacher: {values['kd_teachers']} (temperature {values['kd_temperature']:g}, soft-target "
                         f"weight {values['kd_weight']:g}). Distilled against labels alone, over "
                         f"{values['kd_students_counted']}: {values['kd_verdicts']}."),
                view(distillation_table(self.distillation_pairs(margin)))]

    def dominance(self, baselines: list[BaselineResult], data: PreparedData, settings: Settings,
                  claims: Claims) -> tuple[str, pd.DataFrame, dict]:
        """Does a finalist dominate a baseline? The answer (Markdown, each sentence stated through ``claims``), the
        table of every pair, and the glued list of dominated baselines."""
        table = dominance_table(self.models, baselines, data, settings)
        wins = table[table["dominates"]] if len(table) else table
        sentences = [claims.state(f"{row['NAS model']} dominates {row['baseline']}: size "
                                  f"{row['size kB (NAS / baseline)']} kB, accuracy NAS - baseline "
                                  f"{row['accuracy: NAS - baseline']}, latency {row['latency: paired test']}",
                                  True, None, "exact size, paired difference at the margin, Wilcoxon signed-rank test",
                                  shown_within=True)
                     for _, row in wins.iterrows()]
        answer = ("**Yes**: " + "; ".join(sentences) + "." if sentences else
                  "**No**: no NAS finalist is at least as good as a baseline on all three counts and better on one"
                  + (" (see the table)." if len(table) else " (there is no finalist)."))
        glued = {"nas_dominated": ", ".join(sorted(set(wins["baseline"]))) if len(wins) else "none"}
        return answer, table, glued

    def check(self, settings: Settings, dominance: pd.DataFrame, data: PreparedData) -> str:
        """Chapter 4's invariants (an InvariantError names the first that fails); returns a one-line summary."""
        import json

        from .quantization import failure_note

        search, failures = settings.search, failure_note(self.quantized)
        saved = json.loads(self.history_path.read_text())
        entries = self.entries()
        invariant(len(saved["trials"]) == len(entries) == 2 * search.trials * len(settings.searches), len(entries))
        invariant(sorted({h["seed"] for h in entries}) == sorted(settings.searches), "every search seed ran")
        invariant(all(h["trained"] == all(v <= 0 for k, v in h["violations"].items() if k != "accuracy")
                   for h in entries), "a candidate over a hard budget was trained")
        invariant(all(h["feasible"] == (not h["reasons"]) for h in entries),
                  "a candidate is feasible exactly when nothing is out of budget")
        invariant(bool(self.finalists) == bool(self.best_files) and all(p.is_file() for p in self.best_files.values()),
                  "finalists exist exactly when the best model's files were published")
        # each finalist's exported ONNX computes what its PyTorch model computes; every INT8 failure is in the prose
        invariant(all(f.record["onnx_max_abs_difference"] < 1e-4 for f in self.models),
                  "every finalist's ONNX export computes what its PyTorch model computes")
        # each finalist is deployed at the bit width the search chose for it; a distilled one repeats its finalist
        invariant(all(m.record["nas"]["weight_bits"] in search.weight_bits for m in self.models),
                  "every finalist keeps a searched bit width")
        invariant(all(deployed_record(m, self.quantized) is not None
                      or f"{m.name} with" in failures for m in self.models),
                  "every finalist has its deployed variant, or its failure is told")
        invariant(len(self.students) == (len(self.finalists) if settings.nas_distill else 0),
                  "one distilled twin per finalist when the search distils, none otherwise")
        check_students(self.students, self.finalists)
        invariant(all(f"{q.model} with {q.method}" in failures for q in self.quantized if q.error), failures)
        invariant((data.layout.reports / "nas_evolution.png").is_file(), "the search's evolution figure was written")
        # a finalist that dominates a baseline is not resolvably worse on any count
        wins = dominance[dominance["dominates"]] if len(dominance) else dominance
        invariant(all(not row["accuracy: NAS - baseline"].startswith(("worse", "undetermined", "no better"))
                   and row["latency: paired test"] != "baseline faster" for _, row in wins.iterrows()), 'all(not row["accuracy: NAS - baseline"].startswith(("worse", "undetermined", "no better")) and row["latency: paired test"] != "baseline faster" for _, row in wins.iterrows())')
        return f"all NAS invariants hold ({len(entries)} trials in {self.history_path.name})"


def describe_spec(spec: dict, n_mels: int) -> str:
    """A one-line description of an architecture spec."""
    head = f"fc {spec['fc_size']}" if spec["fc_size"] else "no hidden fc"
    return (f"{spec['block']} {'-'.join(map(str, spec['channels']))}, k{spec['kernel_size']}, {spec['pool']} pool, "
            f"{head}, dropout {spec['dropout']:g}, {n_mels} mels")


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


def dominance_table(finalists: list[BaselineResult], baselines: list[BaselineResult], data: PreparedData,
                    settings: Settings) -> pd.DataFrame:
    """For each (finalist, baseline) pair: the paired accuracy test, the sizes, the interleaved latencies and their
    test, and whether the finalist dominates the baseline (:func:`dominance`)."""
    words = {None: "not resolved", "a": "NAS faster", "b": "baseline faster"}
    rows = []
    for c in finalists:
        for b in baselines:
            d = dominance(c, b, data, settings)
            rows.append({"NAS model": c.name, "baseline": b.name,
                         "accuracy % (NAS / baseline)": f"{c.record['accuracy']:.2f} / "
                                                        f"{as_chosen(b.record)['accuracy']:.2f}",
                         "accuracy: NAS - baseline": accuracy_verdict(d["accuracy"]),
                         "size kB (NAS / baseline)": "{:.1f} / {:.1f}".format(*(v / 1e3 for v in d["size_bytes"])),
                         "latency ms, interleaved (NAS / baseline)": "{:.3f} / {:.3f}".format(*d["latency_ms"]),
                         "latency: paired test": words[d["latency"]["faster"]], "dominates": d["dominates"]})
    return pd.DataFrame(rows)


def _candidate_records(history: list[dict], data: PreparedData, settings: Settings, split) -> list[dict]:
    """Results records of the trained NAS candidates (the search score on the proxy's fold), one per architecture
    and bit width."""
    search = settings.search
    records = {}
    for h in history:
        key = (h["architecture_key"], h["weight_bits"])
        if not h["trained"] or key in records:
            continue
        records[key] = make_record(CandidateRecord, **{
            "model": f"nas-{h['architecture_key'][:8]}-w{h['weight_bits']}", "variant": "proxy",
            "source": "nas_candidate",
            "precision": "fp32", "int8_weights": False, "accuracy_kind": "proxy", "runtime": "onnxruntime",
            "latency_ms": h["latency_ms"], "latency": {"onnxruntime": h["latency"]}, "architecture": h["spec"],
            "dataset": data.summary(), "context": data.context(settings),
            "protocol": f"NAS proxy ({search.proxy_epochs} epochs, folds {list(split.train_folds)}, "
                        f"val fold {split.val_fold})", "protocol_kind": "nas proxy",
            "accuracy": h["proxy_accuracy"], "macro_f1": h["proxy_macro_f1"], "size_bytes": h["size_bytes"],
            "params": h["params"], "macs": h["macs"], "flops": h["flops"], "threads": search.threads,
            "seed": h["seed"], "features": {**data.feature_config.to_dict(), "n_mels": h["n_mels"]},
            "train": search.proxy_train_config().to_dict(),
            "nas": {"sampler": h["sampler"], "trial": h["number"], "seed": h["seed"], "weight_bits": h["weight_bits"]},
        })
    return list(records.values())


def run_nas(data: PreparedData, settings: Settings, baselines: list[BaselineResult],
            progress: bool = False) -> NASResult:
    """Search under the run's budgets (NSGA-II and the random control), retrain the top-k feasible candidates with
    the baseline protocol, quantize them like chapter 3 (static INT8), and publish the best (by validation
    accuracy) as ``models/nas_best_model.*``; write ``logs/nas_history.json`` and the two reports. Resumes an
    interrupted search from ``settings.storage`` (default: SQLite under ``logs/``).

    When no candidate meets the budgets there are no finalists: ``best`` is None and no best-model file exists
    (a previous search's files are removed, so nothing stale is published).
    """
    budgets, search = settings.budgets, settings.search  # invalid settings fail here, before any training
    layout = data.layout
    feature_sets = {data.feature_config.n_mels: data.features}

    def features_for(n_mels: int) -> FeatureSet:
        if n_mels not in feature_sets:
            config = dataclasses.replace(data.feature_config, n_mels=n_mels)
            feature_sets[n_mels] = extract_features(data.dataset, config, layout.cache, data.fingerprint,
                                                    progress=progress)
        return feature_sets[n_mels]

    deployed = settings.protocol.splits(data.dataset.folds)[-1]
    split = proxy_split(deployed, search.proxy_train_folds)
    teacher = Teacher.of(data, settings, baselines) if settings.nas_distill else None
    context = SearchContext(features_for, data.feature_config.n_mels, split, budgets, search,
                            layout.cache / "nas", settings.device, mixed_machines=settings.nas_mixed_machines,
                            distillation=None if teacher is None else teacher.soft_targets(
                                split, settings.training_seeds[0]))
    # the machine is not in the study's name: a study records the CPU it was started on and refuses others
    identity = {"dataset": data.fingerprint, "features": {**data.feature_config.to_dict(), "n_mels": None},
                "budgets": budgets.to_dict(), "search": {**asdict(search), "generations": None, "top_k": None},
                "split": asdict(split), "onnxruntime": versions()["onnxruntime"]}
    history_path = layout.logs / HISTORY_FILE
    outcome = run_search(context, settings.searches, settings.storage or default_storage(layout.logs), identity,
                         history_path, progress)
    run_key = data.context(settings)["key"]

    def replaced(record: dict) -> bool:
        return record.get("source") in NAS_SOURCES and record["context"]["key"] == run_key

    candidates = _candidate_records([h for s in SAMPLERS for h in outcome.history[s]], data, settings, split)
    upsert_results(layout.logs, candidates, drop=replaced)

    finalists, students, quantized = [], [], []
    for rank, entry in enumerate(outcome.finalists, start=1):
        finalist_data = dataclasses.replace(data, features=features_for(entry["n_mels"]))
        spec = {"name": f"nas_{rank}", **entry["spec"]}
        nas_info = {"trial": entry["number"], "seed": entry["seed"], "sampler": "nsga2",
                    "weight_bits": entry["weight_bits"], "proxy_accuracy": entry["proxy_accuracy"], "rank": rank}
        methods = DERIVED_MODEL_METHODS + ([DEPLOYED_METHODS[entry["weight_bits"]]]
                                           if DEPLOYED_METHODS[entry["weight_bits"]] not in DERIVED_MODEL_METHODS else [])
        [finalist] = train_baselines(finalist_data, settings, [spec], progress)
        trained = [(finalist, {})]
        if teacher is not None:  # the teacher's logits come from its own features, whatever n_mels the student has
            [student] = train_baselines(finalist_data, settings, [{**spec, "name": spec["name"] + SUFFIX}], progress,
                                        distillation=teacher.soft_targets)
            trained.append((student, {"distillation": teacher.info(spec["name"])}))
        for model, taught in trained:
            # a finalist reports as a choice (as_chosen): under k-fold, on the deployed split's test fold only,
            # since the search and the finalists' choice saw the other folds
            model.record = as_chosen(with_fields(model.record, source="nas_finalist", nas=nas_info, **taught))
            upsert_results(layout.logs, [model.record])
            variants = [result if result.record is None else dataclasses.replace(result, record=as_chosen(result.record))
                        for result in quantize_models(finalist_data, settings, [model], methods,
                                                      fields={"source": "nas_finalist", "nas": nas_info, **taught})]
            upsert_results(layout.logs, [v.record for v in variants if v.record is not None])
            quantized.extend(variants)
        finalists.append(finalist)
        students.extend(model for model, taught in trained if taught)

    best, best_files = _publish_best(finalists + students, quantized, layout)
    population = search.population
    nsga = outcome.history["nsga2"]
    fronts = {generation: feasible_front([h for h in nsga if h["number"] // population <= generation])
              for generation in sorted({h["number"] // population for h in nsga})}
    result = NASResult(outcome, finalists, students, quantized, best, best_files, history_path, fronts, split,
                       deployed)
    result.figures = {
        "nas_evolution": plots.save_figure(plots.plot_nas_evolution(outcome.history, population, fronts),
                                           layout.reports / "nas_evolution.png"),
        "nas_feasibility": plots.save_figure(plots.plot_constraint_feasibility(
            nas_feasibility_points(result, baselines, layout.cache), budgets), layout.reports / "nas_feasibility.png")}
    return result


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
    method = DEPLOYED_METHODS[model.record["nas"]["weight_bits"]]
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
                for kind, method in NAS_BEST_VARIANTS.items() if kind != "onnx"}
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
            "file": files[next(k for k, m in NAS_BEST_VARIANTS.items() if m == deployed["method"])].name,
            "weight_bits": best.record["nas"]["weight_bits"], "accuracy": deployed["accuracy"],
            "val_accuracy": deployed["val_accuracy"], "size_bytes": deployed["size_bytes"]}})
    return best, files


def nas_feasibility_points(nas: NASResult, baselines: list[BaselineResult], cache: Path) -> pd.DataFrame:
    """The points of the search's constraint-feasibility figure: every candidate of both searches (unlabelled)
    and the baselines (labelled), each marked by whether it meets the budgets. A baseline is counted as a candidate
    is: its full-integer TFLite bytes as size and flash, the whole arena a firmware allocates for that file
    (:func:`edge_audio.runtimes.tflm.firmware_ram`), its validation accuracy."""
    budgets = nas.search.budgets
    points = [{"size_bytes": h["size_bytes"], "latency_ms": h["latency_ms"], "kind": "nas candidate",
               "feasible": h["feasible"], "label": None} for entries in nas.search.history.values() for h in entries]
    npu = (budgets.device or {}).get("npu")
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
