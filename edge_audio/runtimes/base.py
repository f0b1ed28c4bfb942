"""The runtime interface: :class:`Runtime`, :class:`Session`, the FP32 files a twin is made from, and the one
predict loop. The registry of runtimes is :data:`edge_audio.runtimes.RUNTIMES`."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from ..errors import ModelFileError

#: The precisions a session can be asked for (what it computes in).
PRECISIONS = ("fp32", "bf16", "int8")


class Session(Protocol):
    """An opened model: float logits for a batch of inputs, and a batch-1 call for timing."""

    input_shape: tuple[int, ...]  # one clip's input, in the package's layout

    def predict(self, inputs: np.ndarray) -> np.ndarray: ...

    def call(self) -> Callable[[], object]: ...


@dataclass(frozen=True)
class FP32Model:
    """The files of one trained FP32 model: its ONNX export and its PyTorch checkpoint (``{"spec", "state_dict"}``)."""

    onnx: Path
    checkpoint: Path


@dataclass(frozen=True)
class Runtime:
    """A runtime: its one name, the module that must be importable, the file type it opens, and how to open one.

    ``open(path, precision, threads)`` returns a :class:`Session`; ``twin(model, folder)`` the file of ``model``'s
    FP32 twin in this runtime (written under ``folder`` when it must be converted); ``version()`` the runtime's name
    and version for records.
    """

    name: str
    module: str
    suffix: str
    open: Callable[[Path, str, int], Session]
    twin: Callable[[FP32Model, Path], Path]
    version: Callable[[], str]

    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def session(self, path: str | Path, precision: str = "fp32", threads: int = 1) -> Session:
        """The model at ``path`` opened in this runtime; a one-line error when the file is missing."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"model file {path} does not exist")
        return self.open(path, precision, threads)


def predict_batches(run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The one predict loop: ``run`` over ``inputs`` in batches of ``batch_size`` (each batch a contiguous float32
    copy, since the features may be a read-only memory map), the outputs stacked as float32."""
    outputs = []
    for start in range(0, len(inputs), batch_size):
        batch = np.array(inputs[start:start + batch_size], dtype=np.float32, order="C")
        outputs.append(np.asarray(run(batch), dtype=np.float32))
    return np.concatenate(outputs)


def random_input(shape: tuple[int, ...]) -> np.ndarray:
    """The fixed batch-1 input every ``call()`` times (seeded, so every runtime times the same numbers)."""
    return np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)


@contextlib.contextmanager
def captured_stderr():
    """Collect what C code writes to file descriptor 2 (LiteRT and TFLite Micro print there)."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        text: list[str] = []
        try:
            yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text.append(sink.read().decode(errors="replace"))
