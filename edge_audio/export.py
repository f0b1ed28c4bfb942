"""ONNX export (TFLite models are written from the ONNX graphs: :mod:`edge_audio.tflite`; sessions of every runtime
are opened through :mod:`edge_audio.runtimes`).

Models are exported with the dynamo exporter (``torch.onnx.export(..., dynamo=True)``), which also handles the
``torch.stft`` front end, with a dynamic batch dimension, and checked with ``onnx.checker``.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from .storage import atomic_write_bytes

OPSET = 18


@contextlib.contextmanager
def _quiet_exporter():
    """The dynamo exporter prints progress and warnings on every call; keep the chapters readable."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every Conv2d -> BatchNorm2d pair of a Sequential folded into the conv.

    Numerically the same function; the quantizer then sees (and quantizes) the folded weights. A BatchNorm that
    does not follow a convolution (the input normalisation) is kept.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval().cpu()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return folded


def strip_for_deployment(proto: onnx.ModelProto, short_names: bool = False) -> onnx.ModelProto:
    """``proto`` without what a deployed file does not need to run, in place; returns it.

    Always removed: the exporter's per-node metadata (PyTorch stack traces, FX node names and module scopes: 28 kB
    of ds_cnn's 311 kB FP32 file), graph and model metadata, doc strings and ``value_info`` (intermediate shapes,
    which any runtime infers again). ``short_names`` also clears node names and renames every tensor but the
    graph's inputs and outputs to ``t0``, ``t1``, ...: ONNX Runtime's quantizer names each scale, zero point and
    Q/DQ output after the tensor it serves, about 7 kB of ds_cnn's INT8 file. The FP32 graph keeps its names (the
    per-layer sensitivity analysis quantizes its nodes by name).
    """
    graph = proto.graph
    for node in graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del graph.metadata_props[:], graph.value_info[:], proto.metadata_props[:]
    graph.doc_string = proto.doc_string = ""
    if short_names:
        kept = {value.name for value in [*graph.input, *graph.output]}
        renamed: dict[str, str] = {}

        def short(name: str) -> str:
            if not name or name in kept:
                return name
            return renamed.setdefault(name, f"t{len(renamed)}")

        for initializer in graph.initializer:
            initializer.name = short(initializer.name)
        for node in graph.node:
            node.name = ""
            node.input[:] = [short(name) for name in node.input]
            node.output[:] = [short(name) for name in node.output]
    return proto


def export_to_onnx(model: nn.Module, path: str | os.PathLike, example_input: torch.Tensor | None = None,
                   input_shape: tuple[int, ...] | None = None) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` with a dynamic batch dimension; returns the path.

    Give an ``example_input`` or an ``input_shape`` (batch first). BatchNorm is folded into the convolutions
    first (:func:`fold_batchnorm`). The file is stripped of what inference does not need
    (:func:`strip_for_deployment`), checked with ``onnx.checker`` and written atomically (weights embedded in the
    one file).
    """
    if example_input is None:
        if input_shape is None:
            raise ValueError("export_to_onnx needs example_input or input_shape")
        example_input = torch.randn(*input_shape)
    model = fold_batchnorm(model)
    batch = torch.export.Dim("batch", min=1, max=1024)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(model, (example_input,), dynamo=True, opset_version=OPSET,
                                    input_names=["input"], output_names=["logits"],
                                    dynamic_shapes=({0: batch},), optimize=True, verbose=False)
    proto = strip_for_deployment(program.model_proto)
    onnx.checker.check_model(proto)
    return atomic_write_bytes(path, proto.SerializeToString())


def export_waveform_model(model: nn.Module, front_end: nn.Module, num_samples: int,
                          path: str | os.PathLike) -> Path:
    """Export ``front_end`` + ``model`` as one ONNX graph: raw mono waveform ``(batch, num_samples)`` in, logits out.

    A device then needs nothing but the runtime: no feature code, no librosa. The exported STFT fixes the
    batch dimension at 1, the way a device runs it.
    """
    from .models import WaveformClassifier

    return export_to_onnx(WaveformClassifier(front_end, model), path, input_shape=(1, num_samples))
