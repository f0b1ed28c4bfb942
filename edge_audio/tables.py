"""The tables the chapters show, made from results records (:mod:`edge_audio.records`) and nothing else: no step,
no measurement, no file. A step decides and measures; this module only lays out what it recorded."""
from __future__ import annotations

from typing import Protocol, Sequence

import pandas as pd

from .stats import interval_text


class Outcome(Protocol):
    """One (model, method) of the quantization step: its record, or the error that stopped it."""
    model: str
    method: str
    record: dict | None
    error: str | None


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
            "Size (MB)": round(r["size_bytes"] / 1e6, 3), "Peak RAM (kB)": round(r["peak_ram_bytes"] / 1e3, 1),
            "Flash (kB)": round(r["flash_bytes"] / 1e3, 1),
            "Latency (ms)": r["latency_ms"], "FLOPs (M)": round(r["flops"] / 1e6, 1),
            "Params": r["params"], "MACs (M)": round(r["macs"] / 1e6, 1), "Macro-F1 (%)": r["macro_f1"],
            "Latency p90 (ms)": timing["p90_ms"], "Runtime": r["runtime"], "Protocol": r["protocol"],
        })
    return pd.DataFrame(rows).set_index("Model").round(3)


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


def accuracy_verdict(comparison: dict) -> str:
    """A paired accuracy comparison in a table cell (a = the variant or candidate, b = what it is compared with):
    its verdict at the margin, the difference and its 95% interval, and for an undetermined one the clips that
    would decide it, e.g. ``"worse: -3.20 (-5.10 to -1.40)"``."""
    low, high = comparison["ci95"]
    text = f"{comparison['verdict']}: {comparison['difference']:+.2f} ({low:+.2f} to {high:+.2f})"
    if comparison["verdict"] == "undetermined":
        text += (f", ~{comparison['clips_to_decide']:,} clips would decide" if comparison["clips_to_decide"]
                 else ", far more clips would decide")
    return text


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
            "Drop (points)": r["accuracy_drop"], "Clips": paired["n"], "Changed": paired["changed"],
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


def tflite_table(records: list[dict]) -> pd.DataFrame:
    """The full-integer TFLite models, one row per model: test accuracy with its interval and the paired verdict
    against FP32, flash, the planner's peak RAM beside TensorFlow Lite Micro's own arena (and their difference),
    and LiteRT's latency against the FP32 TFLite twin."""
    rows = []
    for r in (r for r in records if r.get("full_integer_tflite")):
        tflm = r["memory"]["tflm"]
        rows.append({
            "Model": r["model"], "TFLite INT8 acc (%)": r["accuracy"], "95% interval": interval_text(r["test"]),
            "FP32 acc (%)": r["fp32"]["accuracy"], "McNemar p": r["paired"]["test"]["p_value"],
            "Accuracy": accuracy_verdict(r["paired"]["test"]), "Flash (kB)": round(r["flash_bytes"] / 1e3, 1),
            "Size ratio (FP32 / INT8 TFLite)": r["size_ratio"],
            "Planner arena (kB)": round(r["memory"]["arena_bytes"] / 1e3, 1),
            "TFLM arena (kB)": round(tflm["head_bytes"] / 1e3, 1),
            "Planner - TFLM (%)": tflm["planner_difference_percent"],
            "Peak RAM with CMSIS-NN scratch (kB)": round(r["peak_ram_bytes"] / 1e3, 1),
            "LiteRT INT8 (ms)": r["latency_ms"], "LiteRT FP32 (ms)": r["fp32"]["latency_ms"],
            "Speedup": r["speedup"], "Latency": latency_verdict(r["latency_comparison"]),
        })
    return pd.DataFrame(rows).set_index("Model") if rows else pd.DataFrame()


def seed_table(records: list[dict]) -> pd.DataFrame:
    """Test accuracy per training seed, with the mean and the standard deviation over seeds."""
    return pd.DataFrame({r["model"]: {**{f"seed {s}": a for s, a in r["seed_accuracies"].items()},
                                      "mean": r["seed_mean"], "std over seeds": r["seed_std"]}
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
