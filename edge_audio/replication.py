"""Do the book's verdicts replicate? Every model-vs-model verdict computed twice, from two disjoint sets of
training seeds, and compared.

A verdict that holds training's variance (:func:`edge_audio.stats.seeded_difference`) should come out the same
from other seeds: the same sign, and, where one set resolves it, mostly resolved the same way by the other.
:func:`verdicts` makes every pairwise verdict among a set of trained models from one seed set, :func:`agreement`
counts how two sets' verdicts agree, and :func:`replication_figure` draws them against each other.
``scripts/replicate.py`` trains the second seed set for a finished run and prints the result.

Goals (issue 35): no verdict changes sign (a resolved *better* in one set and a resolved *worse* in the other),
and at least 90 % of the verdicts resolved in the first set are resolved the same way in the second.
"""
from __future__ import annotations

import itertools

from .stats import seeded_difference

#: The verdicts that say which model is more accurate.
RESOLVED = ("better", "worse")
#: The share of resolved verdicts the second seed set must resolve the same way (issue 35).
GOAL = 0.9


def verdicts(models: dict[str, dict], margin: float) -> dict[tuple[str, str], dict]:
    """Every pair of ``models`` (name -> its test evaluation over one seed set, :func:`edge_audio.stats.over_seeds`),
    in name order, compared over those seeds at ``margin`` points."""
    return {(a, b): seeded_difference(models[a], models[b], margin)
            for a, b in itertools.combinations(sorted(models), 2)}


def agreement(first: dict[tuple[str, str], dict], second: dict[tuple[str, str], dict]) -> dict:
    """How the verdicts of two seed sets on the same pairs agree: ``pairs``; ``same`` (the same verdict);
    ``resolved_first`` (resolved better or worse in the first set) and ``resolved_same`` (of those, resolved the
    same way in the second); ``sign_changes`` (resolved one way in one set and the other way in the other, the
    pairs named); ``share`` (resolved_same / resolved_first, None when nothing was resolved); ``meets_goal``."""
    if set(first) != set(second):
        raise ValueError("the two seed sets must compare the same pairs")
    flips = [pair for pair in first if {first[pair]["verdict"], second[pair]["verdict"]} == set(RESOLVED)]
    resolved = [pair for pair in first if first[pair]["verdict"] in RESOLVED]
    kept = [pair for pair in resolved if second[pair]["verdict"] == first[pair]["verdict"]]
    share = len(kept) / len(resolved) if resolved else None
    return {"pairs": len(first), "same": sum(first[p]["verdict"] == second[p]["verdict"] for p in first),
            "resolved_first": len(resolved), "resolved_same": len(kept),
            "sign_changes": [f"{a} vs {b}" for a, b in flips], "share": share,
            "meets_goal": not flips and (share is None or share >= GOAL)}


def replication_figure(first: dict[tuple[str, str], dict], second: dict[tuple[str, str], dict],
                       seeds: tuple[list[int], list[int]]):
    """Each pair's difference from the first seed set against the second's, with both 95% intervals: a point on
    the diagonal replicates exactly; filled where the two verdicts agree, hollow where they do not."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    pairs = sorted(first)
    for pair in pairs:
        a, b = first[pair], second[pair]
        same = a["verdict"] == b["verdict"]
        ax.errorbar(a["difference"], b["difference"],
                    xerr=[[a["difference"] - a["ci95"][0]], [a["ci95"][1] - a["difference"]]],
                    yerr=[[b["difference"] - b["ci95"][0]], [b["ci95"][1] - b["difference"]]],
                    fmt="o", color="tab:blue" if same else "tab:red", mfc="tab:blue" if same else "white",
                    elinewidth=0.8, capsize=2, alpha=0.85)
    low = min(min(v["ci95"][0] for v in first.values()), min(v["ci95"][0] for v in second.values()))
    high = max(max(v["ci95"][1] for v in first.values()), max(v["ci95"][1] for v in second.values()))
    ax.plot([low, high], [low, high], color="grey", lw=0.8, ls="--")
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel(f"difference (points), seeds {seeds[0]}")
    ax.set_ylabel(f"difference (points), seeds {seeds[1]}")
    ax.set_title("Every model-vs-model verdict from two disjoint seed sets\n(blue: same verdict; red: not)",
                 fontsize=10)
    fig.tight_layout()
    return fig
