"""The accuracy-efficiency frontier: from results records to Pareto fronts, hypervolumes, knees and budget answers.

Pure analysis: records in, a :class:`FrontierReport` out (writing the reports is the frontier step's job, in
:mod:`edge_audio.steps.frontier`). Conventions:

* A model's **accuracy** is its test-fold accuracy in percent. NAS candidates carry a *proxy* accuracy (a few
  epochs, validation fold); they are drawn for context but never enter a Pareto set next to test accuracies.
* **Size** is the bytes of the deployed artifact (``.pth`` for FP32 PyTorch, ``.onnx`` for ONNX variants);
  **latency** is the record's headline runtime at batch 1, median; **FLOPs** = 2 x MACs of one clip.
* **Hypervolume** of a 2-D front (accuracy vs a cost) is measured in normalised space: accuracy / 100 and
  cost / the reference cost (the largest cost among the models compared), with reference point (accuracy 0,
  cost 1). Larger is better; 1.0 would be 100% accuracy at zero cost.
* **Knee** and **Pareto** sets: see :mod:`edge_audio.pareto`; budgets and profiles: :mod:`edge_audio.targets`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import UserError
from .pareto import hypervolume, knee_index
from .stats import paired_over_seeds, seeded_difference
from .targets import DEPLOYMENT_PROFILES, Budgets, DeviceProfile, check_profiles


#: Cost axes of the frontier: column of :func:`model_table`, axis label.
COST_AXES = {"size": ("size_bytes", "size on disk (bytes)"), "latency": ("latency_ms", "latency (ms, batch 1)"),
             "flops": ("flops", "FLOPs per clip"), "ram": ("peak_ram_bytes", "peak RAM (bytes; a TFLite file: the whole arena)")}


def model_kind(record: dict) -> str:
    """``baseline``, ``nas finalist``, ``supernet finalist``, ``nas candidate`` (proxy-trained) or ``distilled``,
    from the record's ``source``."""
    return {"nas_finalist": "nas finalist", "supernet_finalist": "supernet finalist", "nas_candidate": "nas candidate",
            "distilled": "distilled"}.get(record.get("source"), "baseline")


def model_table(records: list[dict]) -> pd.DataFrame:
    """One row per evaluated model variant, with its accuracies (test with n and 95% interval, validation) and
    every cost the frontier and the profiles need."""
    rows = []
    for r in records:
        test = r.get("test") or {}
        duration = r["features"]["duration"]
        rows.append({
            "label": f"{r['model']} ({r['variant']})", "model": r["model"], "variant": r["variant"],
            "kind": model_kind(r), "accuracy_kind": r.get("accuracy_kind", "test"), "protocol": r["protocol_kind"],
            "accuracy": float(r["accuracy"]), "n": test.get("n"), "test_folds": list(r.get("test_folds", [])),
            "ci_low": test.get("ci95", [np.nan, np.nan])[0], "ci_high": test.get("ci95", [np.nan, np.nan])[1],
            "val_accuracy": r.get("val_accuracy"),
            "size_bytes": int(r["size_bytes"]), "latency_ms": float(r["latency_ms"]),
            "runtime": r["runtime"], "flops": int(r["flops"]), "macs": int(r["macs"]), "params": int(r["params"]),
            "int8": bool(r.get("int8_weights", False)), "int8_activations": bool(r.get("int8_activations", False)),
            "full_integer_tflite": bool(r.get("full_integer_tflite", False)),
            "peak_ram_bytes": r.get("peak_ram_bytes", np.nan), "flash_bytes": r.get("flash_bytes", np.nan),
            "npu": r.get("npu", {}), "emulated": r.get("emulated", {}),
            "int8_param_bytes": int(r["params"]),  # one byte per parameter once quantized
            "mmacs_per_second": round(r["macs"] / 1e6 / duration, 3),
            "artifact": r["artifact"]["path"] if "artifact" in r else None,
        })
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Neighbours:
    """Two models next to each other on the learning curve and the paired test of the larger against the smaller
    on the same test clips (``comparison`` is :func:`~edge_audio.stats.seeded_difference` of larger - smaller, over
    the training seeds)."""

    smaller: dict
    larger: dict
    comparison: dict

    @property
    def resolved(self) -> bool:
        """Whether the interval shows one of the two more accurate than the other."""
        return self.comparison["verdict"] in ("better", "worse")


def learning_curve(records: list[dict], margin: float) -> tuple[list[dict], list[Neighbours]]:
    """Test accuracy against capacity: the records in order of parameters (then MACs), and each neighbouring pair's
    comparison over seeds at ``margin`` points. Records must be scored on the same test clips and seeds."""
    ordered = sorted(records, key=lambda r: (r["params"], r["macs"], r["model"]))
    return ordered, [Neighbours(a, b, seeded_difference(b["test"], a["test"], margin))
                     for a, b in zip(ordered, ordered[1:])]


@dataclass
class FrontierReport:
    """The frontier analysis: the table of models, one front per cost axis, the best model, the budget answers.

    Accuracy differences are on the shared test clips at the user's margin (:meth:`compare`): two variants of
    the same trained model are paired per seed (:func:`edge_audio.stats.paired_over_seeds`), two models trained
    apart are compared over seeds (:func:`edge_audio.stats.seeded_difference`), so with one seed they never
    resolve. a model *dominates* another on a cost axis (:meth:`dominates`)
    when it costs no more, is shown no worse than it by more than the margin, and costs less or is resolvably more
    accurate. A cheaper model whose difference is undetermined does not dominate: the front keeps both, and the
    book says the data cannot tell them apart. The best model overall, and per profile, is the one
    with the highest **validation** accuracy (then the faster, then the smaller); the test folds only report it.
    """

    table: pd.DataFrame  # every model (test accuracy and proxy rows), with front / budget columns
    axes: dict[str, tuple[str, str]]  # cost axis -> (column of the table, axis label)
    budgets: Budgets
    profiles: dict[str, DeviceProfile]
    evaluations: dict[str, dict]  # label -> the record's test evaluation over seeds (predictions included)
    trainings: dict[str, str]  # label -> the trained model it comes from (its variants share its training)
    margin: float = 1.0  # points of accuracy that count as no loss
    fronts: dict[str, pd.DataFrame] = field(default_factory=dict)  # axis -> front rows, cheapest first
    hypervolumes: dict[str, float] = field(default_factory=dict)
    knees: dict[str, str] = field(default_factory=dict)  # axis -> label of the knee model
    profile_best: pd.DataFrame | None = None
    best: str = ""  # label of the best model overall (validation accuracy)
    _comparisons: dict[tuple[str, str], dict] = field(default_factory=dict, repr=False)

    @property
    def evaluated(self) -> pd.DataFrame:
        """Models with a test-fold accuracy (those the fronts and profiles rank)."""
        return self.table[self.table["accuracy_kind"] == "test"]

    def compare(self, label_a: str, label_b: str) -> dict:
        """The accuracy difference of two evaluated models on their shared test clips (a = ``label_a``), at the
        margin: paired per seed for two variants of one trained model, over seeds for two trainings."""
        pair = (label_a, label_b)
        if pair not in self._comparisons:  # the fronts compare every pair on every axis: each pair computed once
            same = self.trainings[label_a] == self.trainings[label_b]
            self._comparisons[pair] = (paired_over_seeds if same else seeded_difference)(
                self.evaluations[label_a], self.evaluations[label_b], self.margin)
        return self._comparisons[pair]

    def dominates(self, label_a: str, label_b: str, axis: str) -> bool:
        """Whether model a dominates model b on ``axis`` (see the class docstring)."""
        column = self.axes[axis][0]
        rows = self.table.set_index("label")
        cost_a, cost_b = rows.at[label_a, column], rows.at[label_b, column]
        comparison = self.compare(label_a, label_b)
        return bool(cost_a <= cost_b and comparison["a_no_worse"]
                    and (cost_a < cost_b or comparison["verdict"] == "better"))

    def verdicts_against(self, label: str) -> dict[str, int]:
        """How the other evaluated models compare with ``label`` at the margin: counts by verdict."""
        verdicts = [self.compare(other, label)["verdict"] for other in self.evaluated["label"] if other != label]
        return {verdict: verdicts.count(verdict) for verdict in dict.fromkeys(verdicts)}

    def by_validation(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` ordered as picks are made (:func:`edge_audio.results.pick_key`): highest validation accuracy
        first, then the faster, then the smaller."""
        return rows.sort_values(["val_accuracy", "latency_ms", "size_bytes"], ascending=[False, True, True])

    def within_budgets(self) -> pd.DataFrame:
        """Evaluated models meeting every budget (the accuracy budget on validation accuracy), best pick first."""
        rows = self.evaluated
        return self.by_validation(rows[rows["meets_budgets"]])

    def placement(self, record: dict) -> dict:
        """Where one analysed record stands: on which fronts, whether it meets the budgets, which profiles it fits."""
        row = self.table.set_index("label").loc[f"{record['model']} ({record['variant']})"]
        tested = row["accuracy_kind"] == "test"
        return {"pareto": {axis: bool(row[f"front_{axis}"]) for axis in self.axes},
                "meets_budgets": bool(row["meets_budgets"]), "budgets": self.budgets.to_dict(),
                "profiles": [name for name, profile in self.profiles.items() if tested and profile.admits(row)],
                "mmacs_per_second": float(row["mmacs_per_second"]), "test_folds": [int(f) for f in row["test_folds"]]}


def training_of(record: dict) -> str:
    """The training a record's weights come from: its model's training runs, the same for all its post-training
    variants; a variant trained again (its method's ``trains`` trait: quantization-aware training) has its own, so
    it is compared with the others over seeds, like another model."""
    return record["model"] + (f" + {record['method']}" if record.get("trains") else "")


def analyze_frontier(records: list[dict], budgets: Budgets | None = None,
                     profiles: dict | None = None, margin: float = 1.0) -> FrontierReport:
    """Fronts (accuracy vs size, latency, FLOPs), hypervolumes, knees, the best model, budgets and profile
    winners; see :class:`FrontierReport` for how ties and picks are decided.

    Raises :class:`~edge_audio.errors.UserError` when no record has a test accuracy (the baselines have not run
    with these settings).
    """
    budgets = budgets or Budgets()
    profiles = check_profiles(DEPLOYMENT_PROFILES if profiles is None else profiles)
    table = model_table(records)
    if table.empty or not (table["accuracy_kind"] == "test").any():
        raise UserError("no evaluated model in the results log for these settings (dataset, features, training, "
                        "protocol, machine); run the baselines chapter with the same parameters first")
    # the accuracy budget is a threshold, so it is applied to validation accuracy (a proxy's is one already)
    table["meets_budgets"] = [
        all(v <= 0 for v in budgets.violations(row["size_bytes"], row["latency_ms"], row["accuracy"] if
                                               row["accuracy_kind"] == "proxy" else row["val_accuracy"],
                                               *budgets.device_costs(row)).values())
        for _, row in table.iterrows()]
    evaluated = [r for r in records if r.get("accuracy_kind", "test") == "test"]
    evaluations = {f"{r['model']} ({r['variant']})": r["test"] for r in evaluated}
    trainings = {f"{r['model']} ({r['variant']})": training_of(r) for r in evaluated}
    report = FrontierReport(table, COST_AXES, budgets, profiles, evaluations, trainings, margin=margin)
    tested = table["accuracy_kind"] == "test"
    labels = list(table.loc[tested, "label"])
    for axis, (column, _) in COST_AXES.items():
        on_front = [a for a in labels if not any(report.dominates(b, a, axis) for b in labels if b != a)]
        table[f"front_{axis}"] = table["label"].isin(on_front)
        front = table[table["label"].isin(on_front)].sort_values([column, "accuracy"])
        report.fronts[axis] = front
        reference_cost = float(table.loc[tested, column].max())
        points = np.stack([1.0 - front["accuracy"].to_numpy() / 100.0, front[column].to_numpy() / reference_cost],
                          axis=1)
        report.hypervolumes[axis] = round(hypervolume(points, np.array([1.0, 1.0 + 1e-9])), 4)
        report.knees[axis] = front["label"].iloc[knee_index(front[column].to_numpy(), front["accuracy"].to_numpy())]
    report.best = report.by_validation(report.evaluated)["label"].iloc[0]
    best = []
    for name, profile in profiles.items():
        fits = report.by_validation(table[tested & table.apply(profile.admits, axis=1)])
        top = fits.head(1)
        costs = profile.costs(top.iloc[0]) if len(top) else None
        latency, source = profile.latency(top.iloc[0]) if len(top) else (None, None)
        best.append({"profile": name, "limits": profile.describe(),
                     "models that fit": len(fits),
                     "best model (validation)": top["label"].iloc[0] if len(top) else "none fits",
                     "val accuracy (%)": float(top["val_accuracy"].iloc[0]) if len(top) else None,
                     "test accuracy (%)": float(top["accuracy"].iloc[0]) if len(top) else None,
                     "95% interval": f"{top['ci_low'].iloc[0]:.1f}-{top['ci_high'].iloc[0]:.1f}" if len(top) else None,
                     "size (kB)": round(top["size_bytes"].iloc[0] / 1e3, 1) if len(top) else None,
                     "peak RAM (kB)": round(costs.ram_bytes / 1e3, 1) if len(top) else None,
                     "flash (kB)": round(costs.flash_bytes / 1e3, 1) if len(top) else None,
                     "latency (ms)": latency, "latency from": source,
                     "MMACs/s": float(top["mmacs_per_second"].iloc[0]) if len(top) else None})
    report.profile_best = pd.DataFrame(best).set_index("profile")
    return report


def comparison_table(report: FrontierReport) -> pd.DataFrame:
    """The model comparison table (``reports/model_comparison.csv``): one row per evaluated variant."""
    rows = report.table.sort_values(["accuracy_kind", "kind", "accuracy"], ascending=[False, True, False])
    table = pd.DataFrame({
        "model": rows["model"], "variant": rows["variant"], "kind": rows["kind"],
        "accuracy (%)": rows["accuracy"], "n": rows["n"], "95% low": rows["ci_low"], "95% high": rows["ci_high"],
        "val accuracy (%)": rows["val_accuracy"], "accuracy measured on": [
            f"test fold {', '.join(map(str, folds))}" if kind == "test" else "a training fold (NAS proxy)"
            for kind, folds in zip(rows["accuracy_kind"], rows["test_folds"])],
        "size (kB)": (rows["size_bytes"] / 1e3).round(1), "peak RAM (kB)": (rows["peak_ram_bytes"] / 1e3).round(1),
        "flash (kB)": (rows["flash_bytes"] / 1e3).round(1), "latency (ms)": rows["latency_ms"],
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
