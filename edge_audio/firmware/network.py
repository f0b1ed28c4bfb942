"""A full-integer TFLite model as dependency-free C99: ``network.h`` / ``network.c`` beside the project's kernels
(``c/ea_nn.c``).

The generator reads the flatbuffer (the schema that ships with ``ai-edge-litert``) and writes, per operator, one
kernel call with its parameters as ``const`` data: weights as they are stored (int4 unpacked to int8), biases, and
the per-channel multipliers and shifts TensorFlow Lite Micro computes when it prepares the operator (the same
double-precision arithmetic, :func:`quantize_multiplier`), so the C computes what TFLite Micro's reference kernels
compute, byte for byte. Activations live in one static arena laid out by the package's planner
(:func:`edge_audio.memory.greedy_placement`: largest first, lowest offset that fits), 16-byte aligned; a RESHAPE
is the same bytes under another shape (no copy). One entry point, ``edge_audio_invoke(input, output)``; a build
that defines ``EA_LAYER_HOOK`` gets a call after every layer (the emulated boards count instructions per layer
with it).

Covered: CONV_2D, DEPTHWISE_CONV_2D (stride and padding any, dilation 1), MAX_POOL_2D, AVERAGE_POOL_2D, MEAN over
height and width (kept), FULLY_CONNECTED, RESHAPE, SOFTMAX (int8); int8 activations with int8 or int4 weights, and
16x8 (int16 activations, int8 weights, int64 biases) for all but SOFTMAX; fused activations NONE, RELU and RELU6.
Anything else is a :class:`FirmwareError` naming it, raised before a file is written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ..errors import ModelFileError
from ..memory import Activation, greedy_placement
from .csource import c_header, c_rows

#: The arena's and every tensor's alignment (TensorFlow Lite Micro's).
ALIGNMENT = 16
_OPERATOR_NAMES = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
_TYPES = {schema.TensorType.INT8: ("int8_t", np.int8), schema.TensorType.INT16: ("int16_t", np.int16),
          schema.TensorType.INT32: ("int32_t", np.int32), schema.TensorType.INT64: ("int64_t", np.int64)}
_ACTIVATIONS = {schema.ActivationFunctionType.NONE: "NONE", schema.ActivationFunctionType.RELU: "RELU",
                schema.ActivationFunctionType.RELU6: "RELU6"}
COVERED = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "FULLY_CONNECTED", "RESHAPE",
           "SOFTMAX")


class FirmwareError(ModelFileError):
    """The model uses an operator, a type or a quantization the C generator does not cover (named in the message)."""


def _round_away(value: float) -> int:
    """C's round(): halves away from zero (TfLiteRound)."""
    return int(math.floor(value + 0.5)) if value >= 0 else int(math.ceil(value - 0.5))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: ``real`` as a Q0.31 multiplier and a power-of-two exponent."""
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    fixed = _round_away(fraction * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    ctype: str
    dtype: type
    scale: list[float]
    zero_point: list[int]
    data: np.ndarray | None  # constants only

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class Layer:
    """One operator of the generated network: its TFLite name, the C it becomes, its MACs."""

    operator: str
    call: str
    macs: int
    inputs: list[int]
    output: int


@dataclass
class Network:
    """The C of one model: the sources, the arena, the layers, and the input's and output's quantization."""

    sources: dict[str, str]
    arena_bytes: int
    layers: list[Layer]
    input: Tensor
    output: Tensor
    activation_type: str = field(default="int8_t")

    @property
    def operators(self) -> list[str]:
        return [layer.operator for layer in self.layers]


def _tensors(model: schema.ModelT) -> list[Tensor]:
    graph = model.subgraphs[0]
    tensors = []
    for index, tensor in enumerate(graph.tensors):
        name = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
        shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else []))
        buffer = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
        quant = tensor.quantization
        scale = list(quant.scale) if quant is not None and quant.scale is not None else []
        zero = [int(z) for z in quant.zeroPoint] if quant is not None and quant.zeroPoint is not None else []
        if tensor.type == schema.TensorType.INT4:
            ctype, dtype = "int8_t", np.int8
            data = None
            if buffer is not None and len(buffer):
                packed = np.asarray(buffer, np.uint8)
                nibbles = np.stack([packed & 0x0F, packed >> 4], axis=1).reshape(-1)[:int(np.prod(shape))]
                data = np.where(nibbles > 7, nibbles.astype(np.int16) - 16, nibbles).astype(np.int8).reshape(shape)
        elif tensor.type in _TYPES:
            ctype, dtype = _TYPES[tensor.type]
            data = (np.frombuffer(bytes(np.asarray(buffer, np.uint8)), dtype).reshape(shape)
                    if buffer is not None and len(buffer) else None)
        else:
            raise FirmwareError(f"tensor {name!r} is of TFLite type {tensor.type}: the C generator covers int8, "
                                "int16 and int4 tensors (a full-integer model)")
        tensors.append(Tensor(index, name, shape, ctype, dtype, scale, zero, data))
    return tensors


def _activation_range(tensor: Tensor, activation: int) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for the output ``tensor``."""
    info = np.iinfo(tensor.dtype)
    low, high = int(info.min), int(info.max)
    if activation not in _ACTIVATIONS:
        raise FirmwareError(f"fused activation {activation} of {tensor.name!r} is not covered (NONE, RELU, RELU6)")
    scale, zero = np.float32(tensor.scale[0]), tensor.zero_point[0]
    if _ACTIVATIONS[activation] in ("RELU", "RELU6"):
        low = max(low, zero + _round_away(float(np.float32(0.0) / scale)))
    if _ACTIVATIONS[activation] == "RELU6":
        high = min(high, zero + _round_away(float(np.float32(6.0) / scale)))
    return low, high


def _same_padding(size: int, kernel: int, stride: int, out: int) -> int:
    return max((out - 1) * stride + kernel - size, 0) // 2


class _Writer:
    """Collects the constant arrays and layer calls of the generated ``network.c``."""

    def __init__(self, tensors: list[Tensor], offsets: dict[int, int]):
        self.tensors, self.offsets = tensors, offsets
        self.arrays: list[str] = []
        self.calls: list[str] = []

    def array(self, name: str, ctype: str, values: np.ndarray) -> str:
        flat = np.asarray(values).reshape(-1)
        self.arrays.append(f"static const {ctype} {name}[{max(flat.size, 1)}] = {{\n"
                           f"{c_rows([int(v) for v in flat] or [0], 16, str)}\n}};")
        return name

    def pointer(self, tensor: Tensor) -> str:
        return f"({tensor.ctype} *)(ea_arena + {self.offsets[tensor.index]})"


def _map_op(writer: _Writer, layer: int, op, options, kind: str, tensors: list[Tensor]) -> tuple[str, int]:
    """The ea_map_op of a convolution, depthwise convolution, pooling or MEAN, and its MACs."""
    source, output = tensors[op.inputs[0]], tensors[op.outputs[0]]
    _, in_h, in_w, in_c = source.shape
    _, out_h, out_w, out_c = output.shape
    fields = {"in_h": in_h, "in_w": in_w, "in_c": in_c, "out_h": out_h, "out_w": out_w, "out_c": out_c,
              "input_offset": -source.zero_point[0], "output_offset": output.zero_point[0]}
    activation = getattr(options, "fusedActivationFunction", schema.ActivationFunctionType.NONE)
    fields["act_min"], fields["act_max"] = _activation_range(output, activation)
    macs = 0
    if kind in ("conv", "depthwise"):
        weights, bias = tensors[op.inputs[1]], (tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0
                                                else None)
        if (options.dilationHFactor, options.dilationWFactor) != (1, 1):
            raise FirmwareError(f"layer {layer} ({kind}) has dilation {options.dilationHFactor}x"
                                f"{options.dilationWFactor}: the C generator covers dilation 1")
        k_h, k_w = (weights.shape[1], weights.shape[2])
        stride_h, stride_w = options.strideH, options.strideW
        axis_channels = weights.shape[0] if kind == "conv" else weights.shape[3]
        scales = weights.scale if len(weights.scale) == axis_channels else weights.scale[:1] * axis_channels
        real = [float(np.float32(source.scale[0])) * float(np.float32(s)) / float(np.float32(output.scale[0]))
                for s in scales]
        multipliers, shifts = zip(*(quantize_multiplier(r) for r in real))
        fields.update(k_h=k_h, k_w=k_w, weights=writer.array(f"ea_weights{layer}", "int8_t", weights.data),
                      multiplier=writer.array(f"ea_multiplier{layer}", "int32_t", np.array(multipliers)),
                      shift=writer.array(f"ea_shift{layer}", "int8_t", np.array(shifts)))
        if bias is not None:
            fields["bias"] = writer.array(f"ea_bias{layer}", bias.ctype, bias.data)
        if kind == "depthwise":
            fields["depth_multiplier"] = out_c // in_c
        macs = out_h * out_w * out_c * k_h * k_w * (in_c if kind == "conv" else 1)
    elif kind == "pool":
        k_h, k_w, stride_h, stride_w = options.filterHeight, options.filterWidth, options.strideH, options.strideW
        fields.update(k_h=k_h, k_w=k_w)
        if (source.scale[0], source.zero_point[0]) != (output.scale[0], output.zero_point[0]):
            raise FirmwareError(f"layer {layer} (pooling) changes the quantization: not covered")
    else:  # mean
        k_h, k_w, stride_h, stride_w = in_h, in_w, 1, 1
        multiplier, shift = _mean_multiplier(source, output, in_h * in_w)
        fields.update(multiplier=writer.array(f"ea_multiplier{layer}", "int32_t", np.array([multiplier])),
                      shift=writer.array(f"ea_shift{layer}", "int8_t", np.array([shift])))
    if kind != "mean":
        same = options.padding == schema.Padding.SAME
        fields.update(stride_h=stride_h, stride_w=stride_w,
                      pad_h=_same_padding(in_h, k_h, stride_h, out_h) if same else 0,
                      pad_w=_same_padding(in_w, k_w, stride_w, out_w) if same else 0)
    body = ", ".join(f".{key} = {value}" for key, value in fields.items())
    writer.arrays.append(f"static const ea_map_op ea_layer{layer} = {{{body}}};")
    return f"&ea_layer{layer}", macs


def _mean_multiplier(source: Tensor, output: Tensor, count: int) -> tuple[int, int]:
    """TFLite Micro's MEAN requantization: input scale / output scale, with 1 / ``count`` folded into the
    multiplier by a shift of at most 32 (and at most 31 + the shift)."""
    multiplier, shift = quantize_multiplier(float(np.float32(source.scale[0])) / float(np.float32(output.scale[0])))
    fold = min(count.bit_length() - 1, 32, 31 + shift)
    return int((multiplier << fold) // count), shift - fold


def _dense_op(writer: _Writer, layer: int, op, options, tensors: list[Tensor]) -> tuple[str, int]:
    source, weights, output = (tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    bias = tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    units, depth = weights.shape
    if len(weights.scale) != 1:
        raise FirmwareError(f"layer {layer} (FULLY_CONNECTED) has per-channel weights: the C generator covers one "
                            "scale per tensor (TFLite's scheme)")
    if getattr(options, "keepNumDims", False):
        raise FirmwareError(f"layer {layer} (FULLY_CONNECTED) keeps its input's dimensions: not covered")
    product = np.float32(source.scale[0]) * np.float32(weights.scale[0])  # TFLite multiplies these in float
    multiplier, shift = quantize_multiplier(float(product) / float(np.float32(output.scale[0])))
    act_min, act_max = _activation_range(output, options.fusedActivationFunction)
    fields = {"depth": depth, "units": units, "input_offset": -source.zero_point[0],
              "output_offset": output.zero_point[0], "act_min": act_min, "act_max": act_max,
              "multiplier": multiplier, "shift": shift,
              "weights": writer.array(f"ea_weights{layer}", "int8_t", weights.data)}
    if bias is not None:
        fields["bias"] = writer.array(f"ea_bias{layer}", bias.ctype, bias.data)
    body = ", ".join(f".{key} = {value}" for key, value in fields.items())
    writer.arrays.append(f"static const ea_dense_op ea_layer{layer} = {{{body}}};")
    return f"&ea_layer{layer}", units * depth


def _softmax_op(writer: _Writer, layer: int, op, options, tensors: list[Tensor]) -> tuple[str, int]:
    source, output = tensors[op.inputs[0]], tensors[op.outputs[0]]
    if source.ctype != "int8_t" or output.ctype != "int8_t":
        raise FirmwareError(f"layer {layer} (SOFTMAX) is not int8 -> int8: not covered")
    if output.zero_point[0] != -128 or np.float32(output.scale[0]) != np.float32(1 / 256):
        raise FirmwareError(f"layer {layer} (SOFTMAX): the output must have scale 1/256 and zero point -128")
    integer_bits = 5
    real = min(float(options.beta) * float(np.float32(source.scale[0])) * (1 << (31 - integer_bits)),
               (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)
    radius = math.floor(((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift))
    fields = {"rows": int(np.prod(source.shape[:-1])), "depth": source.shape[-1], "input_multiplier": multiplier,
              "input_left_shift": left_shift, "diff_min": -radius}
    body = ", ".join(f".{key} = {value}" for key, value in fields.items())
    writer.arrays.append(f"static const ea_softmax_op ea_layer{layer} = {{{body}}};")
    return f"&ea_layer{layer}", 0


def generate(model_bytes: bytes, description: str = "") -> Network:
    """The C of the full-integer TFLite model ``model_bytes`` (see the module docstring); a model it does not
    cover is a :class:`FirmwareError` naming what."""
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    except Exception as exc:  # flatbuffers raises struct.error, IndexError, ...: not a TFLite model
        raise FirmwareError(f"not a readable TFLite model ({type(exc).__name__})") from None
    if len(model.subgraphs) != 1:
        raise FirmwareError(f"the model has {len(model.subgraphs)} subgraphs: the C generator covers one")
    graph = model.subgraphs[0]
    tensors = _tensors(model)
    codes = [max(code.builtinCode, code.deprecatedBuiltinCode) for code in model.operatorCodes]
    operators = [_OPERATOR_NAMES.get(codes[op.opcodeIndex], "CUSTOM") for op in graph.operators]
    uncovered = sorted(set(operators) - set(COVERED))
    if uncovered:
        raise FirmwareError(f"operator(s) {', '.join(uncovered)} not covered by the C generator "
                            f"(it covers {', '.join(COVERED)})")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise FirmwareError("the C generator covers a model of one input and one output")
    first, last = tensors[graph.inputs[0]], tensors[graph.outputs[0]]
    activation_types = {first.ctype, last.ctype}
    if activation_types - {"int8_t", "int16_t"} or len(activation_types) != 1 or not first.scale:
        raise FirmwareError(f"the model's input and output are {first.ctype} and {last.ctype}: the C generator "
                            "covers full-integer models (int8 or int16 input and output, quantized)")
    for tensor in tensors:
        if tensor.data is None and len(tensor.zero_point) != 1:
            raise FirmwareError(f"activation {tensor.name!r} is not quantized per tensor: not covered")
    suffix = "s8" if first.ctype == "int8_t" else "s16"

    # activations: a RESHAPE's output is its input's bytes
    alias = {}
    for op, name in zip(graph.operators, operators):
        if name == "RESHAPE":
            alias[op.outputs[0]] = alias.get(op.inputs[0], op.inputs[0])
    lifetimes: dict[int, list[int]] = {alias.get(graph.inputs[0], graph.inputs[0]): [0, 0]}
    for step, op in enumerate(graph.operators):
        for index in [*op.inputs, *op.outputs]:
            if index >= 0 and tensors[index].data is None:
                span = lifetimes.setdefault(alias.get(index, index), [step, step])
                span[1] = step
    lifetimes[alias.get(graph.outputs[0], graph.outputs[0])][1] = len(graph.operators)
    plan = [Activation(str(index), -(-tensors[index].nbytes // ALIGNMENT) * ALIGNMENT, first_step, last_step)
            for index, (first_step, last_step) in lifetimes.items()]
    placed = greedy_placement(plan)
    offsets = {int(name): offset for name, offset in placed.items()}
    offsets.update({index: offsets[target] for index, target in alias.items()})
    arena = max((offsets[int(a.name)] + a.size for a in plan), default=0)

    writer = _Writer(tensors, offsets)
    layers: list[Layer] = []
    kinds = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "MAX_POOL_2D": "pool", "AVERAGE_POOL_2D": "pool",
             "MEAN": "mean"}
    kernels = {"CONV_2D": "ea_conv", "DEPTHWISE_CONV_2D": "ea_depthwise_conv", "MAX_POOL_2D": "ea_max_pool",
               "AVERAGE_POOL_2D": "ea_avg_pool", "MEAN": "ea_mean", "FULLY_CONNECTED": "ea_dense",
               "SOFTMAX": "ea_softmax"}
    for step, (op, name) in enumerate(zip(graph.operators, operators)):
        options = op.builtinOptions
        out = tensors[op.outputs[0]]
        if name == "RESHAPE":
            call, macs = "/* RESHAPE: the same bytes under another shape */", 0
        else:
            if name in kinds:
                if name == "MEAN" and not (options is not None and options.keepDims
                                           and sorted(tensors[op.inputs[1]].data.reshape(-1).tolist()) == [1, 2]):
                    raise FirmwareError(f"layer {step} (MEAN) is not over height and width with kept dimensions: "
                                        "not covered")
                argument, macs = _map_op(writer, step, op, options, kinds[name], tensors)
            elif name == "FULLY_CONNECTED":
                argument, macs = _dense_op(writer, step, op, options, tensors)
            else:
                argument, macs = _softmax_op(writer, step, op, options, tensors)
            source = tensors[op.inputs[0]]
            call = (f"{kernels[name]}_{suffix}({argument}, {writer.pointer(source)}, {writer.pointer(out)});")
        layers.append(Layer(name, call, macs, [i for i in op.inputs if i >= 0], op.outputs[0]))

    ctype = first.ctype
    what = description or "a full-integer TFLite model"
    header = c_header(f"/* Generated by edge-audio: {what} as C. Do not edit. */", "EDGE_AUDIO_NETWORK_H", [
        f"#define EDGE_AUDIO_NETWORK_INPUT_ELEMENTS {int(np.prod(first.shape))}",
        f"#define EDGE_AUDIO_NETWORK_OUTPUT_ELEMENTS {int(np.prod(last.shape))}",
        f"#define EDGE_AUDIO_NETWORK_INPUT_SCALE {float(np.float32(first.scale[0])):.9g}f",
        f"#define EDGE_AUDIO_NETWORK_INPUT_ZERO_POINT ({first.zero_point[0]})",
        f"#define EDGE_AUDIO_NETWORK_OUTPUT_SCALE {float(np.float32(last.scale[0])):.9g}f",
        f"#define EDGE_AUDIO_NETWORK_OUTPUT_ZERO_POINT ({last.zero_point[0]})",
        f"#define EDGE_AUDIO_NETWORK_LAYERS {len(layers)}",
        f"#define EDGE_AUDIO_NETWORK_ARENA_BYTES {arena}", "",
        f"typedef {ctype} edge_audio_value_t; /* the input's and output's type */", "",
        "/* One inference: input (quantized, NHWC) -> output (quantized scores). */",
        "void edge_audio_invoke(const edge_audio_value_t *input, edge_audio_value_t *output);",
        "extern const char *const edge_audio_layer_names[EDGE_AUDIO_NETWORK_LAYERS];", ""], ("<stdint.h>",))
    body = []
    for index, layer in enumerate(layers):
        body.append(f"    {layer.call}")
        body.append(f"    EA_LAYER_DONE({index});")
    source = "\n".join([
        "/* Generated by edge-audio; do not edit. The weights, the static arena and one call per layer. */",
        '#include "network.h"', '#include "ea_nn.h"', "", "#include <string.h>", "",
        "#ifdef EA_LAYER_HOOK", "void EA_LAYER_HOOK(int layer);", "#define EA_LAYER_DONE(i) EA_LAYER_HOOK(i)",
        "#else", "#define EA_LAYER_DONE(i) ((void)0)", "#endif", "",
        f"static int8_t ea_arena[EDGE_AUDIO_NETWORK_ARENA_BYTES] __attribute__((aligned({ALIGNMENT})));", "",
        *writer.arrays, "",
        "const char *const edge_audio_layer_names[EDGE_AUDIO_NETWORK_LAYERS] = {",
        c_rows([f'"{layer.operator}"' for layer in layers], 4, str), "};", "",
        "void edge_audio_invoke(const edge_audio_value_t *input, edge_audio_value_t *output) {",
        f"    memcpy(ea_arena + {offsets[graph.inputs[0]]}, input, {first.nbytes});",
        *body,
        f"    memcpy(output, ea_arena + {offsets[graph.outputs[0]]}, {last.nbytes});", "}", ""])
    return Network({"network.h": header, "network.c": source}, arena, layers, first, last, ctype)


#: The project's kernels: copied beside the generated network into every build and bundle.
KERNEL_DIR = Path(__file__).with_name("c")
KERNEL_FILES = ("ea_nn.h", "ea_nn.c", "ea_nn_ops.inc")


def kernel_sources() -> dict[str, str]:
    return {name: (KERNEL_DIR / name).read_text(encoding="utf-8") for name in KERNEL_FILES}
