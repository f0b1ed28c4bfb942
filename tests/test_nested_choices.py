"""No choice sees a test clip (issue 35): under k-fold, everything that chooses works inside the deployed split's
non-test folds, and what it chose reports on that split's test fold alone. Followed by clip ids, on the suite's
k-fold book run."""
import csv
import json
from types import SimpleNamespace

from edge_audio.steps.baselines import pick_teachers
from edge_audio.train import Protocol


def clips_by_fold(labels_csv) -> dict[int, set[str]]:
    by_fold: dict[int, set[str]] = {}
    with open(labels_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            by_fold.setdefault(int(row["fold"]), set()).add(row["file"])
    return by_fold


def clips_of(by_fold: dict[int, set[str]], folds) -> set[str]:
    return set().union(*(by_fold[int(f)] for f in folds))


def test_no_choice_of_a_kfold_run_sees_a_clip_of_the_fold_that_reports_it(book_run):
    by_fold = clips_by_fold(book_run.root / "odd" / "labels.csv")
    assert sum(map(len, by_fold.values())) == len(set().union(*by_fold.values()))  # a clip lies in one fold
    deployed = Protocol("kfold").splits(sorted(by_fold))[-1]
    reporting = by_fold[deployed.test_fold]
    records = json.loads((book_run.output / "logs" / "all_results.json").read_text())
    evaluated = [r for r in records if r["variant"] != "proxy"]
    assert evaluated and {r["protocol_kind"] for r in evaluated} == {"kfold"}

    # every pick reads `val`: its clips are the deployed split's validation fold's, none of the reporting fold's
    for r in evaluated:
        for seed in r["val"]["by_seed"]:
            read = clips_of(by_fold, seed["folds"])
            assert read == by_fold[deployed.val_fold] and not read & reporting, (r["model"], r["variant"])
    # the search read its proxy split's folds: inside the deployed split's training folds
    proxy = json.loads((book_run.output / "logs" / "nas_history.json").read_text())["proxy_split"]
    searched = clips_of(by_fold, [*proxy["train_folds"], proxy["val_fold"]])
    assert searched and not searched & (reporting | by_fold[deployed.val_fold])
    # what the search chose reports on the reporting fold alone (the other folds were search or choice clips)
    finalists = [r for r in evaluated if r.get("source") == "nas_finalist"]
    assert finalists
    for r in finalists:
        assert r["test_folds"] == [deployed.test_fold] and r["test"]["n"] == len(reporting), r["model"]
    # and so does every number of the frontier, whose picks and fronts are all choices
    for r in evaluated:
        assert r["frontier"]["test_folds"] == [deployed.test_fold], (r["model"], r["variant"])
    # while a baseline's own accuracy, which chooses nothing, pools every test fold: each clip once
    baseline = next(r for r in evaluated if r["variant"] == "fp32" and "source" not in r)
    assert sorted(baseline["test"]["by_seed"][0]["folds"]) == sorted(by_fold)
    assert baseline["test"]["n"] == sum(map(len, by_fold.values()))


def test_each_splits_teacher_is_chosen_on_that_splits_own_validation_fold():
    def baseline(name, val_by_split):
        runs = [SimpleNamespace(val={"accuracy": a}) for a in val_by_split]
        return SimpleNamespace(name=name, seed_runs={0: runs, 1: runs},
                               record={"val_accuracy": val_by_split[-1], "latency_ms": 1.0, "size_bytes": 10})

    a, b = baseline("a", [90.0, 10.0, 50.0]), baseline("b", [10.0, 90.0, 60.0])
    assert [pick_teachers([a, b], "best", s)[0].name for s in range(3)] == ["a", "b", "b"]
    assert pick_teachers([a, b], "best")[0].name == "b"  # the deployed split's (the last)
