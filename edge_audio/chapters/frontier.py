"""Chapter 5, the frontier: the answer per deployment target, the values its prose and the book's introduction
quote, its tables, its figures and reports, and its invariants, over :mod:`edge_audio.steps.frontier`'s result."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import plots
from ..claims import Claims
from ..demo import runs_in_page
from ..device_latency import estimated_latency_ms
from ..errors import invariant
from ..firmware.boards import BOARDS
from ..frontier import FrontierReport, feasibility_points
from ..glue import counted, glue_all
from ..paths import HEADLINE_FILES
from ..pipeline import Pipeline
from ..settings import Settings
from ..stats import interval_text
from ..steps.data import PreparedData
from ..steps.frontier import FrontierResult
from ..storage import atomic_write_text
from ..tables import accuracy_verdict, markdown, readable
from ..targets import DeviceProfile

#: The device answers the chapter (and the introduction) gives: glue prefix -> deployment profile. A small and a
#: large Cortex-M board, so the reader sees what the smaller memory costs, and an Ethos-U55 NPU beside them.
MICROCONTROLLER_ANSWERS = {"fr_mcu_small": "cortex_m4_small", "fr_mcu": "cortex_m4", "fr_npu": "ethos_u55_128"}
#: One Cortex-M4 board with three inference stacks' constants: how far the latency estimate moves with the stack.
M4_STACKS = ("cortex_m4_xcube_ai", "cortex_m4", "cortex_m4_tflm_reference")
#: Profiles the headline leaves to the profile table: another stack on the cortex_m4 board, and the larger NPU
#: configurations beside ethos_u55_128 (one row per kind of device; the table has them all).
NOT_IN_HEADLINE = ("cortex_m4_xcube_ai", "cortex_m4_tflm_reference", "ethos_u55_256", "ethos_u65_256")



@dataclass
class FrontierChapter:
    """Chapter 5's settings and data, the frontier, the figures and reports written, and the claims its sentences
    make."""

    settings: Settings
    data: PreparedData
    frontier: FrontierResult
    figures: dict[str, object]  # name -> the figure written to paths[name]
    paths: dict[str, Path]  # every report written under reports/
    claims: Claims = field(default_factory=Claims)

    @classmethod
    def of(cls, settings: Settings, data: PreparedData, frontier: FrontierResult) -> "FrontierChapter":
        """The chapter over a frontier, its figures and reports written (:func:`write_reports`)."""
        return cls(settings, data, frontier, *write_reports(frontier, data.layout))

    @property
    def report(self) -> FrontierReport:
        return self.frontier.report

    @property
    def records(self) -> list[dict]:
        return self.frontier.records

    def test_records(self) -> list[dict]:
        """The records whose accuracy was measured on test folds (not the search's proxy candidates)."""
        return self.frontier.test_records()

    def headline_table(self) -> pd.DataFrame:
        return headline_table(self.report)

    def fronts_table(self) -> pd.DataFrame:
        """One row per cost axis: how many models are on its front, its hypervolume, its knee and the front."""
        report = self.report
        return pd.DataFrame([{"cost": axis, "models on the front": len(front), "hypervolume": report.hypervolumes[axis],
                              "knee": report.knees[axis], "front (cheapest first)": ", ".join(front["label"])}
                             for axis, front in report.fronts.items()]).set_index("cost")

    def values(self) -> dict:
        """Every value chapter 5 and the book's introduction quote, as plain Python values; each sentence about a
        difference is made by the chapter's claims from its paired test."""
        data, settings, claims = self.data, self.settings, self.claims
        report, budgets = self.report, settings.budgets
        tested = report.evaluated.set_index("label")
        best = tested.loc[report.best]
        within = report.within_budgets()
        against_best = report.verdicts_against(report.best)
        shown_within = sum(n for v, n in against_best.items() if v in ("within the margin", "no worse"))
        values = {
            "fr_max_size": float(budgets.max_size_mb), "fr_max_latency": float(budgets.max_latency_ms),
            "fr_min_accuracy": float(budgets.min_accuracy),
            "fr_ram": "no peak-RAM limit" if budgets.max_ram_kb is None else f"peak RAM ≤ {budgets.max_ram_kb:g} kB",
            "fr_flash": "no flash limit" if budgets.max_flash_kb is None else f"flash ≤ {budgets.max_flash_kb:g} kB",
            "fr_target": "no target device" if settings.target_device is None else
                         f"tightened by the target device {settings.target_device}",
            "fr_n_within": int(len(within)), "fr_n_models": int(len(report.evaluated)),
            "fr_best_model": report.best, "fr_best_acc": round(float(best["accuracy"]), 2),
            "fr_best_interval": interval_text(report.evaluations[report.best]), "fr_best_n": int(best["n"]),
            "fr_protocol_kind": "all k folds' test clips pooled" if best["protocol"] == "kfold"
                                else "one held-out test fold",
            "fr_margin": float(report.margin), "fr_margin_points": counted(float(report.margin), "point"),
            "fr_n_shown_within": shown_within, "fr_shown_within_counted": counted(shown_within, "other variant"),
            "fr_n_undetermined": against_best.get("undetermined", 0),
            "fr_n_worse": against_best.get("worse", 0),
            "fr_best_size": round(float(best["size_bytes"]) / 1e3, 1),
            "fr_best_latency": round(float(best["latency_ms"]), 3),
            "fr_knee_size": report.knees["size"],
        }
        for name, key in (("cortex_m4", "fr_m4_cycles"), ("cortex_m7", "fr_m7_cycles")):
            values[key] = getattr(report.profiles.get(name), "cycles_per_mac", None) or "n/a"
        values["fr_m4_spread"] = self._stack_spread()
        values.update(pick_answer(report, within["label"].iloc[0] if len(within) else None, "fr_budget", tested, claims))
        for prefix, profile in MICROCONTROLLER_ANSWERS.items():
            mcu = report.profile_best["best model (validation)"].get(profile, "none fits")
            values[f"{prefix}_profile"] = (report.profiles[profile].describe() if profile in report.profiles
                                           else f"no {profile} profile given")
            values.update(pick_answer(report, None if mcu == "none fits" else mcu, prefix, tested, claims))
            values[f"{prefix}_memory"] = self._device_memory(mcu, profile)
        # the setup, for the book's introduction
        reference = self.test_records()[0]
        config = data.feature_config
        values.update({
            "fr_dataset": f"{data.dataset.name} ({len(data.dataset)} clips, {len(data.dataset.folds)} folds, "
                          f"{len(data.dataset.class_names)} classes)",
            "fr_data_note": (
                f"These numbers come from synthetic data: the set the embedded generator {data.synth.generator} "
                "makes in UrbanSound8K's layout, not real recordings. They show how the method behaves and how the "
                "models compare on it, not how they do on street sound (the last section below says how to run "
                "the book on real data)." if data.synth is not None
                else f"These numbers come from {data.dataset.name}: the dataset's own recordings."),
            "fr_protocol": settings.protocol.describe(data.dataset.folds),
            "fr_features": f"{config.n_mels} log-mel bands, {config.sample_rate} Hz, {config.duration:g} s clips, "
                           f"{config.n_fft}-point FFT, hop {config.hop_length}",
            "fr_machine": f"{reference['machine']['cpu']}, {reference['machine']['cores']} cores",
            "fr_threads": int(reference["threads"]),
            "fr_context": data.context(settings)["key"],
        })
        return values

    def _stack_spread(self) -> str:
        """The Cortex-M4 pick's latency estimated with each stack's constant on the same board: the estimate's
        spread between stacks of one core."""
        report = self.report
        stacks = [name for name in M4_STACKS if name in report.profiles]
        pick = report.profile_best["best model (validation)"].get("cortex_m4", "none fits")
        if len(stacks) < 2 or pick == "none fits":
            return "not available (no Cortex-M4 pick, or fewer than two stacks' profiles)"
        row = report.evaluated.set_index("label").loc[pick]
        estimates = {name: estimated_latency_ms(row["macs"], report.profiles[name].clock_hz,
                                                report.profiles[name].cycles_per_mac) for name in stacks}
        low, high = min(estimates, key=estimates.get), max(estimates, key=estimates.get)
        kernels = {name: report.profiles[name].describe().rsplit("(", 1)[-1].rstrip(")") for name in stacks}
        return (f"{pick} is estimated at {estimates[low]:.1f} ms with {kernels[low]} and {estimates[high]:.1f} ms "
                f"with {kernels[high]} on the same board, a factor of {estimates[high] / estimates[low]:.1f}")

    def counted_latency_table(self) -> pd.DataFrame:
        """Each Cortex-M profile's pick that counts on an emulated board: its latency from the generated C's counted
        instructions (the core's cycles-per-instruction range at the profile's clock) beside the MACs estimate."""
        rows = []
        for name, profile in self.report.profiles.items():
            board = getattr(profile, "board", None)
            label = self.report.profile_best["best model (validation)"].get(name, "none fits")
            record = next((r for r in self.records if f"{r['model']} ({r['variant']})" == label), None)
            if board is None or record is None:
                continue
            counted = (record.get("emulated") or {}).get(board)
            estimate = profile.estimate_ms(record)
            if counted is None:
                rows.append({"profile": name, "pick": label, "instructions (M)": "not emulated",
                             "counted (ms)": "-", "MACs estimate (ms)": f"{estimate:,.1f}", "counted / estimate": "-",
                             "bit-exact": "-"})  # the toolchain was missing when the variant was made
                continue
            low, high = (counted["instructions"] * cpi / profile.clock_hz * 1e3 for cpi in BOARDS[board].cpi)
            rows.append({"profile": name, "pick": label, "instructions (M)": f"{counted['instructions'] / 1e6:,.2f}",
                         "counted (ms)": f"{low:,.1f}-{high:,.1f}", "MACs estimate (ms)": f"{estimate:,.1f}",
                         "counted / estimate": f"{low / estimate:.1f}x-{high / estimate:.1f}x",
                         "bit-exact": "yes" if counted["bit_exact"] else "NO"})
        return pd.DataFrame(rows).set_index("profile") if rows else pd.DataFrame()

    def demo_commands(self) -> str:
        """Each host target's pick and the one command, run in the output folder, that writes its browser demo
        (:mod:`edge_audio.demo`), as a Markdown list (a table's long commands do not fit a phone): the pick's own file
        where it is ONNX (what ONNX Runtime Web runs), else its model's raw-audio export where the run published
        one."""
        lines = []
        tested = self.report.evaluated.set_index("label")
        for name, profile in self.report.profiles.items():
            label = self.report.profile_best["best model (validation)"].get(name, "none fits")
            if profile.kind != DeviceProfile.kind or label == "none fits":
                continue
            artifact, model = tested.at[label, "artifact"], tested.at[label, "model"]
            raw_audio = f"models/{model}_waveform.onnx"
            runs = artifact if runs_in_page(artifact) else (
                raw_audio if (self.data.layout.root / raw_audio).is_file() else None)
            if runs is None:
                lines.append(f"- **{name}**, pick {label}: no ONNX file of it was published (the page runs ONNX)")
            else:
                how = "its own file" if runs == artifact else "its model's raw-audio export"
                lines.append(f"- **{name}**, pick {label} ({how}): `edge-audio demo {runs} demo/{name}`")
        return "\n".join(lines) if lines else "No host target has a pick, so there is no demo to write."

    def _device_memory(self, label: str, profile: str) -> str:
        """What a device profile's pick needs on the device: flash, peak RAM, TFLite Micro's arena, and the
        latency estimated for that profile's device; on an NPU, what Vela compiled and estimated."""
        record = next((r for r in self.records if f"{r['model']} ({r['variant']})" == label), None)
        if record is None:
            return "nothing: no model fits"
        npu = self.report.profiles[profile].npu
        if npu is not None:
            vela = record["npu"][npu]
            return (f"{vela['flash_bytes'] / 1e3:.1f} kB of flash and a {vela['arena_bytes'] / 1e3:.1f} kB tensor "
                    f"arena ({vela['sram_bytes'] / 1e3:.1f} kB of SRAM for the NPU and TensorFlow Lite Micro's "
                    f"persistent section) as Vela {vela['vela']} compiles {record['artifact']['path']} for it ({vela['npu_operators']} "
                    f"operators on the NPU, {vela['cpu_operators']} left to the Cortex-M), and runs in "
                    f"{vela['latency_ms']:.3f} ms at {vela['clock_hz'] / 1e6:g} MHz by Vela's performance model "
                    "(an estimate, not a measurement on a board)")
        text = (f"{record['flash_bytes'] / 1e3:.1f} kB of flash ({record['artifact']['path']}, a full-integer TFLite "
                "model) "
                f"and a {record['peak_ram_bytes'] / 1e3:.1f} kB tensor arena")
        if "firmware" in record.get("memory", {}):
            parts = record["memory"]["firmware"]
            text += (f" (TensorFlow Lite Micro's own: {parts['non_persistent_bytes'] / 1e3:.1f} kB non-persistent, "
                     f"{parts['persistent_bytes'] / 1e3:.1f} kB persistent; and {parts['scratch_bytes'] / 1e3:.1f} "
                     "kB of CMSIS-NN convolution scratch: what edge-audio export allocates)")
        latency, source = (self.report.profile_best.at[profile, column] for column in ("latency (ms)", "latency from"))
        if source == "estimated (MACs)":
            text += f", and runs in an estimated {latency:g} ms there (MACs x cycles per MAC / clock: an estimate)"
        elif source.startswith("counted"):
            text += (f", and runs in at most {latency:g} ms there as generated C ({source}: instructions counted on "
                     "an emulated core, cycles per instruction stated, not measured)")
        return text

    def check(self) -> str:
        """The chapter's invariants (an InvariantError names the first that fails); returns a one-line summary."""
        report = self.report
        for axis, front in report.fronts.items():
            column = report.axes[axis][0]
            labels = list(report.evaluated["label"])
            for label in labels:  # on the front exactly when no other model dominates it (at the margin)
                dominated = any(report.dominates(other, label, axis) for other in labels if other != label)
                invariant((label in set(front["label"])) == (not dominated), (axis, label))
            # a costlier model stays on the front only where no cheaper one is shown no worse than it
            rows = front.set_index("label")
            for cheap, dear in zip(front["label"], front["label"][1:]):
                if rows.at[cheap, column] < rows.at[dear, column]:
                    invariant(not report.compare(cheap, dear)["a_no_worse"], (axis, cheap, dear))
        for path in self.paths.values():
            invariant(os.path.getsize(path) > 0, path)
        # every record of this run's context, and only those, was analysed and placed
        context_key = self.data.context(self.settings)["key"]
        invariant(self.records and all(r["context"]["key"] == context_key and "frontier" in r for r in self.records),
                  "every record of this run's context, and only those, was placed")
        invariant(len(report.table) == len(self.records), "every record was analysed")
        # every pick is the highest validation accuracy among what it picks from
        invariant(report.best == report.by_validation(report.evaluated)["label"].iloc[0],
                  "the best overall is the pick by validation accuracy")
        return f"all frontier invariants hold ({len(report.fronts)} fronts, {len(self.paths)} reports)"


def run(namespace: dict) -> FrontierChapter:
    """Chapter 5's setup: its settings from ``namespace`` (invalid budgets stop here), the frontier over this
    run's records, its figures and reports written, the values glued."""
    settings = Settings.of_chapter("05", namespace)
    settings.budgets  # invalid budgets stop here, before the records are read
    pipeline = Pipeline(settings)
    chapter = FrontierChapter.of(settings, pipeline.data, pipeline.frontier)
    glue_all(chapter.values())
    return chapter


def write_reports(frontier: FrontierResult, layout) -> tuple[dict[str, object], dict[str, Path]]:
    """Draw chapter 5's figures and write them and the headline under ``reports/``: ``pareto_frontier.png``,
    ``constraint_feasibility.png``, the headline figure and table (:data:`edge_audio.paths.HEADLINE_FILES`, which
    the book's introduction shows) beside ``model_comparison.csv``; returns the figures and every report's path."""
    report = frontier.report
    paths = {"pareto_frontier": layout.reports / "pareto_frontier.png",
             "constraint_feasibility": layout.reports / "constraint_feasibility.png",
             "model_comparison": frontier.comparison_path,
             "headline": layout.reports / HEADLINE_FILES[0], "headline_table": layout.reports / HEADLINE_FILES[1]}
    figures = {"pareto_frontier": plots.save_figure(plots.plot_pareto_frontier(report), paths["pareto_frontier"]),
               "constraint_feasibility": plots.save_figure(plots.plot_constraint_feasibility(
                   feasibility_points(report), report.budgets), paths["constraint_feasibility"])}
    headline = headline_table(report)
    figures["headline"] = plots.save_figure(plots.plot_headline(report.evaluated, list(report.fronts["size"]["label"]),
                                                                headline_picks(headline)), paths["headline"])
    atomic_write_text(paths["headline_table"], markdown(headline))
    return figures, paths


def headline_table(report: FrontierReport) -> pd.DataFrame:
    """The answer per deployment target: the best model overall and each profile's pick (by validation
    accuracy; one profile per kind of device, :data:`NOT_IN_HEADLINE`), its test accuracy with its interval,
    what it gives up against the reference, the best model overall (picked on validation accuracy, like
    every pick: no test clip chooses it), on the same test clips (the paired verdict at the margin), its flash and peak RAM on the target (Vela's on an NPU), and its latency (accuracy and
    interval, flash and RAM share a column each, so that the table fits a text column), and its latency on the
    target's own device, with where it comes from (:meth:`edge_audio.targets.DeviceProfile.latency`: Vela's or the MACs
    estimate on a device, this CPU's measurement on a host target)."""
    rows = report.evaluated.set_index("label")
    targets = {"best overall": report.best} | {
        profile: pick for profile, pick in report.profile_best["best model (validation)"].items()
        if pick != "none fits" and profile not in NOT_IN_HEADLINE}
    reference = report.best

    host = DeviceProfile(name="best overall", description="this machine")  # the best overall runs where measured

    def memory(target: str, label: str) -> str:  # on an NPU, what Vela compiled
        costs = report.profiles.get(target, host).costs(rows.loc[label])
        return f"{costs.flash_bytes / 1e3:,.1f} / {costs.ram_bytes / 1e3:,.1f}"

    def latency(target: str, label: str) -> str:  # on the target's own device, and where it comes from
        milliseconds, source = report.profiles.get(target, host).latency(rows.loc[label])
        return f"{readable('Latency (ms)', milliseconds)}, {source}"

    return pd.DataFrame([{
        "Target": target, "Model": label,
        "Test accuracy (%)": f"{rows.at[label, 'accuracy']:.1f} ({interval_text(report.evaluations[label])})",
        "Against the best overall": ("it is the best overall" if label == reference
                                     else accuracy_verdict(report.compare(label, reference))),
        "Flash / peak RAM (kB)": memory(target, label),
        "Latency (ms)": latency(target, label)}
        for target, label in targets.items()]).set_index("Target")

def headline_picks(table: pd.DataFrame) -> dict[str, str]:
    """Each model :func:`headline_table` picks -> the targets it is picked for."""
    picks: dict[str, list[str]] = {}
    for target, label in table["Model"].items():
        picks.setdefault(label, []).append(target)
    return {label: ", ".join(targets) for label, targets in picks.items()}


def pick_answer(report: FrontierReport, label: str | None, prefix: str, tested: pd.DataFrame,
                claims: Claims) -> dict:
    """A pick and, as a sentence made from the paired difference at the margin on the test clips, what choosing
    it gives up against the reference: the best model overall, picked on validation accuracy (a reference
    chosen on the test clips would flatter itself: the most accurate of some 90 variants on those clips)."""
    if label is None:
        return {f"{prefix}_model": "none fits", f"{prefix}_acc": "n/a",
                f"{prefix}_tradeoff": "no evaluated model fits"}
    reference = report.best
    top, best = tested.loc[label], tested.loc[reference]
    if label == reference:
        tradeoff = claims.state("it is the best model overall, the reference, so nothing is given up against "
                                "it", resolved=False, p_value=None, test="the same model", shown_within=True)
    else:
        shrink = float(best["size_bytes"] / top["size_bytes"])  # > 1: the pick is smaller
        tradeoff = (claims.accuracy(label, reference, report.compare(label, reference))
                    + f", in {max(shrink, 1 / shrink):.1f}x {'fewer' if shrink >= 1 else 'more'} bytes")
    return {f"{prefix}_model": label,
            f"{prefix}_acc": f"{top['accuracy']:.2f} %, 95% interval {interval_text(report.evaluations[label])}",
            f"{prefix}_tradeoff": tradeoff}
