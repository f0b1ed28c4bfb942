"""The machine a measurement was taken on: CPU, instruction sets, cores, library versions, and its FP32 floor.

Everything that is timed (latency, the search's candidate costs) is keyed by :func:`machine_identity`, and every
record carries :func:`machine_profile`, so a latency measured on one CPU is never reused or compared as if it had
been measured on another. The instruction sets that matter for INT8 are recorded explicitly: without an INT8
dot-product instruction (AVX-512 VNNI, AVX-VNNI, AMX on x86; the dot-product extension on ARM), ONNX Runtime's
x86 INT8 kernels multiply with ``vpmaddubsw``, whose 16-bit pair sums saturate when weights use the full 8-bit
range (see :mod:`edge_audio.quantize`).
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import platform
import time
from pathlib import Path

from .storage import cached

#: Instruction-set flags worth recording (as /proc/cpuinfo names them), in the order they are reported.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8",
             "asimd", "asimddp", "i8mm", "bf16")
INT8_DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")
#: The libraries whose versions change what is computed or measured.
LIBRARIES = ("torch", "onnx", "onnxruntime", "onnxscript", "numpy", "librosa", "soxr", "optuna", "ai-edge-litert",
             "tflite-micro", "openvino")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty elsewhere)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                if fields:
                    break
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name.strip(), value.strip())
    return fields


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    info = _cpuinfo()
    return info.get("model name") or info.get("Model") or platform.processor() or platform.machine()


def cpu_isa() -> list[str]:
    """The instruction-set extensions of :data:`ISA_FLAGS` this CPU has."""
    flags = set((_cpuinfo().get("flags") or _cpuinfo().get("Features") or "").split())
    return [flag for flag in ISA_FLAGS if flag in flags]


def cpu_int8_dot_product() -> bool:
    """Whether this CPU has an INT8 dot-product instruction (VNNI, AVX-VNNI, AMX, or ARM's dot product)."""
    return any(flag in cpu_isa() for flag in INT8_DOT_PRODUCT_FLAGS)


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def versions() -> dict[str, str | None]:
    """Installed versions of :data:`LIBRARIES` (None for one that is not installed) and of Python."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine_identity() -> dict:
    """What makes two timings comparable: the CPU, its instruction sets, the cores, the architecture."""
    return {"cpu": cpu_name(), "isa": cpu_isa(), "cores": cores(), "arch": platform.machine()}


def matmul_throughput(threads: int = 1, size: int = 512, repeats: int = 30) -> float:
    """Sustained FP32 matmul throughput of this machine in GFLOP/s (best of 5 blocks of ``repeats`` products)."""
    import torch

    from .runtimes.pytorch import torch_threads

    a = torch.randn(size, size)
    b = torch.randn(size, size)
    best = 0.0
    with torch_threads(threads), torch.inference_mode():
        for _ in range(3):
            a @ b
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeats):
                a @ b
            best = max(best, 2 * size ** 3 * repeats / (time.perf_counter() - start) / 1e9)
    return round(best, 2)


def machine_profile(cache_root: str | os.PathLike) -> dict:
    """This machine's identity, library versions, INT8 capability and single-thread FP32 matmul throughput.

    Measured once per (machine, versions) and cached under ``cache_root``.
    """
    import torch

    identity = {**machine_identity(), "versions": versions()}

    def measure(_folder: Path) -> dict:
        return {**identity, "int8_dot_product": cpu_int8_dot_product(),
                "matmul_gflops_1thread": matmul_throughput(1),
                "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}

    return cached(Path(cache_root) / "machine", identity, measure, name="machine").value
