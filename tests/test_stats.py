"""Intervals, paired tests and the check that a chapter states only the differences its tests resolve."""
import json
import math

import nbformat
import pytest

from edge_audio.book import statement_problems
from edge_audio.claims import Claims, unbacked_claims
from edge_audio.stats import accuracy_interval, evaluation, latency_comparison, mcnemar, pooled, seeds_comparison


def wilson(correct, n, z=1.959963984540054):
    p = correct / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return 100 * (center - half), 100 * (center + half)


@pytest.mark.parametrize("correct,n", [(69, 80), (80, 80), (0, 30), (230, 250)])
def test_accuracy_interval_is_the_wilson_interval(correct, n):
    low, high = accuracy_interval(correct, n)
    expected = wilson(correct, n)
    assert low == pytest.approx(expected[0], abs=1e-3) and high == pytest.approx(expected[1], abs=1e-3)


def test_an_80_clip_fold_cannot_resolve_a_few_points():
    low, high = accuracy_interval(70, 80)  # 87.5 %: the interval is about +-7 points wide
    assert high - low > 13


def test_mcnemar_counts_the_clips_one_model_alone_got_right():
    labels = [0] * 100
    a = evaluation(labels, [0] * 90 + [1] * 10)
    b = evaluation(labels, [0] * 84 + [1] * 16)
    result = mcnemar(a, b)
    assert (result["a_only"], result["b_only"], result["changed"]) == (6, 0, 6)
    assert result["p_value"] == pytest.approx(2 * 0.5 ** 6)  # exact two-sided binomial
    assert result["better"] == "a" and result["agreement"] == 94.0
    c = evaluation(labels, [0] * 86 + [1] * 14)
    assert mcnemar(a, c)["better"] is None and mcnemar(a, c)["p_value"] == pytest.approx(0.125)


def test_mcnemar_refuses_evaluations_of_different_clips():
    with pytest.raises(ValueError, match="same clips"):
        mcnemar(evaluation([0, 1], [0, 1]), evaluation([1, 0], [0, 1]))


def test_pooled_folds_give_the_mean_the_std_and_the_pooled_interval():
    folds = [evaluation([0] * 10, [0] * 8 + [1] * 2), evaluation([0] * 30, [0] * 30)]
    result = pooled(folds)
    assert result["n"] == 40 and result["correct"] == 38 and result["fold_accuracies"] == [80.0, 100.0]
    assert result["fold_mean"] == 90.0 and result["fold_std"] == 10.0
    assert result["ci95"] == list(accuracy_interval(38, 40))


def test_latency_needs_a_resolved_test_and_a_margin():
    fast = [1.0 + 0.01 * (i % 3) for i in range(50)]
    assert latency_comparison(fast, [2 * t for t in fast])["faster"] == "a"
    assert latency_comparison([2 * t for t in fast], fast)["faster"] == "b"
    # 2 % faster on every call: resolved by the test, but inside the 5 % margin, so a tie
    assert latency_comparison([0.98 * t for t in fast], fast)["faster"] is None


def test_one_seed_gives_no_verdict_and_seeds_give_one():
    assert seeds_comparison([0.7], [0.6])["better"] is None
    assert seeds_comparison([0.71, 0.72, 0.70], [0.60, 0.61, 0.62])["better"] == "a"
    assert seeds_comparison([0.70, 0.60, 0.65], [0.62, 0.66, 0.66])["better"] is None


def test_a_sentence_asserting_an_unresolved_difference_is_caught():
    labels = [0] * 80
    tie = mcnemar(evaluation(labels, [0] * 70 + [1] * 10), evaluation(labels, [0] * 69 + [1] * 11))
    claims = Claims()
    claims.accuracy("nas_1", "tiny", tie)  # made from the test: says "tie within noise"
    assert unbacked_claims(claims.items, []) == []
    claims.state("nas_1 is more accurate than tiny", tie["better"] is not None, tie["p_value"], tie["test"])
    assert any("unresolved difference" in p for p in unbacked_claims(claims.items, []))
    # prose that asserts a difference no resolved claim states
    assert unbacked_claims([], ["NSGA-II won over random search."])


def write_executed(path, claims, markdown):
    """A minimal executed chapter: a glued ``claims`` value and one Markdown output."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": repr(claims)},
                               metadata={"scrapbook": {"name": "claims", "mime_prefix": ""}}),
        nbformat.v4.new_output("display_data", data={"text/markdown": markdown})]
    nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


def test_statement_problems_reads_an_executed_chapter(tmp_path):
    unresolved = [{"sentence": "small is faster than tiny", "resolved": False, "p_value": 0.4, "test": "t"}]
    path = write_executed(tmp_path / "bad.ipynb", json.dumps(unresolved), "small is faster than tiny.")
    assert any("unresolved difference" in p for p in statement_problems(path))
    resolved = [{**unresolved[0], "resolved": True, "p_value": 0.001}]
    assert statement_problems(write_executed(tmp_path / "good.ipynb", json.dumps(resolved),
                                             "small is faster than tiny.")) == []
    assert statement_problems(write_executed(tmp_path / "typed.ipynb", "[]", "**NSGA-II won** on hypervolume."))
