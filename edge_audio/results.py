"""The results log: ``<output>/logs/all_results.json``, one record per evaluated model variant.

A record names the model, its architecture, the dataset (name, layout, content fingerprint) and fold protocol,
accuracy, size in bytes on disk, FLOPs, params, latency with how it was timed, and the seed. ``artifact`` is the
published file it describes (``models/...``), ``artifact_sha256`` the SHA-256 of its bytes, and
``artifact_source`` the keyed cache file it was published from: the published file holds what the latest run of
its step computed, while the source always holds this record's bytes (records of other settings keep theirs).

Every record carries the **context** it was computed in (:func:`run_context`): the dataset's content, the feature
and training settings, the protocol, the latency threads and the machine. A record is identified by (context,
model, variant): re-running a step replaces its records instead of duplicating them, records computed under
other settings stay in the log under their own context, and the frontier only ever compares records of one
context. Every write is atomic.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pandas as pd

from .stats import interval_text
from .storage import atomic_write_json, file_lock, read_json, stable_hash

RESULTS_FILE = "all_results.json"


def run_context(fingerprint: str, features: dict, train: dict, protocol: str, threads: int, machine: dict) -> dict:
    """What the records of one run have in common, and what makes records of two runs comparable."""
    context = {"dataset": fingerprint, "features": features, "train": train, "protocol": protocol,
               "latency_threads": threads, "machine": machine}
    return {**context, "key": stable_hash(context)}


def record_key(record: dict) -> tuple:
    """What makes two records the same result."""
    return (record["context"]["key"], record["model"], record["variant"])


def load_results(logs_dir: str | os.PathLike, context_key: str | None = None) -> list[dict]:
    """All records (or those of one context), in the order they were first written."""
    records = read_json(Path(logs_dir) / RESULTS_FILE, default=[])
    if context_key is not None:
        records = [r for r in records if r["context"]["key"] == context_key]
    return records


def upsert_results(logs_dir: str | os.PathLike, new_records: list[dict],
                   drop: Callable[[dict], bool] | None = None) -> list[dict]:
    """Add or replace ``new_records`` in the results log; returns the whole log.

    ``drop``, when given, first removes the records it returns True for (a step that replaces its whole set of
    records, such as a new search's candidates, uses it so that no stale record survives).
    """
    path = Path(logs_dir) / RESULTS_FILE
    with file_lock(path.with_name(f".{RESULTS_FILE}.lock")):  # workers sharing an output folder: no lost update
        records = [r for r in read_json(path, default=[]) if drop is None or not drop(r)]
        index = {record_key(r): i for i, r in enumerate(records)}
        for record in new_records:
            key = record_key(record)
            if key in index:
                records[index[key]] = record
            else:
                index[key] = len(records)
                records.append(record)
        atomic_write_json(path, records)
    return records


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
    """Test accuracy (%) of each record on each of its test folds, with the mean and standard deviation over folds
    (one column under holdout; one per fold under k-fold)."""
    rows = {(r["model"], r["variant"]): {**{f"fold {fold}": accuracy for fold, accuracy in
                                            zip(r["test_folds"], r["test"]["fold_accuracies"])},
                                         "mean": r["accuracy"], "std": r["accuracy_std"]} for r in records}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["model", "variant"])


def pick_key(record: dict) -> tuple:
    """The order every pick is made in (use with ``max``): the highest validation accuracy, then the faster (its
    headline latency), then the smaller. Test accuracy never enters it."""
    return record["val_accuracy"], -record["latency_ms"], -record["size_bytes"]
