"""Intervals, paired tests and the check that a chapter states only the differences its tests resolve."""
import json
import math

import nbformat
import numpy as np
import pytest

from edge_audio.book import statement_problems
from edge_audio.claims import Claims, unbacked_claims
from edge_audio.results import as_chosen
from edge_audio.stats import (accuracy_interval, evaluation, latency_comparison, over_seeds, paired_difference,
                              paired_over_seeds, pooled, seeded_difference, seeded_split_part, seeds_comparison,
                              split_part, tango_interval)


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


def tango_score(a_only, b_only, n, delta):
    """Tango's (1998) score statistic, written out independently of the package: the bounds solve |Z| = 1.96."""
    a, b, c = 2 * n, -a_only - b_only + (2 * n - a_only + b_only) * delta, -b_only * delta * (1 - delta)
    q = (math.sqrt(b * b - 4 * a * c) - b) / (2 * a)
    return (a_only - b_only - n * delta) / math.sqrt(n * (2 * q + delta * (1 - delta)))


@pytest.mark.parametrize("a_only, b_only, n", [(0, 0, 250), (3, 0, 250), (10, 2, 250), (20, 20, 250), (30, 5, 1000)])
def test_the_paired_interval_is_tangos_score_interval(a_only, b_only, n):
    low, high = tango_interval(a_only, b_only, n)
    assert low < (a_only - b_only) / n < high
    assert tango_score(a_only, b_only, n, low) == pytest.approx(1.959964, abs=1e-6)
    assert tango_score(a_only, b_only, n, high) == pytest.approx(-1.959964, abs=1e-6)


def test_no_changed_prediction_in_250_clips_cannot_show_a_1_point_margin_but_400_can():
    for n, verdict in ((250, "undetermined"), (400, "within the margin")):
        same = evaluation([0] * n, [0] * (n - 30) + [1] * 30)
        result = paired_difference(same, same, margin=1.0)
        assert result["changed"] == 0 and result["difference"] == 0 and result["verdict"] == verdict
    assert paired_difference(same, same, margin=1.0)["ci95"] == pytest.approx([-0.951, 0.951], abs=1e-3)
    at_250 = evaluation([0] * 250, [0] * 250)
    undetermined = paired_difference(at_250, at_250, margin=1.0)
    assert undetermined["ci95"] == pytest.approx([-1.513, 1.513], abs=1e-3)  # about the rule of three
    assert 380 <= undetermined["clips_to_decide"] <= 390  # what 400 clips then confirm


def test_paired_verdicts_at_the_margin():
    labels = [0] * 400

    def scored(right_only_a, right_only_b, both=300):
        a = [0] * both + [0] * right_only_a + [1] * right_only_b
        b = [0] * both + [1] * right_only_a + [0] * right_only_b
        rest = len(labels) - len(a)
        return evaluation(labels, a + [1] * rest), evaluation(labels, b + [1] * rest)

    cases = {(20, 2): "better", (2, 20): "worse", (0, 0): "within the margin", (8, 2): "no worse",
             (2, 8): "no better", (12, 8): "undetermined"}
    for (a_only, b_only), verdict in cases.items():
        result = paired_difference(*scored(a_only, b_only), margin=1.0)
        assert (result["a_only"], result["b_only"]) == (a_only, b_only)
        assert result["verdict"] == verdict, (a_only, b_only, result)
        assert result["a_no_worse"] == (result["ci95"][0] > -1.0) and result["b_no_worse"] == (result["ci95"][1] < 1.0)
        assert (result["clips_to_decide"] is not None) == (verdict == "undetermined")
    # the exact McNemar p is reported beside it
    assert paired_difference(*scored(6, 0), margin=1.0)["p_value"] == pytest.approx(2 * 0.5 ** 6)
    with pytest.raises(ValueError, match="same clips"):
        paired_difference(evaluation([0, 1], [0, 1]), evaluation([1, 0], [0, 1]), margin=1.0)


@pytest.mark.parametrize("a_only, b_only, p", [(0, 4, 0.125), (1, 7, 0.0703125)])
def test_a_handful_of_discordant_clips_resolves_nothing_the_exact_test_does_not(a_only, b_only, p):
    """Tango's asymptotic interval clears zero on 0 against 4 and 1 against 7 discordant clips out of 600, while
    the exact McNemar test does not resolve them: the verdict is not "worse"."""
    labels = [0] * 600
    a = [1] * b_only + [0] * a_only + [0] * (600 - a_only - b_only)
    b = [0] * b_only + [1] * a_only + [0] * (600 - a_only - b_only)
    result = paired_difference(evaluation(labels, a), evaluation(labels, b), margin=1.0)
    assert result["ci95"][1] < 0  # the asymptotic interval alone would call it worse
    assert result["p_value"] == pytest.approx(p, abs=1e-6) and result["verdict"] == "no better"
    assert not Claims().accuracy("a", "b", result).startswith("a is less accurate")
    many = paired_difference(evaluation([0] * 600, [1] * 10 + [0] * 590), evaluation([0] * 600, [0] * 600), 1.0)
    assert many["verdict"] == "worse" and many["p_value"] < 0.05  # where both resolve it, it stays resolved


def test_pooled_folds_give_the_pooled_point_and_an_interval_with_the_spread_between_folds():
    folds = [evaluation([0] * 10, [0] * 8 + [1] * 2), evaluation([0] * 30, [0] * 30)]  # unequal folds
    result = pooled(folds, [1, 2])
    assert result["n"] == 40 and result["correct"] == 38 and result["fold_accuracies"] == [80.0, 100.0]
    assert result["accuracy"] == 95.0 and result["fold_mean"] == 90.0 and result["fold_std"] == 10.0
    low, high = result["ci95"]
    wilson_low, wilson_high = accuracy_interval(38, 40)
    assert low <= wilson_low and high >= wilson_high and low < result["accuracy"] <= high
    assert low < 95.0 - 12.706 * 14.142 / math.sqrt(2) + 1e-6 or low == 0.0  # t(1) over two folds: very wide
    one = pooled(folds[:1], [1])
    assert one["ci95"] == list(accuracy_interval(8, 10)) and one["accuracy"] == 80.0


def test_a_split_part_is_its_folds_clips_alone_and_as_chosen_cuts_a_kfold_record_to_the_deployed_fold():
    folds = [evaluation([0] * 10, [0] * 8 + [1] * 2), evaluation([1] * 30, [1] * 27 + [0] * 3)]
    whole = pooled(folds, [4, 7])
    assert whole["folds"] == [4, 7] and whole["fold_sizes"] == [10, 30]
    last = split_part(whole, -1)
    assert last["n"] == 30 and last["accuracy"] == 90.0 and last["folds"] == [7] and last["labels"] == [1] * 30
    assert split_part(whole, 0)["ci95"] == list(accuracy_interval(8, 10))
    seeded = over_seeds([whole, pooled([folds[0], evaluation([1] * 30, [1] * 30)], [4, 7])], [0, 1])
    assert seeded_split_part(seeded, -1)["seed_accuracies"] == [90.0, 100.0]
    twin = over_seeds([pooled([evaluation([0] * 10, [0] * 10), evaluation([1] * 30, [1] * 30)], [4, 7])] * 2, [0, 1])
    record = {"protocol_kind": "kfold", "test_folds": [4, 7], "test": seeded, "accuracy": seeded["accuracy"],
              "accuracy_std": 5.0, "fp32": {"test": twin, "accuracy": twin["accuracy"]},
              "paired": {"test": paired_over_seeds(seeded, twin, 1.0), "val": {}}, "accuracy_drop": 0.0}
    chosen = as_chosen(record)
    assert chosen["test"]["n"] == 30 and chosen["test_folds"] == [7] and chosen["accuracy"] == 95.0
    assert chosen["paired"]["test"]["n"] == 60 and chosen["fp32"]["accuracy"] == 100.0 and chosen["accuracy_drop"] == 5.0
    assert as_chosen(chosen) == chosen  # one fold: nothing to cut
    assert record["test"] is seeded  # the record itself is left as it was


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


def test_a_sentence_asserting_an_unresolved_difference_or_an_unshown_equality_is_caught():
    labels = [0] * 80
    undetermined = paired_difference(evaluation(labels, [0] * 70 + [1] * 10), evaluation(labels, [0] * 69 + [1] * 11),
                                     margin=1.0)
    claims = Claims()
    sentence = claims.accuracy("nas_1", "tiny", undetermined)  # made from the verdict: says the data cannot tell
    assert sentence.startswith("the data cannot tell nas_1 from tiny at a margin of 1 point")
    assert unbacked_claims(claims.items, []) == []
    claims.state("nas_1 is more accurate than tiny", False, undetermined["p_value"], undetermined["test"])
    assert any("unresolved difference" in p for p in unbacked_claims(claims.items, []))
    # prose that asserts a difference no resolved claim states, or equality no verdict shows
    assert unbacked_claims([], ["NSGA-II won over random search."])
    assert unbacked_claims([], ["The microcontroller pick is the best model, so nothing is given up."])
    assert unbacked_claims([], ["tiny (ort_static) is within 1 point of its FP32 twin."])
    assert unbacked_claims([], ["28 of 28 variants are a tie within noise."])  # the retired phrase
    shown = paired_difference(evaluation([0] * 400, [0] * 400), evaluation([0] * 400, [0] * 400), margin=1.0)
    claims = Claims()
    claims.accuracy("tiny (ort_static)", "tiny (fp32)", shown)
    assert unbacked_claims(claims.items, ["tiny (ort_static) is within 1 point of tiny (fp32) (difference +0.00 "
                                          "points, 95% interval -0.95 to +0.95, 400 clips)."]) == []


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


def test_a_page_claiming_no_loss_against_a_chapters_resolved_loss_is_caught(tmp_path):
    from edge_audio.book import page_problems

    labels = [0] * 400
    loss = paired_difference(evaluation(labels, [0] * 340 + [1] * 60), evaluation(labels, [0] * 370 + [1] * 30),
                             margin=1.0)
    claims = Claims()
    stated = claims.accuracy("nas_1 (tflite_int8)", "medium (fp32)", loss)
    assert loss["verdict"] == "worse" and stated.startswith("nas_1 (tflite_int8) is less accurate than medium")
    (tmp_path / "chapters").mkdir()
    write_executed(tmp_path / "chapters" / "05_frontier.ipynb", claims.as_json(), stated + ".")
    intro = ("The microcontroller pick is nas_1 (tflite_int8): it is the best model overall, so nothing is given up. "
             "nas_1 (tflite_int8) is within 1 point of medium (fp32). Both are a tie within noise.")
    problems = page_problems(intro, tmp_path / "chapters")
    assert len(problems) == 3 and any("nothing is given up" in p for p in problems)
    assert any("within 1 point of medium" in p for p in problems) and any("tie" in p for p in problems)
    assert page_problems(f"The microcontroller pick: {stated}.", tmp_path / "chapters") == []


def test_statement_problems_reads_an_executed_chapter(tmp_path):
    unresolved = [{"sentence": "small is faster than tiny", "resolved": False, "p_value": 0.4, "test": "t"}]
    path = write_executed(tmp_path / "bad.ipynb", json.dumps(unresolved), "small is faster than tiny.")
    assert any("unresolved difference" in p for p in statement_problems(path))
    resolved = [{**unresolved[0], "resolved": True, "p_value": 0.001}]
    assert statement_problems(write_executed(tmp_path / "good.ipynb", json.dumps(resolved),
                                             "small is faster than tiny.")) == []
    assert statement_problems(write_executed(tmp_path / "typed.ipynb", "[]", "**NSGA-II won** on hypervolume."))


def seeded_models(rng, n, seeds, shifts, difficulty=1.5, training=0.4):
    """Two models' per-seed evaluations on ``n`` clips drawn from one population: a clip's difficulty is shared
    by both models and every seed; each training draws a shift of the model's logit (``training``: its standard
    deviation, the seed variance); each clip is then right with the logistic of the sum."""

    theta = rng.normal(0.0, difficulty, n)
    labels = [0] * n
    models = []
    for shift in shifts:
        per_seed = []
        for _ in range(seeds):
            right = rng.random(n) < 1 / (1 + np.exp(-(theta + shift + rng.normal(0.0, training))))
            per_seed.append(pooled([evaluation(labels, np.where(right, 0, 1))], [1]))
        models.append(over_seeds(per_seed, list(range(seeds))))
    return models


def population_accuracy(shift, spread):
    """The expected accuracy (%) of a model whose logit is ``shift`` plus a normal of standard deviation
    ``spread`` (clip difficulty and training together), by Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return 100 * float(np.sum(w / np.sqrt(2 * np.pi) / (1 + np.exp(-(shift + spread * x)))))


def test_the_seeded_interval_covers_the_population_difference_when_training_varies():
    """Coverage simulation: two models, 3 seeds each, 600 clips, a real seed variance (a logit shift of sd 0.4 per
    training, about 8 points of accuracy). Over 300 replications (new clips, new trainings), the 95% interval of
    seeded_difference holds the population difference (over clips and trainings) about 95% of the time; the
    clip-level interval alone (Tango on one seed) holds it far less often."""

    rng = np.random.default_rng(20261207)
    shifts, training, difficulty = (0.6, 0.4), 0.4, 1.5
    spread = math.hypot(difficulty, training)
    truth = population_accuracy(shifts[0], spread) - population_accuracy(shifts[1], spread)
    seeded = clip_only = 0
    replications = 300
    for _ in range(replications):
        a, b = seeded_models(rng, 600, 3, shifts, difficulty, training)
        low, high = seeded_difference(a, b, 1.0)["ci95"]
        seeded += low <= truth <= high
        low, high = paired_difference(a["by_seed"][0], b["by_seed"][0], 1.0)["ci95"]
        clip_only += low <= truth <= high
    assert 0.92 <= seeded / replications <= 0.99, seeded / replications
    assert clip_only / replications < 0.85, clip_only / replications


def test_one_seed_never_resolves_a_model_against_another_and_says_why():

    labels = [0] * 600
    a = over_seeds([pooled([evaluation(labels, [0] * 600)], [1])], [0])
    b = over_seeds([pooled([evaluation(labels, [0] * 300 + [1] * 300)], [1])], [0])
    result = seeded_difference(a, b, 1.0)
    assert result["difference"] == 50.0 and result["ci95"][0] > 40  # the clips alone would resolve it
    assert result["verdict"] == "undetermined" and not result["a_no_worse"] and not result["b_no_worse"]
    assert "training variance was not measured" in Claims().accuracy("a", "b", result)
    with pytest.raises(ValueError, match="same seeds"):
        seeded_difference(a, over_seeds([b["by_seed"][0]], [1]), 1.0)


def over_three_seeds(rights, n=600):
    """A model's evaluation over seeds: at each seed the first ``right`` of ``n`` shared clips right."""

    return over_seeds([pooled([evaluation([0] * n, [0] * r + [1] * (n - r))], [1]) for r in rights],
                      list(range(len(rights))))


def test_seeds_that_agree_resolve_and_seeds_that_scatter_ask_for_more_seeds():

    model = over_three_seeds
    steady = seeded_difference(model([480, 482, 479]), model([420, 421, 419]), 1.0)
    assert steady["verdict"] == "better" and steady["seeds"] == 3 and steady["ci95"][0] > 0
    scattered = seeded_difference(model([480, 400, 470]), model([420, 460, 430]), 1.0)
    assert scattered["verdict"] == "undetermined"
    assert scattered["seeds_to_decide"] is None or scattered["seeds_to_decide"] > 3
    assert "seeds would" in Claims().accuracy("a", "b", scattered)
    # one model's accuracy over seeds: the mean, an interval wider than one seed's Wilson interval
    spread = model([480, 400, 470])
    assert spread["accuracy"] == pytest.approx(100 * 1350 / 1800, abs=1e-3) and spread["seed_std"] > 5
    assert spread["ci95"][1] - spread["ci95"][0] > 2 * (accuracy_interval(450, 600)[1] - accuracy_interval(450, 600)[0])


def test_a_table_cell_says_what_would_decide_an_undetermined_comparison_of_two_trainings():
    from edge_audio.tables import accuracy_verdict

    labels = [0] * 600
    model = over_three_seeds
    scattered = seeded_difference(model([480, 400, 470]), model([420, 460, 430]), 1.0)
    assert "seeds would decide" in accuracy_verdict(scattered) and "clips" not in accuracy_verdict(scattered)
    one = seeded_difference(model([480]), model([300]), 1.0)
    assert accuracy_verdict(one).endswith("training variance was not measured (one seed)")
    clips = paired_difference(evaluation(labels, [0] * 600), evaluation(labels, [0] * 600), 1.0)
    assert accuracy_verdict(clips).startswith("within the margin")


def test_rank_agreement_is_kendalls_tau_with_an_interval_that_tightens_with_n():
    from scipy import stats as scipy_stats

    from edge_audio.stats import rank_agreement

    rng = np.random.default_rng(0)
    truth = rng.normal(size=40)
    noisy = truth + rng.normal(scale=0.5, size=40)
    agreement = rank_agreement(list(noisy), list(truth))
    assert agreement["tau"] == pytest.approx(scipy_stats.kendalltau(noisy, truth).statistic, abs=1e-4)
    low, high = agreement["ci95"]
    assert low < agreement["tau"] < high and agreement["resolved"]
    few = rank_agreement(list(noisy[:8]), list(truth[:8]))
    assert few["ci95"][1] - few["ci95"][0] > high - low  # fewer items, a wider interval
    assert rank_agreement([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])["tau"] == -1.0
    assert rank_agreement([1, 1, 1, 1, 1], [1, 2, 3, 4, 5])["tau"] is None  # nothing to rank
    with pytest.raises(ValueError, match="at least 5"):
        rank_agreement([1, 2, 3], [1, 2, 3])
