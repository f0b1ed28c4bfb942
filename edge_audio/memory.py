"""What a deployed model needs on a device: flash (its bytes) and peak RAM (its activations), from its graph.

**Flash** is the bytes of the deployed file (weights and graph), and ``weight_bytes`` the constant tensors in it.

**Peak RAM** is what a tensor-arena runtime (TensorFlow Lite Micro, or any runtime that plans its activations
ahead) needs for activations: every intermediate tensor lives from the operator that produces it to the last
operator that reads it, in the graph's execution order, and the tensors are placed in one arena by a **greedy
planner**: largest first, each at the lowest offset where it overlaps no tensor placed before it whose lifetime
overlaps its own (the scheme of TFLite Micro's ``GreedyMemoryPlanner``). ``live_peak_bytes`` is the lower bound
no planner can beat: the most bytes alive at one step. ``scratch_bytes`` estimates the largest per-operator
scratch buffer of an INT8 convolution in CMSIS-NN (the im2col buffer of ``arm_convolve_s8``: 2 x input channels
x kernel height x kernel width int16 values; depthwise: 1x); FP32 graphs are counted without scratch.
``peak_ram_bytes`` = arena + scratch. A model whose weights are packed below 8 bits (int4) has each weighted
operator's weights unpacked to int8 into the arena while it runs (TensorFlow Lite Micro's kernels request that
scratch buffer): with ``unpacked_weights`` each becomes one more tensor of the plan, alive for its operator only,
16-byte aligned as TFLite Micro places it. Model inputs count (the runtime holds them in the arena); weights do not
(they stay in flash).

**Quantize/dequantize pairs are what a deployment fuses**: in a QDQ graph, ``QuantizeLinear`` and
``DequantizeLinear`` are not operators of their own; a tensor that is quantized is stored in its quantized type
(one byte per value), and its readers are the operators behind the dequantize. A tensor computed from constants
only is a weight. So the same code counts an FP32 graph (four bytes per value), a static INT8 graph (one byte
per quantized activation, four for what stays float) and a dynamic-quantization graph (its real operators). An
activation function right after a convolution or a matrix product (Relu, Clip), read by nothing else, is computed
in place, as every runtime fuses it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference

from .errors import ModelFileError

FUSED = ("QuantizeLinear", "DequantizeLinear")
CONVOLUTIONS = ("Conv", "ConvInteger", "QLinearConv")
#: An activation right after one of PRODUCERS, read by nothing else, is computed in place by every runtime.
FUSED_ACTIVATIONS = ("Relu", "Clip")
PRODUCERS = ("Conv", "Gemm", "MatMul", "ConvInteger", "QLinearConv")
#: Operators whose weights can be stored below 8 bits (the TFLite writer keeps the input normalisation's at 8).
WEIGHTED = ("Conv", "Gemm", "MatMul")


@dataclass(frozen=True)
class Activation:
    """One tensor the arena must hold: its bytes and the steps (operator indices) it is alive for."""

    name: str
    size: int
    first: int
    last: int


def static_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every symbolic input dimension set to 1 (batch 1), shapes inferred."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for value in model.graph.input:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.Clear()
                dim.dim_value = 1
    return shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)


def _element_bytes(elem_type: int) -> int:
    return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)


def activations(model: onnx.ModelProto, full_integer: bool = False, unpacked_weights: bool | list[bool] = False
                ) -> tuple[list[Activation], list[onnx.NodeProto], dict[str, tuple]]:
    """The activation tensors of ``model`` (batch 1) with their deployed sizes and lifetimes, the operators in
    execution order (quantize/dequantize fused away), and every tensor's shape. ``full_integer`` counts every
    float activation at one byte: the same graph deployed with INT8 activations (an estimate for an FP32 graph
    that has not been quantized, as in the search). ``unpacked_weights`` adds each weighted operator's weights
    unpacked to int8, alive for that operator only (see the module docstring): True for every one, or a list with
    one entry per operator of :data:`WEIGHTED` in execution order (mixed precision)."""
    model = static_batch(model)
    graph = model.graph
    types = {v.name: v.type.tensor_type for v in [*graph.input, *graph.value_info, *graph.output]}
    shapes = {name: tuple(d.dim_value for d in t.shape.dim) for name, t in types.items()}
    constants = {i.name for i in graph.initializer}
    producer = {}
    for node in graph.node:  # constant folding of the graph's view: anything computed from constants is a weight
        if node.op_type == "Constant" or all(name in constants for name in node.input if name):
            constants.update(node.output)
        for output in node.output:
            producer[output] = node
    read_by: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            read_by[name] = read_by.get(name, 0) + 1

    def computed_by(name: str) -> onnx.NodeProto | None:
        """The operator that computes ``name``, through any quantize/dequantize pair."""
        node = producer.get(name)
        while node is not None and node.op_type in FUSED:
            node = producer.get(node.input[0])
        return node

    def fused(node: onnx.NodeProto) -> bool:
        """Quantize/dequantize, and an activation its producer computes in place (Conv + Relu; also when the
        quantizer put a quantize/dequantize pair between them, as ONNX Runtime does for symmetric int16)."""
        if node.op_type in FUSED:
            return True
        source = computed_by(node.input[0]) if node.input else None
        return (node.op_type in FUSED_ACTIVATIONS and source is not None and source.op_type in PRODUCERS
                and read_by.get(node.input[0], 0) == 1)

    operators = [n for n in graph.node if not fused(n) and not set(n.output) <= constants]
    step = {id(node): index for index, node in enumerate(operators)}

    def deployed(name: str) -> str:
        """The tensor that stands for ``name`` in a deployment: a dequantized tensor is its quantized source, and
        a fused activation's output is its producer's."""
        while name in producer and fused(producer[name]):
            name = producer[name].input[0]
        return name

    readers: dict[str, list[int]] = {}
    for node in operators:
        for name in node.input:
            if name and deployed(name) not in constants:
                readers.setdefault(deployed(name), []).append(step[id(node)])
    quantized = {node.input[0]: node.output[0] for node in graph.node if node.op_type == "QuantizeLinear"}
    tensors = []
    inputs = [v.name for v in graph.input if v.name not in constants]
    outputs = {deployed(v.name) for v in graph.output}
    candidates = [(name, -1) for name in inputs] + [(name, step[id(node)]) for node in operators
                                                    for name in node.output if name]
    aliases = {}  # a producer's output -> the name its fused activation gives it (and any quantization)
    for node in graph.node:
        if fused(node) and node.op_type in FUSED_ACTIVATIONS:
            aliases[node.input[0]] = node.output[0]
    for name, first in candidates:
        stored = name
        while stored in aliases:
            stored = aliases[stored]
        stored = quantized.get(stored, stored)  # a quantized tensor is stored in its quantized type
        if stored not in types or not types[stored].HasField("shape"):
            raise ModelFileError(f"cannot infer the shape of tensor {name!r}; the graph needs static shapes")
        last = len(operators) if name in outputs else max(readers.get(name, [first]))
        element = _element_bytes(types[stored].elem_type)
        if full_integer and types[stored].elem_type == onnx.TensorProto.FLOAT:
            element = 1
        size = int(np.prod(shapes[stored], dtype=np.int64)) * element
        tensors.append(Activation(name, size, max(first, 0), last))
    layers = [node for node in operators if node.op_type in WEIGHTED]
    unpacked = [unpacked_weights] * len(layers) if isinstance(unpacked_weights, bool) else list(unpacked_weights)
    if len(unpacked) != len(layers):
        raise ValueError(f"unpacked_weights names {len(unpacked)} layers, the graph has {len(layers)}")
    weights = _weight_shapes(model)
    for node, packed in zip(layers, unpacked):
        if packed:
            size = int(np.prod(weights[node.input[1]], dtype=np.int64))
            tensors.append(Activation(f"{node.output[0]}/unpacked weights", -(-size // 16) * 16,
                                      step[id(node)], step[id(node)]))
    return tensors, operators, shapes


def greedy_placement(tensors: list[Activation]) -> dict[str, int]:
    """Each tensor's offset in the arena by the greedy placement (largest first, lowest offset that fits; see the
    module docstring): the layout a generated firmware's static arena uses."""
    placed: list[tuple[int, Activation]] = []
    for tensor in sorted(tensors, key=lambda t: (-t.size, t.first)):
        busy = sorted((offset, offset + other.size) for offset, other in placed
                      if other.first <= tensor.last and tensor.first <= other.last)
        offset = 0
        for start, end in busy:
            if offset + tensor.size <= start:
                break
            offset = max(offset, end)
        placed.append((offset, tensor))
    return {tensor.name: offset for offset, tensor in placed}


def greedy_arena(tensors: list[Activation]) -> int:
    """The arena bytes of the greedy placement (:func:`greedy_placement`)."""
    offsets = greedy_placement(tensors)
    return max((offsets[t.name] + t.size for t in tensors), default=0)


def live_peak(tensors: list[Activation]) -> int:
    """The most activation bytes alive at one step: the bound no planner can go below."""
    steps = range(min(t.first for t in tensors), max(t.last for t in tensors) + 1)
    return max(sum(t.size for t in tensors if t.first <= s <= t.last) for s in steps)


def _conv_scratch(node: onnx.NodeProto, shapes: dict[str, tuple], int8: bool) -> int:
    """CMSIS-NN's im2col buffer of an INT8 convolution (bytes); 0 for a float one."""
    if not int8:
        return 0
    weight = shapes.get(node.input[1])
    if not weight or len(weight) != 4:
        return 0
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    groups = attrs.get("group", 1)
    channels_in = weight[1] * groups
    depthwise = groups > 1 and groups == channels_in
    return (1 if depthwise else 2) * channels_in * weight[2] * weight[3] * 2


def memory_report(path: str | os.PathLike, full_integer: bool = False,
                  unpacked_weights: bool | list[bool] = False) -> dict:
    """Flash and peak RAM of the ONNX model at ``path`` (see the module docstring for what each number counts);
    ``full_integer`` estimates the RAM of the graph deployed with INT8 activations, ``unpacked_weights`` counts
    weights stored below 8 bits unpacked while their operator runs (see :func:`activations`)."""
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...: the file is not a model
        raise ModelFileError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from None
    tensors, operators, shapes = activations(model, full_integer, unpacked_weights)
    graph = model.graph
    quantized_inputs = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    scratch = max([_conv_scratch(node, {**shapes, **_weight_shapes(model)},
                                 full_integer or any(name in quantized_inputs for name in node.input[:1]))
                   for node in operators if node.op_type in CONVOLUTIONS] or [0])
    weight_bytes = sum(int(np.prod(i.dims, dtype=np.int64)) * _element_bytes(i.data_type) for i in graph.initializer)
    arena = greedy_arena(tensors)
    return {"flash_bytes": os.path.getsize(path), "weight_bytes": int(weight_bytes), "arena_bytes": arena,
            "live_peak_bytes": live_peak(tensors), "scratch_bytes": scratch, "peak_ram_bytes": arena + scratch,
            "largest_activation": max(tensors, key=lambda t: t.size).name, "operators": len(operators),
            "planner": "greedy by size, lifetimes in graph order; QDQ pairs fused; CMSIS-NN int8 im2col scratch"}


def _weight_shapes(model: onnx.ModelProto) -> dict[str, tuple]:
    """Initializer shapes, and the shapes of the dequantized weights that stand for them."""
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in shapes:
            shapes[node.output[0]] = shapes[node.input[0]]
    return shapes


def device_memory(path: str | os.PathLike, flash_bytes: int | None = None,
                  unpacked_weights: bool | list[bool] = False) -> dict:
    """The record fields of a deployed model's memory: ``memory`` (the whole :func:`memory_report`),
    ``peak_ram_bytes`` and ``flash_bytes`` (``flash_bytes`` overrides the file's bytes, for a variant deployed as
    another file than the graph counted; ``unpacked_weights`` for one whose weights are packed below 8 bits)."""
    report = memory_report(path, unpacked_weights=unpacked_weights)
    if flash_bytes is not None:
        report["flash_bytes"] = int(flash_bytes)
    return {"memory": report, "peak_ram_bytes": report["peak_ram_bytes"], "flash_bytes": report["flash_bytes"]}
