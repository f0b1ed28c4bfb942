"""The tables the chapters show, made from results records (:mod:`edge_audio.records`) and nothing else: no step,
no measurement, no file. A step decides and measures; this module only lays out what it recorded."""
from __future__ import annotations

import math
from typing import Protocol, Sequence

import numpy as np
import pandas as pd

from .stats import interval_text


class Outcome(Protocol):
    """One (model, method) of the quantization step: its record, or the error that stopped it."""
    model: str
    method: str
    record: dict | None
    error: str | None


#: The most columns a table shows a reader; a wider one is shown as several views.
MAX_COLUMNS = 7
#: What a missing value reads as.
MISSING = "–"


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def readable(column: str, value) -> str:
    """One value as a reader sees it, by what its column holds: percentages, kB and MB with one or two decimals,
    milliseconds and other measures to three significant figures, p-values to two, counts with thousands
    separators, yes/no for booleans, and an en dash for a missing value. Raises ``TypeError`` for a mapping or a
    list: a raw structure never reaches a table."""
    name = column.lower()
    if isinstance(value, (dict, list, tuple)):
        raise TypeError(f"column {column!r} holds a {type(value).__name__}, not a value a table can show")
    if _is_missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if name == "p" or name.endswith(" p") or "p-value" in name:
            return f"{value:.2g}"
        if "(%)" in name or "(kb)" in name or name.endswith("%") or name.startswith("95%"):
            return f"{value:,.1f}"
        if "(mb)" in name:
            return f"{value:,.2f}"
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:.3g}"
    return str(value)


def view(frame: pd.DataFrame, columns: Sequence[str] | None = None,
         caption: str | None = None) -> "pd.io.formats.style.Styler":
    """``frame`` as a reader sees it: the given ``columns`` (at most :data:`MAX_COLUMNS`; all when None), every
    value :func:`readable`, never cut short (pandas' own display truncates long cells to "..."), under its
    ``caption``."""
    shown = frame if columns is None else frame[list(columns)]
    if len(shown.columns) > MAX_COLUMNS:
        raise ValueError(f"{len(shown.columns)} columns are too many for a reader ({MAX_COLUMNS} at most): "
                         f"show {list(shown.columns)} as several views")
    text = pd.DataFrame({column: [readable(str(column), value) for value in shown[column]]
                         for column in shown.columns}, index=shown.index)
    styled = text.style.set_table_attributes('class="dataframe"')  # the book theme's table style
    return styled.set_caption(caption) if caption else styled


def markdown(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown pipe table of :func:`readable` values (index first), for a page that includes it."""
    header = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    rows = [[str(index)] + [readable(str(c), frame.at[index, c]).replace("|", "/") for c in frame.columns]
            for index in frame.index]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, ["---"] * len(header), *rows]) + "\n"


def views(frame: pd.DataFrame, *column_sets: tuple[str, Sequence[str]]) -> list:
    """``frame`` as several readable views (:func:`view`), one per ``(caption, columns)``; the columns a set names
    that the frame lacks (a k-fold column under holdout) are left out."""
    return [view(frame, [c for c in columns if c in frame.columns], caption) for caption, columns in column_sets]


def column_chunks(frame: pd.DataFrame) -> list:
    """A wide ``frame`` (one column per fold or per model) as readable views of at most :data:`MAX_COLUMNS`
    columns each, in order."""
    columns = list(frame.columns)
    return [view(frame, columns[start:start + MAX_COLUMNS]) for start in range(0, len(columns), MAX_COLUMNS)]


def results_table(records: list[dict]) -> pd.DataFrame:
    """The comparison table: the reference columns, then the rest of what was measured.

    Accuracy is the mean over test folds (one fold under holdout) with its pooled 95% interval, the test clips it
    was scored on, the standard deviation over folds (k-fold only) and the validation accuracy picks are made on.

    Latency is each record's headline runtime (``runtime``: ONNX Runtime for FP32 and ONNX variants, PyTorch
    for PyTorch-quantized ones), batch 1, median, with the thread count the record names.
    """
    rows = []
    for r in records:
        timing = r["latency"][r["runtime"]]
        rows.append({
            "Model": r["model"], "Variant": r["variant"],
            "Accuracy (%)": r["accuracy"], "95% interval": interval_text(r["test"]), "Clips": r["test"]["n"],
            "Fold std": r["accuracy_std"], "Val acc (%)": r["val_accuracy"],
            "Size (kB)": r["size_bytes"] / 1e3, "Peak RAM (kB)": r["peak_ram_bytes"] / 1e3,
            "Flash (kB)": r["flash_bytes"] / 1e3, "Latency (ms)": r["latency_ms"],
            "Params": r["params"], "MMACs": r["macs"] / 1e6, "Macro-F1 (%)": r["macro_f1"],
            "Latency p90 (ms)": timing["p90_ms"], "Runtime": r["runtime"], "Protocol": r["protocol"],
        })
    table = pd.DataFrame(rows).set_index("Model")
    return table.drop(columns="Fold std") if table["Fold std"].isna().all() else table  # holdout: no folds


#: The views of :func:`results_table` a chapter shows: how accurate, and what it costs.
RESULT_ACCURACY = ("How accurate (test clips; validation for picks)",
                   ("Accuracy (%)", "95% interval", "Clips", "Fold std", "Val acc (%)", "Macro-F1 (%)"))
RESULT_COST = ("What it costs (FP32, ONNX Runtime, batch 1)",
               ("Params", "MMACs", "Size (kB)", "Peak RAM (kB)", "Flash (kB)", "Latency (ms)", "Latency p90 (ms)"))


def fold_table(records: list[dict]) -> pd.DataFrame:
    """Test accuracy (%) of each record on each of its test folds, on all its test clips (the point every table
    shows) with its 95% interval, and, under k-fold, the standard deviation over folds."""
    kfold = any(r["accuracy_std"] is not None for r in records)
    rows = {(r["model"], r["variant"]): {
        **{f"fold {fold}": accuracy for fold, accuracy in zip(r["test_folds"], r["test"]["fold_accuracies"])},
        "all clips": r["accuracy"], "95% interval": interval_text(r["test"]),
        **({"std over folds": r["accuracy_std"]} if kfold else {})} for r in records}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["model", "variant"])


def learning_curve_table(ordered: list[dict], neighbours: Sequence) -> pd.DataFrame:
    """The learning curve (:func:`edge_audio.frontier.learning_curve`) as a table: each model in order of
    parameters, its cost and test accuracy, and the paired verdict against the next smaller model."""
    against = [""] + [accuracy_verdict(pair.comparison) for pair in neighbours]
    return pd.DataFrame([{
        "Model": r["model"], "Params": f"{r['params']:,}", "MACs (M)": round(r["macs"] / 1e6, 2),
        "Test acc (%)": round(r["accuracy"], 2), "95% interval": interval_text(r["test"]),
        "Against the next smaller": text} for r, text in zip(ordered, against)]).set_index("Model")


def distillation_table(pairs: Sequence[tuple[dict, dict, dict]]) -> pd.DataFrame:
    """Each distilled model beside its baseline trained from labels alone (``(distilled, labels only, paired
    comparison)``, :func:`edge_audio.steps.baselines.distillation_pairs`): both test accuracies with their 95%
    intervals, and the paired verdict of distilled against labels only on the same test clips."""
    rows = []
    for student, alone, comparison in pairs:
        rows.append({"Model": alone["model"], "Teacher": " + ".join(student["distillation"]["teachers"]),
                     "Labels only (%)": round(alone["accuracy"], 2), "Labels only 95%": interval_text(alone["test"]),
                     "Distilled (%)": round(student["accuracy"], 2), "Distilled 95%": interval_text(student["test"]),
                     "Distilled against labels only": accuracy_verdict(comparison)})
    return pd.DataFrame(rows, columns=["Model", "Teacher", "Labels only (%)", "Labels only 95%", "Distilled (%)",
                                       "Distilled 95%", "Distilled against labels only"]).set_index("Model")


def bit_width_table(rows: Sequence) -> pd.DataFrame:
    """Chapter 3's *bits x model* view (:func:`edge_audio.steps.quantization.bit_widths`): per model and bit widths
    (``w4 a8``: 4-bit weights, 8-bit activations), the file's size, post-training and quantization-aware TFLite each against FP32 on the same test clips,
    and QAT against PTQ, each as its verdict at the margin with the difference and its 95% interval."""
    frame = pd.DataFrame([{
        "Model": row.model, "Bits": row.label.replace(" ", "\u00a0"),  # on one line: w4 a8
        "Size (kB)": round(row.ptq["size_bytes"] / 1e3, 1),
        "PTQ against FP32": accuracy_verdict(row.ptq["paired"]["test"]),
        "QAT against FP32": None if row.qat is None else accuracy_verdict(row.qat["paired"]["test"]),
        "QAT against PTQ": None if row.qat_against_ptq is None else accuracy_verdict(row.qat_against_ptq)}
        for row in rows], columns=["Model", "Bits", "Size (kB)", "PTQ against FP32", "QAT against FP32",
                                   "QAT against PTQ"])
    return frame.set_index(["Model", "Bits"])


def fold_views(records: list[dict]) -> list:
    """Under k-fold, each record's test accuracy on every fold (one row per fold, one column per model, at most
    :data:`MAX_COLUMNS` models a view); under holdout nothing: its one test fold is what every other table shows."""
    if all(r["accuracy_std"] is None for r in records):
        return []
    table = fold_table(records)
    table.index = [f"{model} ({variant})" for model, variant in table.index]
    return column_chunks(table.T)


def result_views(records: list[dict]) -> list:
    """:func:`results_table` as a reader sees it: how accurate each model is, and what it costs."""
    return views(results_table(records), RESULT_ACCURACY, RESULT_COST)


def seed_views(records: list[dict]) -> list:
    """:func:`seed_table` when there are several training seeds; nothing for one seed."""
    return [] if all(r["test"]["seed_std"] is None for r in records) else [view(seed_table(records))]


def accuracy_verdict(comparison: dict) -> str:
    """A paired accuracy comparison in a table cell (a = the variant or candidate, b = what it is compared with):
    its verdict at the margin, the difference and its 95% interval, and for an undetermined one the clips that
    would decide it, e.g. ``"worse: -3.20 (-5.10 to -1.40)"``."""
    low, high = comparison["ci95"]
    text = f"{comparison['verdict']}: {comparison['difference']:+.2f} ({low:+.2f} to {high:+.2f})"
    if comparison["verdict"] != "undetermined":
        return text
    if comparison.get("reason"):  # one training seed: the comparison of two trainings says nothing
        return text + f", {comparison['reason']}"
    if comparison.get("seeds", 1) > 1:  # two trainings over seeds: more seeds decide, not more clips
        return text + (f", ~{comparison['seeds_to_decide']} seeds would decide" if comparison["seeds_to_decide"]
                       else ", far more seeds would decide")
    return text + (f", ~{comparison['clips_to_decide']:,} clips would decide" if comparison["clips_to_decide"]
                   else ", far more clips would decide")


def latency_verdict(comparison: dict) -> str:
    """The paired latency test's verdict on a variant against its FP32 twin (a = the variant, b = FP32)."""
    return {None: "not resolved", "a": "faster", "b": "slower"}[comparison["faster"]]


def quantization_table(results: Sequence[Outcome]) -> pd.DataFrame:
    """The quantization table, one row per (model, method): accuracy with its 95% interval, the paired comparison
    with the FP32 twin on the same test clips (changed predictions, agreement, exact McNemar p, the verdict), size
    ratio, speedup with the paired latency test's verdict, peak RAM and flash (:mod:`edge_audio.memory`), and the error
    of any (model, method) that failed."""
    rows = []
    for result in results:
        r = result.record
        if r is None:
            rows.append({"Model": result.model, "Method": result.method, "Error": result.error})
            continue
        paired = r["paired"]["test"]
        rows.append({
            "Model": r["model"], "Method": r["method"], "Precision": r["precision"], "Acc (%)": r["accuracy"],
            "95% interval": interval_text(r["test"]), "FP32 acc (%)": r["fp32"]["accuracy"],
            "Drop (points)": r["accuracy_drop"], "Clip pairs": paired["n"], "Changed": paired["changed"],
            "Agreement (%)": paired["agreement"], "McNemar p": paired["p_value"],
            "Accuracy": accuracy_verdict(paired), "Size ratio": r["size_ratio"], "Speedup": r["speedup"],
            "Latency": latency_verdict(r["latency_comparison"]), "Size (kB)": round(r["size_bytes"] / 1e3, 1),
            "Latency (ms)": r["latency_ms"], "FP32 (ms)": r["fp32"]["latency_ms"],
            "Peak RAM (kB)": round(r["peak_ram_bytes"] / 1e3, 1), "Flash (kB)": round(r["flash_bytes"] / 1e3, 1),
            "INT8 activations": r["int8_activations"], "Full-integer TFLite": r["full_integer_tflite"], "Error": "",
        })
    table = pd.DataFrame(rows)
    if not table["Error"].fillna("").astype(bool).any():
        table = table.drop(columns="Error")
    return table.set_index("Model")


#: The views of :func:`quantization_table`: accuracy against FP32, what it saves, and any error.
QUANTIZATION_ACCURACY = ("Accuracy against the FP32 twin, same test clips",
                         ("Method", "Acc (%)", "95% interval", "FP32 acc (%)", "Changed", "Accuracy", "McNemar p"))
QUANTIZATION_COST = ("What it saves against the FP32 twin",
                     ("Method", "Size (kB)", "Size ratio", "Latency (ms)", "Speedup", "Latency", "Peak RAM (kB)"))
QUANTIZATION_ERRORS = ("What failed", ("Method", "Error"))


def quantization_views(results: Sequence[Outcome]) -> list:
    """:func:`quantization_table` as a reader sees it: accuracy against FP32, what it saves, and the errors (only
    when a (model, method) failed)."""
    table = quantization_table(results)
    return views(table, QUANTIZATION_ACCURACY, QUANTIZATION_COST,
                 *([QUANTIZATION_ERRORS] if "Error" in table.columns else []))


def tflite_table(records: list[dict]) -> pd.DataFrame:
    """The full-integer TFLite models, one row per (model, method): test accuracy with its interval and the paired verdict
    against FP32, flash, the planner's arena beside TensorFlow Lite Micro's non-persistent section (and their
    difference), the persistent section and CMSIS-NN's scratch, the whole arena a firmware allocates (what RAM
    budgets check, and what ``edge-audio export`` writes), and LiteRT's latency against the FP32 TFLite twin."""
    rows = []
    for r in (r for r in records if r.get("full_integer_tflite")):
        tflm = r["memory"]["tflm"]
        rows.append({
            "Model": r["model"], "Method": r["method"], "TFLite acc (%)": r["accuracy"], "95% interval": interval_text(r["test"]),
            "FP32 acc (%)": r["fp32"]["accuracy"], "McNemar p": r["paired"]["test"]["p_value"],
            "Accuracy": accuracy_verdict(r["paired"]["test"]), "Flash (kB)": round(r["flash_bytes"] / 1e3, 1),
            "Size ratio (FP32 / TFLite)": r["size_ratio"],
            "Planner arena (kB)": round(r["memory"]["arena_bytes"] / 1e3, 1),
            "TFLM arena (kB)": round(tflm["head_bytes"] / 1e3, 1),
            "Planner - TFLM (%)": tflm["planner_difference_percent"],
            "Persistent (kB)": round(r["memory"]["firmware"]["persistent_bytes"] / 1e3, 1),
            "CMSIS-NN scratch (kB)": round(r["memory"]["firmware"]["scratch_bytes"] / 1e3, 1),
            "Whole arena (kB)": round(r["peak_ram_bytes"] / 1e3, 1),
            "LiteRT (ms)": r["latency_ms"], "LiteRT FP32 (ms)": r["fp32"]["latency_ms"],
            "Speedup": r["speedup"], "Latency": latency_verdict(r["latency_comparison"]),
        })
    return pd.DataFrame(rows).set_index(["Model", "Method"]) if rows else pd.DataFrame()


def npu_table(records: list[dict]) -> pd.DataFrame:
    """Every full-integer TFLite variant Vela compiled (the record's ``npu``), one row each: the estimated latency
    per Ethos-U target, the SRAM and flash of the first target's compile, and how many operators run on the NPU
    (a target Vela did not compile shows a dash; the chapter says which variants it refused and why)."""
    rows = []
    for r in (r for r in records if r.get("npu")):
        compiled = [report for report in r["npu"].values() if "error" not in report]
        if not compiled:
            continue
        first = compiled[0]
        rows.append({"Model": r["model"], "Method": r["method"],
                     **{_npu_label(name): report.get("latency_ms") for name, report in r["npu"].items()},
                     "SRAM (kB)": round(first["sram_bytes"] / 1e3, 1),
                     "Flash (kB)": round(first["flash_bytes"] / 1e3, 1),
                     "On the NPU": f"{first['npu_operators']} of {first['npu_operators'] + first['cpu_operators']}"})
    return pd.DataFrame(rows).set_index(["Model", "Method"]) if rows else pd.DataFrame()


def _npu_label(target: str) -> str:
    """``ethos_u55_128`` -> ``U55-128 (ms)``."""
    _, core, macs = target.split("_")
    return f"{core.upper()}-{macs} (ms)"


#: The views of :func:`tflite_table`: accuracy, memory against TensorFlow Lite Micro, latency in LiteRT.
TFLITE_ACCURACY = ("Full-integer TFLite: accuracy", ("TFLite acc (%)", "95% interval", "FP32 acc (%)", "Accuracy"))
TFLITE_MEMORY = ("Memory: the planner against TensorFlow Lite Micro, and the whole arena a firmware allocates",
                 ("Planner arena (kB)", "TFLM arena (kB)", "Planner - TFLM (%)", "Persistent (kB)",
                  "CMSIS-NN scratch (kB)", "Whole arena (kB)"))
TFLITE_LATENCY = ("Flash, and latency in LiteRT", ("Flash (kB)", "LiteRT (ms)", "LiteRT FP32 (ms)", "Speedup",
                                                   "Latency"))


def tflite_views(records: list[dict]) -> list:
    """:func:`tflite_table` as a reader sees it (nothing when no record is a full-integer TFLite model)."""
    table = tflite_table(records)
    return views(table, TFLITE_ACCURACY, TFLITE_MEMORY, TFLITE_LATENCY) if len(table) else []


#: The views of the frontier's model comparison table (:func:`edge_audio.frontier.comparison_table`).
COMPARISON_ACCURACY = ("Accuracy", ("kind", "accuracy (%)", "n", "95% low", "95% high", "val accuracy (%)"))
COMPARISON_COST = ("Costs", ("size (kB)", "peak RAM (kB)", "flash (kB)", "latency (ms)", "runtime",
                             "MMACs/s of audio"))
COMPARISON_FRONTS = ("Budgets and fronts",
                     ("meets budgets", "front: size", "front: latency", "front: flops", "front: ram"))
#: The views of the frontier's best model per deployment profile.
PROFILE_PICK = ("The pick per profile (by validation accuracy)",
                ("best model (validation)", "test accuracy (%)", "95% interval", "val accuracy (%)", "models that fit"))
PROFILE_COST = ("What the pick needs",
                ("flash (kB)", "peak RAM (kB)", "latency (ms)", "latency from", "MMACs/s"))
PROFILE_LIMITS = ("The profiles", ("limits",))


def seed_table(records: list[dict]) -> pd.DataFrame:
    """Test accuracy per training seed, with the mean and the standard deviation over seeds."""
    return pd.DataFrame({r["model"]: {**{f"seed {s}": a for s, a in zip(r["test"]["seeds"], r["test"]["seed_accuracies"])},
                                      "mean": r["accuracy"], "std over seeds": r["test"]["seed_std"]}
                         for r in records}).T.rename_axis("test accuracy (%)")


def cost_table(records: list[dict]) -> pd.DataFrame:
    """MACs and FLOPs by both counters, the FLOP floor, and each runtime's latency over it."""
    return pd.DataFrame({
        "MACs (thop)": [r["macs"] for r in records], "FLOPs (thop, 2 x MACs)": [r["flops"] for r in records],
        "FLOPs (FlopCounterMode)": [r["flop_counter_flops"] for r in records],
        "gap (%)": [r["flop_gap_percent"] for r in records], "floor (ms)": [r["flop_floor_ms"] for r in records],
        "PyTorch / floor": [r["latency_floor_ratio"]["pytorch"] for r in records],
        "ONNX Runtime / floor": [r["latency_floor_ratio"]["onnxruntime"] for r in records],
    }, index=pd.Index([r["model"] for r in records], name="model"))
