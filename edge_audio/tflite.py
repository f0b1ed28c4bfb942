"""TFLite models written from the project's ONNX graphs (no TensorFlow): the converter only. LiteRT runs the files
(:mod:`edge_audio.runtimes.litert`), TensorFlow Lite Micro counts their arena (:func:`edge_audio.memory.tflm_arena`).

**Why a converter of our own.** The PyTorch -> TFLite route (``litert-torch``) is a 1.2 GB install that pip cannot
resolve together with the book's dependencies in reasonable time, and it pins ``typing-extensions`` below what
jupyter-client needs. The project's models use a small, closed set of operators (:mod:`edge_audio.models`), and
their INT8 arithmetic already exists: ONNX Runtime's static QDQ graph, calibrated on clips of the training folds.
:func:`onnx_to_tflite` reads an ONNX graph and writes the same network as a TFLite flatbuffer with the schema that
ships with ``ai-edge-litert`` (the LiteRT runtime, 60 MB, which also runs it).

**Full-integer INT8** (from a QDQ graph, ``ort_static``'s scheme):

* every activation is int8 with the scale and zero point of the ``QuantizeLinear`` ONNX Runtime placed after it;
  max/average pooling and reshapes keep their input's (TFLite's int8 kernels require it);
* convolution weights are int8, symmetric, one scale per output channel (ONNX Runtime's values); fully connected
  weights are int8 with one scale per tensor (re-quantized from the dequantized weights: the scheme every TFLite
  runtime, TFLite Micro included, runs); biases are int32 at scale ``input scale x weight scale``;
* the model's input and output are int8 (the LiteRT session quantizes the log-mels with the input's scale and
  dequantizes the logits); a ReLU is the clamp of its producer's output range (zero point -128), as in the QDQ
  graph.

A float graph gives an FP32 TFLite model (the INT8 model's twin in the same runtime), with ReLUs fused into the
operator before them.

**16x8** (from a QDQ graph whose activations are int16, symmetric: zero point 0): the same with int16 activation
tensors and int64 biases, the scheme TFLite and TensorFlow Lite Micro run as "16x8".

**4-bit weights** (``weight_bits=4``): the weights' levels in ``[-7, 7]`` (:func:`symmetric_levels`), stored as
TFLite ``INT4``, packed two to a byte.

**Layout.** ONNX is NCHW, TFLite NHWC: weights are transposed, and the input ``(1, 1, mels, frames)`` becomes
``(1, mels, frames, 1)`` (the same bytes). Operators: BatchNormalization (the input normalisation, as a 1x1
depthwise convolution), Conv (standard and depthwise, stride 1, "same" padding), Relu, MaxPool and AveragePool
(kernel = stride, ``ceil_mode``), ReduceMean (the global average), Reshape/Flatten of a 1x1 map, Gemm/MatMul.
Anything else raises :class:`ConversionError` naming the operator. Tensors are 16-byte aligned in the file, as
TFLite Micro requires.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as schema
from onnx import numpy_helper

from .errors import ModelFileError
from .memory import static_batch
from .storage import atomic_write_bytes

#: The operator versions written (the lowest each data type needs; TFLite's op_version rules).
_VERSIONS = {"int8": {schema.BuiltinOperator.CONV_2D: 3, schema.BuiltinOperator.DEPTHWISE_CONV_2D: 3,
                      schema.BuiltinOperator.FULLY_CONNECTED: 4, schema.BuiltinOperator.MAX_POOL_2D: 2,
                      schema.BuiltinOperator.AVERAGE_POOL_2D: 2, schema.BuiltinOperator.MEAN: 2,
                      schema.BuiltinOperator.RESHAPE: 1, schema.BuiltinOperator.RELU: 2},
             # 16x8: int16 activations, int8 weights, int64 biases (TFLite's op_version rules for that signature)
             "int16": {schema.BuiltinOperator.CONV_2D: 4, schema.BuiltinOperator.DEPTHWISE_CONV_2D: 5,
                       schema.BuiltinOperator.FULLY_CONNECTED: 7, schema.BuiltinOperator.MAX_POOL_2D: 3,
                       schema.BuiltinOperator.AVERAGE_POOL_2D: 3, schema.BuiltinOperator.MEAN: 3,
                       schema.BuiltinOperator.RESHAPE: 1, schema.BuiltinOperator.RELU: 3},
             "float32": {}}
_ALIGNMENT = 16


class ConversionError(RuntimeError):
    """The ONNX graph uses an operator or attribute the TFLite converter does not handle (named in the message)."""


class _AlignedBuffer(schema.BufferT):
    """A buffer whose bytes start on a 16-byte boundary of the file (the object API aligns to 1)."""

    def Pack(self, builder):  # noqa: N802 (the flatbuffers object API's name)
        data = None
        if self.data is not None:
            payload = self.data.tobytes()
            builder.StartVector(1, len(payload), _ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


@dataclass
class _Writer:
    """The TFLite model under construction: tensors, buffers, operators."""

    precision: str  # "int8", "int16" (16x8: int16 activations) or "float32"
    tensors: list = field(default_factory=list)
    buffers: list = field(default_factory=lambda: [_AlignedBuffer()])  # buffer 0 is TFLite's empty sentinel
    operators: list = field(default_factory=list)
    codes: dict = field(default_factory=dict)

    def tensor(self, name: str, shape, dtype: int, data: np.ndarray | None = None,
               quantization: schema.QuantizationParametersT | None = None) -> int:
        tensor = schema.TensorT()
        tensor.name, tensor.shape, tensor.type = name, [int(d) for d in shape], dtype
        tensor.buffer = 0
        if data is not None:
            buffer = _AlignedBuffer()
            buffer.data = np.ascontiguousarray(data)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        tensor.quantization = quantization
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def operator(self, code: int, inputs: list[int], outputs: list[int], options_type: int = 0,
                 options=None) -> None:
        version = _VERSIONS[self.precision].get(code, 1)
        index = self.codes.setdefault((code, version), len(self.codes))
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = index, inputs, outputs
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.operators.append(op)

    def serialize(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        graph = schema.SubGraphT()
        graph.tensors, graph.operators, graph.inputs, graph.outputs = self.tensors, self.operators, inputs, outputs
        graph.name = "main"
        model = schema.ModelT()
        model.version, model.description, model.subgraphs, model.buffers = 3, description, [graph], self.buffers
        model.operatorCodes = []
        for (code, version), _ in sorted(self.codes.items(), key=lambda item: item[1]):
            opcode = schema.OperatorCodeT()
            opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, min(code, 127), version
            model.operatorCodes.append(opcode)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def read_model(data: bytes) -> schema.ModelT:
    """A TFLite flatbuffer (a file's bytes) as the schema's object tree, to read its operators and tensors."""
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))


def _quantization(scale, zero_point, axis: int = 0) -> schema.QuantizationParametersT:
    params = schema.QuantizationParametersT()
    params.scale = [float(s) for s in np.atleast_1d(scale)]
    params.zeroPoint = [int(z) for z in np.atleast_1d(zero_point)]
    params.quantizedDimension = axis
    return params


#: The weight bit widths written: int8, or int4 packed two to a byte (TFLite's ``INT4``, low nibble first).
WEIGHT_BITS = (8, 4)
#: The ONNX operators whose weights take a layer's bit width (the input normalisation's keep 8 bits).
WEIGHTED_LAYERS = ("Conv", "Gemm", "MatMul")


def symmetric_levels(weights: np.ndarray, axis: int | None, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric ``bits``-bit integer levels of ``weights`` in ``[-(2^(bits-1) - 1), 2^(bits-1) - 1]`` and their
    scales (the largest magnitude maps to the top level): one scale per slice along ``axis`` (None: one for the
    tensor). The one weight grid of the package: :func:`edge_audio.quantize.round_to_weight_grid` puts a PyTorch
    model's weights on it, so a model whose weights already lie on it is written exactly."""
    top = 2 ** (bits - 1) - 1
    moved = weights.reshape(1, -1) if axis is None else np.moveaxis(weights, axis, 0).reshape(weights.shape[axis], -1)
    peak = np.abs(moved).max(axis=1)
    scale = np.where(peak > 0, peak / top, 1.0)
    shape = [1] * weights.ndim
    if axis is not None:
        shape[axis] = -1
    return np.clip(np.round(weights / scale.reshape(shape)), -top, top).astype(np.int8), scale


def _packed_int4(levels: np.ndarray) -> np.ndarray:
    """int4 levels packed two to a byte in row-major order, the first in the low nibble (TFLite's layout)."""
    flat = levels.reshape(-1).astype(np.uint8) & 0x0F
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)


class _Graph:
    """An ONNX graph read for conversion: constants (dequantized weights included), activation shapes at batch 1,
    the quantization of every quantized activation, and the compute nodes in order."""

    def __init__(self, model: onnx.ModelProto):
        graph = static_batch(model).graph
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
                       for v in [*graph.input, *graph.value_info, *graph.output]}
        self.alias: dict[str, str] = {}  # a dequantized activation -> the float activation it stands for
        self.quant: dict[str, tuple[float, int]] = {}  # a float activation -> its (scale, zero point)
        self.types: set[str] = set()  # the integer types activations are quantized to
        self.nodes: list[onnx.NodeProto] = []
        for node in graph.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if node.op_type == "Constant":
                self.constants[node.output[0]] = numpy_helper.to_array(attrs["value"])
            elif node.op_type == "DequantizeLinear" and node.input[0] in self.constants:
                self.constants[node.output[0]] = self._dequantize(node, attrs)
            elif node.op_type == "QuantizeLinear":
                scale, zero = (self.constants[name] for name in node.input[1:3])
                if scale.size != 1 or not (zero.dtype == np.int8 or (zero.dtype == np.int16 and int(zero) == 0)):
                    raise ConversionError(f"activation {node.input[0]!r} is quantized to {zero.dtype} (zero point "
                                          f"{zero.ravel()[:1]}) with {scale.size} scales; full-integer TFLite needs "
                                          "int8, or int16 with zero point 0, and one scale")
                self.types.add(np.dtype(zero.dtype).name)
                self.quant[self.resolve(node.input[0])] = (float(scale), int(zero))
                self.alias[node.output[0]] = self.resolve(node.input[0])
            elif node.op_type == "DequantizeLinear":
                self.alias[node.output[0]] = self.resolve(node.input[0])
            elif node.op_type in ("Identity", "Dropout"):
                self.alias[node.output[0]] = self.resolve(node.input[0])
            else:
                self.nodes.append(node)
        self.input = graph.input[0].name
        self.output = self.resolve(graph.output[0].name)
        self.readers: dict[str, int] = {}
        for node in self.nodes:
            for name in node.input:
                self.readers[self.resolve(name)] = self.readers.get(self.resolve(name), 0) + 1

    def _dequantize(self, node: onnx.NodeProto, attrs: dict) -> np.ndarray:
        values = self.constants[node.input[0]].astype(np.float64)
        scale = self.constants[node.input[1]].astype(np.float64)
        zero = self.constants[node.input[2]].astype(np.float64) if len(node.input) > 2 and node.input[2] else 0.0
        if np.ndim(scale) == 1 and scale.size > 1:
            shape = [1] * values.ndim
            shape[attrs.get("axis", 1)] = -1
            scale, zero = scale.reshape(shape), np.reshape(zero, shape) if np.ndim(zero) else zero
        return ((values - zero) * scale).astype(np.float32)

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name


def _nhwc(shape: tuple) -> list[int]:
    return [shape[0], shape[2], shape[3], shape[1]] if len(shape) == 4 else list(shape)


class _Converter:
    """Walks the compute nodes of a :class:`_Graph` and writes the TFLite operators."""

    def __init__(self, graph: _Graph, precision: str, layer_bits: list[int]):
        self.graph, self.precision = graph, precision
        self.layer_bits = iter(layer_bits)  # one per weighted layer (Conv, Gemm, MatMul), taken in graph order
        self.writer = _Writer(precision)
        self.index: dict[str, int] = {}  # float activation name -> TFLite tensor index
        self.params: dict[str, tuple[float, int]] = {}  # float activation name -> int8 params used

    # -- tensors ---------------------------------------------------------------------------------------------
    def activation(self, name: str, like: str | None = None) -> int:
        """The TFLite tensor of activation ``name`` (created on first use); ``like``: share its quantization."""
        if name in self.index:
            return self.index[name]
        shape = _nhwc(self.graph.shapes[name])
        if self.precision == "float32":
            index = self.writer.tensor(name, shape, schema.TensorType.FLOAT32)
        else:
            params = self.params[like] if like is not None else self.graph.quant.get(name)
            if params is None:
                raise ConversionError(f"activation {name!r} has no quantization in the graph "
                                      "(was the model quantized with ONNX Runtime's static QDQ flow?)")
            self.params[name] = params
            dtype = schema.TensorType.INT16 if self.precision == "int16" else schema.TensorType.INT8
            index = self.writer.tensor(name, shape, dtype, quantization=_quantization(*params))
        self.index[name] = index
        return index

    def weights(self, name: str, values: np.ndarray, axis: int | None, input_name: str, bias: np.ndarray | None,
                bits: int = 8) -> list[int]:
        """The weight (and bias) tensors of a convolution or fully connected layer."""
        channels = values.shape[axis if axis is not None else 0]
        bias = np.zeros(channels, np.float32) if bias is None else bias.astype(np.float32)
        if self.precision == "float32":
            return [self.writer.tensor(f"{name}/weights", values.shape, schema.TensorType.FLOAT32,
                                       values.astype(np.float32)),
                    self.writer.tensor(f"{name}/bias", bias.shape, schema.TensorType.FLOAT32, bias)]
        levels, scales = symmetric_levels(values, axis, bits)
        bias_scales = self.params[input_name][0] * scales
        bias_q = np.round(bias / np.broadcast_to(bias_scales, bias.shape)).astype(np.int64)
        wide = self.precision == "int16"  # 16x8 kernels take int64 biases
        if not wide and np.abs(bias_q).max(initial=0) >= 2 ** 31:
            raise ConversionError(f"bias of {name!r} does not fit int32 at scale input x weight")
        quant_axis = 0 if axis is None else axis
        dtype, data = ((schema.TensorType.INT4, _packed_int4(levels)) if bits == 4
                       else (schema.TensorType.INT8, levels))
        return [self.writer.tensor(f"{name}/weights", values.shape, dtype, data,
                                   _quantization(scales, np.zeros(scales.size, np.int64), quant_axis)),
                self.writer.tensor(f"{name}/bias", bias.shape, schema.TensorType.INT64 if wide else schema.TensorType.INT32,
                                   bias_q if wide else bias_q.astype(np.int32),
                                   _quantization(bias_scales, np.zeros(np.size(bias_scales), np.int64)))]

    # -- operators -------------------------------------------------------------------------------------------
    def fused_activation(self, output: str) -> tuple[str, int]:
        """The name a producer's output goes by and its fused activation: a Relu that is the output's only
        reader is fused (float: RELU; int8: the output range's clamp, which the QDQ graph already encodes)."""
        relu = [n for n in self.graph.nodes if n.op_type == "Relu" and self.graph.resolve(n.input[0]) == output]
        if len(relu) == 1 and self.graph.readers.get(output) == 1:
            return self.graph.resolve(relu[0].output[0]), schema.ActivationFunctionType.RELU
        return output, schema.ActivationFunctionType.NONE

    def convert(self) -> bytes:
        graph = self.graph
        if self.precision != "float32" and graph.input not in graph.quant:
            raise ConversionError("the graph's input is not quantized: not a static QDQ graph")
        first = self.activation(graph.input)
        for node in graph.nodes:
            handler = getattr(self, f"_{node.op_type.lower()}", None)
            if handler is None:
                raise ConversionError(f"operator {node.op_type} ({node.name}) has no TFLite conversion here")
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            handler(node, attrs)
        output = self.index[graph.output]
        return self.writer.serialize([first], [output], f"edge-audio {self.precision} from ONNX")

    def source(self, node: onnx.NodeProto) -> str:
        """The activation ``node`` reads (its first input, through any quantize/dequantize)."""
        return self.graph.resolve(node.input[0])

    def _relu(self, node, attrs) -> None:
        output = self.graph.resolve(node.output[0])
        if output in self.index:  # fused into its producer (see fused_activation)
            return
        source = self.source(node)
        self.writer.operator(schema.BuiltinOperator.RELU, [self.index[source]], [self.activation(output)])

    def _conv_like(self, node, source: str, weights: np.ndarray, bias: np.ndarray | None, groups: int,
                   kernel: tuple[int, int], attrs: dict, bits: int) -> None:
        if any(s != 1 for s in attrs.get("strides", [1, 1])) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise ConversionError(f"{node.op_type} {node.name}: only stride 1 and dilation 1 are converted")
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if pads == [k // 2 for k in kernel] * 2 and all(k % 2 for k in kernel):
            padding = schema.Padding.SAME
        elif not any(pads):
            padding = schema.Padding.VALID
        else:
            raise ConversionError(f"{node.op_type} {node.name}: padding {pads} is neither 'same' nor 'valid'")
        output, activation = self.fused_activation(self.graph.resolve(node.output[0]))
        out_index = self.activation(output)
        channels_in = self.graph.shapes[self.graph.resolve(node.input[0])][1]
        depthwise = groups > 1 and groups == channels_in and weights.shape[1] == 1
        if groups > 1 and not depthwise:
            raise ConversionError(f"Conv {node.name}: grouped convolution ({groups} groups) is not converted")
        if depthwise:
            tensors = self.weights(node.name, weights.transpose(1, 2, 3, 0), 3, source, bias, bits)
            options = schema.DepthwiseConv2DOptionsT()
            options.depthMultiplier, code = weights.shape[0] // groups, schema.BuiltinOperator.DEPTHWISE_CONV_2D
            kind = schema.BuiltinOptions.DepthwiseConv2DOptions
        else:
            tensors = self.weights(node.name, weights.transpose(0, 2, 3, 1), 0, source, bias, bits)
            options, code = schema.Conv2DOptionsT(), schema.BuiltinOperator.CONV_2D
            kind = schema.BuiltinOptions.Conv2DOptions
        options.padding, options.strideH, options.strideW = padding, 1, 1
        options.dilationHFactor, options.dilationWFactor = 1, 1
        options.fusedActivationFunction = activation
        self.writer.operator(code, [self.index[source], *tensors], [out_index], kind, options)

    def _conv(self, node, attrs) -> None:
        weights = self.graph.constants[node.input[1]]
        bias = self.graph.constants[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        self._conv_like(node, self.source(node), weights, bias, attrs.get("group", 1), tuple(weights.shape[2:]),
                        attrs, next(self.layer_bits))

    def _batchnormalization(self, node, attrs) -> None:
        gamma, beta, mean, var = (self.graph.constants[name] for name in node.input[1:5])
        scale = gamma / np.sqrt(var + attrs.get("epsilon", 1e-5))
        weights = scale.reshape(-1, 1, 1, 1).astype(np.float32)
        # the input normalisation keeps 8 bits: one weight per channel, exact at any width
        self._conv_like(node, self.source(node), weights, (beta - mean * scale).astype(np.float32), len(scale),
                        (1, 1), {}, 8)

    def _pool(self, node, attrs, code: int) -> None:
        kernel, strides = list(attrs["kernel_shape"]), list(attrs.get("strides", [1, 1]))
        if any(attrs.get("pads", [0, 0, 0, 0])) or attrs.get("dilations", [1, 1]) != [1, 1] or kernel != strides:
            raise ConversionError(f"{node.op_type} {node.name}: only unpadded pooling with kernel = stride is "
                                  "converted")
        source = self.source(node)
        output = self.graph.resolve(node.output[0])
        height, width = self.graph.shapes[self.graph.resolve(node.input[0])][2:]
        ceil = attrs.get("ceil_mode", 0)
        padding = schema.Padding.SAME if ceil else schema.Padding.VALID
        expected = [-(-height // kernel[0]), -(-width // kernel[1])] if ceil else [height // kernel[0],
                                                                                   width // kernel[1]]
        if list(self.graph.shapes[output][2:]) != expected:
            raise ConversionError(f"{node.op_type} {node.name}: output {self.graph.shapes[output]} is not TFLite's")
        out_index = self.activation(output, like=source)
        options = schema.Pool2DOptionsT()
        options.padding, options.strideH, options.strideW = padding, strides[0], strides[1]
        options.filterHeight, options.filterWidth = kernel
        options.fusedActivationFunction = schema.ActivationFunctionType.NONE
        self.writer.operator(code, [self.index[source]], [out_index], schema.BuiltinOptions.Pool2DOptions, options)

    def _maxpool(self, node, attrs) -> None:
        self._pool(node, attrs, schema.BuiltinOperator.MAX_POOL_2D)

    def _averagepool(self, node, attrs) -> None:
        self._pool(node, attrs, schema.BuiltinOperator.AVERAGE_POOL_2D)

    def _reducemean(self, node, attrs) -> None:
        axes = attrs.get("axes") or list(self.graph.constants[node.input[1]])
        source = self.source(node)
        if sorted(int(a) % 4 for a in axes) != [2, 3]:
            raise ConversionError(f"ReduceMean {node.name}: only the global average over (H, W) is converted")
        output = self.graph.resolve(node.output[0])
        if self.precision != "float32" and output not in self.graph.quant:
            # ONNX Runtime quantizes after the reshape that follows; the reshape keeps the values
            readers = [n for n in self.graph.nodes if n.op_type in ("Reshape", "Flatten")
                       and self.graph.resolve(n.input[0]) == output]
            if readers and self.graph.resolve(readers[0].output[0]) in self.graph.quant:
                self.graph.quant[output] = self.graph.quant[self.graph.resolve(readers[0].output[0])]
        out_index = self.activation(output)
        axes_index = self.writer.tensor(f"{node.name}/axes", [2], schema.TensorType.INT32,
                                        np.array([1, 2], np.int32))
        options = schema.ReducerOptionsT()
        options.keepDims = bool(attrs.get("keepdims", 1))
        self.writer.operator(schema.BuiltinOperator.MEAN, [self.index[source], axes_index], [out_index],
                             schema.BuiltinOptions.ReducerOptions, options)

    def _reshape(self, node, attrs) -> None:
        source = self.source(node)
        before, after = self.graph.shapes[self.graph.resolve(node.input[0])], self.graph.shapes[
            self.graph.resolve(node.output[0])]
        if len(before) == 4 and before[2] * before[3] != 1:
            raise ConversionError(f"{node.op_type} {node.name}: flattening a {before[2]}x{before[3]} map would need "
                                  "an NCHW transpose; only 1x1 maps are converted")
        output = self.graph.resolve(node.output[0])
        out_index = self.activation(output, like=source)
        shape_index = self.writer.tensor(f"{node.name}/shape", [len(after)], schema.TensorType.INT32,
                                         np.array(after, np.int32))
        options = schema.ReshapeOptionsT()
        options.newShape = [int(d) for d in after]
        self.writer.operator(schema.BuiltinOperator.RESHAPE, [self.index[source], shape_index], [out_index],
                             schema.BuiltinOptions.ReshapeOptions, options)

    _flatten = _reshape

    def _dense(self, node, weights: np.ndarray, bias: np.ndarray | None) -> None:
        source = self.source(node)
        if len(self.graph.shapes[source]) != 2:
            raise ConversionError(f"{node.op_type} {node.name}: only a 2-D input is converted")
        output, activation = self.fused_activation(self.graph.resolve(node.output[0]))
        out_index = self.activation(output)
        tensors = self.weights(node.name, weights, None, source, bias, next(self.layer_bits))
        options = schema.FullyConnectedOptionsT()
        options.fusedActivationFunction = activation
        self.writer.operator(schema.BuiltinOperator.FULLY_CONNECTED, [self.index[source], *tensors], [out_index],
                             schema.BuiltinOptions.FullyConnectedOptions, options)

    def _gemm(self, node, attrs) -> None:
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            raise ConversionError(f"Gemm {node.name}: only alpha = beta = 1 without transA is converted")
        weights = self.graph.constants[node.input[1]]
        weights = weights if attrs.get("transB", 0) else weights.T
        bias = self.graph.constants[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        self._dense(node, np.ascontiguousarray(weights), bias)

    def _matmul(self, node, attrs) -> None:
        self._dense(node, np.ascontiguousarray(self.graph.constants[node.input[1]].T), None)


def onnx_to_tflite(onnx_path: str | os.PathLike, tflite_path: str | os.PathLike,
                   weight_bits: int | list[int] = 8) -> Path:
    """Write the ONNX model at ``onnx_path`` as a TFLite model at ``tflite_path``: full-integer from a static QDQ
    graph (weights of ``weight_bits``: 8, or 4 packed; or a list, one per weighted layer (Conv, Gemm, MatMul) in
    graph order: mixed precision; the input normalisation keeps 8), FP32 from a float graph (see the module
    docstring), its activations int8 or, from a graph quantized to int16 with zero point 0, int16 (TFLite's 16x8
    scheme, int64 biases); written atomically, returns the path.

    Raises :class:`ConversionError` naming an operator the converter does not handle, and
    :class:`~edge_audio.errors.ModelFileError` when ``onnx_path`` is not a readable ONNX model.
    """
    onnx_path = Path(onnx_path)
    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...: the file is not a model
        raise ModelFileError(f"{onnx_path} is not a readable ONNX model ({type(exc).__name__})") from None
    graph = _Graph(model)
    layers = sum(node.op_type in WEIGHTED_LAYERS for node in graph.nodes)
    layer_bits = [weight_bits] * layers if isinstance(weight_bits, int) else list(weight_bits)
    if len(layer_bits) != layers or any(bits not in WEIGHT_BITS for bits in layer_bits):
        raise ValueError(f"weight_bits must be one of {WEIGHT_BITS}, or a list of them for the {layers} weighted "
                         f"layers, got {weight_bits}")
    if len(graph.types) > 1:
        raise ConversionError(f"{onnx_path} quantizes activations to {sorted(graph.types)}: one type per model")
    precision = graph.types.pop() if graph.types else "float32"
    if precision == "float32" and set(layer_bits) - {8}:
        raise ConversionError(f"{onnx_path} is a float graph: 4-bit weights need a static QDQ graph")
    return atomic_write_bytes(tflite_path, _Converter(graph, precision, layer_bits).convert())
