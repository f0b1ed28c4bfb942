"""Step 5 (chapter 5): the frontier over every record of this run's context, and the reports.

Reads results only: it never trains or measures anything, so any budget or profile re-runs in seconds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from .. import plots
from ..frontier import FrontierReport, analyze_frontier, comparison_table, feasibility_points
from ..cards import card_path, read_card, write_card
from ..settings import Settings
from ..runtimes import DEPLOYABLE
from ..results import load_results, upsert_results
from .data import PreparedData
from .search import NAS_BEST_FILES


@dataclass
class FrontierResult:
    """The frontier analysis of every evaluated model of one run's context, and the reports written."""

    report: FrontierReport
    records: list[dict]
    paths: dict[str, Path]


def _tell_card(published: Path, record: dict) -> None:
    """Write into the card of the published model file the profiles its placed ``record`` meets."""
    if published.suffix in DEPLOYABLE and card_path(published).is_file():
        write_card({**read_card(published), "profiles": record["frontier"]["profiles"]}, published)


def build_frontier(data: PreparedData, settings: Settings) -> FrontierResult:
    """Analyse every record of this run's context in ``logs/all_results.json`` (see
    :func:`edge_audio.results.run_context`), write ``reports/pareto_frontier.png``,
    ``reports/constraint_feasibility.png`` and ``reports/model_comparison.csv``, and complete each record with
    its place on the fronts and against the budgets and profiles."""
    layout = data.layout
    context_key = data.context(settings)["key"]
    records = load_results(layout.logs, context_key)
    report = analyze_frontier(records, settings.budgets, settings.deployment_profiles)
    paths = {"pareto_frontier": layout.reports / "pareto_frontier.png",
             "constraint_feasibility": layout.reports / "constraint_feasibility.png",
             "model_comparison": layout.reports / "model_comparison.csv"}
    for name, figure in (("pareto_frontier", plots.plot_pareto_frontier(report)),
                         ("constraint_feasibility", plots.plot_constraint_feasibility(feasibility_points(report),
                                                                                      report.budgets))):
        figure.savefig(paths[name], dpi=120, bbox_inches="tight")
        plt.close(figure)
    comparison_table(report).to_csv(paths["model_comparison"], index=False)
    placed = [{**record, "frontier": report.placement(record)} for record in records]
    for record in placed:  # the cards of this run's published models learn which profiles they meet
        published = layout.root / record.get("onnx_artifact", record.get("artifact", ""))
        _tell_card(published, record)
    best = layout.models / NAS_BEST_FILES["spec"]
    if best.is_file():  # and so do the copies of the search's best model
        name = json.loads(best.read_text())["model"]
        for kind, variant in (("onnx", "fp32"), ("int8", "ort_static"), ("tflite", "tflite_int8")):
            record = next((r for r in placed if r["model"] == name and r["variant"] == variant), None)
            if record is not None:
                _tell_card(layout.models / NAS_BEST_FILES[kind], record)
    upsert_results(layout.logs, placed)
    return FrontierResult(report, load_results(layout.logs, context_key), paths)
