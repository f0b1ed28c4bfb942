"""The accuracy-efficiency frontier: Pareto sets, hypervolume, the knee, budgets and deployment profiles.

Conventions (see also :mod:`edge_audio.profile`):

* A model's **accuracy** is its test-fold accuracy in percent. NAS candidates carry a *proxy* accuracy (a few
  epochs, validation fold); they are drawn for context but never enter a Pareto set next to test accuracies.
* **Size** is the bytes of the deployed artifact (``.pth`` for FP32 PyTorch, ``.onnx`` for ONNX variants);
  **latency** is the record's headline runtime at batch 1, median; **FLOPs** = 2 x MACs of one clip.
* **Hypervolume** of a 2-D front (accuracy vs a cost) is measured in normalised space: accuracy / 100 and
  cost / the reference cost (the largest cost among the models compared, unless given), with reference point
  (accuracy 0, cost 1). Larger is better; 1.0 would be 100% accuracy at zero cost.
* **Knee**: the point of a front farthest from the straight line between its two ends, with both axes
  normalised to [0, 1] and cost on a log scale (costs span orders of magnitude): where one more step in cost
  stops buying much accuracy.
* **Deployment profiles** are named budgets; the DCASE low-complexity profile counts the way that community
  does (DCASE 2022 Task 1): every parameter, zeros included, at one byte (INT8), at most 128 kB (128,000
  bytes), and at most 30 million MACs per second of audio, i.e. a clip's MACs divided by its duration; the
  feature front end is not counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .results import upsert_results


# ---------------------------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------------------------

def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Which rows of ``points`` (n, d), all objectives to *minimise*, no other row dominates.

    A row dominates another when it is no worse in every objective and better in at least one; equal rows do
    not dominate each other, so duplicates are all kept.
    """
    points = np.asarray(points, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"points must be a 2-D array (n, objectives), got shape {points.shape}")
    keep = np.ones(len(points), dtype=bool)
    for i, point in enumerate(points):
        dominated_by = np.all(points <= point, axis=1) & np.any(points < point, axis=1)
        keep[i] = not dominated_by.any()
    return keep


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """The volume dominated by ``points`` (n, d; minimisation) and bounded by ``reference`` (d,).

    Exact, by slicing along the first objective (fine for the tens of points a search produces). Points not
    strictly better than the reference in every objective add nothing.
    """
    points = np.asarray(points, dtype=float).reshape(-1, len(reference))
    reference = np.asarray(reference, dtype=float)
    points = points[np.all(points < reference, axis=1)]
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        return float(reference[0] - points[:, 0].min())
    points = points[pareto_mask(points)]
    points = points[np.argsort(points[:, 0])]
    volume = 0.0
    for i, point in enumerate(points):
        upper = points[i + 1, 0] if i + 1 < len(points) else reference[0]
        if upper > point[0]:
            volume += (upper - point[0]) * hypervolume(points[:i + 1, 1:], reference[1:])
    return float(volume)


def knee_index(costs: np.ndarray, accuracies: np.ndarray) -> int:
    """Index (into the given arrays, a Pareto front) of the knee; see the module docstring."""
    costs, accuracies = np.asarray(costs, dtype=float), np.asarray(accuracies, dtype=float)
    if len(costs) <= 2:
        return int(np.argmax(accuracies))
    x = np.log10(np.maximum(costs, 1e-12))
    x = (x - x.min()) / max(np.ptp(x), 1e-12)
    y = (accuracies - accuracies.min()) / max(np.ptp(accuracies), 1e-12)
    order = np.argsort(x)
    start, end = np.array([x[order[0]], y[order[0]]]), np.array([x[order[-1]], y[order[-1]]])
    direction = (end - start) / max(np.linalg.norm(end - start), 1e-12)
    offsets = np.stack([x, y], axis=1) - start
    distance = np.abs(offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0])
    return int(np.argmax(distance))


# ---------------------------------------------------------------------------------------------------------------
# Budgets and profiles
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Budgets:
    """Hard limits a deployable model must meet: size in MB (10^6 bytes), latency in ms, accuracy in percent."""

    max_size_mb: float = 2.0
    max_latency_ms: float = 50.0
    min_accuracy: float = 70.0

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_size_mb", "max_latency_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                problems.append(f"{name} must be a positive number, got {value!r}")
        accuracy = self.min_accuracy
        if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0.0 <= accuracy <= 100.0:
            problems.append(f"min_accuracy must be a percentage in [0, 100], got {self.min_accuracy!r}")
        if problems:
            raise ValueError("invalid budgets: " + "; ".join(problems))

    @property
    def max_size_bytes(self) -> float:
        return self.max_size_mb * 1e6

    def violations(self, size_bytes: float, latency_ms: float, accuracy: float | None) -> dict[str, float]:
        """How far each limit is exceeded (<= 0: met), in the limit's own unit; accuracy None counts as 0."""
        return {"size_mb": size_bytes / 1e6 - self.max_size_mb, "latency_ms": latency_ms - self.max_latency_ms,
                "accuracy": self.min_accuracy - (accuracy if accuracy is not None else 0.0)}

    def reasons(self, size_bytes: float, latency_ms: float, accuracy: float | None) -> list[str]:
        """Why a model breaks the budgets, one readable phrase per broken limit (empty: it meets them)."""
        over = self.violations(size_bytes, latency_ms, accuracy)
        reasons = []
        if over["size_mb"] > 0:
            reasons.append(f"size {size_bytes / 1e6:.3f} MB > {self.max_size_mb:g} MB")
        if over["latency_ms"] > 0:
            reasons.append(f"latency {latency_ms:.3f} ms > {self.max_latency_ms:g} ms")
        if over["accuracy"] > 0:
            reasons.append("not trained (hardware budget broken)" if accuracy is None
                           else f"accuracy {accuracy:.2f}% < {self.min_accuracy:g}%")
        return reasons

    def to_dict(self) -> dict:
        return {"max_size_mb": self.max_size_mb, "max_latency_ms": self.max_latency_ms,
                "min_accuracy": self.min_accuracy}


#: Named deployment budgets. ``max_size_bytes`` bounds the artifact's bytes; ``max_int8_param_bytes`` and
#: ``max_mmacs_per_second`` are the DCASE way of counting (see the module docstring). None: no limit.
DEPLOYMENT_PROFILES: dict[str, dict] = {
    "microcontroller": {"max_size_bytes": 256_000, "max_latency_ms": 20.0,
                        "description": "Cortex-M class MCU: <= 256 kB model, <= 20 ms"},
    "smart_speaker": {"max_size_bytes": 2_000_000, "max_latency_ms": 50.0,
                      "description": "smart speaker: <= 2 MB model, <= 50 ms"},
    "gateway": {"max_size_bytes": 10_000_000, "description": "edge gateway: <= 10 MB model"},
    "dcase_low_complexity": {"max_int8_param_bytes": 128_000, "max_mmacs_per_second": 30.0,
                             "description": "DCASE 2022 Task 1: <= 128 kB of INT8 parameters, "
                                            "<= 30 MMACs per second of audio"},
}
PROFILE_LIMITS = ("max_size_bytes", "max_latency_ms", "max_int8_param_bytes", "max_mmacs_per_second")


def check_profiles(profiles: dict[str, dict]) -> dict[str, dict]:
    """Validate user-given profiles (a name -> limits mapping); raises ``ValueError`` naming the bad entry."""
    if not isinstance(profiles, dict):
        raise ValueError(f"profiles must be a mapping of name -> limits, got {profiles!r}")
    for name, limits in profiles.items():
        if not isinstance(limits, dict):
            raise ValueError(f"profile {name!r} must be a mapping of limits, got {limits!r}")
        unknown = set(limits) - set(PROFILE_LIMITS) - {"description"}
        if unknown:
            raise ValueError(f"profile {name!r} has unknown limit(s) {sorted(unknown)}; use {PROFILE_LIMITS}")
        if not any(key in limits for key in PROFILE_LIMITS):
            raise ValueError(f"profile {name!r} sets no limit; use one of {PROFILE_LIMITS}")
        for key in PROFILE_LIMITS:
            if key in limits and not (isinstance(limits[key], (int, float)) and limits[key] > 0):
                raise ValueError(f"profile {name!r}: {key} must be a positive number, got {limits[key]!r}")
    return profiles


# ---------------------------------------------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------------------------------------------

#: Cost axes of the frontier: column of :func:`model_table`, axis label.
COST_AXES = {"size": ("size_bytes", "size on disk (bytes)"), "latency": ("latency_ms", "latency (ms, batch 1)"),
             "flops": ("flops", "FLOPs per clip")}


def model_kind(record: dict) -> str:
    """``baseline``, ``nas finalist`` or ``nas candidate`` (proxy-trained), from the record's ``source``."""
    return {"nas_finalist": "nas finalist", "nas_candidate": "nas candidate"}.get(record.get("source"), "baseline")


def model_table(records: list[dict]) -> pd.DataFrame:
    """One row per evaluated model variant, with every cost the frontier and the profiles need."""
    rows = []
    for r in records:
        int8 = r["variant"].startswith("int8")
        duration = r["features"]["duration"]
        rows.append({
            "label": f"{r['model']} ({r['variant']})", "model": r["model"], "variant": r["variant"],
            "kind": model_kind(r), "accuracy_kind": r.get("accuracy_kind", "test"),
            "accuracy": float(r["accuracy"]), "size_bytes": int(r["size_bytes"]), "latency_ms": float(r["latency_ms"]),
            "runtime": r["runtime"], "flops": int(r["flops"]), "macs": int(r["macs"]), "params": int(r["params"]),
            "int8": int8, "int8_param_bytes": int(r["params"]),  # one byte per parameter once quantized
            "mmacs_per_second": round(r["macs"] / 1e6 / duration, 3), "artifact": r.get("artifact"),
        })
    return pd.DataFrame(rows)


def _meets(row: pd.Series, limits: dict) -> bool:
    checks = {"max_size_bytes": row["size_bytes"], "max_latency_ms": row["latency_ms"],
              "max_int8_param_bytes": row["int8_param_bytes"], "max_mmacs_per_second": row["mmacs_per_second"]}
    if "max_int8_param_bytes" in limits and not row["int8"]:
        return False  # DCASE counts INT8 parameters: only a quantized variant qualifies
    return all(checks[key] <= limits[key] for key in PROFILE_LIMITS if key in limits)


@dataclass
class FrontierReport:
    """The frontier analysis: the table of models, one Pareto front per cost axis, and the budget answers."""

    table: pd.DataFrame  # every model (test accuracy and proxy rows), with front / budget columns
    budgets: Budgets
    profiles: dict[str, dict]
    fronts: dict[str, pd.DataFrame] = field(default_factory=dict)  # axis -> front rows, cheapest first
    hypervolumes: dict[str, float] = field(default_factory=dict)
    knees: dict[str, str] = field(default_factory=dict)  # axis -> label of the knee model
    profile_best: pd.DataFrame | None = None

    @property
    def evaluated(self) -> pd.DataFrame:
        """Models with a test-fold accuracy (those the fronts and profiles rank)."""
        return self.table[self.table["accuracy_kind"] == "test"]

    def within_budgets(self) -> pd.DataFrame:
        """Evaluated models meeting every budget, most accurate first."""
        rows = self.evaluated
        return rows[rows["meets_budgets"]].sort_values(["accuracy", "size_bytes"], ascending=[False, True])


def analyze_frontier(records: list[dict], budgets: Budgets | None = None,
                     profiles: dict[str, dict] | None = None) -> FrontierReport:
    """Pareto fronts (accuracy vs size, latency, FLOPs), hypervolumes, knees, budgets and profile winners.

    Raises ``ValueError`` when no record has a test accuracy (run the baselines first).
    """
    budgets = budgets or Budgets()
    profiles = check_profiles(DEPLOYMENT_PROFILES if profiles is None else profiles)
    table = model_table(records)
    if table.empty or not (table["accuracy_kind"] == "test").any():
        raise ValueError("no evaluated model in the results log; run the baselines chapter first")
    table["meets_budgets"] = [
        all(v <= 0 for v in budgets.violations(row.size_bytes, row.latency_ms, row.accuracy).values())
        for row in table.itertuples()]
    report = FrontierReport(table, budgets, profiles)
    tested = table["accuracy_kind"] == "test"
    for axis, (column, _) in COST_AXES.items():
        rows = table[tested]
        mask = pareto_mask(np.stack([-rows["accuracy"].to_numpy(), rows[column].to_numpy()], axis=1))
        table[f"front_{axis}"] = False
        table.loc[rows.index[mask], f"front_{axis}"] = True
        front = table.loc[rows.index[mask]].sort_values(column)
        report.fronts[axis] = front
        reference_cost = float(rows[column].max())
        points = np.stack([1.0 - front["accuracy"].to_numpy() / 100.0, front[column].to_numpy() / reference_cost],
                          axis=1)
        report.hypervolumes[axis] = round(hypervolume(points, np.array([1.0, 1.0 + 1e-9])), 4)
        report.knees[axis] = front["label"].iloc[knee_index(front[column].to_numpy(), front["accuracy"].to_numpy())]
    best = []
    for name, limits in profiles.items():
        fits = table[tested & table.apply(lambda row: _meets(row, limits), axis=1)]
        top = fits.sort_values(["accuracy", "size_bytes"], ascending=[False, True]).head(1)
        best.append({"profile": name, "limits": limits.get("description", _describe(limits)),
                     "models that fit": len(fits),
                     "best model": top["label"].iloc[0] if len(top) else "none fits",
                     "accuracy (%)": float(top["accuracy"].iloc[0]) if len(top) else None,
                     "size (kB)": round(top["size_bytes"].iloc[0] / 1e3, 1) if len(top) else None,
                     "latency (ms)": float(top["latency_ms"].iloc[0]) if len(top) else None,
                     "MMACs/s": float(top["mmacs_per_second"].iloc[0]) if len(top) else None})
    report.profile_best = pd.DataFrame(best).set_index("profile")
    return report


def _describe(limits: dict) -> str:
    parts = {"max_size_bytes": lambda v: f"<= {v / 1e3:g} kB", "max_latency_ms": lambda v: f"<= {v:g} ms",
             "max_int8_param_bytes": lambda v: f"<= {v / 1e3:g} kB INT8 params",
             "max_mmacs_per_second": lambda v: f"<= {v:g} MMACs/s"}
    return ", ".join(parts[key](limits[key]) for key in PROFILE_LIMITS if key in limits)


def comparison_table(report: FrontierReport) -> pd.DataFrame:
    """The model comparison table (``reports/model_comparison.csv``): one row per evaluated variant."""
    rows = report.table.sort_values(["accuracy_kind", "kind", "accuracy"], ascending=[False, True, False])
    table = pd.DataFrame({
        "model": rows["model"], "variant": rows["variant"], "kind": rows["kind"],
        "accuracy (%)": rows["accuracy"], "accuracy measured on": rows["accuracy_kind"].map(
            {"test": "test fold", "proxy": "validation fold (NAS proxy)"}),
        "size (kB)": (rows["size_bytes"] / 1e3).round(1), "latency (ms)": rows["latency_ms"],
        "runtime": rows["runtime"], "MFLOPs": (rows["flops"] / 1e6).round(2), "params": rows["params"],
        "MMACs/s of audio": rows["mmacs_per_second"], "meets budgets": rows["meets_budgets"],
        **{f"front: {axis}": rows[f"front_{axis}"] for axis in COST_AXES},
    })
    return table.reset_index(drop=True)


def feasibility_points(report: FrontierReport) -> pd.DataFrame:
    """The points of the constraint-feasibility figure: every model, evaluated ones labelled."""
    table = report.table
    return table.assign(feasible=table["meets_budgets"],
                        label=table["label"].where(table["accuracy_kind"] == "test"))


def write_reports(report: FrontierReport, records: list[dict], layout) -> dict[str, Path]:
    """Write ``reports/pareto_frontier.png``, ``reports/constraint_feasibility.png``,
    ``reports/model_comparison.csv``, and complete each record of ``logs/all_results.json`` with its place on
    the fronts and against the budgets and profiles. Returns the paths written."""
    import matplotlib.pyplot as plt

    from . import plots

    paths = {"pareto_frontier": layout.reports / "pareto_frontier.png",
             "constraint_feasibility": layout.reports / "constraint_feasibility.png",
             "model_comparison": layout.reports / "model_comparison.csv"}
    figure = plots.plot_pareto_frontier(report)
    figure.savefig(paths["pareto_frontier"], dpi=120, bbox_inches="tight")
    plt.close(figure)
    figure = plots.plot_constraint_feasibility(feasibility_points(report), report.budgets)
    figure.savefig(paths["constraint_feasibility"], dpi=120, bbox_inches="tight")
    plt.close(figure)
    comparison_table(report).to_csv(paths["model_comparison"], index=False)
    completed = []
    table = report.table.set_index("label")
    for record in records:
        row = table.loc[f"{record['model']} ({record['variant']})"]
        fits = [name for name, limits in report.profiles.items()
                if row["accuracy_kind"] == "test" and _meets(row, limits)]
        completed.append({**record, "frontier": {
            "pareto": {axis: bool(row[f"front_{axis}"]) for axis in COST_AXES},
            "meets_budgets": bool(row["meets_budgets"]), "budgets": report.budgets.to_dict(),
            "profiles": fits, "mmacs_per_second": float(row["mmacs_per_second"])}})
    upsert_results(layout.logs, completed)
    return paths

