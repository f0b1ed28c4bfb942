"""TensorFlow Lite Micro: the arena a full-integer TFLite model needs on a microcontroller, by TFLite Micro's own
recording allocator (its Python interpreter runs the reference kernels). It checks the package's planner
(:mod:`edge_audio.memory`); it is not in the registry of runtimes, since accuracy and latency are LiteRT's."""
from __future__ import annotations

import os
import re

import numpy as np

from .base import captured_stderr

#: The byte alignment of a firmware's model array and tensor arena, and what its arena size is rounded up to.
ALIGNMENT = 16


def round_up(value: int, to: int = ALIGNMENT) -> int:
    return -(-int(value) // to) * to


def firmware_ram(tflm: dict, scratch_bytes: int) -> dict:
    """The RAM a firmware allocates for a full-integer TFLite model on a Cortex-M, in parts: TensorFlow Lite Micro's
    non-persistent section (``head_bytes`` of :func:`tflm_arena`: activations and the reference kernels' scratch),
    its persistent section (``tail_bytes``: tensor structs, quantization and operator data), and the CMSIS-NN
    kernels' im2col scratch (``scratch_bytes``, :func:`edge_audio.memory.memory_report`); ``arena_bytes``, their
    sum rounded up to :data:`ALIGNMENT`, is the tensor arena ``edge-audio export`` writes, and what a RAM budget
    checks."""
    return {"arena_bytes": round_up(tflm["head_bytes"] + tflm["tail_bytes"] + scratch_bytes),
            "non_persistent_bytes": int(tflm["head_bytes"]), "persistent_bytes": int(tflm["tail_bytes"]),
            "scratch_bytes": int(scratch_bytes)}


def npu_firmware_ram(sram_bytes: int, tflm: dict) -> int:
    """The tensor arena a firmware allocates for a model compiled by Vela for an Ethos-U: the SRAM Vela reports
    (the NPU's activations and scratch) plus the persistent section of TensorFlow Lite Micro's arena for the
    uncompiled file (the interpreter still holds its tensor structs), rounded up to :data:`ALIGNMENT`."""
    return round_up(sram_bytes + tflm["tail_bytes"])


#: The arena TensorFlow Lite Micro's Python interpreter is given: ample for any model of the project.
INTERPRETER_ARENA_BYTES = 16 * 2 ** 20


def tflm_arena(path: str | os.PathLike, arena_bytes: int = INTERPRETER_ARENA_BYTES) -> dict:
    """TensorFlow Lite Micro's own accounting of the model at ``path``: the interpreter (reference kernels) with
    its recording allocator runs one inference, and the arena it used is read from its allocation report.

    Returns ``head_bytes`` (the non-persistent section: the planned activation tensors and kernel scratch),
    ``tail_bytes`` (persistent: tensor structs, quantization and operator data) and ``total_bytes``.
    """
    from tflite_micro.python.tflite_micro import runtime

    with captured_stderr() as report:
        interpreter = runtime.Interpreter.from_file(str(path), arena_size=arena_bytes)
        details = interpreter.get_input_details(0)
        interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
        interpreter.invoke()
        interpreter.print_allocations()
    numbers = {key: int(value) for key, value in re.findall(
        r"Arena allocation (total|head|tail) (\d+) bytes", report[0])}
    if set(numbers) != {"total", "head", "tail"}:
        raise RuntimeError(f"TFLite Micro's allocation report was not understood: {report[0][:300]!r}")
    return {"head_bytes": numbers["head"], "tail_bytes": numbers["tail"], "total_bytes": numbers["total"]}
