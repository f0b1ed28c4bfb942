"""How far a number can be trusted, and what the difference of two models can be said to be.

* **An accuracy** comes with the clips it was scored on (``n``), how many were right, and a 95% interval
  (:func:`evaluation`: the Wilson score interval). Under k-fold (:func:`pooled`) the point is the pooled accuracy
  (every clip counts once, so unequal folds weigh by their clips) and the interval is the wider of the pooled
  Wilson interval and a t-interval over the folds' accuracies around that point: it includes the spread between
  folds, and always holds the point.
* **Two models that saw the same clips** (:func:`paired_difference`) get the difference of their accuracies
  (a - b, points) with **Tango's score interval** for a paired difference (95%), and a verdict at the **margin**
  the user states (``accuracy_margin``, points): *within the margin* (the interval inside +-margin), *better* or
  *worse* (the interval clear of 0, and not within the margin), *no worse* (above -margin), *no better* (below
  +margin), or *undetermined*, with about how many clips would decide it. "Not resolved" is never "equal": only
  *within the margin* is, and only as equal as the user's margin says. The exact McNemar p is reported beside it,
  and *better* or *worse* needs it below 0.05 too: on a handful of discordant clips (0 against 4, 1 against 7)
  the asymptotic interval can clear zero where the exact test does not, and then the difference is not resolved.
* **Training is a draw too.** A model trained with several seeds (``seeds``) has one evaluation per seed
  (:func:`over_seeds`): its accuracy is the mean over seeds, and its interval holds both variances, which clips
  were drawn and how training fell (:data:`SEEDED_INTERVAL`). **Two trained models** (two architectures, a
  distilled student and its label-only twin, a search finalist and a baseline, QAT and PTQ) are compared with
  :func:`seeded_difference`: the mean over seeds of the per-seed paired differences, with a **seed-level
  t-interval widened by the clip level** (:data:`SEEDED_TEST`): the half-widths of a t-interval over the seeds'
  differences (k - 1 degrees of freedom) and of Tango's interval on the seed-averaged discordant clips, added in
  quadrature, on each side. The seeds' spread measures how training fell (and the part of clip sampling that
  differs between seeds); the Tango term holds the clip sampling all seeds share, since they are scored on the
  same clips. With one seed the training variance is not measured, and the verdict is *undetermined*, whatever the
  clips say. A variant compared with its **own** FP32 weights (same training) stays paired per seed, pooled over
  seeds (:func:`paired_over_seeds`): training is not part of that difference.
* **Two latencies** are compared on timings taken interleaved (:func:`latency_comparison`): a Wilcoxon
  signed-rank test on the paired calls, and a practical margin (:data:`LATENCY_MARGIN`): one model is faster only
  when the test resolves it *and* its median is more than 5% lower.
* **Two searches over several seeds** are compared with a paired t-test on a per-seed score
  (:func:`seeds_comparison`); with one seed there is no verdict.

Every verdict is a value, and every sentence the book states about a difference is made from it
(:func:`difference_phrase`), never typed; the prose audit that checks it is :mod:`edge_audio.claims`.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
CONFIDENCE = 0.95
INTERVAL = "Wilson score interval, 95%"
PAIRED_TEST = "Tango's score interval (95%) for the paired accuracy difference, at the stated margin"
KFOLD_INTERVAL = "the wider of the pooled Wilson interval and a t-interval over folds, 95%"
#: The verdicts of a paired accuracy comparison (a against b), in the order they are decided.
VERDICTS = ("within the margin", "better", "worse", "no worse", "no better", "undetermined")
#: How many times the clips :func:`paired_difference` looks for a decision before it says "more than that".
MAX_SCALE = 1000
LATENCY_TEST = "Wilcoxon signed-rank test on interleaved calls, and a median more than 5% lower"
SEEDS_TEST = "paired t-test over seeds"
SEEDED_INTERVAL = "mean over seeds; the seeds' own intervals widened in quadrature by a t-interval over seeds, 95%"
SEEDED_TEST = ("seed-level t-interval (95%) on the paired accuracy difference, widened in quadrature by Tango's "
               "interval on the seed-averaged discordant clips, at the stated margin")
#: Why a model-vs-model verdict with one training seed says nothing.
ONE_SEED = "training variance was not measured (one seed)"
#: How many seeds :func:`seeded_difference` looks at before it says "more than that".
MAX_SEEDS = 50
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


def pooled(evaluations: list[dict], folds: list[int]) -> dict:
    """Several folds' evaluations as one (``evaluations[i]`` scored on the clips of fold ``folds[i]``, one per
    protocol split, in split order): clips pooled (``n``, ``correct``, ``accuracy`` = the pooled accuracy, the
    point every table shows), the folds with their clip counts (``folds``, ``fold_sizes``: what
    :func:`split_part` cuts by), the folds' accuracies with their mean and standard deviation
    (``fold_accuracies``, ``fold_mean``, ``fold_std``; std None for one fold), and ``ci95``: with one fold its
    Wilson interval, with several the wider of the pooled Wilson interval and the t-interval over folds around the
    pooled point."""
    if len(evaluations) != len(folds) or not evaluations:
        raise ValueError(f"one fold per evaluation, and at least one: {len(evaluations)} evaluations, folds {folds}")
    labels = [label for e in evaluations for label in e["labels"]]
    predictions = [p for e in evaluations for p in e["predictions"]]
    accuracies = [e["accuracy"] for e in evaluations]
    merged = evaluation(labels, predictions)
    if len(accuracies) > 1:
        t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(accuracies) - 1))
        half = t * float(np.std(accuracies, ddof=1)) / math.sqrt(len(accuracies))
        low, high = merged["ci95"]
        merged.update(ci95=[round(max(0.0, min(low, merged["accuracy"] - half)), 3),
                            round(min(100.0, max(high, merged["accuracy"] + half)), 3)], interval=KFOLD_INTERVAL)
    return {**merged, "folds": [int(f) for f in folds], "fold_sizes": [len(e["labels"]) for e in evaluations],
            "fold_accuracies": accuracies, "fold_mean": round(float(np.mean(accuracies)), 4),
            "fold_std": round(float(np.std(accuracies, ddof=0)), 4) if len(accuracies) > 1 else None}


def split_part(pooled_evaluation: dict, index: int) -> dict:
    """The part of a :func:`pooled` evaluation scored on one protocol split's fold (``index`` in split order;
    -1: the last, the deployed split), as a one-fold evaluation of its own."""
    ends = np.cumsum(pooled_evaluation["fold_sizes"]).tolist()
    index = range(len(ends))[index]
    start = ends[index - 1] if index else 0
    part = slice(start, ends[index])
    return pooled([evaluation(pooled_evaluation["labels"][part], pooled_evaluation["predictions"][part])],
                  [pooled_evaluation["folds"][index]])


def tango_interval(a_only: float, b_only: float, n: float) -> tuple[float, float]:
    """Tango's (1998) score interval, 95%, for the paired difference of two proportions, (a_only - b_only) / n, as
    fractions. It stays honest where Wald-type intervals collapse: with no discordant clip out of 250 it is about
    +-1.5 points, not zero."""
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    point = (a_only - b_only) / n

    def score(delta: float) -> float:  # the score statistic, the nuisance cell at its constrained MLE
        a, b = 2.0 * n, -a_only - b_only + (2.0 * n - a_only + b_only) * delta
        c = -b_only * delta * (1.0 - delta)
        q = (math.sqrt(max(b * b - 4 * a * c, 0.0)) - b) / (2 * a)
        variance = n * (2 * q + delta * (1 - delta))
        gap = a_only - b_only - n * delta
        if variance > 0:
            return gap / math.sqrt(variance)
        return math.copysign(math.inf, gap) if gap else 0.0

    edge = 1e-12
    low = -1.0 if point <= -1 + edge or score(-1 + edge) <= z else optimize.brentq(
        lambda d: score(d) - z, -1 + edge, point)
    high = 1.0 if point >= 1 - edge or score(1 - edge) >= -z else optimize.brentq(
        lambda d: score(d) + z, point, 1 - edge)
    return low, high


def exact_p(a_only: int, b_only: int) -> float:
    """The exact (binomial) McNemar p-value of ``a_only`` against ``b_only`` discordant clips, two-sided."""
    return float(stats.binomtest(a_only, a_only + b_only, 0.5).pvalue) if a_only + b_only else 1.0


def _verdict(low: float, high: float, margin: float, exact_resolves: bool = True) -> str:
    """The verdict (:data:`VERDICTS`) of a difference whose interval is [low, high] points, at ``margin``. A
    difference is *better* or *worse* only where the exact McNemar test resolves it too (``exact_resolves``): with
    a handful of discordant clips Tango's asymptotic interval can clear zero while the exact test does not (0
    against 4 clips: p = 0.125), and then the two must agree."""
    if -margin < low and high < margin:
        return "within the margin"
    if low > 0 and exact_resolves:
        return "better"
    if high < 0 and exact_resolves:
        return "worse"
    if low > -margin:
        return "no worse"
    if high < margin:
        return "no better"
    return "undetermined"


def _clips_to_decide(a_only: int, b_only: int, n: int, margin: float) -> int | None:
    """About how many clips, with the same rates of clips only one model gets right, would decide an undetermined
    difference (its interval within the margin, or clear of it); None beyond :data:`MAX_SCALE` times these."""
    def decided(scale: float) -> bool:
        low, high = tango_interval(a_only * scale, b_only * scale, n * scale)
        exact = exact_p(round(a_only * scale), round(b_only * scale)) < ALPHA
        return _verdict(100 * low, 100 * high, margin, exact) != "undetermined"

    low, high = 1.0, 2.0
    while not decided(high):
        low, high = high, 2 * high
        if high > MAX_SCALE:
            return None
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (low, middle) if decided(middle) else (middle, high)
    return int(math.ceil(n * high))


def paired_difference(a: dict, b: dict, margin: float) -> dict:
    """The accuracy difference of two evaluations of the same clips (a - b) and its verdict at ``margin`` points
    (see the module docstring).

    Returns ``n``, ``changed`` (predictions that differ), ``agreement`` (% of clips predicted alike), ``a_only``
    and ``b_only`` (clips only that model got right), ``difference`` (points, a - b), ``ci95`` (Tango, points),
    ``margin``, ``verdict`` (one of :data:`VERDICTS`), ``a_no_worse`` / ``b_no_worse`` (that model is shown no more
    than ``margin`` points below the other), ``clips_to_decide`` (for an undetermined verdict: about how many clips
    would decide it; None otherwise or beyond reach) and the exact McNemar ``p_value``.
    """
    if a["labels"] != b["labels"]:
        raise ValueError("a paired comparison needs two evaluations of the same clips, in the same order")
    if not margin >= 0:
        raise ValueError(f"the margin must be >= 0 points, got {margin}")
    labels = np.asarray(a["labels"])
    pred_a, pred_b = np.asarray(a["predictions"]), np.asarray(b["predictions"])
    right_a, right_b = pred_a == labels, pred_b == labels
    a_only, b_only = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    n = int(labels.size)
    p_value = exact_p(a_only, b_only)
    low, high = (100 * bound for bound in tango_interval(a_only, b_only, n))
    verdict = _verdict(low, high, margin, p_value < ALPHA)
    changed = int((pred_a != pred_b).sum())
    return {"n": n, "changed": changed, "agreement": round(100.0 * (1 - changed / n), 3),
            "a_only": a_only, "b_only": b_only, "difference": round(100.0 * (a_only - b_only) / n, 4),
            "ci95": [round(low, 3), round(high, 3)], "margin": float(margin), "verdict": verdict,
            "a_no_worse": bool(low > -margin), "b_no_worse": bool(high < margin),
            "clips_to_decide": _clips_to_decide(a_only, b_only, n, margin) if verdict == "undetermined" else None,
            "p_value": round(p_value, 6), "test": PAIRED_TEST}


def _t_half(values: np.ndarray, seeds: int | None = None) -> float:
    """The 95% t-interval half-width of the mean of ``values`` (one per seed); with ``seeds``, for a mean over
    that many seeds with the same spread."""
    k = values.size if seeds is None else seeds
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1)) * float(np.std(values, ddof=1)) / math.sqrt(k)


def _widened(point: float, low: float, high: float, half: float) -> tuple[float, float]:
    """[low, high] around ``point`` with ``half`` added in quadrature on each side."""
    return point - math.hypot(point - low, half), point + math.hypot(high - point, half)


def over_seeds(evaluations: list[dict], seeds: list[int]) -> dict:
    """One model's accuracy over its training seeds: ``evaluations`` (one :func:`pooled` evaluation per seed, on
    the same clips) kept in ``by_seed``; ``accuracy`` their mean, ``ci95`` the seeds' own intervals (Wilson; under
    k-fold with the folds' spread, :func:`pooled`), their half-widths averaged around the mean, widened in
    quadrature by the t-interval over the seeds' accuracies (one seed: its own interval), the seeds'
    accuracies and standard deviation, ``n``, ``correct`` (mean over seeds, rounded), and the folds' accuracies
    averaged over seeds."""
    if len(evaluations) != len(seeds) or not evaluations:
        raise ValueError("one evaluation per seed, and at least one")
    if any(e["labels"] != evaluations[0]["labels"] for e in evaluations):
        raise ValueError("every seed's evaluation must be of the same clips, in the same order")
    accuracies = np.array([e["accuracy"] for e in evaluations])
    n = evaluations[0]["n"]
    point = float(accuracies.mean())
    correct = float(np.mean([e["correct"] for e in evaluations]))
    if len(evaluations) == 1:
        low, high = evaluations[0]["ci95"]
    else:  # each seed's own interval (Wilson; under k-fold the spread between folds too), averaged around the mean
        below = float(np.mean([e["accuracy"] - e["ci95"][0] for e in evaluations]))
        above = float(np.mean([e["ci95"][1] - e["accuracy"] for e in evaluations]))
        low, high = _widened(point, point - below, point + above, _t_half(accuracies))
    folds = np.mean([e["fold_accuracies"] for e in evaluations], axis=0)
    return {"n": n, "correct": round(correct), "accuracy": round(point, 4),
            "ci95": [round(max(0.0, low), 3), round(min(100.0, high), 3)],
            "interval": evaluations[0]["interval"] if len(evaluations) == 1 else SEEDED_INTERVAL,
            "seeds": list(seeds), "seed_accuracies": [round(float(a), 4) for a in accuracies],
            "seed_std": round(float(accuracies.std(ddof=1)), 4) if len(evaluations) > 1 else None,
            "fold_accuracies": [round(float(f), 4) for f in folds],
            "fold_std": round(float(folds.std(ddof=0)), 4) if folds.size > 1 else None,
            "by_seed": evaluations}


def test_and_val(by_seed: dict[int, list[tuple[dict, dict]]], splits: list) -> tuple[dict, dict]:
    """A trained model's ``test`` and ``val`` over seeds from its (test, validation) evaluations, one pair per protocol
    split (``splits``, in order) for each seed: ``test`` pools every split's test fold; ``val`` is the **deployed
    split's** (the last's) validation fold alone, what every choice is made on, so that under k-fold no choice sees a
    clip of the fold that reports on it (:func:`edge_audio.results.as_chosen`)."""
    seeds = list(by_seed)
    test = over_seeds([pooled([t for t, _ in by_seed[seed]], [s.test_fold for s in splits]) for seed in seeds], seeds)
    val = over_seeds([pooled([by_seed[seed][-1][1]], [splits[-1].val_fold]) for seed in seeds], seeds)
    return test, val


def seeded_split_part(seeded: dict, index: int) -> dict:
    """A model's accuracy over seeds (:func:`over_seeds`) on one protocol split's fold only (:func:`split_part`)."""
    return over_seeds([split_part(e, index) for e in seeded["by_seed"]], seeded["seeds"])


def paired_over_seeds(a: dict, b: dict, margin: float) -> dict:
    """A model against another of the **same training** (a variant against its own FP32 weights): paired per seed,
    pooled over seeds (every seed's clips counted, in seed order); see :func:`paired_difference`."""
    if a["seeds"] != b["seeds"]:
        raise ValueError(f"a paired comparison needs the same seeds, got {a['seeds']} and {b['seeds']}")
    return paired_difference(*({"labels": [l for e in x["by_seed"] for l in e["labels"]],
                                "predictions": [p for e in x["by_seed"] for p in e["predictions"]]} for x in (a, b)),
                             margin)


def seeded_difference(a: dict, b: dict, margin: float) -> dict:
    """The accuracy difference of two **trained models** (a - b), each evaluated per seed on the same clips
    (:func:`over_seeds`), and its verdict at ``margin`` points: the mean of the per-seed paired differences, with
    the seed-level t-interval widened by Tango's interval on the seed-averaged discordant clips (see the module
    docstring). Better or worse needs the exact McNemar test on the seed-averaged discordant clips too.

    Returns what :func:`paired_difference` returns (``a_only`` / ``b_only`` averaged over seeds), plus ``seeds``,
    ``seed_differences``, and ``seeds_to_decide`` (for an undetermined verdict with several seeds: about how many
    seeds with the same spread would decide it; None beyond :data:`MAX_SEEDS`). With one seed the verdict is
    *undetermined* and ``reason`` says the training variance was not measured.
    """
    if a["seeds"] != b["seeds"]:
        raise ValueError(f"two models are compared over the same seeds, got {a['seeds']} and {b['seeds']}")
    per_seed = [paired_difference(x, y, margin) for x, y in zip(a["by_seed"], b["by_seed"])]
    k = len(per_seed)
    n = per_seed[0]["n"]
    a_only = float(np.mean([p["a_only"] for p in per_seed]))
    b_only = float(np.mean([p["b_only"] for p in per_seed]))
    differences = np.array([100.0 * (p["a_only"] - p["b_only"]) / n for p in per_seed])
    point = float(differences.mean())
    clip_low, clip_high = (100 * bound for bound in tango_interval(a_only, b_only, n))
    p_value = exact_p(round(a_only), round(b_only))
    changed = float(np.mean([p["changed"] for p in per_seed]))
    result = {"n": n, "changed": round(changed), "agreement": round(100.0 * (1 - changed / n), 3),
              "a_only": round(a_only, 3), "b_only": round(b_only, 3), "difference": round(point, 4),
              "margin": float(margin), "p_value": round(p_value, 6), "test": SEEDED_TEST, "seeds": k,
              "seed_differences": [round(float(d), 4) for d in differences], "clips_to_decide": None,
              "seeds_to_decide": None}
    if k == 1:
        return {**result, "ci95": [round(clip_low, 3), round(clip_high, 3)], "verdict": "undetermined",
                "a_no_worse": False, "b_no_worse": False, "reason": ONE_SEED}

    def interval(seeds: int) -> tuple[float, float]:
        return _widened(point, clip_low, clip_high, _t_half(differences, seeds))

    low, high = interval(k)
    verdict = _verdict(low, high, margin, p_value < ALPHA)
    if verdict == "undetermined":
        result["seeds_to_decide"] = next((s for s in range(k + 1, MAX_SEEDS + 1)
                                          if _verdict(*interval(s), margin, p_value < ALPHA) != "undetermined"), None)
    return {**result, "ci95": [round(low, 3), round(high, 3)], "verdict": verdict,
            "a_no_worse": bool(low > -margin), "b_no_worse": bool(high < margin)}


def difference_phrase(name_a: str, name_b: str, comparison: dict) -> str:
    """A sentence on an accuracy difference that says exactly what its interval shows at the margin."""
    low, high = comparison["ci95"]
    margin = comparison["margin"]
    seeds = comparison.get("seeds")
    details = (f"difference {comparison['difference']:+.2f} points, 95% interval {low:+.2f} to {high:+.2f}, "
               f"{comparison['n']} clips" + (f", {seeds} seeds" if seeds and seeds > 1 else ""))
    verdict = comparison["verdict"]
    points = f"{margin:g} point{'' if margin == 1 else 's'}"
    if verdict == "within the margin":
        return f"{name_a} is within {points} of {name_b} ({details})"
    if verdict in ("better", "worse"):
        more = "more" if verdict == "better" else "less"
        return f"{name_a} is {more} accurate than {name_b} by {abs(comparison['difference']):.2f} points ({details})"
    if verdict == "no worse":
        return f"{name_a} is no worse than {name_b} by more than {points} ({details})"
    if verdict == "no better":
        return f"{name_b} is no worse than {name_a} by more than {points} ({details})"
    if comparison.get("reason"):
        return f"the data cannot tell {name_a} from {name_b}: {comparison['reason']} ({details})"
    if seeds and seeds > 1:
        more = (f"; about {comparison['seeds_to_decide']} seeds would decide it" if comparison["seeds_to_decide"]
                else f"; more than {MAX_SEEDS} seeds would be needed")
    else:
        more = (f"; about {comparison['clips_to_decide']:,} clips would decide it" if comparison["clips_to_decide"]
                else f"; more than {MAX_SCALE} times these clips would be needed")
    return f"the data cannot tell {name_a} from {name_b} at a margin of {points} ({details}{more})"


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


def rank_agreement(a: list[float], b: list[float]) -> dict:
    """How well ``a`` ranks what ``b`` ranks (e.g. supernet scores against stand-alone training, item by item):
    Kendall's tau-b with a 95% interval (Fisher's z of tau, standard error sqrt(0.437 / (n - 4)): Fieller, Hartley
    and Pearson 1957), n, and whether the interval excludes zero. Needs at least 5 items."""
    n = len(a)
    if n != len(b) or n < 5:
        raise ValueError(f"rank agreement needs two equal lists of at least 5 items, got {len(a)} and {len(b)}")
    tau = float(stats.kendalltau(a, b).statistic)
    if not math.isfinite(tau):  # every item tied in one list: no ranking to agree with
        return {"tau": None, "ci95": None, "n": n, "resolved": False}
    half = 1.959964 * math.sqrt(0.437 / (n - 4))
    z = math.atanh(max(min(tau, 0.999999), -0.999999))
    low, high = math.tanh(z - half), math.tanh(z + half)
    return {"tau": round(tau, 4), "ci95": (round(low, 4), round(high, 4)), "n": n, "resolved": low > 0}
