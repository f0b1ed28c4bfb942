"""The run's budgets (:class:`Budgets`): the user's hard limits (size in MB = 10^6 bytes, latency in ms, accuracy in
percent), used by the search (as Optuna constraints) and by the frontier. Budgets tightened by a device profile
(``target_device``) carry the profile (``Budgets.device``) and its device-latency limit; the profile says what a
model costs on that device (:meth:`~edge_audio.targets.base.DeviceProfile.costs`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..errors import ParameterError
from ..parameters import default
from .base import DeviceProfile


@dataclass(frozen=True)
class Budgets:
    """Hard limits a deployable model must meet: size in MB (10^6 bytes), latency in ms, accuracy in percent."""

    max_size_mb: float = default("max_size_mb")
    max_latency_ms: float = default("max_latency_ms")
    min_accuracy: float = default("min_accuracy")
    max_ram_kb: float | None = default("max_ram_kb")
    max_flash_kb: float | None = default("max_flash_kb")
    max_device_latency_ms: float | None = None  # set by for_device: the target device's latency limit
    device: DeviceProfile | None = field(default=None, compare=False)  # the profile for_device tightened these by

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_size_mb", "max_latency_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                problems.append(f"{name} must be a positive number, got {value!r}")
        accuracy = self.min_accuracy
        for name in ("max_ram_kb", "max_flash_kb", "max_device_latency_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
                problems.append(f"{name} must be a positive number or None, got {value!r}")
        if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0.0 <= accuracy <= 100.0:
            problems.append(f"min_accuracy must be a percentage in [0, 100], got {self.min_accuracy!r}")
        if problems:
            raise ParameterError("invalid budgets: " + "; ".join(problems))

    @property
    def max_size_bytes(self) -> float:
        return self.max_size_mb * 1e6

    def violations(self, size_bytes: float, latency_ms: float, accuracy: float | None,
                   ram_bytes: float | None = None, flash_bytes: float | None = None,
                   device_latency_ms: float | None = None) -> dict[str, float]:
        """How far each limit is exceeded (<= 0: met), in the limit's own unit; accuracy None counts as 0. Without
        a RAM (flash, device latency) budget ``ram_kb`` (``flash_kb``, ``device_latency_ms``) is -1 (met); with
        one, an unknown value (None or NaN) is never taken to fit."""
        return {"size_mb": size_bytes / 1e6 - self.max_size_mb, "latency_ms": latency_ms - self.max_latency_ms,
                "accuracy": self.min_accuracy - (accuracy if accuracy is not None else 0.0),
                "ram_kb": _over(None if ram_bytes is None else ram_bytes / 1e3, self.max_ram_kb),
                "flash_kb": _over(None if flash_bytes is None else flash_bytes / 1e3, self.max_flash_kb),
                "device_latency_ms": _over(device_latency_ms, self.max_device_latency_ms)}

    def hardware_met(self, violations: dict[str, float]) -> bool:
        """Whether every limit but accuracy is met (what decides if a search candidate is worth training)."""
        return all(value <= 0 for key, value in violations.items() if key != "accuracy")

    def reasons(self, size_bytes: float, latency_ms: float, accuracy: float | None,
                ram_bytes: float | None = None, flash_bytes: float | None = None,
                device_latency_ms: float | None = None) -> list[str]:
        """Why a model breaks the budgets, one readable phrase per broken limit (empty: it meets them)."""
        over = self.violations(size_bytes, latency_ms, accuracy, ram_bytes, flash_bytes, device_latency_ms)
        reasons = []
        if over["size_mb"] > 0:
            reasons.append(f"size {size_bytes / 1e6:.3f} MB > {self.max_size_mb:g} MB")
        if over["latency_ms"] > 0:
            reasons.append(f"latency {latency_ms:.3f} ms > {self.max_latency_ms:g} ms")
        for key, value, limit, what in (("ram_kb", ram_bytes, self.max_ram_kb, "peak RAM"),
                                        ("flash_kb", flash_bytes, self.max_flash_kb, "flash")):
            if over[key] > 0:
                reasons.append(f"{what} unknown" if value is None or value != value
                               else f"{what} {value / 1e3:.1f} kB > {limit:g} kB")
        if over["device_latency_ms"] > 0:
            reasons.append("device latency unknown (not compiled for the device)" if device_latency_ms is None
                           or device_latency_ms != device_latency_ms else
                           f"device latency {device_latency_ms:.3g} ms (estimated) > {self.max_device_latency_ms:g} ms")
        if over["accuracy"] > 0:
            reasons.append("not trained (hardware budget broken)" if accuracy is None
                           else f"accuracy {accuracy:.2f}% < {self.min_accuracy:g}%")
        return reasons

    def to_dict(self) -> dict:
        return {"max_size_mb": self.max_size_mb, "max_latency_ms": self.max_latency_ms,
                "min_accuracy": self.min_accuracy, "max_ram_kb": self.max_ram_kb, "max_flash_kb": self.max_flash_kb,
                "max_device_latency_ms": self.max_device_latency_ms,
                "device": None if self.device is None else self.device.to_dict()}

    def for_device(self, profile: DeviceProfile) -> "Budgets":
        """These budgets tightened by a device profile's limits (the lower of each pair): its RAM, flash, size,
        latency and device-latency limits become ``max_ram_kb``, ``max_flash_kb``, ``max_size_mb``,
        ``max_latency_ms`` and ``max_device_latency_ms``; the budgets keep the profile (``device``), whose
        :meth:`~edge_audio.targets.base.DeviceProfile.costs` the RAM, flash and device-latency limits are then
        checked against."""
        def lower(mine, theirs):
            return theirs if mine is None else mine if theirs is None else min(mine, theirs)

        def scaled(value, factor):
            return None if value is None else value / factor

        return Budgets(lower(self.max_size_mb, scaled(profile.max_size_bytes, 1e6)),
                       lower(self.max_latency_ms, profile.max_latency_ms), self.min_accuracy,
                       lower(self.max_ram_kb, scaled(profile.max_ram_bytes, 1e3)),
                       lower(self.max_flash_kb, scaled(profile.max_flash_bytes, 1e3)),
                       lower(self.max_device_latency_ms, profile.max_device_latency_ms), profile)

    def device_costs(self, costs: Mapping) -> tuple[float | None, float | None, float | None]:
        """(RAM bytes, flash bytes, device latency ms) of a model to check these budgets with: on the device
        (the profile's costs) when they were tightened by a profile, else its planner RAM and file bytes."""
        if self.device is None:
            return costs["peak_ram_bytes"], costs["flash_bytes"], None
        on_device = self.device.costs(costs)
        return on_device.ram_bytes, on_device.flash_bytes, on_device.latency_ms


def _over(value: float | None, limit: float | None) -> float:
    """How far ``value`` is over ``limit`` (same unit); -1 without a limit, inf for an unknown value."""
    if limit is None:
        return -1.0
    if value is None or value != value:
        return float("inf")
    return value - limit
