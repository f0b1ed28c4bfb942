"""What a deployable model must meet: the run's budgets and the named deployment profiles.

* :class:`Budgets`: the user's hard limits (size in MB = 10^6 bytes, latency in ms, accuracy in percent), used by
  the search (as Optuna constraints) and by the frontier.
* A budget tightened by a device profile (``target_device``) carries the profile (``Budgets.device``) and its
  device-latency limit: :func:`device_costs` says what a model costs on that device (Vela's SRAM, flash and
  latency on an Ethos-U; the planner's RAM, the file's bytes and MACs x cycles per MAC / clock on a Cortex-M).
* :data:`DEPLOYMENT_PROFILES`: named device budgets. The DCASE low-complexity profile counts the way that
  community does (DCASE 2022 Task 1): every parameter, zeros included, at one byte (INT8), at most 128 kB
  (128,000 bytes), and at most 30 million MACs per second of audio, i.e. a clip's MACs divided by its duration;
  the feature front end is not counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .device_latency import estimated_latency_ms
from .errors import ParameterError
from .names import file_name
from .npu import NPU_TARGETS
from .parameters import default


@dataclass(frozen=True)
class Budgets:
    """Hard limits a deployable model must meet: size in MB (10^6 bytes), latency in ms, accuracy in percent."""

    max_size_mb: float = default("max_size_mb")
    max_latency_ms: float = default("max_latency_ms")
    min_accuracy: float = default("min_accuracy")
    max_ram_kb: float | None = default("max_ram_kb")
    max_flash_kb: float | None = default("max_flash_kb")
    max_device_latency_ms: float | None = None  # set by for_device: the target device's latency limit
    device: dict | None = field(default=None, compare=False)  # the profile for_device tightened these budgets by

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
                "max_device_latency_ms": self.max_device_latency_ms, "device": self.device}

    def for_device(self, profile: dict) -> "Budgets":
        """These budgets tightened by a device profile's limits (the lower of each pair): its RAM, flash, size,
        latency and device-latency limits become ``max_ram_kb``, ``max_flash_kb``, ``max_size_mb``,
        ``max_latency_ms`` and ``max_device_latency_ms``; the budgets keep the profile (``device``), whose
        :func:`device_costs` the RAM, flash and device-latency limits are then checked against."""
        def lower(mine, theirs):
            return theirs if mine is None else mine if theirs is None else min(mine, theirs)

        def scaled(key, factor):
            return profile[key] / factor if key in profile else None

        return Budgets(lower(self.max_size_mb, scaled("max_size_bytes", 1e6)),
                       lower(self.max_latency_ms, profile.get("max_latency_ms")), self.min_accuracy,
                       lower(self.max_ram_kb, scaled("max_ram_bytes", 1e3)),
                       lower(self.max_flash_kb, scaled("max_flash_bytes", 1e3)),
                       lower(self.max_device_latency_ms, profile.get("max_device_latency_ms")), profile)

    def device_costs(self, costs: Mapping) -> tuple[float | None, float | None, float | None]:
        """(RAM bytes, flash bytes, device latency ms) of a model to check these budgets with: on the device
        (:func:`device_costs`) when they were tightened by a profile, else its planner RAM and file bytes."""
        if self.device is None:
            return costs["peak_ram_bytes"], costs["flash_bytes"], None
        return device_costs(costs, self.device)


def _over(value: float | None, limit: float | None) -> float:
    """How far ``value`` is over ``limit`` (same unit); -1 without a limit, inf for an unknown value."""
    if limit is None:
        return -1.0
    if value is None or value != value:
        return float("inf")
    return value - limit


#: Cycles per MAC of a Cortex-M core and inference stack, from published MLPerf Tiny keyword-spotting results
#: (:mod:`edge_audio.device_latency` derives them; ``benchmarks/mcu_cycles_per_mac.py`` prints the derivation and a
#: test checks these values against it). A device latency is an estimate: MACs x cycles per MAC / clock.
CYCLES_PER_MAC = {"cortex_m4_tflm_reference": 7.39, "cortex_m4_cmsis_nn": 4.06, "cortex_m4_xcube_ai": 1.76,
                  "cortex_m7_xcube_ai_7": 1.59, "cortex_m7_xcube_ai": 1.07}


def _cortex_m4(stack: str, kernels: str) -> dict:
    """The 120 MHz Cortex-M4 board with one inference stack's cycles per MAC: one profile per stack, so the spread
    of the estimate between stacks on one core shows beside the answer."""
    return {"max_ram_bytes": 256_000, "max_flash_bytes": 1_000_000, "full_integer_tflite": True, "clock_hz": 120e6,
            "cycles_per_mac": CYCLES_PER_MAC[stack], "max_device_latency_ms": 1000.0,
            "description": "Cortex-M4 at 120 MHz: ≤ 256 kB SRAM (peak RAM), ≤ 1 MB flash, full-integer TFLite, "
                           f"estimated latency ≤ 1 s ({kernels})"}


#: Named deployment budgets. ``max_size_bytes`` bounds the artifact's bytes; ``max_int8_param_bytes`` and
#: ``max_mmacs_per_second`` are the DCASE way of counting (see the module docstring). None: no limit.
DEPLOYMENT_PROFILES: dict[str, dict] = {
    "cortex_m4_small": {"max_ram_bytes": 64_000, "max_flash_bytes": 256_000, "full_integer_tflite": True,
                        "clock_hz": 64e6, "cycles_per_mac": CYCLES_PER_MAC["cortex_m4_cmsis_nn"],
                        "max_device_latency_ms": 1000.0,
                        "description": "small Cortex-M4 at 64 MHz: ≤ 64 kB SRAM (peak RAM), ≤ 256 kB flash, "
                                       "full-integer TFLite, estimated latency ≤ 1 s (CMSIS-NN kernels)"},
    "cortex_m4": _cortex_m4("cortex_m4_cmsis_nn", "CMSIS-NN kernels"),
    "cortex_m4_tflm_reference": _cortex_m4("cortex_m4_tflm_reference", "TFLite Micro's reference kernels"),
    "cortex_m4_xcube_ai": _cortex_m4("cortex_m4_xcube_ai", "X-CUBE-AI 10.2"),
    "cortex_m7": {"max_ram_bytes": 512_000, "max_flash_bytes": 2_000_000, "full_integer_tflite": True,
                  "clock_hz": 480e6, "cycles_per_mac": CYCLES_PER_MAC["cortex_m7_xcube_ai"],
                  "max_device_latency_ms": 1000.0,
                  "description": "Cortex-M7 at 480 MHz: ≤ 512 kB SRAM (peak RAM), ≤ 2 MB flash, full-integer "
                                 "TFLite, estimated latency ≤ 1 s (X-CUBE-AI 9.0)"},
    **{name: {"npu": name, "max_ram_bytes": 512_000, "max_flash_bytes": 2_000_000, "full_integer_tflite": True,
              "max_device_latency_ms": 10.0,
              "description": f"{target.description}: ≤ 512 kB SRAM and ≤ 2 MB flash as Vela compiles it, Vela's "
                             "estimated latency ≤ 10 ms"}
       for name, target in NPU_TARGETS.items()},
    "smart_speaker": {"max_size_bytes": 2_000_000, "max_latency_ms": 50.0,
                      "description": "smart speaker: ≤ 2 MB model, ≤ 50 ms"},
    "gateway": {"max_size_bytes": 10_000_000, "description": "edge gateway: ≤ 10 MB model"},
    "dcase_low_complexity": {"max_int8_param_bytes": 128_000, "max_mmacs_per_second": 30.0,
                             "description": "DCASE 2022 Task 1: ≤ 128 kB of INT8 parameters, "
                                            "≤ 30 MMACs per second of audio"},
}
PROFILE_LIMITS = ("max_size_bytes", "max_latency_ms", "max_int8_param_bytes", "max_mmacs_per_second",
                  "max_ram_bytes", "max_flash_bytes", "max_device_latency_ms")
#: What a device-latency limit is estimated from on a Cortex-M (both required with ``max_device_latency_ms`` unless
#: the profile names an NPU).
PROFILE_DEVICE = ("clock_hz", "cycles_per_mac")
#: A profile of an Ethos-U NPU names its target (:data:`edge_audio.npu.NPU_TARGETS`): its RAM, flash and device
#: latency are then Vela's numbers for the variant's file compiled for that target (SRAM, flash, estimated latency),
#: and a variant Vela did not compile does not fit.
PROFILE_NPU = "npu"
#: Requirements on the format rather than a number: True means only variants that have the property qualify.
#: ``full_integer_tflite``: the variant is a full-integer TFLite model, the one format a microcontroller runtime
#: (TFLite Micro) executes; ``int8_activations``: INT8 between operators, in any format.
PROFILE_REQUIREMENTS = ("int8_activations", "full_integer_tflite")


def npu_compiled(costs: Mapping, limits: dict) -> dict | None:
    """Vela's report of a model compiled for the profile's NPU (``costs["npu"]``, by target; None: not an NPU
    profile, or Vela did not compile it)."""
    report = costs["npu"].get(limits[PROFILE_NPU]) if PROFILE_NPU in limits else None
    return None if report is None or "error" in report else report


def device_costs(costs: Mapping, limits: dict) -> tuple[float, float, float | None]:
    """(RAM bytes, flash bytes, latency ms) of a model on a profile's device; ``costs`` holds its ``macs``,
    ``peak_ram_bytes``, ``flash_bytes`` and ``npu`` reports (a results row or a search candidate's costs).

    On an NPU: the arena a firmware allocates (Vela's SRAM and TensorFlow Lite Micro's persistent section:
    ``arena_bytes`` of the report), and the flash and latency Vela reports for the file compiled for the profile's
    target (NaN and None when Vela did not compile it). On a Cortex-M: the peak RAM (for a full-integer TFLite file
    the whole arena a firmware allocates, :func:`edge_audio.runtimes.tflm.firmware_ram`), the file's bytes, and the
    latency estimated as MACs x cycles per MAC / clock (None when the profile names no clock). Both latencies are
    estimates, not measurements on a board.
    """
    if PROFILE_NPU in limits:
        report = npu_compiled(costs, limits)
        if report is None:
            return float("nan"), float("nan"), None
        return report["arena_bytes"], report["flash_bytes"], round(report["latency_ms"], 3)
    latency = (round(estimated_latency_ms(costs["macs"], limits["clock_hz"], limits["cycles_per_mac"]), 1)
               if all(key in limits for key in PROFILE_DEVICE) else None)
    return costs["peak_ram_bytes"], costs["flash_bytes"], latency


def target_latency(costs: Mapping, limits: dict) -> tuple[float | None, str]:
    """A model's latency on a profile's own device, and where it comes from: on an NPU, Vela's estimate; on a
    Cortex-M with a clock, the MACs estimate (:func:`device_costs`); on a host target (no device named), the
    latency measured on this machine's CPU in the record's runtime (``costs["latency_ms"]``, ``["runtime"]``)."""
    _, _, latency = device_costs(costs, limits)
    if PROFILE_NPU in limits:
        return latency, "estimated (Vela)"
    if latency is not None:
        return latency, "estimated (MACs)"
    return float(costs["latency_ms"]), f"this CPU ({costs['runtime']})"


def check_profiles(profiles: dict[str, dict]) -> dict[str, dict]:
    """Validate user-given profiles (a name -> limits mapping); raises ``ValueError`` naming the bad entry."""
    if not isinstance(profiles, dict):
        raise ParameterError(f"profiles must be a mapping of name -> limits, got {profiles!r}")
    for name, limits in profiles.items():
        file_name(name, "profile name")
        if not isinstance(limits, dict):
            raise ParameterError(f"profile {name!r} must be a mapping of limits, got {limits!r}")
        known = set(PROFILE_LIMITS) | set(PROFILE_REQUIREMENTS) | set(PROFILE_DEVICE) | {PROFILE_NPU, "description"}
        unknown = set(limits) - known
        if unknown:
            raise ParameterError(f"profile {name!r} has unknown limit(s) {sorted(unknown)}; use "
                                 f"{PROFILE_LIMITS + PROFILE_REQUIREMENTS + PROFILE_DEVICE + (PROFILE_NPU,)}")
        if PROFILE_NPU in limits and limits[PROFILE_NPU] not in NPU_TARGETS:
            raise ParameterError(f"profile {name!r}: npu must name an Ethos-U target ({', '.join(NPU_TARGETS)}), "
                                 f"got {limits[PROFILE_NPU]!r}")
        for key in PROFILE_DEVICE:
            if key in limits and not (isinstance(limits[key], (int, float)) and limits[key] > 0):
                raise ParameterError(f"profile {name!r}: {key} must be a positive number, got {limits[key]!r}")
        if ("max_device_latency_ms" in limits and PROFILE_NPU not in limits
                and not all(key in limits for key in PROFILE_DEVICE)):
            raise ParameterError(f"profile {name!r}: max_device_latency_ms is estimated from clock_hz and "
                                 "cycles_per_mac (give both), or by Vela for an NPU (give npu)")
        for key in PROFILE_REQUIREMENTS:
            if key in limits and not isinstance(limits[key], bool):
                raise ParameterError(f"profile {name!r}: {key} must be true or false, got {limits[key]!r}")
        if not any(key in limits for key in PROFILE_LIMITS):
            raise ParameterError(f"profile {name!r} sets no limit; use one of {PROFILE_LIMITS}")
        for key in PROFILE_LIMITS:
            if key in limits and not (isinstance(limits[key], (int, float)) and limits[key] > 0):
                raise ParameterError(f"profile {name!r}: {key} must be a positive number, got {limits[key]!r}")
    return profiles
