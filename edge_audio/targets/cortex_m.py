"""A Cortex-M microcontroller: the firmware's RAM and the file's flash, and a latency: counted on an emulated board
(``board``: instructions of the generated C x the core's highest cycles per instruction / clock) where the record
carries the count, else estimated from MACs.

The estimate is MACs x cycles per MAC / clock (:mod:`edge_audio.device_latency`), with one cycles-per-MAC constant
per (core, inference stack) from published MLPerf Tiny keyword-spotting results (``benchmarks/mcu_cycles_per_mac.py``
prints the derivation and a test checks these values against it). It is an estimate, not a measurement on a board.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from ..device_latency import estimated_latency_ms
from ..errors import ParameterError
from ..firmware.boards import BOARDS
from .base import DeviceCosts, DeviceProfile, _positive

#: Cycles per MAC of a Cortex-M core and inference stack, from published MLPerf Tiny keyword-spotting results.
CYCLES_PER_MAC = {"cortex_m4_tflm_reference": 7.39, "cortex_m4_cmsis_nn": 4.06, "cortex_m4_xcube_ai": 1.76,
                  "cortex_m7_xcube_ai_7": 1.59, "cortex_m7_xcube_ai": 1.07}


@dataclass(frozen=True, kw_only=True)
class CortexM(DeviceProfile):
    """A Cortex-M board: peak RAM (for a full-integer TFLite file the whole arena a firmware allocates,
    :func:`edge_audio.runtimes.tflm.firmware_ram`), the file's bytes, and with a clock and cycles per MAC the
    latency estimated from the model's MACs."""

    kind: ClassVar[str] = "cortex_m"

    clock_hz: float | None = None
    cycles_per_mac: float | None = None
    # the emulated board whose counted instructions give the latency (edge_audio.firmware.boards), when the
    # record carries them (a full-integer variant as generated C); None: the MACs estimate (a stack of its own)
    board: str | None = None

    def check(self) -> None:
        for key in ("clock_hz", "cycles_per_mac"):
            value = getattr(self, key)
            if value is not None and not _positive(value):
                raise ParameterError(f"profile {self.name!r}: {key} must be a positive number, got {value!r}")
        if self.board is not None and self.board not in BOARDS:
            raise ParameterError(f"profile {self.name!r}: board must be one of {', '.join(BOARDS)}, got {self.board!r}")
        if self.max_device_latency_ms is not None and (self.clock_hz is None or self.cycles_per_mac is None):
            raise ParameterError(f"profile {self.name!r}: max_device_latency_ms is estimated from clock_hz and "
                                 "cycles_per_mac (give both), or by Vela for an NPU (give npu)")

    def costs(self, model: Mapping) -> DeviceCosts:
        if self.clock_hz is None or self.cycles_per_mac is None:
            return DeviceCosts(model["peak_ram_bytes"], model["flash_bytes"], None, "")
        counted = (model.get("emulated") or {}).get(self.board) if self.board else None
        if counted:  # the upper end of the core's cycles-per-instruction range: a budget holds at it
            cpi = BOARDS[self.board].cpi[1]
            latency = round(counted["instructions"] * cpi / self.clock_hz * 1e3, 1)
            return DeviceCosts(model["peak_ram_bytes"], model["flash_bytes"], latency,
                               f"counted (emulated {BOARDS[self.board].core}, {cpi:g} cycles/instruction)")
        return DeviceCosts(model["peak_ram_bytes"], model["flash_bytes"], self.estimate_ms(model), "estimated (MACs)")

    def estimate_ms(self, model: Mapping) -> float | None:
        """The MACs x cycles-per-MAC estimate of ``model``'s latency (ms), whatever else the record carries."""
        if self.clock_hz is None or self.cycles_per_mac is None:
            return None
        return round(estimated_latency_ms(model["macs"], self.clock_hz, self.cycles_per_mac), 1)
