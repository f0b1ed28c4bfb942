"""TensorFlow Lite Micro: the arena a full-integer TFLite model needs on a microcontroller, by TFLite Micro's own
recording allocator (its Python interpreter runs the reference kernels). It checks the package's planner
(:mod:`edge_audio.memory`); it is not in the registry of runtimes, since accuracy and latency are LiteRT's."""
from __future__ import annotations

import os
import re

import numpy as np

from .base import captured_stderr


def tflm_arena(path: str | os.PathLike, arena_bytes: int = 16 * 2 ** 20) -> dict:
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
