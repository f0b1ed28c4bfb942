"""An Arm Ethos-U NPU beside a Cortex-M: what Vela compiles a model's full-integer TFLite file into for the target.

Its RAM is the arena a firmware allocates (Vela's SRAM and TensorFlow Lite Micro's persistent section: the report's
``arena_bytes``), its flash and latency are Vela's for the compiled file (Vela's performance model: an estimate);
a model Vela did not compile costs NaN and has no latency, so it never fits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

from ..errors import ParameterError
from ..npu import NPU_TARGETS
from .base import DeviceCosts, DeviceProfile


@dataclass(frozen=True, kw_only=True)
class EthosU(DeviceProfile):
    """An Ethos-U target of :data:`edge_audio.npu.NPU_TARGETS` (``npu``), costed by Vela's report."""

    kind: ClassVar[str] = "ethos_u"

    npu: str

    def check(self) -> None:
        if self.npu not in NPU_TARGETS:
            raise ParameterError(f"profile {self.name!r}: npu must name an Ethos-U target "
                                 f"({', '.join(NPU_TARGETS)}), got {self.npu!r}")

    def compiled(self, model: Mapping) -> dict | None:
        """Vela's report of ``model`` compiled for this target (None: Vela did not compile it)."""
        report = model["npu"].get(self.npu)
        return None if report is None or "error" in report else report

    def costs(self, model: Mapping) -> DeviceCosts:
        report = self.compiled(model)
        if report is None:
            return DeviceCosts(float("nan"), float("nan"), None, "estimated (Vela)")
        return DeviceCosts(report["arena_bytes"], report["flash_bytes"], round(report["latency_ms"], 3),
                           "estimated (Vela)")
