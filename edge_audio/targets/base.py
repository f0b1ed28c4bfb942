"""A deployment target: the limits a deployed model must meet there, and what a model costs on it.

:class:`DeviceProfile` is the host (a CPU like this one: the planner's RAM, the file's bytes, the latency measured
here); each kind of device is a subclass in a module of its own that says what a model costs on it
(:meth:`DeviceProfile.costs`): :class:`~edge_audio.targets.cortex_m.CortexM`,
:class:`~edge_audio.targets.ethos_u.EthosU`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Mapping

from ..errors import ParameterError

#: The numeric limits a profile may set (None: no limit), in the order they are described.
LIMITS = ("max_size_bytes", "max_latency_ms", "max_int8_param_bytes", "max_mmacs_per_second", "max_ram_bytes",
          "max_flash_bytes", "max_device_latency_ms")
#: Requirements on the format rather than a number: True means only variants that have the property qualify.
#: ``full_integer_tflite``: the variant is a full-integer TFLite model, the one format a microcontroller runtime
#: (TFLite Micro) executes; ``int8_activations``: INT8 between operators, in any format.
REQUIREMENTS = ("int8_activations", "full_integer_tflite")


@dataclass(frozen=True)
class DeviceCosts:
    """What a model costs on a device: RAM and flash in bytes (NaN: unknown, so it never fits), and its latency
    there in ms (None: not estimated) with where that number comes from."""

    ram_bytes: float
    flash_bytes: float
    latency_ms: float | None
    latency_source: str


def _positive(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0


@dataclass(frozen=True, kw_only=True)
class DeviceProfile:
    """A host target (a CPU): a model's RAM is the planner's peak, its flash the file's bytes, and its latency the one
    measured on this machine in the record's runtime; a device latency cannot be estimated on it."""

    kind: ClassVar[str] = "host"
    npu: ClassVar[str | None] = None  # the Ethos-U target Vela compiles for (an EthosU profile's), else None

    name: str
    description: str = ""
    max_size_bytes: float | None = None
    max_latency_ms: float | None = None
    max_int8_param_bytes: float | None = None  # the DCASE way of counting (every parameter at one byte)
    max_mmacs_per_second: float | None = None  # MACs per second of audio (DCASE)
    max_ram_bytes: float | None = None
    max_flash_bytes: float | None = None
    max_device_latency_ms: float | None = None
    int8_activations: bool = False
    full_integer_tflite: bool = False

    def __post_init__(self) -> None:
        for key in LIMITS:
            value = getattr(self, key)
            if value is not None and not _positive(value):
                raise ParameterError(f"profile {self.name!r}: {key} must be a positive number, got {value!r}")
        for key in REQUIREMENTS:
            if not isinstance(getattr(self, key), bool):
                raise ParameterError(f"profile {self.name!r}: {key} must be true or false, got {getattr(self, key)!r}")
        self.check()

    def check(self) -> None:
        """A kind's own consistency checks (raises ParameterError); the host can estimate no device latency."""
        if self.max_device_latency_ms is not None:
            raise ParameterError(f"profile {self.name!r}: max_device_latency_ms is estimated from clock_hz and "
                                 "cycles_per_mac (give both), or by Vela for an NPU (give npu)")

    def costs(self, model: Mapping) -> DeviceCosts:
        """What ``model`` (a results row or a search candidate's costs: ``macs``, ``peak_ram_bytes``,
        ``flash_bytes``, ``npu`` reports) costs on this target."""
        return DeviceCosts(model["peak_ram_bytes"], model["flash_bytes"], None, "")

    def latency(self, model: Mapping) -> tuple[float | None, str]:
        """``model``'s latency on this target, and where it comes from: the device's estimate, or on a host the
        latency measured on this machine's CPU in the record's runtime (``latency_ms``, ``runtime``)."""
        costs = self.costs(model)
        if costs.latency_source:
            return costs.latency_ms, costs.latency_source
        return float(model["latency_ms"]), f"this CPU ({model['runtime']})"

    def admits(self, row: Mapping) -> bool:
        """Whether a results row (:func:`edge_audio.frontier.analyze_frontier`'s table) meets every limit and
        requirement of this profile."""
        if self.int8_activations and not row["int8_activations"]:
            return False  # float activations do not qualify
        if self.full_integer_tflite and not row["full_integer_tflite"]:
            return False  # a microcontroller runtime (TFLite Micro) runs full-integer TFLite files only
        if self.max_int8_param_bytes is not None and not row["int8"]:
            return False  # DCASE counts INT8 parameters: only a quantized variant qualifies
        costs = self.costs(row)
        measured = {"max_size_bytes": row["size_bytes"], "max_latency_ms": row["latency_ms"],
                    "max_int8_param_bytes": row["int8_param_bytes"], "max_mmacs_per_second": row["mmacs_per_second"],
                    "max_ram_bytes": costs.ram_bytes, "max_flash_bytes": costs.flash_bytes,
                    "max_device_latency_ms": float("nan") if costs.latency_ms is None else costs.latency_ms}
        return all(measured[key] <= getattr(self, key) for key in LIMITS if getattr(self, key) is not None)

    def limits(self) -> dict[str, float]:
        """The numeric limits this profile sets."""
        return {key: getattr(self, key) for key in LIMITS if getattr(self, key) is not None}

    def describe(self) -> str:
        """The profile's description, or its limits in words."""
        if self.description:
            return self.description
        memory = "(Vela)" if self.npu else ""
        parts = {"max_size_bytes": lambda v: f"≤ {v / 1e3:g} kB", "max_latency_ms": lambda v: f"≤ {v:g} ms",
                 "max_int8_param_bytes": lambda v: f"≤ {v / 1e3:g} kB INT8 params",
                 "max_mmacs_per_second": lambda v: f"≤ {v:g} MMACs/s",
                 "max_ram_bytes": lambda v: f"≤ {v / 1e3:g} kB {'SRAM ' + memory if memory else 'RAM'}",
                 "max_flash_bytes": lambda v: f"≤ {v / 1e3:g} kB flash{' ' + memory if memory else ''}",
                 "max_device_latency_ms": lambda v: f"≤ {v:g} ms estimated on the device"}
        described = [parts[key](value) for key, value in self.limits().items()]
        return ", ".join(described + (["INT8 activations"] if self.int8_activations else [])
                         + (["full-integer TFLite"] if self.full_integer_tflite else []))

    def to_dict(self) -> dict:
        """The profile as a user would write it in ``profiles`` (its kind included): what records and a search's
        identity hold."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name"}
        return {"kind": self.kind, **{k: v for k, v in values.items() if v is not None and v is not False and v != ""}}
