"""The results log: ``<output>/logs/all_results.json``, one record per evaluated model variant.

A record names the model, its architecture, the dataset (name, layout, content fingerprint) and fold protocol,
accuracy, size in bytes on disk, FLOPs, params, latency with how it was timed, and the seed; its fields are
declared in :mod:`edge_audio.records`, and every record read from the log is checked against them. ``artifact``
is the published file it describes: ``path`` (``models/...``), ``sha256`` of its bytes, and ``source``, the keyed
cache file it was published from: the published file holds what the latest run of its step computed, while the
source always holds this record's bytes (records of other settings keep theirs).

Every record carries the **context** it was computed in (:func:`run_context`): the dataset's content, the feature
and training settings, the protocol, the latency threads and the machine. A record is identified by (context,
model, variant): re-running a step replaces its records instead of duplicating them, records computed under
other settings stay in the log under their own context, and the frontier only ever compares records of one
context. Every write is atomic.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from .records import ResultsLogError, check_record, sources_hold
from .notices import notice
from .stats import paired_over_seeds, seeded_split_part
from .storage import atomic_write_json, file_lock, plain, read_json, stable_hash

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
    """All records (or those of one context), in the order they were first written, each checked against its
    declared kind (:mod:`edge_audio.records`)."""
    path = Path(logs_dir) / RESULTS_FILE
    records = _held(_read_log(path), path)
    if context_key is not None:
        records = [r for r in records if r["context"]["key"] == context_key]
    return records


def check_results_log(logs_dir: str | os.PathLike) -> None:
    """Refuse, in one line (:class:`~edge_audio.records.ResultsLogError`), a damaged results log, so that a run
    stops before its first chapter rather than after it."""
    _read_log(Path(logs_dir) / RESULTS_FILE)


def upsert_results(logs_dir: str | os.PathLike, new_records: list[dict],
                   drop: Callable[[dict], bool] | None = None) -> list[dict]:
    """Add or replace ``new_records`` in the results log; returns the whole log.

    ``drop``, when given, first removes the records it returns True for (a step that replaces its whole set of
    records, such as a new search's candidates, uses it so that no stale record survives).
    """
    path = Path(logs_dir) / RESULTS_FILE
    with file_lock(path.with_name(f".{RESULTS_FILE}.lock")):  # workers sharing an output folder: no lost update
        stored = _read_log(path)
        records = [r for r in _held(stored, path) if drop is None or not drop(r)]
        index = {record_key(r): i for i, r in enumerate(records)}
        for record in new_records:
            key = record_key(record)
            if key in index:
                records[index[key]] = record
            else:
                index[key] = len(records)
                records.append(record)
        if plain(records) != stored:  # a fully cached run rewrites nothing
            atomic_write_json(path, records)
    return records


def _read_log(path: Path) -> list[dict]:
    """The records of a results log as stored (none when it does not exist), each checked against its declared
    kind; a damaged log is refused, naming the file."""
    try:
        records = read_json(path, default=[])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsLogError(f"{path} is not valid JSON ({exc}): remove it and run again (the cached steps "
                              "recompute it quickly)") from None
    if not isinstance(records, list):
        raise ResultsLogError(f"{path} should hold a list of records, not {type(records).__name__}")
    for number, record in enumerate(records, start=1):
        check_record(record, f"{path}, record {number}")
    return records


def _held(records: list[dict], path: Path) -> list[dict]:
    """``records`` without those whose cache entries no longer hold what they name (said in one line)."""
    root = path.parent.parent  # the output folder (logs/ is in it): artifact paths are relative to it
    held = [r for r in records if sources_hold(r, root)]
    if len(held) < len(records):
        notice(f"{len(records) - len(held)} record(s) of {path} came from cache entries that were discarded or "
               "recomputed since: left out of the results log")
    return held


def pick_key(record: dict) -> tuple:
    """The order every pick is made in (use with ``max``): the highest validation accuracy, then the faster (its
    headline latency), then the smaller. Test accuracy never enters it."""
    return record["val_accuracy"], -record["latency_ms"], -record["size_bytes"]


def as_chosen(record: dict) -> dict:
    """``record`` as a choice reports it: on the **deployed split's test fold** only (the protocol's last split).

    Every choice is made inside the deployed split's non-test folds: a pick on ``val`` (that split's validation
    fold), a teacher on its own split's validation fold, the search on its training folds. Under holdout that split
    is the protocol, so this is the record itself. Under k-fold the record's ``test`` pools every split's test
    fold, and the folds the choices saw are test folds of other splits; so what a choice gave (the best model, a
    deployment, a finalist, a pick, and whatever it is compared with) reports on the one fold none of them saw,
    with its FP32 twin (and their pairing, at the record's own margin) cut to the same fold. Records without a test evaluation (proxies) are
    returned as they are."""
    test = record.get("test")
    if not test or len(test["by_seed"][0]["folds"]) == 1:
        return record
    test = seeded_split_part(test, -1)
    changes = {"test": test, "accuracy": test["accuracy"], "accuracy_std": None,
               "test_folds": test["by_seed"][0]["folds"]}
    if "fp32" in record:
        twin = seeded_split_part(record["fp32"]["test"], -1)
        changes.update(fp32={**record["fp32"], "test": twin, "accuracy": twin["accuracy"]},
                       paired={**record["paired"], "test": paired_over_seeds(
                           test, twin, record["paired"]["test"]["margin"])},
                       accuracy_drop=round(twin["accuracy"] - test["accuracy"], 4))
    return {**record, **changes}


def chosen_fold(record: dict) -> str:
    """Where a choice's record (:func:`as_chosen`) was scored, for prose: "the test fold" (holdout), or the deployed
    split's test fold by number (k-fold)."""
    if record["protocol_kind"] != "kfold":
        return "the test fold"
    return (f"the deployed split's test fold (fold {record['test_folds'][-1]}; under k-fold a choice reports on the "
            "one fold no choice saw)")
