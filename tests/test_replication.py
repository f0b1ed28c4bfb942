"""The replication check: every model-vs-model verdict from two disjoint seed sets, and how they agree."""
import subprocess
import sys
from pathlib import Path

import pytest

from edge_audio.replication import agreement, replication_figure, verdicts
from edge_audio.stats import evaluation, over_seeds, pooled

ROOT = Path(__file__).resolve().parents[1]


def model(rights, n=600):
    """A model's evaluation over seeds: at each seed the first ``right`` of ``n`` shared clips right."""
    return over_seeds([pooled([evaluation([0] * n, [0] * r + [1] * (n - r))], [1]) for r in rights], list(range(len(rights))))


def test_agreement_counts_same_verdicts_resolved_ones_kept_and_sign_changes():
    first = verdicts({"big": model([480, 482, 479]), "mid": model([420, 421, 419]), "low": model([300, 302, 301])}, 1.0)
    assert {pair: v["verdict"] for pair, v in first.items()} == {
        ("big", "low"): "better", ("big", "mid"): "better", ("low", "mid"): "worse"}
    same = agreement(first, first)
    assert same == {"pairs": 3, "same": 3, "resolved_first": 3, "resolved_same": 3, "sign_changes": [], "share": 1.0,
                    "meets_goal": True}
    # other seeds: mid now above big, resolved: a sign change, and the goal is missed
    second = verdicts({"big": model([420, 421, 419]), "mid": model([480, 482, 479]), "low": model([300, 302, 301])},
                      1.0)
    result = agreement(first, second)
    assert result["sign_changes"] == ["big vs mid"] and result["resolved_same"] == 2 and not result["meets_goal"]
    # scattered seeds resolve nothing: not a sign change, but fewer resolved the same way
    scattered = verdicts({"big": model([480, 400, 470]), "mid": model([420, 470, 430]),
                          "low": model([300, 302, 301])}, 1.0)
    result = agreement(first, scattered)
    assert result["sign_changes"] == [] and scattered[("big", "mid")]["verdict"] == "undetermined"
    assert result["share"] == pytest.approx(2 / 3) and not result["meets_goal"]
    with pytest.raises(ValueError, match="same pairs"):
        agreement(first, {("big", "mid"): first[("big", "mid")]})
    figure = replication_figure(first, second, ([0, 1, 2], [3, 4, 5]))
    assert "two disjoint seed sets" in figure.axes[0].get_title()


def test_the_script_refuses_seeds_of_the_run_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "replicate.py"), "--output-dir", str(tmp_path),
                             "--seeds", "2", "3"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "disjoint from the run's seeds [0, 1, 2]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "replicate.py"), "--output-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and "no finished run" in result.stderr
