"""What a deployable model must meet: the run's budgets (:mod:`~edge_audio.targets.budgets`) and the deployment
targets, typed by kind, each saying what a model costs on it (:mod:`~edge_audio.targets.base`: the host;
:mod:`~edge_audio.targets.cortex_m`, :mod:`~edge_audio.targets.ethos_u`).

:data:`KINDS` is the registry of kinds of target: adding one is a module with a :class:`DeviceProfile` subclass
(its own fields and :meth:`~DeviceProfile.costs`) plus its line here. :data:`DEPLOYMENT_PROFILES` are the named
targets built in; a user's ``profiles`` (name -> limits, as YAML or JSON would hold them) are read by
:func:`profile_from`. The DCASE low-complexity profile counts the way that community does (DCASE 2022 Task 1):
every parameter, zeros included, at one byte (INT8), at most 128 kB (128,000 bytes), and at most 30 million MACs
per second of audio, i.e. a clip's MACs divided by its duration; the feature front end is not counted.
"""
from __future__ import annotations

import dataclasses

from ..errors import ParameterError
from ..names import file_name
from ..npu import NPU_TARGETS
from .base import LIMITS, REQUIREMENTS, DeviceCosts, DeviceProfile  # noqa: F401
from .budgets import Budgets  # noqa: F401
from .cortex_m import CYCLES_PER_MAC, CortexM  # noqa: F401
from .ethos_u import EthosU  # noqa: F401

#: Every kind of deployment target, by the name a user's profile may give as ``kind``.
KINDS: dict[str, type[DeviceProfile]] = {DeviceProfile.kind: DeviceProfile, CortexM.kind: CortexM,
                                         EthosU.kind: EthosU}


def _own_fields(kind: type[DeviceProfile]) -> set[str]:
    return {f.name for f in dataclasses.fields(kind)} - {f.name for f in dataclasses.fields(DeviceProfile)}


def profile_from(name: str, limits: dict | DeviceProfile) -> DeviceProfile:
    """A typed profile from a user's mapping of limits: of the ``kind`` it names, else the kind whose own fields it
    sets (``npu``: an Ethos-U; ``clock_hz``, ``cycles_per_mac``: a Cortex-M), else a host. Raises
    :class:`~edge_audio.errors.ParameterError` naming the bad entry."""
    if isinstance(limits, DeviceProfile):
        return limits
    file_name(name, "profile name")
    if not isinstance(limits, dict):
        raise ParameterError(f"profile {name!r} must be a mapping of limits, got {limits!r}")
    values = dict(limits)
    kind = values.pop("kind", None)
    if kind is None:
        matches = [k for k, cls in KINDS.items() if _own_fields(cls) & set(values)]
        if len(matches) > 1:
            raise ParameterError(f"profile {name!r} mixes the fields of {' and '.join(matches)}; give one kind")
        kind = matches[0] if matches else DeviceProfile.kind
    if kind not in KINDS:
        raise ParameterError(f"profile {name!r}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    fields = {f.name for f in dataclasses.fields(KINDS[kind])} - {"name"}
    unknown = set(values) - fields
    if unknown:
        raise ParameterError(f"profile {name!r} has unknown limit(s) {sorted(unknown)}; a {kind} profile takes "
                             f"{', '.join(sorted(fields))}")
    profile = KINDS[kind](name=name, **values)
    if not profile.limits():
        raise ParameterError(f"profile {name!r} sets no limit; use one of {LIMITS}")
    return profile


def check_profiles(profiles: dict) -> dict[str, DeviceProfile]:
    """Every profile of a name -> limits mapping, typed (:func:`profile_from`); raises ParameterError naming the bad
    entry."""
    if not isinstance(profiles, dict):
        raise ParameterError(f"profiles must be a mapping of name -> limits, got {profiles!r}")
    return {name: profile_from(name, limits) for name, limits in profiles.items()}


def _cortex_m4(name: str, stack: str, kernels: str, board: str | None = None) -> CortexM:
    """The 120 MHz Cortex-M4 board with one inference stack's cycles per MAC: one profile per stack, so the spread
    of the estimate between stacks on one core shows beside the answer."""
    return CortexM(name=name, max_ram_bytes=256_000, max_flash_bytes=1_000_000, full_integer_tflite=True,
                   clock_hz=120e6, cycles_per_mac=CYCLES_PER_MAC[stack], max_device_latency_ms=1000.0, board=board,
                   description="Cortex-M4 at 120 MHz: ≤ 256 kB SRAM (peak RAM), ≤ 1 MB flash, full-integer TFLite, "
                               f"{'latency' if board else 'estimated latency'} ≤ 1 s ({kernels})")


#: The named deployment targets built in. ``max_size_bytes`` bounds the artifact's bytes; ``max_int8_param_bytes``
#: and ``max_mmacs_per_second`` are the DCASE way of counting (see the module docstring).
DEPLOYMENT_PROFILES: dict[str, DeviceProfile] = {profile.name: profile for profile in (
    CortexM(name="cortex_m4_small", max_ram_bytes=64_000, max_flash_bytes=256_000, full_integer_tflite=True,
            clock_hz=64e6, cycles_per_mac=CYCLES_PER_MAC["cortex_m4_cmsis_nn"], max_device_latency_ms=1000.0,
            board="cortex_m4",
            description="small Cortex-M4 at 64 MHz: ≤ 64 kB SRAM (peak RAM), ≤ 256 kB flash, full-integer TFLite, "
                        "latency ≤ 1 s (counted on an emulated Cortex-M4; else CMSIS-NN's MACs estimate)"),
    _cortex_m4("cortex_m4", "cortex_m4_cmsis_nn", "counted on an emulated Cortex-M4; else CMSIS-NN's MACs estimate",
               board="cortex_m4"),
    _cortex_m4("cortex_m4_tflm_reference", "cortex_m4_tflm_reference", "TFLite Micro's reference kernels"),
    _cortex_m4("cortex_m4_xcube_ai", "cortex_m4_xcube_ai", "X-CUBE-AI 10.2"),
    CortexM(name="cortex_m7", max_ram_bytes=512_000, max_flash_bytes=2_000_000, full_integer_tflite=True,
            clock_hz=480e6, cycles_per_mac=CYCLES_PER_MAC["cortex_m7_xcube_ai"], max_device_latency_ms=1000.0,
            board="cortex_m7",
            description="Cortex-M7 at 480 MHz: ≤ 512 kB SRAM (peak RAM), ≤ 2 MB flash, full-integer TFLite, "
                        "latency ≤ 1 s (counted on an emulated Cortex-M7; else X-CUBE-AI 9.0's MACs estimate)"),
    *(EthosU(name=name, npu=name, max_ram_bytes=512_000, max_flash_bytes=2_000_000, full_integer_tflite=True,
             max_device_latency_ms=10.0, description=f"{target.description}: ≤ 512 kB SRAM and ≤ 2 MB flash as Vela "
                                                     "compiles it, Vela's estimated latency ≤ 10 ms")
      for name, target in NPU_TARGETS.items()),
    DeviceProfile(name="smart_speaker", max_size_bytes=2_000_000, max_latency_ms=50.0,
                  description="smart speaker: ≤ 2 MB model, ≤ 50 ms"),
    DeviceProfile(name="gateway", max_size_bytes=10_000_000, description="edge gateway: ≤ 10 MB model"),
    DeviceProfile(name="dcase_low_complexity", max_int8_param_bytes=128_000, max_mmacs_per_second=30.0,
                  description="DCASE 2022 Task 1: ≤ 128 kB of INT8 parameters, ≤ 30 MMACs per second of audio"),
)}
