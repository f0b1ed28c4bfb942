"""Chapter 3, quantization: the values its prose quotes, its sentences, tables and figures, and its invariants,
over :mod:`edge_audio.steps.quantization`'s results."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import plots
from ..claims import Claims
from ..errors import invariant
from ..glue import counted, glue_all
from ..pipeline import Pipeline
from ..quantize import BIT_WIDTHS, METHODS, full_integer_method, reference_method
from ..records import holds_artifact
from ..results import as_chosen, pick_key
from ..settings import Settings
from ..stats import interval_text, seeded_difference
from ..steps.baselines import BaselineResult
from ..steps.data import PreparedData
from ..steps.quantization import QuantizationResult, deployments, layer_sensitivity_of, qualifies
from ..tables import accuracy_verdict


@dataclass
class QuantizationChapter:
    """Chapter 3's settings, data and baselines, every (model, method)'s result, the raw-audio export, and the
    claims its sentences make."""

    settings: Settings
    data: PreparedData
    baselines: list[BaselineResult]
    results: list[QuantizationResult]
    student_results: list[QuantizationResult]  # the distilled students', compressed for the frontier, not shown here
    deployable: dict
    firmware: dict  # the generated C on the host and the emulated boards (edge_audio.steps.firmware)
    claims: Claims = field(default_factory=Claims)

    @property
    def records(self) -> list[dict]:
        return [r.record for r in self.results if r.record is not None]

    def bit_widths(self) -> list["BitWidth"]:
        return bit_widths(self.results, self.settings.accuracy_margin)

    def values(self) -> dict:
        """Every value the chapter's prose quotes."""
        return {**chapter_values(self.results, self.deployable, self.data, self.settings, self.claims),
                **bit_width_values(self.bit_widths(), self.settings.qat_epochs), **npu_values(self.records),
                **board_values(self.firmware)}

    def figures(self) -> dict[str, object]:
        return report_figures(self.results, self.data.layout, self.bit_widths())

    def recommendations(self) -> pd.DataFrame:
        """The deployment per model (:func:`recommendations`), each speedup stated through the claims."""
        return state_recommendations(self.results, self.claims)

    def export_checks(self) -> pd.DataFrame:
        return export_checks(self.results, self.baselines)

    def sensitivity(self) -> tuple[str, str, list[dict]]:
        """The most sensitive model (:func:`most_sensitive`), why it is the one, and its per-layer sensitivity."""
        name, why = most_sensitive(self.results, self.baselines)
        baseline = next(b for b in self.baselines if b.name == name)
        return name, why, layer_sensitivity_of(baseline, self.data, self.settings)

    def waveform_table(self) -> pd.DataFrame:
        """The raw-audio model's export check, one value per row."""
        return pd.DataFrame({"value": {k: v for k, v in self.deployable.items() if k != "latency"}
                             | {"latency (ms)": self.deployable["latency"]["median_ms"]}})

    def check(self) -> str:
        return check(self.results, self.baselines, recommendations(self.results), self.deployable, self.data)


def run(namespace: dict) -> QuantizationChapter:
    """Chapter 3's setup: its settings from ``namespace``; the baselines and the distilled students compressed
    (or loaded), the raw-audio model exported; the values glued."""
    settings = Settings.of_chapter("03", namespace)
    pipeline = Pipeline(settings)
    chapter = QuantizationChapter(settings, pipeline.data, pipeline.baselines, pipeline.quantization,
                                  pipeline.student_quantization, pipeline.waveform, pipeline.firmware)
    glue_all(chapter.values())
    return chapter


def recommendations(results: list[QuantizationResult]) -> pd.DataFrame:
    """Per model, the variant to deploy (:func:`edge_audio.steps.quantization.deployment`, decided on the
    validation folds) and why; FP32 when no variant qualifies. Reported with its test-fold numbers, which decide
    nothing (under k-fold the deployed split's test fold: :func:`edge_audio.results.as_chosen`)."""
    rows = []
    for model, best in deployments(results).items():
        if best is None:
            rows.append({"model": model, "deploy": "fp32", "why (validation folds)": "no variant is shown no worse "
                         "than FP32 by more than the margin and resolvably faster than FP32 in its own runtime and "
                         "in the fastest", "test accuracy (%)": "", "test: against FP32": "", "speedup": "",
                         "size ratio": ""})
            continue
        reported = as_chosen(best)
        val, test = best["paired"]["val"], reported["paired"]["test"]
        floor = best["against_fastest_fp32"]
        rows.append({"model": model, "deploy": best["variant"],
                     "why (validation folds)": f"{accuracy_verdict(val)}; {best['speedup']:.2f}x faster than its "
                                               f"twin, {1 / floor['ratio']:.2f}x than FP32 in {floor['runtime']}",
                     "test accuracy (%)": f"{reported['accuracy']:.2f} ({interval_text(reported['test'])})",
                     "test: against FP32": accuracy_verdict(test),
                     "speedup": best["speedup"], "size ratio": best["size_ratio"]})
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


def failure_note(results: list[QuantizationResult]) -> str:
    """A sentence for the chapter's prose: every (model, method) that failed and why, or that none did."""
    failed = [r for r in results if r.error]
    if not failed:
        return f"All {len(results)} (model, method) pairs were quantized and evaluated; none failed."
    listed = "; ".join(f"{r.model} with {r.method} ({r.error})" for r in failed)
    return (f"**{len(failed)} of {len(results)} (model, method) pairs failed** and are absent from every table, "
            f"figure and record: {listed}.")


def _machine_sentence(machine: dict) -> str:
    """What the CPU's INT8 instructions mean for ONNX Runtime's kernels and the weights' bit width."""
    isa = ", ".join(machine["isa"]) or "no listed SIMD extension"
    if machine["int8_dot_product"]:
        return (f"This machine ({machine['cpu']}; {isa}) has an INT8 dot-product instruction, so ONNX Runtime's "
                "INT8 kernels use it and weights keep 8 bits.")
    return (f"This machine ({machine['cpu']}; {isa}) has no INT8 dot-product instruction (VNNI, AMX or ARM dot "
            "product): ONNX Runtime's INT8 kernels run on AVX2 multiply-add, and weights are quantized to 7 bits "
            "(reduce_range) to keep its 16-bit intermediate sums from saturating. That choice follows the CPU, "
            "never the data.")


def _deployment_sentences(results: list[QuantizationResult], claims: Claims) -> str:
    """What each model's recommended deployment gives up on the test clips, each sentence made by ``claims`` from
    the paired difference at the margin."""
    records = {(r.record["model"], r.record["variant"]): r.record for r in results if r.record is not None}
    sentences = []
    for model, row in recommendations(results).iterrows():
        if row["deploy"] == "fp32":
            sentences.append(f"{model}: FP32 (no variant qualified)")
            continue
        comparison = as_chosen(records[(model, row["deploy"])])["paired"]["test"]
        sentences.append(claims.accuracy(f"{model} ({row['deploy']})", f"{model} (fp32)", comparison))
    return "; ".join(sentences) if sentences else "none"


def chapter_values(results: list[QuantizationResult], deployable: dict, data: PreparedData,
                   settings: Settings, claims: Claims) -> dict:
    """Every value chapter 3's prose quotes (the sentences on what each deployment gives up stated through
    ``claims``)."""
    records = [r.record for r in results if r.record is not None]
    reference = reference_method().name
    static = [r for r in records if r["method"] == reference]
    partial = [m.name for m in METHODS.values() if m.precision == "int8" and not m.int8_weights]  # some layers only
    pytorch = [r for r in records if r["method"] in partial]
    tflm = [abs(r["memory"]["tflm"]["planner_difference_percent"]) for r in records if r["full_integer_tflite"]]
    verdicts = [r["paired"]["test"]["verdict"] for r in records]
    undetermined = [r["paired"]["test"]["clips_to_decide"] for r in records
                    if r["paired"]["test"]["verdict"] == "undetermined"]
    values = {
        "q_threads": int(settings.latency_threads), "q_runs": int(settings.latency_runs),
        "q_threads_counted": counted(int(settings.latency_threads), "thread"),
        "q_margin_points": counted(float(settings.accuracy_margin), "point"),
        "q_clips": int(records[0]["test"]["n"]) if records else 0,
        "q_protocol": records[0]["protocol"] if records else "none",
        "q_tflm_sentence": (f"Planner - TFLM is their difference, at most {max(tflm):g} % on these models." if tflm
                            else f"Full-integer TFLite: {absent(full_integer_method(8).name)}."),
        "q_margin": float(settings.accuracy_margin),
        "n_acc_within": verdicts.count("within the margin"), "n_acc_loss": verdicts.count("worse"),
        "n_acc_gain": verdicts.count("better"), "n_acc_no_worse": verdicts.count("no worse"),
        "n_acc_no_better": verdicts.count("no better"), "n_acc_undetermined": verdicts.count("undetermined"),
        "q_clips_to_decide": (f"{max(c for c in undetermined if c):,}" if any(undetermined) else
                              "more than the reach of this estimate" if undetermined else "none needed"),
        "n_faster": sum(r["latency_comparison"]["faster"] == "a" for r in records),
        "n_slower": sum(r["latency_comparison"]["faster"] == "b" for r in records), "n_variants": len(records),
        "q_machine": _machine_sentence(records[0]["machine"]),
        "wave_rate": int(data.feature_config.sample_rate),
        "wave_diff": float(f"{deployable['max_abs_logit_difference']:.2e}"),
        "wave_tol": float(deployable["tolerance"]), "wave_agree": "yes" if deployable["predictions_agree"] else "no",
    }
    values["q_deployments"] = _deployment_sentences(results, claims)
    values["static_sentence"] = (
        f"Static INT8 (per-channel) made the models {min(r['size_ratio'] for r in static):.2f}x to "
        f"{max(r['size_ratio'] for r in static):.2f}x smaller than their FP32 ONNX files, at speedups from "
        f"{min(r['speedup'] for r in static):.2f}x to {max(r['speedup'] for r in static):.2f}x single-thread."
        if static else f"Static INT8: {absent(reference)}.")
    values["pytorch_sentence"] = (
        f"PyTorch dynamic quantization changed size by a factor of {max(r['size_ratio'] for r in pytorch):.2f} at "
        "most: it leaves every convolution in FP32." if pytorch else
        f"PyTorch dynamic quantization: {absent(', '.join(partial))}.")
    return values


def absent(method: str) -> str:
    """What a section that needs ``method`` says when the run's methods leave it out (in one clause)."""
    return f"{method} was not among this run's methods (add it with -p methods)"


@dataclass(frozen=True)
class BitWidth:
    """One model's full-integer TFLite variants at one pair of bit widths (weights, activations): post-training
    (``ptq``) and, when it ran, quantization-aware (``qat``), each record paired with FP32 on the test clips, and
    ``qat_against_ptq``, the difference QAT - PTQ on the same clips over seeds (QAT trains again:
    :func:`edge_audio.stats.seeded_difference`)."""

    model: str
    label: str  # the bits of weights and activations, e.g. "w4 a8" (:data:`edge_audio.quantize.BIT_WIDTHS`)
    ptq: dict
    qat: dict | None
    qat_against_ptq: dict | None

    @property
    def ptq_loss(self) -> float:
        """Points PTQ lost against FP32 on the test clips (negative: it gained)."""
        return self.ptq["fp32"]["accuracy"] - self.ptq["accuracy"]

    @property
    def recovered(self) -> float | None:
        """The share of PTQ's loss that QAT won back (1: all of it), or None without QAT or without a loss."""
        if self.qat is None or self.ptq_loss <= 0:
            return None
        return (self.qat["accuracy"] - self.ptq["accuracy"]) / self.ptq_loss


def bit_widths(results: list[QuantizationResult], margin: float) -> list[BitWidth]:
    """Every (model, bit widths) with a post-training full-integer TFLite variant (``tflite_int16x8``,
    ``tflite_int8``, ``tflite_mixed``, ``tflite_int4``), most bits first (:data:`edge_audio.quantize.BIT_WIDTHS`),
    with its quantization-aware twin of the same bit widths (``qat_int8``, ``qat_int4``) when it ran."""
    records = [r.record for r in results if r.record is not None and r.record["full_integer_tflite"]]
    rows = []
    for model in dict.fromkeys(r["model"] for r in records):
        mine = [r for r in records if r["model"] == model]
        for label in BIT_WIDTHS:
            same = [r for r in mine if METHODS[r["method"]].bits == label]
            ptq = next((r for r in same if not METHODS[r["method"]].trains), None)
            qat = next((r for r in same if METHODS[r["method"]].trains), None)
            if ptq is None:
                continue
            rows.append(BitWidth(model, label, ptq, qat,
                                 None if qat is None else seeded_difference(qat["test"], ptq["test"], margin)))
    return rows


def npu_values(records: list[dict]) -> dict:
    """What chapter 3's Ethos-U section quotes: how many full-integer variants Vela compiled, how many run every
    operator on the NPU, the range of the estimated latency on the smallest target, and why the others failed."""
    from ..npu import NPU_TARGETS

    first = next(iter(NPU_TARGETS))
    reports = [r["npu"][first] for r in records if r.get("npu")]
    compiled = [report for report in reports if "error" not in report]
    refused = [r for r in records if r.get("npu") and "error" in r["npu"][first]]
    errors = sorted({r["npu"][first]["error"].split(";")[0] for r in refused})
    methods = ", ".join(dict.fromkeys(r["method"] for r in refused))
    return {"npu_target": first, "npu_description": NPU_TARGETS[first].description,
            "npu_vela": compiled[0]["vela"] if compiled else "not used",
            "npu_compiled": f"{len(compiled)} of {len(reports)}",
            "npu_all_on_npu": counted(sum(report["cpu_operators"] == 0 for report in compiled), "variant"),
            "npu_latency_range": (f"{min(r['latency_ms'] for r in compiled):.3f} to "
                                  f"{max(r['latency_ms'] for r in compiled):.3f} ms" if compiled else "n/a"),
            "npu_failures": f"{counted(len(refused), 'variant')} ({methods}): {'; '.join(errors)}" if refused
                            else "none"}


def bit_width_values(rows: list[BitWidth], qat_epochs: int) -> dict:
    """What chapter 3's *Bits* section quotes: per bit width how many models PTQ makes resolvably less accurate than
    FP32, the widest bit width where that happens, how many of those losses QAT won back by at least half
    (resolvably: QAT better than PTQ), what the extra epochs alone did at 8 bits, and the int4 files' size and RAM
    against int8's."""
    labels = list(dict.fromkeys(row.label for row in rows))
    worse = {label: [row for row in rows if row.label == label and row.ptq["paired"]["test"]["verdict"] == "worse"]
             for label in labels}
    lossy = [row for row in rows if row.ptq["paired"]["test"]["verdict"] == "worse" and row.qat is not None]
    won_back = [row for row in lossy if row.qat_against_ptq["verdict"] == "better" and row.recovered >= 0.5]
    qat8 = [row.qat["paired"]["test"]["verdict"] for row in rows if row.label == "w8 a8" and row.qat is not None]
    qat8_method = next(m.name for m in METHODS.values() if m.trains and m.bits == "w8 a8")
    by_model = {(row.model, row.label): row.ptq for row in rows}
    pairs = [(by_model[(m, "w8 a8")], by_model[(m, "w4 a8")]) for m, label in by_model
             if label == "w4 a8" and (m, "w8 a8") in by_model]
    ratios = [int8["size_bytes"] / int4["size_bytes"] for int8, int4 in pairs if int8["params"] > 50_000]
    return {
        "bits_ptq_worse": "; ".join(f"{label}, {len(worse[label])} of "
                                    f"{counted(sum(r.label == label for r in rows), 'model')}" for label in labels)
                          or "no full-integer TFLite variant ran",
        "bits_first_resolvable": next((label for label in labels if worse[label]), "none of the bit widths run"),
        "qat_lossy": counted(len(lossy), "model"), "qat_won_back": len(won_back),
        "qat8_sentence": (
            f"at 8 bits, where PTQ loses little, {qat8_method} is resolvably better against FP32 for "
            f"{qat8.count('better')} of {counted(len(qat8), 'model')}, "
            + ("so part of what QAT recovers at 4 bits comes from the extra epochs, not from the bit width"
               if "better" in qat8 else "so the data show no gain from the extra epochs alone at 8 bits, and the "
               "4-bit recovery is not explained by further training there")
            if qat8 else f"whether its gain at 4 bits comes from the extra epochs is what {qat8_method} tells at 8 "
            "bits, "
            f"and {absent(qat8_method)}"),
        "int4_min_ratio": round(min(ratios), 2) if ratios else "n/a (no int8 and int4 pair over 50k parameters)",
        "int4_ram_growth": round(max(int4["peak_ram_bytes"] / int8["peak_ram_bytes"] for int8, int4 in pairs), 2)
                           if pairs else "n/a",
        "qat_epochs_counted": counted(qat_epochs, "epoch"),
    }


def report_figures(results: list[QuantizationResult], layout, widths: list[BitWidth]) -> dict[str, object]:
    """Chapter 3's figures, drawn once and written under ``reports/``: every variant against its FP32 twin
    (``quantization_comparison.png``), the latencies (``quantization_latency.png``) and accuracy against weight
    bits (``bit_widths.png``, from :func:`bit_widths`)."""
    records = [r.record for r in results if r.record is not None]
    return {"quantization_comparison": plots.save_figure(plots.plot_quantization_comparison(records),
                                                         layout.reports / "quantization_comparison.png"),
            "quantization_latency": plots.save_figure(plots.plot_latency_bars(records),
                                                      layout.reports / "quantization_latency.png"),
            "bit_widths": plots.save_figure(plots.plot_bit_widths(widths), layout.reports / "bit_widths.png")}


def state_recommendations(results: list[QuantizationResult], claims: Claims) -> pd.DataFrame:
    """:func:`recommendations`, with each recommended variant's speedup over its FP32 twin stated through
    ``claims`` from its paired latency test."""
    records = [r.record for r in results if r.record is not None]
    deploy = recommendations(results)
    for model, row in deploy.iterrows():
        if row["deploy"] != "fp32":
            r = next(r for r in records if r["model"] == model and r["variant"] == row["deploy"])
            lat = r["latency_comparison"]
            claims.state(f"{model} ({row['deploy']}) is faster than its FP32 twin: {r['speedup']:.2f}x, "
                         f"Wilcoxon p = {lat['p_value']:.3g}", lat["faster"] == "a", lat["p_value"], lat["test"])
    return deploy


def export_checks(results: list[QuantizationResult], baselines: list[BaselineResult]) -> pd.DataFrame:
    """Per baseline: how far its ONNX export is from PyTorch, and the operators static INT8 left in float."""
    static = [r.record for r in results if r.record is not None and r.record["method"] == reference_method().name]
    return pd.DataFrame([{
        "model": b.name, "ONNX vs PyTorch, max abs logit difference": b.record["onnx_max_abs_difference"],
        "operators left in float (static INT8)": ", ".join(
            f"{op} x{count}" for r in static if r["model"] == b.name
            for op, count in r["quantization"]["float_operators"].items()),
    } for b in baselines]).set_index("model")


def most_sensitive(results: list[QuantizationResult], baselines: list[BaselineResult]) -> tuple[str, str]:
    """The model the per-layer sensitivity analysis is of, and the sentence that says why: the one whose
    ``ort_static`` variant lost the most validation accuracy against its FP32 twin; without ``ort_static`` among
    the run's methods, the baseline picked by validation accuracy."""
    reference = reference_method().name
    static = [r.record for r in results if r.record is not None and r.record["method"] == reference]
    if static:
        model = max(static, key=lambda r: r["fp32"]["val_accuracy"] - r["val_accuracy"])["model"]
        return model, f"The model whose static INT8 lost the most accuracy on the validation folds is {model}."
    model = max(baselines, key=lambda b: pick_key(b.record)).name
    return model, (f"Static INT8: {absent(reference)}, so no model's loss to it is known; the analysis is of "
                   f"the pick by validation accuracy, {model}.")


def check(results: list[QuantizationResult], baselines: list[BaselineResult], deploy: pd.DataFrame,
          deployable: dict, data: PreparedData) -> str:
    """Chapter 3's invariants (an InvariantError names the first that fails); returns a one-line summary."""
    records = [r.record for r in results if r.record is not None]
    for r in records:
        invariant(holds_artifact(r["artifact"], data.layout.root), f"{r['artifact']['path']} is not this run's variant")
        invariant(os.path.getsize(data.layout.root / r["artifact"]["path"]) == r["size_bytes"], r["artifact"])
        invariant(r["latency_ms"] > 0 and r["fp32"]["latency_ms"] > 0, "every variant and its twin were timed")
        # every variant was paired with its FP32 twin on the same clips, seed by seed, test and validation
        seeds = len(r["test"]["seeds"])
        invariant(r["test"]["seeds"] == r["fp32"]["test"]["seeds"] and r["test"]["n"] == r["fp32"]["test"]["n"],
                  "a variant and its twin are scored on the same clips and seeds")
        invariant(r["paired"]["test"]["n"] == seeds * r["test"]["n"]
                  and r["paired"]["val"]["n"] == seeds * r["val"]["n"],
                  "a variant is paired with its twin on every seed's clips")
        invariant(r["paired"]["test"]["changed"] <= r["paired"]["test"]["n"],
                  "no more predictions changed than there are clips")
        if r["int8_weights"] and r["int8_activations"] or r["full_integer_tflite"]:  # integer weights and activations
            invariant(r["size_bytes"] < r["fp32"]["size_bytes"],
                      f"{r['model']} ({r['method']}) is not smaller than FP32")
        if r["full_integer_tflite"]:  # it ran in TensorFlow Lite Micro, and the planner is within 5% of its arena
            invariant(r["flash_bytes"] == r["size_bytes"] and r["quantization"]["activations"] in ("int8", "int16"),
                      "a full-integer file is its own flash, with integer activations")
            invariant(abs(r["memory"]["tflm"]["planner_difference_percent"]) <= 5.0, (r["model"], r["memory"]["tflm"]))
    # a recommended variant is never resolvably less accurate than FP32 on the validation clips, and resolvably faster
    # than FP32 in its own runtime and in the fastest
    for model, row in deploy.iterrows():
        picked = [r for r in records if r["model"] == model and r["variant"] == row["deploy"]]
        invariant(all(qualifies(r) for r in picked),
                  "every recommended variant qualifies on validation and against the fastest FP32")
    # every failed (model, method) is named in the chapter's prose, under the table
    failures = failure_note(results)
    invariant(all(f"{r.model} with {r.method}" in failures for r in results if r.error), failures)
    # the FP32 ONNX files the variants were made from compute what PyTorch computes, and so does the raw-audio model
    invariant(all(b.record["onnx_max_abs_difference"] < 1e-4 for b in baselines),
              "every baseline's ONNX export computes what its PyTorch model computes")
    invariant(deployable["within_tolerance"] and deployable["predictions_agree"], deployable)
    # (model, method) pairs, not variants: how many methods a CPU can run (bf16) is the machine's, not the chapter's
    return f"all quantization invariants hold ({len(results)} (model, method) pairs)"


# -- On an emulated board ----------------------------------------------------------------------------------------

def board_table(firmware: dict) -> pd.DataFrame:
    """One row per (model, core), the KWS anchor's last: bit-exact, instructions, flash / RAM and the latency at the
    profile's clock from counted instructions beside the MACs x constant estimate. A model's methods whose rows read
    the same (int4 weights run as int8 in the C) share one row, their names joined."""
    rows = [*firmware.get("rows", []), *((firmware.get("kws") or {}).get("rows", []))]
    shown: dict[tuple, list[str]] = {}
    for row in rows:
        cells = (row["model"], f"{row['core']}, {row['clock_mhz']:g} MHz", "yes" if row["bit_exact"] else "NO",
                 f"{row['instructions'] / 1e6:,.2f}", f"{row['flash_bytes'] / 1e3:,.1f} / {row['ram_bytes'] / 1e3:,.1f}",
                 f"{row['latency_ms'][0]:,.1f}-{row['latency_ms'][1]:,.1f}", f"{row['estimate_ms']:,.1f}")
        shown.setdefault(cells, []).append(row["method"])
    if not shown:
        return pd.DataFrame()
    columns = ["core, clock", "bit-exact", "instructions (M)", "flash / RAM (kB)", "counted latency (ms)",
               "MACs estimate (ms)"]
    return pd.DataFrame([dict(zip(columns, cells[1:])) for cells in shown],
                        index=pd.Index([f"{cells[0]} ({', '.join(methods)})" for cells, methods in shown.items()],
                                       name="model (methods)"))


def _per_mac(firmware: dict) -> dict[tuple[str, str], float]:
    """Instructions per MAC by (layer type, core), over every variant's and the KWS model's weighted layers."""
    totals: dict[tuple[str, str], list[float]] = {}
    for row in [*firmware.get("rows", []), *((firmware.get("kws") or {}).get("rows", []))]:
        for operator, instructions, macs in zip(row["layer_operators"], row["layer_instructions"], row["layer_macs"]):
            if macs:
                entry = totals.setdefault((operator, row["core"]), [0.0, 0.0])
                entry[0] += instructions
                entry[1] += macs
    return {key: instructions / macs for key, (instructions, macs) in totals.items()}


def layer_type_table(firmware: dict) -> pd.DataFrame:
    """Instructions per MAC by layer type on each core, over every variant and the KWS model: where a MACs x
    constant estimate, one constant for every layer, is wrong."""
    per_mac = _per_mac(firmware)
    if not per_mac:
        return pd.DataFrame()
    frame = pd.DataFrame([{"layer type": op, "core": core, "per MAC": v} for (op, core), v in per_mac.items()])
    table = frame.pivot(index="layer type", columns="core", values="per MAC")
    return table.map(lambda v: f"{v:.2f}" if np.isfinite(v) else "-").rename_axis(None, axis=1)


def layer_type_sentence(firmware: dict, core: str = "Cortex-M4") -> str:
    """The spread of instructions per MAC between layer types on ``core``, in one sentence."""
    on_core = sorted(((v, op) for (op, c), v in _per_mac(firmware).items() if c == core), reverse=True)
    if len(on_core) < 2:
        return f"Too few layer types were counted on the {core} to compare."
    parts = ", ".join(f"{op} {v:.1f}" for v, op in on_core)
    return (f"On the emulated {core} the generated C spends {parts} instructions per MAC: a factor of "
            f"{on_core[0][0] / on_core[-1][0]:.1f} between layer types that one cycles-per-MAC constant prices alike.")


def board_values(firmware: dict) -> dict:
    """The sentences of the section (one line when the toolchain was missing)."""
    if firmware.get("skipped"):
        return {"fw_sentence": f"Skipped on this machine: {firmware['skipped']}.", "fw_front_end": "",
                "fw_kws": "", "fw_simd": "", "fw_layer_types": "Not counted: the emulated boards were skipped."}
    host, rows = firmware["host"], firmware["rows"]
    exact = [h for h in host if h["bit_exact"]]
    sentence = (f"The generated C of {len(exact)} of {len(host)} full-integer variants gives TensorFlow Lite Micro's "
                f"reference kernels' output bytes on the host, on the first "
                f"{' or '.join(sorted({str(h['clips']) for h in host}))} test clips of the deployed split"
                if host else "No full-integer variant was in this run's methods")
    wrong = [f"{h['model']} ({h['method']}): {h['differing_bytes']} bytes differ" for h in host if not h["bit_exact"]]
    board_exact = sum(r["bit_exact"] for r in rows)
    sentence += ("; " + "; ".join(wrong) if wrong else "") + (
        f", and {board_exact} of {len(rows)} board runs give the same bytes on the emulated cores "
        f"({counted(firmware['board_clips'], 'clip')} each)." if rows else ".")
    speedups = [r["simd_speedup"] for r in [*rows, *((firmware.get("kws") or {}).get("rows", []))]
                if r["simd_speedup"] is not None]
    simd = (f"The kernels' SIMD inner loop (__smlad on the Cortex-M4 and M7, Helium on the M55) runs "
            f"{min(speedups):.2f}x to {max(speedups):.2f}x fewer instructions than the plain C loop (each "
            f"{full_integer_method(8).name} variant and the KWS model, on the Cortex-M4 and M55)."
            if speedups else "")
    front = firmware.get("front_end")
    front_sentence = (f"The C front end (radix-2 FFT, mel, log) differs from the Python front end by at most "
                      f"{front['largest_difference']:.2g} in a log-mel over {front['clips']} test clips, and with "
                      f"{front['model']}'s network predicts the same class on {100 * front['same_prediction']:.1f} % "
                      "of them." if front and not front.get("skipped") else
                      f"No C front end: {front['skipped']}." if front else "")
    kws = firmware.get("kws")
    kws_sentence = ""
    if kws:
        best = min(kws["published"], key=lambda p: p["latency_ms"])
        m4 = next(r for r in kws["rows"] if r["board"] == "cortex_m4")
        kws_sentence = (
            f"The anchor, MLPerf Tiny's keyword-spotting DS-CNN, generated by the same exporter "
            f"({'bit-exact' if kws['host']['bit_exact'] and m4['bit_exact'] else 'NOT bit-exact'} with TFLite Micro "
            f"on {kws['host']['clips']} random inputs on the host and the boards' clips), "
            f"runs {m4['instructions'] / 1e6:.1f} M instructions per inference on the emulated Cortex-M4: "
            f"{kws['m4_latency_ms_at_120mhz'][0]:.0f} to {kws['m4_latency_ms_at_120mhz'][1]:.0f} ms at 120 MHz, "
            f"{kws['slower_than_best'][0]:.1f}x to {kws['slower_than_best'][1]:.1f}x the best published latency on "
            f"that core ({best['stack']}: {best['latency_ms']:.1f} ms on an STM32L4R5 at 120 MHz, "
            f"{best['source']}; the other published stacks: "
            + ", ".join(f"{p['stack']} {p['latency_ms']:.1f} ms" for p in kws["published"] if p is not best) + ").")
    return {"fw_sentence": sentence, "fw_front_end": front_sentence, "fw_kws": kws_sentence, "fw_simd": simd,
            "fw_layer_types": layer_type_sentence(firmware)}
