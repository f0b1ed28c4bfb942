"""Pareto sets, hypervolume and the knee of a front: plain NumPy, no other dependency.

* A point **dominates** another when it is no worse in every objective and better in at least one (every
  objective minimised); equal points do not dominate each other.
* The **hypervolume** of a set of points is the volume they dominate, bounded by a reference point.
* The **knee** of a 2-D accuracy-cost front is the point farthest from the straight line between its two ends,
  with both axes normalised to [0, 1] and cost on a log scale (costs span orders of magnitude): where one more
  step in cost stops buying much accuracy.
"""
from __future__ import annotations

import numpy as np


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
