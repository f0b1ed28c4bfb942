"""How far a number can be trusted, and whether two models really differ.

* **An accuracy** comes with the clips it was scored on (``n``), how many were right, and a 95% **Wilson score
  interval** (:func:`evaluation`); under k-fold the folds' test clips are pooled for the interval and the folds'
  accuracies give a mean and a standard deviation (:func:`pooled`).
* **Two models that saw the same clips** are compared with an **exact McNemar test** (:func:`mcnemar`): a
  two-sided binomial test on the clips exactly one of them got right. How many predictions changed and the
  agreement rate are reported with it. A difference with p >= :data:`ALPHA` is **a tie within noise**.
* **Two latencies** are compared on timings taken interleaved (:func:`latency_comparison`): a Wilcoxon
  signed-rank test on the paired calls, and a practical margin (:data:`LATENCY_MARGIN`): one model is faster only
  when the test resolves it *and* its median is more than 5% lower.
* **Two searches over several seeds** are compared with a paired t-test on a per-seed score
  (:func:`seeds_comparison`); with one seed there is no verdict.

Every verdict is a value (``better`` is ``"a"``, ``"b"`` or None for a tie), and every sentence the book states
about a difference is made from it (:func:`difference_phrase`), never typed; the prose audit that checks it is
:mod:`edge_audio.claims`.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

ALPHA = 0.05
CONFIDENCE = 0.95
INTERVAL = "Wilson score interval, 95%"
PAIRED_TEST = "exact McNemar test (two-sided binomial test on the clips exactly one model got right)"
LATENCY_TEST = "Wilcoxon signed-rank test on interleaved calls, and a median more than 5% lower"
SEEDS_TEST = "paired t-test over seeds"
LATENCY_MARGIN = 0.05


def accuracy_interval(correct: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of ``correct`` out of ``n``, in percent."""
    if n < 1:
        raise ValueError("an interval needs at least one clip")
    interval = stats.binomtest(int(correct), int(n)).proportion_ci(CONFIDENCE, method="wilson")
    return round(100.0 * float(interval.low), 3), round(100.0 * float(interval.high), 3)


def evaluation(labels, predictions) -> dict:
    """An accuracy with what makes it trustworthy: ``n``, ``correct``, ``accuracy`` (%), ``ci95`` (Wilson), and the
    predictions and labels themselves (so any two evaluations of the same clips can be compared)."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels and predictions must be 1-D, equal and non-empty, got {labels.shape} and "
                         f"{predictions.shape}")
    correct = int((labels == predictions).sum())
    return {"n": int(labels.size), "correct": correct, "accuracy": round(100.0 * correct / labels.size, 4),
            "ci95": list(accuracy_interval(correct, labels.size)), "interval": INTERVAL,
            "labels": labels.tolist(), "predictions": predictions.tolist()}


def interval_text(evaluation: dict) -> str:
    """An evaluation's 95% interval as table text, e.g. ``"81.2-88.9"``."""
    low, high = evaluation["ci95"]
    return f"{low:.1f}-{high:.1f}"


def pooled(evaluations: list[dict]) -> dict:
    """Several folds' evaluations as one: clips pooled (n, correct, interval), and the folds' accuracies with
    their mean and standard deviation (``fold_accuracies``, ``fold_mean``, ``fold_std``; std None for one fold)."""
    labels = [label for e in evaluations for label in e["labels"]]
    predictions = [p for e in evaluations for p in e["predictions"]]
    folds = [e["accuracy"] for e in evaluations]
    return {**evaluation(labels, predictions), "fold_accuracies": folds,
            "fold_mean": round(float(np.mean(folds)), 4),
            "fold_std": round(float(np.std(folds, ddof=0)), 4) if len(folds) > 1 else None}


def mcnemar(a: dict, b: dict) -> dict:
    """Exact McNemar test of two evaluations of the same clips (see the module docstring).

    Returns ``n``, ``changed`` (predictions that differ), ``agreement`` (% of clips predicted alike), ``a_only`` and
    ``b_only`` (clips only that model got right), ``difference`` (accuracy points, a - b), ``p_value``, and
    ``better``: ``"a"``, ``"b"``, or None when the difference is a tie within noise.
    """
    if a["labels"] != b["labels"]:
        raise ValueError("a paired test needs two evaluations of the same clips, in the same order")
    labels = np.asarray(a["labels"])
    pred_a, pred_b = np.asarray(a["predictions"]), np.asarray(b["predictions"])
    right_a, right_b = pred_a == labels, pred_b == labels
    a_only, b_only = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    p_value = float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue) if a_only + b_only else 1.0
    changed = int((pred_a != pred_b).sum())
    better = None if p_value >= ALPHA else ("a" if a_only > b_only else "b")
    return {"n": int(labels.size), "changed": changed, "agreement": round(100.0 * (1 - changed / labels.size), 3),
            "a_only": a_only, "b_only": b_only, "difference": round(a["accuracy"] - b["accuracy"], 4),
            "p_value": round(p_value, 6), "better": better, "test": PAIRED_TEST}


def difference_phrase(name_a: str, name_b: str, comparison: dict) -> str:
    """A sentence on an accuracy difference that says exactly what its paired test resolved."""
    details = (f"{comparison['a_only']} vs {comparison['b_only']} clips right only by one of them, of "
               f"{comparison['n']}; McNemar p = {comparison['p_value']:.3g}")
    if comparison["better"] is None:
        return f"{name_a} and {name_b} are a tie within noise ({details})"
    winner, loser = (name_a, name_b) if comparison["better"] == "a" else (name_b, name_a)
    return f"{winner} is more accurate than {loser} by {abs(comparison['difference']):.2f} points ({details})"


def latency_comparison(times_a, times_b) -> dict:
    """Compare two latencies timed interleaved (paired calls, milliseconds): ``ratio`` (median a / median b),
    ``p_value`` (Wilcoxon signed-rank on the paired calls) and ``faster``: ``"a"``, ``"b"`` or None (a tie)."""
    times_a, times_b = np.asarray(times_a, dtype=float), np.asarray(times_b, dtype=float)
    ratio = float(np.median(times_a) / np.median(times_b))
    differences = times_a - times_b
    p_value = float(stats.wilcoxon(times_a, times_b).pvalue) if np.any(differences != 0) else 1.0
    faster = None
    if p_value < ALPHA and ratio < 1 - LATENCY_MARGIN:
        faster = "a"
    elif p_value < ALPHA and ratio > 1 / (1 - LATENCY_MARGIN):
        faster = "b"
    return {"ratio": round(ratio, 4), "p_value": round(p_value, 6), "faster": faster, "test": LATENCY_TEST,
            "runs": int(times_a.size)}


def seeds_comparison(scores_a: list[float], scores_b: list[float]) -> dict:
    """Compare two methods scored once per seed (the same seeds, in order): means, standard deviations, the
    paired t-test's p-value (None with fewer than two seeds) and ``better``: ``"a"``, ``"b"`` or None (a tie)."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("both methods need one score per seed, for the same seeds")
    differences = a - b
    if a.size < 2:
        p_value = None
    elif np.all(differences == differences[0]):
        p_value = 1.0 if differences[0] == 0 else 0.0  # no spread: the t statistic is infinite (or undefined)
    else:
        p_value = float(stats.ttest_rel(a, b).pvalue)
    better = None if p_value is None or p_value >= ALPHA else ("a" if differences.mean() > 0 else "b")
    return {"seeds": int(a.size), "mean_a": round(float(a.mean()), 6), "std_a": round(float(a.std(ddof=0)), 6),
            "mean_b": round(float(b.mean()), 6), "std_b": round(float(b.std(ddof=0)), 6),
            "p_value": None if p_value is None else round(p_value, 6), "better": better, "test": SEEDS_TEST}
