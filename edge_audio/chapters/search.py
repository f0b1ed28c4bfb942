"""Chapter 4, the architecture search: the values its prose quotes, its sentences, tables and figures, and its
invariants, over :mod:`edge_audio.steps.search`'s results."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
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
from ..stats import interval_text, seeded_difference
from ..steps.baselines import BaselineResult
from ..steps.data import PreparedData
from ..steps.search import NASResult, SupernetResult, deployed_record, dominance, nas_feasibility_points
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
    """Chapter 4's proxy search: the settings, data and baselines, the search's results, its figures (written under
    ``reports/``), and the claims its sentences make."""

    settings: Settings
    data: PreparedData
    baselines: list[BaselineResult]
    nas: NASResult
    figures: dict[str, object]
    claims: Claims = field(default_factory=Claims)

    @classmethod
    def of(cls, settings: Settings, data: PreparedData, baselines: list[BaselineResult], nas: NASResult,
           claims: Claims | None = None) -> "SearchChapter":
        """The proxy search's part of the chapter, its figures drawn and written (:func:`figures`)."""
        return cls(settings, data, baselines, nas, figures(nas, baselines, settings, data.layout), claims or Claims())

    def deployed_finalists(self) -> list[dict]:
        """The finalists as deployed (their full-integer TFLite records at the searched bit width), as choices
        report them."""
        return [as_chosen(record) for record in (deployed_record(m, self.nas.quantized) for m in self.nas.models)
                if record is not None]

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
            **self.dominance[2],
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
        verdicts = search_comparison(self.nas.search.comparison, "best feasible proxy accuracy", self.claims)
        untrained = sum(not h.trained for h in self.nas.entries())
        return (verdicts + f" Across all searches {counted(untrained, 'candidate')} broke the size, latency "
                "or RAM budget and were never trained.")

    def outcome(self) -> list:
        """What the search produced, to display: the finalists' tables, any INT8 failure and the published files;
        or, when nothing met the budgets, the closest candidate and how far it missed (Markdown)."""
        if self.settings.top_k == 0:
            return [Markdown("This run keeps the proxy search as the comparison only (`top_k` 0): no candidate of "
                             "it was retrained, and nothing was published as `models/nas_best_model.*`.")]
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

    def finalists(self) -> list:
        """The proxy search's finalists, to display: what :meth:`outcome` shows, then (when there are finalists)
        what distillation did to them and whether one dominates a baseline, with the table of every pair."""
        shown = self.outcome()
        if self.nas.finalists:
            answer, table, _ = self.dominance
            shown += [Markdown("**With a teacher.** Each finalist trained by distillation beside the same architecture "
                               "trained from labels alone, on the same test clips at the margin."),
                      *self.distillation_outcome(),
                      Markdown("**Against the baselines** (FP32, as trained; the rule above). " + answer)]
            shown += [view(table.set_index(["NAS model", "baseline"]))] if len(table) else []
        return shown

    @cached_property
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

    def check(self) -> str:
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
        invariant(len({f.record["nas"]["rank"] for f in self.nas.finalists}) <= search.top_k, "at most top_k finalists")
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
        dominance = self.dominance[1]
        wins = dominance[dominance["dominates"]] if len(dominance) else dominance
        invariant(all(not row["accuracy: NAS - baseline"].startswith(("worse", "undetermined", "no better"))
                   and row["latency: paired test"] != "baseline faster" for _, row in wins.iterrows()), 'all(not row["accuracy: NAS - baseline"].startswith(("worse", "undetermined", "no better")) and row["latency: paired test"] != "baseline faster" for _, row in wins.iterrows())')
        return f"all NAS invariants hold ({len(entries)} trials in {self.nas.history_path.name})"


def figures(nas: NASResult, baselines: list[BaselineResult], settings: Settings, layout) -> dict[str, object]:
    """The proxy search's figures, drawn once and written under ``reports/``: its evolution (``nas_evolution.png``)
    and every candidate and baseline against the budgets (``nas_feasibility.png``)."""
    return {
        "nas_evolution": plots.save_figure(plots.plot_nas_evolution(nas.search.history, settings.search.population,
                                                                    nas.fronts), layout.reports / "nas_evolution.png"),
        "nas_feasibility": plots.save_figure(plots.plot_constraint_feasibility(
            nas_feasibility_points(nas, baselines, layout.cache), nas.search.budgets),
            layout.reports / "nas_feasibility.png")}


@dataclass
class Chapter4:
    """Chapter 4 as its notebook reads it: the supernet search and the proxy search, one set of claims."""

    settings: Settings
    supernet: "SupernetView"
    proxy: SearchChapter
    claims: Claims

    def check(self) -> str:
        """Both searches' invariants (an InvariantError names the first that fails); a line for each."""
        return self.supernet.check() + "\n" + self.proxy.check()


def run(namespace: dict) -> Chapter4:
    """Chapter 4's setup: its settings from ``namespace`` (invalid budgets or search settings stop here, before
    any work), both searches run (or resumed, or loaded), their figures written, the values glued."""
    settings = Settings.of_chapter("04", namespace)
    pipeline = Pipeline(settings)
    proxy = SearchChapter.of(settings, pipeline.data, pipeline.baselines, pipeline.nas)
    supernet = SupernetView.of(settings, pipeline.supernet, proxy.claims, proxy.deployed_finalists(),
                               pipeline.data.layout)
    glue_all(proxy.values() | supernet.values())
    return Chapter4(settings, supernet, proxy, proxy.claims)


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


#: The views of :meth:`SupernetView.finalist_table`.
SUPERNET_FINALISTS = ("A finalist per deployment profile: structural bounds, measured costs, deployed accuracy",
                      ("Sub-network", "Supernet score (%)", "Flash kB (bound / file)", "RAM kB (bound / arena)",
                       "Latency (ms)", "Deployed test acc (%)"))


@dataclass
class SupernetView:
    """What chapter 4 shows of the supernet search (:class:`~edge_audio.steps.search.SupernetResult`)."""

    settings: Settings
    result: SupernetResult
    claims: Claims
    proxy: list[dict]  # the proxy search's finalists as deployed (their full-integer TFLite records), if any
    figures: dict[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings, result: SupernetResult, claims: Claims, proxy: list[dict],
           layout) -> "SupernetView":
        """The view with its figures drawn and written under ``reports/``: the rank fidelity
        (``supernet_rank_fidelity.png``) and accuracy against deployed bytes (``supernet_learning_curve.png``)."""
        view = cls(settings, result, claims, proxy)
        fidelity = result.fidelity
        view.figures = {
            "supernet_rank_fidelity": plots.save_figure(plots.plot_rank_fidelity(fidelity["rows"], fidelity),
                                                        layout.reports / "supernet_rank_fidelity.png"),
            "supernet_learning_curve": plots.save_figure(plots.plot_learning_curve(
                *view.learning_curve(), capacity=(("size_bytes", "deployed bytes: full-integer TFLite file (log "
                                                                   "scale)"),)),
                layout.reports / "supernet_learning_curve.png")}
        return view

    def values(self) -> dict:
        """The values the supernet sections' prose quotes."""
        result, settings = self.result, self.settings
        outcome, fidelity = result.outcome, result.fidelity
        entries = [h for history in outcome.history.values() for h in history]
        scored = [h.seconds for h in entries if h.scored]
        space = result.search.space
        size = len(space.pool) * len(space.kernel_size) * len(space.fc_size) * sum(
            int(np.prod([len(w) for w in space.channels[:depth]])) for depth in space.stages)
        low, high = fidelity["ci95"] if fidelity["tau"] is not None else (None, None)
        return {
            "sn_epochs": int(settings.supernet_epochs), "sn_train_seconds": float(result.supernet["seconds"]),
            "sn_evaluations": int(settings.supernet_evaluations), "sn_seeds": ", ".join(map(str, outcome.summaries)),
            "sn_all_evaluations": len(entries), "sn_distinct": len({h.key for h in entries}),
            "sn_space_size": f"{size:,}", "sn_search_seconds": float(outcome.seconds),
            "sn_score_ms": round(1000 * float(np.median(scored)), 1) if scored else 0.0,
            "sn_calibration": int(result.search.scorer.n_calibration),
            "sn_winner": self._winner(),
            "sn_tau": "undefined" if fidelity["tau"] is None else f"{fidelity['tau']:+.2f}",
            "sn_tau_interval": "none" if low is None else f"{low:+.2f} to {high:+.2f}",
            "sn_fidelity_n": int(fidelity["n"]), "sn_trust": self.trust(),
            "sn_profiles": ", ".join(f.profile for f in result.finalists) or "none",
            "sn_dominated": self.dominance[2],
        }

    def _winner(self) -> str:
        winner = self.result.outcome.winner
        if winner == "tie":
            return ("neither, resolvably, over the seeds" if len(self.result.outcome.summaries) > 1 else
                    "no verdict (one seed)")
        return {"nsga2": "NSGA-II", "random": "random search"}[winner] + ", resolvably, over the seeds"

    def trust(self) -> str:
        """Whether the supernet's scores can be trusted to rank sub-networks, from the interval of Kendall's tau."""
        fidelity = self.result.fidelity
        if fidelity["tau"] is None:
            return "cannot be trusted to rank: every score tied"
        low, _ = fidelity["ci95"]
        sentence = ("ranks sub-networks better than chance (the interval of tau lies above zero)" if low > 0 else
                    "cannot be trusted to rank sub-networks: the interval of tau reaches zero or below, so its "
                    "picks may be no better than random ones of the same cost")
        return self.claims.state(f"The supernet {sentence}", low > 0, None, "Kendall's tau-b, Fisher-z interval")

    def summary_table(self) -> pd.DataFrame:
        """Per seed and search: sub-networks evaluated, distinct, scored (met the hardware budgets), feasible, the
        best feasible supernet score and the hypervolume."""
        return pd.DataFrame([{"seed": seed, "search": sampler, **{k: v for k, v in row.items() if k != "seconds"}}
                             for seed, by_sampler in self.result.outcome.summaries.items()
                             for sampler, row in by_sampler.items()]).set_index(["seed", "search"]).rename(columns={
            "evaluations": "evaluated", "scored": "scored (met the hardware budgets)",
            "best_feasible_accuracy": "best feasible score (%)"})

    def verdict(self) -> str:
        """NSGA-II against random search over the seeds, on hypervolume and best feasible score."""
        return search_comparison(self.result.outcome.comparison, "best feasible supernet score", self.claims)

    def finalist_table(self) -> pd.DataFrame:
        """One row per deployment profile with a finalist (shown in :data:`SUPERNET_FINALISTS`)."""
        rows = []
        for f in self.result.finalists:
            deployed = f.deployed.record
            rows.append({
                "Profile": f.profile, "Sub-network": describe_arch(f.pick.arch) + f" ({f.model.name})",
                "Supernet score (%)": f.pick.proxy_accuracy,
                "Flash kB (bound / file)": f"{f.pick.flash_bytes / 1e3:.1f} / {f.measured['flash_bytes'] / 1e3:.1f}",
                "RAM kB (bound / arena)": f"{f.pick.ram_bytes / 1e3:.1f} / {f.measured['peak_ram_bytes'] / 1e3:.1f}",
                "Latency (ms)": (f"{f.device['latency_ms']:.1f} (device, estimated)" if f.device["latency_ms"]
                                 is not None else f"{f.measured['latency_ms']:.3f} (this CPU)"),
                "Deployed test acc (%)": "conversion failed" if deployed is None else
                f"{deployed['accuracy']:.2f} ({interval_text(deployed['test'])})"})
        return pd.DataFrame(rows).set_index("Profile") if rows else pd.DataFrame()

    def unmet(self) -> str:
        """The profiles no sub-network could serve, and why (empty when every one has a finalist)."""
        return " ".join(f"**{name}** has no finalist: {why}." for name, why in self.result.unmet.items())

    def deployed_records(self) -> tuple[list[dict], list[dict]]:
        """The full-integer TFLite variants of the baselines and of the finalists (as choices report them)."""
        baselines = [as_chosen(q.record) for q in self.result.baselines if q.record is not None]
        finalists = list({f.model.name: as_chosen(f.deployed.record) for f in self.result.finalists
                          if f.deployed.record is not None}.values())
        return baselines, finalists

    def learning_curve(self) -> tuple[list[dict], list]:
        """Deployed accuracy against deployed bytes: the baselines', the finalists' and the proxy search's
        finalists' full-integer TFLite files."""
        baselines, finalists = self.deployed_records()
        return learning_curve(baselines + finalists + self.proxy, self.settings.accuracy_margin)

    @cached_property
    def dominance(self) -> tuple[str, pd.DataFrame, str]:
        """Does a finalist match or beat a hand-designed baseline at its size on the device? Each finalist against
        each baseline, both as deployed (full-integer TFLite): it *dominates* when its file is no larger, it is
        shown no worse than the baseline by more than the margin (over seeds, on the same test clips), and it is
        smaller or resolvably more accurate. Returns the answer (Markdown), the table of every pair, and the
        dominated baselines (glued)."""
        baselines, finalists = self.deployed_records()
        rows, wins = [], []
        for f in finalists:
            for b in baselines:
                d = seeded_difference(f["test"], b["test"], self.settings.accuracy_margin)
                dominates = (f["size_bytes"] <= b["size_bytes"] and d["a_no_worse"]
                             and (f["size_bytes"] < b["size_bytes"] or d["verdict"] == "better"))
                rows.append({"Finalist": f["model"], "Baseline": b["model"],
                             "Deployed kB (finalist / baseline)": f"{f['size_bytes'] / 1e3:.1f} / "
                                                                  f"{b['size_bytes'] / 1e3:.1f}",
                             "Test acc % (finalist / baseline)": f"{f['accuracy']:.2f} / {b['accuracy']:.2f}",
                             "Finalist - baseline": accuracy_verdict(d), "Dominates": "yes" if dominates else "no"})
                if dominates:
                    wins.append(self.claims.state(
                        f"{f['model']} dominates {b['model']} as deployed: {f['size_bytes'] / 1e3:.1f} kB against "
                        f"{b['size_bytes'] / 1e3:.1f} kB, accuracy finalist - baseline {accuracy_verdict(d)}",
                        True, None, "exact bytes, the difference over seeds at the margin", shown_within=True))
        answer = ("**Yes**: " + "; ".join(wins) + "." if wins else
                  "**No**: no supernet finalist is, as deployed, no larger than a baseline, shown no worse by more "
                  "than the margin, and smaller or resolvably more accurate" + (" (see the table)." if rows else
                                                                                " (there is no finalist)."))
        dominated = sorted({row["Baseline"] for row in rows if row["Dominates"] == "yes"})
        return (answer, pd.DataFrame(rows).set_index(["Finalist", "Baseline"]) if rows else pd.DataFrame(),
                ", ".join(dominated) or "none")

    def equal_compute_table(self) -> pd.DataFrame:
        """Per seed: the seconds both searches had, what each evaluated in them, and each pick trained alone."""
        rows = []
        for seed, row in self.result.equal_compute["seeds"].items():
            rows.append({"seed": seed, "Seconds each": row["seconds"],
                         "Supernet: evaluated": row["supernet_evaluations"], "Proxy: trained": row["proxy_trials"],
                         "Supernet pick, alone (%)": row["supernet"], "Proxy pick (%)": row["proxy"],
                         "Picks": f"{describe_arch(row['supernet_pick'])} / {describe_arch(row['proxy_pick'])}"})
        return pd.DataFrame(rows).set_index("seed")

    def equal_compute_verdict(self) -> str:
        """The supernet search against the proxy search at equal compute, over the seeds."""
        cmp = self.result.equal_compute["comparison"]
        spread = (f"picks trained alone: {cmp['mean_a']:.2f} ± {cmp['std_a']:.2g} % (supernet search) against "
                  f"{cmp['mean_b']:.2f} ± {cmp['std_b']:.2g} % (proxy search) over {counted(cmp['seeds'], 'seed')}")
        return comparison_sentence(cmp, spread, ("the supernet search", "the proxy search"), self.claims)

    def check(self) -> str:
        """The supernet search's invariants; returns a one-line summary."""
        result, settings = self.result, self.settings
        entries = [h for history in result.outcome.history.values() for h in history]
        invariant(len(entries) == 2 * settings.supernet_evaluations * len(settings.searches), len(entries))
        invariant(all(h.scored == result.search.budgets.hardware_met(h.violations) for h in entries),
                  "a sub-network over a hard budget was scored")
        invariant(all(h.feasible == (not h.reasons) for h in entries),
                  "a sub-network is feasible exactly when nothing is out of budget")
        invariant(result.fidelity["n"] == len(result.fidelity["rows"]) >= 5, "rank fidelity over at least 5")
        for f in result.finalists:
            profile = settings.deployment_profiles.get(f.profile)
            budgets = settings.budgets if profile is None else settings.budgets.for_device(profile)
            invariant(not budgets.reasons(f.measured["size_bytes"], f.measured["latency_ms"], f.pick.proxy_accuracy,
                                          f.device["ram_bytes"], f.device["flash_bytes"], f.device["latency_ms"]),
                      f"{f.profile}'s finalist meets its profile as measured")
            invariant(f.pick.flash_bytes <= f.measured["flash_bytes"] and f.pick.ram_bytes
                      <= f.measured["peak_ram_bytes"], "the structural costs are lower bounds of the measured ones")
        invariant(sorted([f.profile for f in result.finalists] + list(result.unmet))
                  == sorted(settings.nas_profiles or ["run budgets"]), "every profile has a finalist or a reason")
        return f"all supernet invariants hold ({len(entries)} sub-networks evaluated)"


def describe_arch(arch: dict | None) -> str:
    """A sub-network (or a spec) in a few characters, e.g. ``16-32-48 k3 fc32 max``; a dash for none."""
    if arch is None:
        return "-"
    return (f"{'-'.join(map(str, arch['channels']))} k{arch['kernel_size']}"
            + (f" fc{arch['fc_size']}" if arch["fc_size"] else "") + f" {arch['pool']}")


def search_comparison(comparison: dict, best_label: str, claims: Claims) -> str:
    """NSGA-II against random search over the seeds on hypervolume and on ``best_label``, each sentence stated
    through ``claims`` from the paired t-test."""
    sentences = []
    for score, label in (("hypervolume", "hypervolume"), ("best_feasible_accuracy", best_label)):
        cmp = comparison[score]
        spread = (f"{label} {cmp['mean_a']:.4g} ± {cmp['std_a']:.2g} (NSGA-II) against {cmp['mean_b']:.4g} ± "
                  f"{cmp['std_b']:.2g} (random) over {counted(cmp['seeds'], 'seed')}")
        sentences.append(comparison_sentence(cmp, spread, ("NSGA-II", "random search"), claims))
    return " ".join(sentences)


def comparison_sentence(cmp: dict, spread: str, names: tuple[str, str], claims: Claims) -> str:
    """One sentence on a comparison over seeds (:func:`edge_audio.stats.seeds_comparison` of ``names[0]`` against
    ``names[1]``), stated through ``claims``: no verdict with one seed, a tie the seeds cannot tell, or a winner."""
    if cmp["p_value"] is None:
        sentence = f"On {spread}, there is no verdict: one seed cannot tell a method from luck"
    elif cmp["better"] is None:
        sentence = (f"On {spread}, the seeds cannot tell {names[0]} from {names[1]} (paired t-test p = "
                    f"{cmp['p_value']:.3g})")
    else:
        winner, loser = names if cmp["better"] == "a" else names[::-1]
        sentence = f"On {spread}, {winner} won over {loser} (paired t-test p = {cmp['p_value']:.3g})"
    return claims.state(sentence, cmp["better"] is not None, cmp["p_value"], cmp["test"]) + "."
