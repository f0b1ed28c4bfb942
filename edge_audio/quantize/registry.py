"""The registry of quantization methods: :class:`Method`, what each declares it is, and :data:`METHODS`.

Every method is registered by the module of its family (:func:`register`, beside its implementation), and every
other module selects methods by what they declare (:func:`selection`, :func:`derived_methods`,
:func:`reference_method`, :func:`full_integer_method`, :func:`bench_methods`), never by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

from ..errors import ParameterError
from ..names import file_name
from ..parameters import METHOD_SELECTIONS
from ..runtimes import RUNTIMES
from .calibration import CALIBRATION_METHODS


@dataclass(frozen=True)
class QuantizationInputs:
    """What a method needs: the FP32 model (PyTorch and its ONNX export), calibration clips and settings, the
    values of the parameters it reads (``options``); a method that trains (:attr:`Method.trains`) also the split's
    training clips and their labels."""

    model: nn.Module
    fp32_onnx: Path
    calibration: np.ndarray  # (clips, 1, mels, frames)
    calibration_method: str
    reduce_range: bool  # 7-bit weights (chosen from the CPU; see the module docstring)
    training: tuple[np.ndarray, np.ndarray] | None = None  # (clips, mels, frames) and their labels
    options: dict = field(default_factory=dict)  # the values of the parameters the method reads (Method.options)


@dataclass(frozen=True, kw_only=True)
class Method:
    """A quantization method, every trait named where it is registered (:func:`register`): its one name, the
    runtime its variant runs in (a name of
    :data:`edge_audio.runtimes.RUNTIMES`; its FP32 twin runs there too, and its file is of that runtime's type), and
    the function that writes the file and returns the settings it used. ``ram_graph`` says which ONNX graph its
    activations are counted on: its own file (``"artifact"``), the FP32 graph (``"fp32"``: a variant whose
    activations stay FP32 in a non-ONNX file), or the QDQ graph it was written from (``"source"``)."""

    name: str
    runtime: str
    int8_weights: bool  # every weight stored in INT8 (what the DCASE profile counts)
    int8_activations: bool  # activations stored in INT8 between operators (what a microcontroller needs)
    description: str
    apply: Callable[[QuantizationInputs, Path], dict]
    full_integer_tflite: bool = False  # a full-integer TFLite file: what a microcontroller runtime executes
    precision: str = "int8"  # what the variant computes in
    ram_graph: str = "artifact"
    weight_bits: int = 8  # bits of the narrowest stored weight (for int8_weights methods)
    activation_bits: int = 8  # bits of a stored activation (for full-integer methods: 8, or 16 for 16x8)
    trains: bool = False  # fine-tunes the model on the split's training clips (QAT)
    options: tuple[str, ...] = ()  # the parameters it reads: their values enter its variant's cache key
    bits: str = ""  # a full-integer method's bit widths: "w8 a8" (weights, activations); "w4/8 a8" per layer
    # where the run uses it (the ``methods`` parameter's selections, :func:`selection`)
    default: bool = False  # in the chapters' default run: one method of each kind
    book: bool = False  # in the book's run
    derived: bool = False  # also compresses the models beyond the baselines (search finalists, distilled students)
    reference: bool = False  # the reference INT8 method: chapter 3's per-layer sensitivity analysis and export check
    bench: bool = False  # timed by ``edge-audio bench --runtimes`` beside its runtime's FP32

    @property
    def suffix(self) -> str:
        """The extension of the variant's file: its runtime's file type."""
        return RUNTIMES[self.runtime].suffix

    def ram_graph_file(self, artifact: Path, fp32_onnx: Path, settings_used: dict) -> Path:
        """The ONNX graph this method's variant's activations are counted on (``ram_graph``): the variant's own
        file, the FP32 graph, or the QDQ graph the variant was written from (named in the settings it used)."""
        if self.ram_graph == "fp32":
            return fp32_onnx
        if self.ram_graph == "source":
            return artifact.with_name(settings_used["source_graph"])
        return artifact

    def artifact(self, model: str) -> str:
        """The published file name of ``model``'s variant."""
        return f"{model}_{self.name}{self.suffix}"


#: Every quantization method, by its one name, in the order the families registered them.
METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS` (its family module calls this once, beside the implementation)."""
    if method.name in METHODS:
        raise ValueError(f"a quantization method named {method.name!r} is registered already")
    if method.runtime not in RUNTIMES:
        raise ValueError(f"{method.name}: runtime {method.runtime!r} is not registered ({', '.join(RUNTIMES)})")
    METHODS[method.name] = method
    return method


def selection(methods: str | list[str]) -> list[str]:
    """The method names ``methods`` stands for: a list of names as it is, or a selection by trait: ``"default"``
    (every method marked ``default``), ``"book"`` (marked ``book``) or ``"all"``."""
    if not isinstance(methods, str):
        return list(methods)
    if methods not in METHOD_SELECTIONS:
        raise ParameterError(f"methods {methods!r} is neither a list of method names nor one of "
                             f"{', '.join(METHOD_SELECTIONS)}")
    return [m.name for m in METHODS.values() if methods == "all" or getattr(m, methods)]


def derived_methods() -> list[str]:
    """What a model beyond the baselines (a search finalist, a distilled student) is compressed with."""
    return [m.name for m in METHODS.values() if m.derived]


def reference_method() -> Method:
    """The reference INT8 method (the one marked ``reference``)."""
    [method] = [m for m in METHODS.values() if m.reference]
    return method


def full_integer_method(weight_bits: int) -> Method:
    """The post-training full-integer TFLite method that stores every weight at ``weight_bits`` bits with int8
    activations: how the search deploys a candidate of that bit width."""
    [method] = [m for m in METHODS.values()
                if m.full_integer_tflite and not m.trains and m.bits == f"w{weight_bits} a8"]
    return method


def bench_methods() -> list[str]:
    """The methods ``edge-audio bench --runtimes`` times, each beside its runtime's FP32."""
    return [m.name for m in METHODS.values() if m.bench]


def check_methods(methods: list[str], calibration_method: str = "minmax") -> None:
    """Raise :class:`~edge_audio.errors.ParameterError` naming any unknown quantization or calibration method."""
    unknown = [file_name(m, "quantization method") for m in methods if m not in METHODS]
    if unknown:
        raise ParameterError(f"unknown quantization method(s) {unknown}; choose from {', '.join(METHODS)}")
    if calibration_method not in CALIBRATION_METHODS:
        raise ParameterError(f"unknown calibration method {calibration_method!r}; choose from "
                             f"{', '.join(CALIBRATION_METHODS)}")
