"""What a deployable model must meet: the run's budgets and the named deployment profiles.

* :class:`Budgets`: the user's hard limits (size in MB = 10^6 bytes, latency in ms, accuracy in percent), used by
  the search (as Optuna constraints) and by the frontier.
* :data:`DEPLOYMENT_PROFILES`: named device budgets. The DCASE low-complexity profile counts the way that
  community does (DCASE 2022 Task 1): every parameter, zeros included, at one byte (INT8), at most 128 kB
  (128,000 bytes), and at most 30 million MACs per second of audio, i.e. a clip's MACs divided by its duration;
  the feature front end is not counted.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ParameterError
from .parameters import default


@dataclass(frozen=True)
class Budgets:
    """Hard limits a deployable model must meet: size in MB (10^6 bytes), latency in ms, accuracy in percent."""

    max_size_mb: float = default("max_size_mb")
    max_latency_ms: float = default("max_latency_ms")
    min_accuracy: float = default("min_accuracy")
    max_ram_kb: float | None = default("max_ram_kb")
    max_flash_kb: float | None = default("max_flash_kb")

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_size_mb", "max_latency_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                problems.append(f"{name} must be a positive number, got {value!r}")
        accuracy = self.min_accuracy
        for name in ("max_ram_kb", "max_flash_kb"):
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
                   ram_bytes: float | None = None, flash_bytes: float | None = None) -> dict[str, float]:
        """How far each limit is exceeded (<= 0: met), in the limit's own unit; accuracy None counts as 0. Without
        a RAM (flash) budget ``ram_kb`` (``flash_kb``) is -1 (met); with one, an unknown value (None or NaN) is
        never taken to fit."""
        return {"size_mb": size_bytes / 1e6 - self.max_size_mb, "latency_ms": latency_ms - self.max_latency_ms,
                "accuracy": self.min_accuracy - (accuracy if accuracy is not None else 0.0),
                "ram_kb": _kb_over(ram_bytes, self.max_ram_kb), "flash_kb": _kb_over(flash_bytes, self.max_flash_kb)}

    def hardware_met(self, violations: dict[str, float]) -> bool:
        """Whether every limit but accuracy is met (what decides if a search candidate is worth training)."""
        return all(value <= 0 for key, value in violations.items() if key != "accuracy")

    def reasons(self, size_bytes: float, latency_ms: float, accuracy: float | None,
                ram_bytes: float | None = None, flash_bytes: float | None = None) -> list[str]:
        """Why a model breaks the budgets, one readable phrase per broken limit (empty: it meets them)."""
        over = self.violations(size_bytes, latency_ms, accuracy, ram_bytes, flash_bytes)
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
        if over["accuracy"] > 0:
            reasons.append("not trained (hardware budget broken)" if accuracy is None
                           else f"accuracy {accuracy:.2f}% < {self.min_accuracy:g}%")
        return reasons

    def to_dict(self) -> dict:
        return {"max_size_mb": self.max_size_mb, "max_latency_ms": self.max_latency_ms,
                "min_accuracy": self.min_accuracy, "max_ram_kb": self.max_ram_kb, "max_flash_kb": self.max_flash_kb}

    def for_device(self, profile: dict) -> "Budgets":
        """These budgets tightened by a device profile's limits (the lower of each pair): its RAM, flash, size and
        latency limits become ``max_ram_kb``, ``max_flash_kb``, ``max_size_mb`` and ``max_latency_ms``."""
        def lower(mine, theirs):
            return theirs if mine is None else mine if theirs is None else min(mine, theirs)

        def scaled(key, factor):
            return profile[key] / factor if key in profile else None

        return Budgets(lower(self.max_size_mb, scaled("max_size_bytes", 1e6)),
                       lower(self.max_latency_ms, profile.get("max_latency_ms")), self.min_accuracy,
                       lower(self.max_ram_kb, scaled("max_ram_bytes", 1e3)),
                       lower(self.max_flash_kb, scaled("max_flash_bytes", 1e3)))


def _kb_over(value_bytes: float | None, limit_kb: float | None) -> float:
    """How far ``value_bytes`` is over ``limit_kb`` in kB; -1 without a limit, inf for an unknown value."""
    if limit_kb is None:
        return -1.0
    if value_bytes is None or value_bytes != value_bytes:
        return float("inf")
    return value_bytes / 1e3 - limit_kb


#: Cycles per MAC of a Cortex-M core and inference stack, from published MLPerf Tiny keyword-spotting results
#: (:mod:`edge_audio.device_latency` derives them; ``benchmarks/mcu_cycles_per_mac.py`` prints the derivation and a
#: test checks these values against it). A device latency is an estimate: MACs x cycles per MAC / clock.
CYCLES_PER_MAC = {"cortex_m4_tflm_reference": 7.39, "cortex_m4_cmsis_nn": 4.06, "cortex_m7_xcube_ai": 1.59}

#: Named deployment budgets. ``max_size_bytes`` bounds the artifact's bytes; ``max_int8_param_bytes`` and
#: ``max_mmacs_per_second`` are the DCASE way of counting (see the module docstring). None: no limit.
DEPLOYMENT_PROFILES: dict[str, dict] = {
    "cortex_m4_small": {"max_ram_bytes": 64_000, "max_flash_bytes": 256_000, "full_integer_tflite": True,
                        "clock_hz": 64e6, "cycles_per_mac": CYCLES_PER_MAC["cortex_m4_cmsis_nn"],
                        "max_device_latency_ms": 1000.0,
                        "description": "small Cortex-M4 at 64 MHz: ≤ 64 kB SRAM (peak RAM), ≤ 256 kB flash, "
                                       "full-integer TFLite, estimated latency ≤ 1 s (CMSIS-NN kernels)"},
    "cortex_m4": {"max_ram_bytes": 256_000, "max_flash_bytes": 1_000_000, "full_integer_tflite": True,
                  "clock_hz": 120e6, "cycles_per_mac": CYCLES_PER_MAC["cortex_m4_cmsis_nn"],
                  "max_device_latency_ms": 1000.0,
                  "description": "Cortex-M4 at 120 MHz: ≤ 256 kB SRAM (peak RAM), ≤ 1 MB flash, full-integer "
                                 "TFLite, estimated latency ≤ 1 s (CMSIS-NN kernels)"},
    "cortex_m7": {"max_ram_bytes": 512_000, "max_flash_bytes": 2_000_000, "full_integer_tflite": True,
                  "clock_hz": 480e6, "cycles_per_mac": CYCLES_PER_MAC["cortex_m7_xcube_ai"],
                  "max_device_latency_ms": 1000.0,
                  "description": "Cortex-M7 at 480 MHz: ≤ 512 kB SRAM (peak RAM), ≤ 2 MB flash, full-integer "
                                 "TFLite, estimated latency ≤ 1 s"},
    "smart_speaker": {"max_size_bytes": 2_000_000, "max_latency_ms": 50.0,
                      "description": "smart speaker: ≤ 2 MB model, ≤ 50 ms"},
    "gateway": {"max_size_bytes": 10_000_000, "description": "edge gateway: ≤ 10 MB model"},
    "dcase_low_complexity": {"max_int8_param_bytes": 128_000, "max_mmacs_per_second": 30.0,
                             "description": "DCASE 2022 Task 1: ≤ 128 kB of INT8 parameters, "
                                            "≤ 30 MMACs per second of audio"},
}
PROFILE_LIMITS = ("max_size_bytes", "max_latency_ms", "max_int8_param_bytes", "max_mmacs_per_second",
                  "max_ram_bytes", "max_flash_bytes", "max_device_latency_ms")
#: What a device-latency limit is estimated from (both required with ``max_device_latency_ms``).
PROFILE_DEVICE = ("clock_hz", "cycles_per_mac")
#: Requirements on the format rather than a number: True means only variants that have the property qualify.
#: ``full_integer_tflite``: the variant is a full-integer TFLite model, the one format a microcontroller runtime
#: (TFLite Micro) executes; ``int8_activations``: INT8 between operators, in any format.
PROFILE_REQUIREMENTS = ("int8_activations", "full_integer_tflite")


def check_profiles(profiles: dict[str, dict]) -> dict[str, dict]:
    """Validate user-given profiles (a name -> limits mapping); raises ``ValueError`` naming the bad entry."""
    if not isinstance(profiles, dict):
        raise ParameterError(f"profiles must be a mapping of name -> limits, got {profiles!r}")
    for name, limits in profiles.items():
        if not isinstance(limits, dict):
            raise ParameterError(f"profile {name!r} must be a mapping of limits, got {limits!r}")
        unknown = set(limits) - set(PROFILE_LIMITS) - set(PROFILE_REQUIREMENTS) - set(PROFILE_DEVICE) - {"description"}
        if unknown:
            raise ParameterError(f"profile {name!r} has unknown limit(s) {sorted(unknown)}; use "
                                 f"{PROFILE_LIMITS + PROFILE_REQUIREMENTS + PROFILE_DEVICE}")
        for key in PROFILE_DEVICE:
            if key in limits and not (isinstance(limits[key], (int, float)) and limits[key] > 0):
                raise ParameterError(f"profile {name!r}: {key} must be a positive number, got {limits[key]!r}")
        if "max_device_latency_ms" in limits and not all(key in limits for key in PROFILE_DEVICE):
            raise ParameterError(f"profile {name!r}: max_device_latency_ms is estimated from clock_hz and "
                                 "cycles_per_mac; give both")
        for key in PROFILE_REQUIREMENTS:
            if key in limits and not isinstance(limits[key], bool):
                raise ParameterError(f"profile {name!r}: {key} must be true or false, got {limits[key]!r}")
        if not any(key in limits for key in PROFILE_LIMITS):
            raise ParameterError(f"profile {name!r} sets no limit; use one of {PROFILE_LIMITS}")
        for key in PROFILE_LIMITS:
            if key in limits and not (isinstance(limits[key], (int, float)) and limits[key] > 0):
                raise ParameterError(f"profile {name!r}: {key} must be a positive number, got {limits[key]!r}")
    return profiles
