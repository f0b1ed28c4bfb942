"""Step 5 (chapter 5): the frontier over every record of this run's context.

Reads results only: it never trains or measures anything, so any budget or profile re-runs in seconds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..cards import card_path, read_card, write_card
from ..frontier import FrontierReport, analyze_frontier, comparison_table
from ..records import with_fields
from ..results import as_chosen, load_results, upsert_results
from ..runtimes import DEPLOYABLE
from ..settings import Settings
from .data import PreparedData
from .search import NAS_BEST_FILES, best_model_variants


@dataclass
class FrontierResult:
    """The frontier analysis of every evaluated model of one run's context, and the comparison table written."""

    report: FrontierReport
    records: list[dict]  # every record of the run's context, placed
    comparison_path: Path  # reports/model_comparison.csv: every record's row of the comparison table

    def test_records(self) -> list[dict]:
        """The records whose accuracy was measured on test folds (not the search's proxy candidates)."""
        return [r for r in self.records if r.get("accuracy_kind", "test") == "test"]


def _tell_card(published: Path, record: dict) -> None:
    """Write into the card of the published model file the profiles its placed ``record`` meets."""
    if published.suffix in DEPLOYABLE and card_path(published).is_file():
        write_card({**read_card(published), "profiles": record["frontier"]["profiles"]}, published)


def build_frontier(data: PreparedData, settings: Settings) -> FrontierResult:
    """Analyse every record of this run's context in ``logs/all_results.json`` (see
    :func:`edge_audio.results.run_context`), write ``reports/model_comparison.csv``, and complete each record with
    its place on the fronts and against the budgets and profiles (and tell the published models' cards)."""
    layout = data.layout
    context_key = data.context(settings)["key"]
    records = load_results(layout.logs, context_key)
    # every number of this chapter belongs to a choice (a pick, its reference, a front): as_chosen reports each
    # record on the deployed split's test fold under k-fold, the one fold no choice saw
    report = analyze_frontier([as_chosen(r) for r in records], settings.budgets, settings.deployment_profiles,
                              settings.accuracy_margin)
    comparison_path = layout.reports / "model_comparison.csv"
    comparison_table(report).to_csv(comparison_path, index=False)
    placed = [with_fields(record, frontier=report.placement(record)) for record in records]
    for record in placed:  # the cards of this run's published models learn which profiles they meet
        artifact = record.get("onnx_artifact") or record.get("artifact")  # a NAS candidate has no file
        if artifact is not None:
            _tell_card(layout.root / artifact["path"], record)
    best = layout.models / NAS_BEST_FILES["spec"]
    if best.is_file():  # and so do the copies of the search's best model
        name = json.loads(best.read_text())["model"]
        for kind, variant in best_model_variants().items():
            record = next((r for r in placed if r["model"] == name and r["variant"] == variant), None)
            if record is not None and (layout.models / NAS_BEST_FILES[kind]).is_file():
                _tell_card(layout.models / NAS_BEST_FILES[kind], record)
    upsert_results(layout.logs, placed)
    return FrontierResult(report, load_results(layout.logs, context_key), comparison_path)
