"""Chapter 4, the architecture search: the values its prose quotes, its sentences, tables and figures, and its
invariants, over :mod:`edge_audio.steps.search`'s results."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd
from IPython.display import Markdown

from .. import plots
from ..claims import Claims
from ..errors import invariant
from ..frontier import learning_curve
from ..glue import counted, glue_all
from ..nas import closest_candidate
from ..pipeline import Pipeline
from ..results import as_chosen
from ..settings import Settings
from ..stats import interval_text
from ..steps.baselines import BaselineResult
from ..steps.data import PreparedData
from ..steps.search import NASResult, deployed_record, dominance, nas_feasibility_points
from ..tables import accuracy_verdict, distillation_table, fold_views, view, views
from .baselines import check_students, distillation_pairs, distillation_values
from .quantization import failure_note

#: The views of :meth:`SearchChapter.finalist_table`: the selection gap (search, validation, test), and the costs.
FINALIST_ACCURACY = ("The selection gap: search score, validation, test",
                     ("NAS trial", "Search score (%)", "Val acc (%)", "Test acc (%)", "95% interval",
                      "Deployed acc (%)"))
FINALIST_COST = ("What each finalist costs, FP32 and deployed (full-integer TFLite at the searched bit width)",
                 ("Params", "MMACs", "Size (kB)", "Latency (ms)", "Weights", "Deployed (kB)", "Deployed RAM (kB)"))
FINALIST_ARCHITECTURE = ("The architectures", ("Architecture",))


@dataclass
class SearchChapter:
    """Chapter 4's settings, data and baselines, the search's results, its figures (written under ``reports/``),
    and the claims its sentences make."""

    settings: Settings
    data: PreparedData
    baselines: list[BaselineResult]
    nas: NASResult
    figures: dict[str, object]
    claims: Claims = field(default_factory=Claims)

    @classmethod
    def of(cls, settings: Settings, data: PreparedData, baselines: list[BaselineResult],
           nas: NASResult) -> "SearchChapter":
        """The chapter over a search's results, its figures drawn and written (:func:`figures`)."""
        return cls(settings, data, baselines, nas, figures(nas, baselines, settings, data.layout))

    def finalist_table(self) -> pd.DataFrame:  # shown in the views FINALIST_ACCURACY, _COST, _ARCHITECTURE
        """The finalists, retrained with the baseline protocol, with their deployed variant: the baseline metrics."""
        rows = []
        for model in self.nas.models:
            r, deployed = model.record, deployed_record(model, self.nas.quantized)
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

    def learning_curve(self) -> tuple[list[dict], list]:
        """Chapter 2's learning curve with the finalists added (:func:`edge_audio.frontier.learning_curve`), the
        baselines as a choice reports them (:func:`~edge_audio.results.as_chosen`), on the finalists' clips."""
        return learning_curve([as_chosen(b.record) for b in self.baselines] + [f.record for f in self.nas.finalists],
                              self.settings.accuracy_margin)

    def distillation_pairs(self) -> list[tuple[dict, dict, dict]]:
        """Each distilled finalist, the same architecture trained from labels alone, and their paired comparison
        on the same test clips at the margin (chapter 2's pairs)."""
        return distillation_pairs(self.nas.students, self.nas.finalists, self.settings.accuracy_margin)


    def values(self) -> dict:
        """The values chapter 4's prose quotes about the searches' settings and outcome."""
        settings = self.settings
        budgets, search = settings.budgets, settings.search
        winner = self.nas.search.winner
        names = {"nsga2": "NSGA-II", "random": "random search"}
        return {
            "nas_proxy_train_folds": ", ".join(map(str, self.nas.proxy.train_folds)),
            "nas_proxy_fold": int(self.nas.proxy.val_fold), "nas_val_fold": int(self.nas.deployed.val_fold),
            "nas_test_fold": int(self.nas.deployed.test_fold), "nas_margin": float(settings.accuracy_margin),
            "nas_trials": int(search.trials), "nas_population": int(search.population),
            "nas_generations": int(search.generations), "nas_seeds": ", ".join(map(str, self.nas.search.seeds)),
            "nas_max_size": float(budgets.max_size_mb), "nas_max_latency": float(budgets.max_latency_ms),
            "nas_min_accuracy": float(budgets.min_accuracy),
            "nas_ram": "no peak-RAM limit" if budgets.max_ram_kb is None else
                       f"peak RAM ≤ {budgets.max_ram_kb:g} kB with INT8 activations (estimated from the graph "
                       "before training)",
            "nas_flash": "no flash limit" if budgets.max_flash_kb is None else
                         f"flash ≤ {budgets.max_flash_kb:g} kB (the full-integer TFLite model's bytes)",
            "nas_device": "no target device" if budgets.device is None else (
                f"the target device {settings.target_device} ({budgets.device.describe()}): RAM, flash "
                f"and an estimated latency ≤ {budgets.max_device_latency_ms:g} ms on it"
                + (", as Vela compiles each candidate for the NPU before training" if budgets.device.npu else "")
                if budgets.max_device_latency_ms is not None else f"the target device {settings.target_device}"),
            "nas_winner": {"tie": "neither, resolvably, over the seeds" if len(self.nas.search.seeds) > 1 else
                           "no verdict (one seed)"}.get(winner, f"{names.get(winner)}, resolvably, over the seeds"),
            "nas_bits": " or ".join(f"{bits}" for bits in search.weight_bits) + " bits",
            "nas_int4_trials": counted(sum(h.weight_bits == 4 for h in self.nas.entries()), "trial"),
            "nas_int4_finalists": counted(sum(f.record["nas"]["weight_bits"] == 4 for f in self.nas.finalists),
                                          "finalist"),
            "nas_distilled": "from the teacher's soft targets as well as the labels" if self.nas.students else
                             "from the labels alone",
            **{f"nas_{name}": value for name, value in
               distillation_values(self.nas.students, self.nas.finalists, settings.accuracy_margin).items()},
        }

    def summary_table(self) -> pd.DataFrame:
        """Per seed and search: trials trained, feasible, and the best feasible proxy accuracy."""
        return pd.DataFrame([{"seed": seed, "search": sampler, **row}
                             for seed, by_sampler in self.nas.search.summaries.items()
                             for sampler, row in by_sampler.items()]).set_index(["seed", "search"]).rename(columns={
            "trained": "trained (met size and latency)", "feasible": "feasible (all budgets)",
            "best_feasible_accuracy": "best feasible proxy acc (%)", "best_trial": "best trial"})

    def search_verdicts(self) -> str:
        """NSGA-II against random search over the seeds, each sentence made by ``claims`` from the paired t-test,
        and how many candidates broke a hard budget and were never trained."""
        verdicts = []
        for score, label in (("hypervolume", "hypervolume"), ("best_feasible_accuracy",
                                                              "best feasible proxy accuracy")):
            cmp = self.nas.search.comparison[score]
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
            verdicts.append(self.claims.state(sentence, cmp["better"] is not None, cmp["p_value"], cmp["test"]) + ".")
        untrained = sum(not h.trained for h in self.nas.entries())
        return (" ".join(verdicts) + f" Across all searches {counted(untrained, 'candidate')} broke the size, latency "
                "or RAM budget and were never trained.")

    def outcome(self) -> list:
        """What the search produced, to display: the finalists' tables, any INT8 failure and the published files;
        or, when nothing met the budgets, the closest candidate and how far it missed (Markdown)."""
        if not self.nas.finalists:
            entries = self.nas.search.history["nsga2"]  # the finalists come from NSGA-II's front
            near = closest_candidate(entries, self.settings.budgets)
            control = sum(h.feasible for h in self.nas.search.history["random"])
            return [Markdown(
                f"**No candidate of NSGA-II met these budgets** in {len(entries)} trials, so nothing was retrained "
                f"or published" + (f" (the random control found {counted(control, 'feasible candidate')}; a "
                                   "control's candidates never become finalists)" if control else "")
                + f". The closest candidate (trial {near.number} of {near.sampler}, "
                f"{'-'.join(map(str, near.spec['channels']))} {near.spec['block']}) measured "
                f"{near.size_bytes / 1e6:.4f} MB and {near.latency_ms:.3f} ms"
                + (f" with {near.proxy_accuracy:.2f} % proxy accuracy" if near.trained else " (not trained)")
                + ": " + "; ".join(near.reasons) + ". Loosen the budgets or widen the search space.")]
        shown = [*views(self.finalist_table(), FINALIST_ACCURACY, FINALIST_COST, FINALIST_ARCHITECTURE),
                 *fold_views([m.record for m in self.nas.models] + [q.record for q in self.nas.quantized if q.record])]
        if any(q.error for q in self.nas.quantized):
            shown.append(Markdown(failure_note(self.nas.quantized)))
        best, deployed = self.nas.best.record, deployed_record(self.nas.best, self.nas.quantized)
        shown.append(Markdown(
            f"Published: **{self.nas.best.name}** ({best['accuracy']:.2f} % test accuracy in FP32, "
            f"{best['size_bytes'] / 1e3:.1f} kB, {best['latency_ms']:.3f} ms"
            + ("" if deployed is None else f"; deployed with int{best['nas']['weight_bits']} weights: "
               f"{deployed['accuracy']:.2f} %, {deployed['size_bytes'] / 1e3:.1f} kB")
            + ") as " + ", ".join(f"`{p.relative_to(self.data.layout.root)}`" for p in self.nas.best_files.values()) + "."))
        return shown

    def distillation_outcome(self) -> list:
        """What distillation did to the finalists, to display: the teacher and the verdicts (Markdown) and each
        distilled finalist beside the same architecture trained from labels alone (chapter 2's table); or that
        the search ran without it."""
        if not self.nas.students:
            return [Markdown("This search ran without distillation (`nas_distill` is off, or no finalist met the "
                             "budgets).")]
        values = distillation_values(self.nas.students, self.nas.finalists, self.settings.accuracy_margin)
        return [Markdown(f"Teacher: {values['kd_teachers']} (temperature {values['kd_temperature']:g}, soft-target "
                         f"weight {values['kd_weight']:g}). Distilled against labels alone, over "
                         f"{values['kd_students_counted']}: {values['kd_verdicts']}."),
                view(distillation_table(self.distillation_pairs()))]

    def dominance(self) -> tuple[str, pd.DataFrame, dict]:
        """Does a finalist dominate a baseline? The answer (Markdown, each sentence stated through ``claims``), the
        table of every pair, and the glued list of dominated baselines."""
        table = dominance_table(self.nas.models, self.baselines, self.data, self.settings)
        wins = table[table["dominates"]] if len(table) else table
        sentences = [self.claims.state(f"{row['NAS model']} dominates {row['baseline']}: size "
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

    def check(self, dominance: pd.DataFrame) -> str:
        """Chapter 4's invariants (an InvariantError names the first that fails); returns a one-line summary."""
        settings, data = self.settings, self.data
        search, failures = settings.search, failure_note(self.nas.quantized)
        saved = json.loads(self.nas.history_path.read_text())
        entries = self.nas.entries()
        invariant(len(saved["trials"]) == len(entries) == 2 * search.trials * len(settings.searches), len(entries))
        invariant(sorted({h.seed for h in entries}) == sorted(settings.searches), "every search seed ran")
        invariant(all(h.trained == all(v <= 0 for k, v in h.violations.items() if k != "accuracy")
                   for h in entries), "a candidate over a hard budget was trained")
        invariant(all(h.feasible == (not h.reasons) for h in entries),
                  "a candidate is feasible exactly when nothing is out of budget")
        invariant(bool(self.nas.finalists) == bool(self.nas.best_files) and all(p.is_file() for p in self.nas.best_files.values()),
                  "finalists exist exactly when the best model's files were published")
        # each finalist's exported ONNX computes what its PyTorch model computes; every INT8 failure is in the prose
        invariant(all(f.record["onnx_max_abs_difference"] < 1e-4 for f in self.nas.models),
                  "every finalist's ONNX export computes what its PyTorch model computes")
        # each finalist is deployed at the bit width the search chose for it; a distilled one repeats its finalist
        invariant(all(m.record["nas"]["weight_bits"] in search.weight_bits for m in self.nas.models),
                  "every finalist keeps a searched bit width")
        invariant(all(deployed_record(m, self.nas.quantized) is not None
                      or f"{m.name} with" in failures for m in self.nas.models),
                  "every finalist has its deployed variant, or its failure is told")
        invariant(len(self.nas.students) == (len(self.nas.finalists) if settings.nas_distill else 0),
                  "one distilled twin per finalist when the search distils, none otherwise")
        check_students(self.nas.students, self.nas.finalists)
        invariant(all(f"{q.model} with {q.method}" in failures for q in self.nas.quantized if q.error), failures)
        invariant((data.layout.reports / "nas_evolution.png").is_file(), "the search's evolution figure was written")
        # a finalist that dominates a baseline is not resolvably worse on any count
        wins = dominance[dominance["dominates"]] if len(dominance) else dominance
        invariant(all(not row["accuracy: NAS - baseline"].startswith(("worse", "undetermined", "no better"))
                   and row["latency: paired test"] != "baseline faster" for _, row in wins.iterrows()), 'all(not row["accuracy: NAS - baseline"].startswith(("worse", "undetermined", "no better")) and row["latency: paired test"] != "baseline faster" for _, row in wins.iterrows())')
        return f"all NAS invariants hold ({len(entries)} trials in {self.nas.history_path.name})"


def figures(nas: NASResult, baselines: list[BaselineResult], settings: Settings, layout) -> dict[str, object]:
    """Chapter 4's figures, drawn once and written under ``reports/``: the search's evolution
    (``nas_evolution.png``) and every candidate and baseline against the budgets (``nas_feasibility.png``)."""
    return {
        "nas_evolution": plots.save_figure(plots.plot_nas_evolution(nas.search.history, settings.search.population,
                                                                    nas.fronts), layout.reports / "nas_evolution.png"),
        "nas_feasibility": plots.save_figure(plots.plot_constraint_feasibility(
            nas_feasibility_points(nas, baselines, layout.cache), nas.search.budgets),
            layout.reports / "nas_feasibility.png")}


def run(namespace: dict) -> SearchChapter:
    """Chapter 4's setup: its settings from ``namespace`` (invalid budgets or search settings stop here, before
    any work), the search run (or resumed, or loaded), its figures written, the values glued."""
    settings = Settings.of_chapter("04", namespace)
    pipeline = Pipeline(settings)
    chapter = SearchChapter.of(settings, pipeline.data, pipeline.baselines, pipeline.nas)
    glue_all(chapter.values())
    return chapter


def describe_spec(spec: dict, n_mels: int) -> str:
    """A one-line description of an architecture spec."""
    head = f"fc {spec['fc_size']}" if spec["fc_size"] else "no hidden fc"
    return (f"{spec['block']} {'-'.join(map(str, spec['channels']))}, k{spec['kernel_size']}, {spec['pool']} pool, "
            f"{head}, dropout {spec['dropout']:g}, {n_mels} mels")


def dominance_table(finalists: list[BaselineResult], baselines: list[BaselineResult], data: PreparedData,
                    settings: Settings) -> pd.DataFrame:
    """For each (finalist, baseline) pair: the paired accuracy test, the sizes, the interleaved latencies and their
    test, and whether the finalist dominates the baseline (:func:`edge_audio.steps.search.dominance`)."""
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
