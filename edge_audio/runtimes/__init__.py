"""Every runtime behind one small interface, and the registry that names them.

A :class:`Runtime` opens a model file at a precision and a thread count and returns a :class:`Session`:
``predict(inputs)`` gives float logits for a batch-first array in the package's layout (log-mels
``(clips, 1, mels, frames)``, or raw audio ``(clips, samples)`` for a waveform model), and ``call()`` a batch-1
inference on a fixed random input, for timing. Each runtime also says which file is its **FP32 twin** of a model
(the variant's reference, run where the variant runs) and its version string for records.

:data:`RUNTIMES` is the one registry: the quantization methods (:mod:`edge_audio.quantize`), the chapters' step,
``edge-audio bench --runtimes``, ``edge-audio classify`` and the model cards find a runtime here, by name or by
the file it opens, and nowhere else. Adding a runtime is one module in this folder that defines ``RUNTIME``, plus
its line in :data:`RUNTIMES`. The heavy libraries are imported only when a session is opened, so listing the
runtimes costs nothing and a runtime that is not installed is simply reported absent.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError
from . import litert, onnxruntime, openvino, pytorch
from .base import PRECISIONS, FP32Model, Runtime, Session, predict_batches, random_input  # noqa: F401 (the interface)


#: Every runtime, by its one name (the ``runtime`` of methods and records). One line per runtime.
RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    onnxruntime.RUNTIME,
    litert.RUNTIME,
    openvino.RUNTIME,
    pytorch.RUNTIME,
)}


def get(name: str) -> Runtime:
    """The runtime called ``name``; a one-line error naming the known ones otherwise."""
    try:
        return RUNTIMES[name]
    except KeyError:
        raise ModelFileError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}") from None


def installed_runtimes() -> dict[str, bool]:
    """Which runtimes are installed, by name."""
    return {name: runtime.installed() for name, runtime in RUNTIMES.items()}


#: The runtime that opens each deployable file type (``edge-audio classify``, the model cards).
DEPLOYABLE = {".onnx": "onnxruntime", ".tflite": "litert"}


def for_file(path: str | Path) -> Runtime:
    """The runtime that runs a published model file, chosen by its extension (:data:`DEPLOYABLE`)."""
    suffix = Path(path).suffix
    if suffix not in DEPLOYABLE:
        kinds = " or ".join(f"{ext} ({name})" for ext, name in DEPLOYABLE.items())
        raise ModelFileError(f"{path}: published models are {kinds} files, got {suffix or 'no extension'}")
    return RUNTIMES[DEPLOYABLE[suffix]]


def open_model(path: str | Path, runtime: str | None = None, precision: str = "fp32", threads: int = 1) -> Session:
    """The model at ``path`` opened in ``runtime`` (default: the one its file type names, :func:`for_file`)."""
    return (get(runtime) if runtime else for_file(path)).session(path, precision, threads)
