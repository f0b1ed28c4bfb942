"""Arm Ethos-U NPUs through Arm's own compiler, Vela (``ethos-u-vela``).

Vela compiles a full-integer TFLite model for a named accelerator configuration (MACs per cycle), a system
configuration (clock, the memories on the NPU's two AXI ports) and a memory mode (where the tensor arena and the
read-only weights live), from its bundled ``Arm/vela.ini``. It replaces every operator it can run on the NPU by one
``ethos-u`` custom operator (TensorFlow Lite Micro's Ethos-U driver runs it) and leaves the rest to the Cortex-M, and
it reports the compiled model's SRAM and flash use and its **estimated** cycles and latency at the system's clock:
Vela's performance model, not a measurement on a board.

:data:`NPU_TARGETS` names the configurations the book compiles for; :func:`npu_report` compiles one file for one
target in a child process (Vela ends with a floating-point exception on a file it cannot handle, such as 4-bit
weights, which must not take the run with it), caches the compiled file and the summary by the file's content, the
target and Vela's version, and verifies the compiled file when the entry is read back.
"""
from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ParameterError
from .storage import cached, file_sha256

#: Bump when a report's fields or how they are computed change.
NPU_VERSION = 1
#: Vela's configuration file, as bundled with the package.
VELA_CONFIG = "Arm/vela.ini"
#: A compile that takes longer than this is stopped (Vela takes about a second on the book's models).
VELA_TIMEOUT_S = 300


@dataclass(frozen=True)
class NPUTarget:
    """One Ethos-U configuration Vela compiles for, named in full: what a report's numbers assume."""

    name: str
    accelerator: str  # Vela's --accelerator-config: the NPU and its MACs per cycle
    system_config: str  # a [System_Config.*] of Arm/vela.ini: clock and the memories on the AXI ports
    memory_mode: str  # a [Memory_Mode.*]: where the arena (SRAM) and the weights (flash) live
    clock_hz: float  # the system configuration's core_clock, for the reader
    description: str


#: The Ethos-U targets of the book: both U55 sizes of Arm's Corstone-300 reference design and a U65, each with the
#: weights in off-chip flash and the tensor arena in SRAM shared with the Cortex-M (Vela's "Shared_Sram").
NPU_TARGETS: dict[str, NPUTarget] = {t.name: t for t in (
    NPUTarget("ethos_u55_128", "ethos-u55-128", "Ethos_U55_High_End_Embedded", "Shared_Sram", 500e6,
              "Arm Ethos-U55, 128 MACs/cycle, 500 MHz, SRAM (4 GB/s) and off-chip flash (0.5 GB/s), arena in SRAM "
              "shared with the Cortex-M"),
    NPUTarget("ethos_u55_256", "ethos-u55-256", "Ethos_U55_High_End_Embedded", "Shared_Sram", 500e6,
              "Arm Ethos-U55, 256 MACs/cycle, 500 MHz, SRAM (4 GB/s) and off-chip flash (0.5 GB/s), arena in SRAM "
              "shared with the Cortex-M"),
    NPUTarget("ethos_u65_256", "ethos-u65-256", "Ethos_U65_Embedded", "Shared_Sram", 500e6,
              "Arm Ethos-U65, 256 MACs/cycle, 500 MHz, SRAM (8 GB/s) and off-chip flash (0.5 GB/s), arena in SRAM "
              "shared with the Cortex-M"),
)}


class NPUCompileError(RuntimeError):
    """Vela did not compile a file (it says why); the variant gets no NPU numbers for that target."""


def npu_target(name: str) -> NPUTarget:
    """The target called ``name``; a :class:`ParameterError` listing the known ones otherwise."""
    if name not in NPU_TARGETS:
        raise ParameterError(f"unknown NPU target {name!r}; choose one of {', '.join(NPU_TARGETS)}")
    return NPU_TARGETS[name]


def vela_version() -> str:
    from importlib.metadata import version

    return version("ethos-u-vela")


def weight_types(path: str | os.PathLike) -> set[str]:
    """The element types of the constant tensors (weights, biases) of the TFLite file at ``path``."""
    from ai_edge_litert import schema_py_generated as schema

    from .tflite import read_model

    names = {value: key for key, value in vars(schema.TensorType).items() if not key.startswith("_")}
    model = read_model(Path(path).read_bytes())
    return {names[t.type] for graph in model.subgraphs for t in graph.tensors
            if model.buffers[t.buffer].data is not None and len(model.buffers[t.buffer].data)}


def compile_for_npu(tflite: str | os.PathLike, target: NPUTarget, out_dir: Path) -> dict:
    """Compile ``tflite`` with Vela for ``target`` into ``out_dir`` (``model_vela.tflite``) and return Vela's
    report: operators on the NPU and left to the CPU, SRAM and flash bytes, cycles and the latency at the target's
    clock. Raises :class:`NPUCompileError` when Vela refuses the file or fails (4-bit weights: Ethos-U reads
    8-bit weights, and Vela 5.2 stops with a floating-point exception on them, so they are refused first)."""
    tflite = Path(tflite)
    try:
        types = weight_types(tflite)
    except Exception as exc:  # a truncated or foreign file: the flatbuffer reader fails in many ways
        raise NPUCompileError(f"not a readable TFLite file ({type(exc).__name__}: {exc})") from None
    if "INT4" in types:
        raise NPUCompileError("the file stores 4-bit weights; Ethos-U reads 8-bit weights and Vela does not "
                              "compile INT4 tensors")
    with tempfile.TemporaryDirectory(prefix="edge-audio-vela-") as scratch:
        source = Path(scratch) / "model.tflite"  # Vela names its outputs after its input
        source.write_bytes(tflite.read_bytes())
        command = [sys.executable, "-c", "import sys; from ethosu.vela.vela import main; sys.exit(main())",
                   str(source), "--accelerator-config", target.accelerator, "--config", VELA_CONFIG,
                   "--system-config", target.system_config, "--memory-mode", target.memory_mode,
                   "--output-dir", scratch]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=VELA_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise NPUCompileError(f"Vela did not finish in {VELA_TIMEOUT_S} s") from None
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise NPUCompileError(f"Vela failed (exit {done.returncode}): "
                                  + (said[-1][:300] if said else "no message"))
        summary = next(Path(scratch).glob("model_summary_*.csv"))
        with open(summary, newline="") as handle:
            row = next(csv.DictReader(handle))
        operators = {kind: int(count) for kind, count in re.findall(r"(CPU|NPU) operators = (\d+)", done.stdout)}
        out_dir.mkdir(parents=True, exist_ok=True)
        os.replace(Path(scratch) / "model_vela.tflite", out_dir / "model_vela.tflite")
    clock = float(row["core_clock"])
    return {"target": target.name, **{k: v for k, v in asdict(target).items() if k != "name"},
            "vela": vela_version(), "clock_hz": clock, "cycles": int(float(row["cycles_total"])),
            "latency_ms": round(float(row["inference_time"]) * 1e3, 4),
            "npu_operators": operators.get("NPU", 0), "cpu_operators": operators.get("CPU", 0),
            "sram_bytes": int(round(float(row["sram_memory_used"]) * 1024)),
            "flash_bytes": int(round((float(row["off_chip_flash_memory_used"])
                                      + float(row["on_chip_flash_memory_used"])) * 1024)),
            "macs": int(float(row["nn_macs"])), "compiled_bytes": os.path.getsize(out_dir / "model_vela.tflite")}


def npu_report(tflite: str | os.PathLike, target: NPUTarget, cache_root: Path) -> dict:
    """:func:`compile_for_npu`, cached under ``cache_root/npu`` by the file's content, the target and Vela's
    version: the report, with ``compiled`` (the cached compiled file's path); or ``{"error": why}`` when Vela did
    not compile it (cached too: the same file fails the same way)."""
    key = {"tflite": file_sha256(tflite), "target": asdict(target), "vela": vela_version(), "version": NPU_VERSION}

    def compile_it(folder: Path) -> dict:
        try:
            return compile_for_npu(tflite, target, folder)
        except NPUCompileError as exc:
            return {"target": target.name, "error": str(exc)}

    entry = cached(cache_root / "npu", key, compile_it, name=f"{Path(tflite).stem}-{target.name}")
    report = dict(entry.value)
    if "error" not in report:
        report["compiled"] = str(entry.file("model_vela.tflite"))
    return report


def npu_reports(tflite: str | os.PathLike, cache_root: Path) -> dict[str, dict]:
    """Every target's :func:`npu_report` of ``tflite`` (the compiles run side by side, each in its own child
    process), without the cache's file paths: what a results record keeps."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(NPU_TARGETS)) as pool:
        reports = list(pool.map(lambda target: npu_report(tflite, target, cache_root), NPU_TARGETS.values()))
    return {report["target"]: {k: v for k, v in report.items() if k != "compiled"} for report in reports}


def with_npu_arenas(reports: dict[str, dict], tflm: dict) -> dict[str, dict]:
    """``reports`` (by target) with ``arena_bytes`` added to each compiled one: the tensor arena a firmware
    allocates for it (:func:`edge_audio.runtimes.tflm.npu_firmware_ram`: Vela's SRAM and the persistent part of
    TensorFlow Lite Micro's arena, ``tflm`` of the uncompiled file), what an NPU profile's RAM budget checks."""
    from .runtimes.tflm import npu_firmware_ram

    return {target: report if "error" in report else {**report, "arena_bytes": npu_firmware_ram(
        report["sram_bytes"], tflm)} for target, report in reports.items()}
