"""Weight bit widths and quantization-aware training (edge_audio.quantize, edge_audio.tflite): the weight grid, the
packed int4 TFLite file, the simulated scheme against the deployed file, and what QAT wins back."""
import copy
import os

import numpy as np
import pytest
import torch

from edge_audio.export import export_to_onnx, fold_batchnorm
from edge_audio.models import LightweightCNN, spec_from_config, untrained_like_trained
from edge_audio.errors import ParameterError
from edge_audio.quantize import (METHODS, FakeQuantization, QuantizationInputs, layer_bits_for_budget,
                                 quantization_aware_training, round_to_weight_grid, tflite_bytes)
from edge_audio.memory import memory_report
from edge_audio.runtimes import open_model
from edge_audio.runtimes.tflm import tflm_arena
from edge_audio.tflite import ConversionError, onnx_to_tflite, symmetric_levels

SHAPE = (24, 31)  # one clip: mels x frames
SPEC = {"name": "m", "channels": [8, 16, 24], "fc_size": 32}


def _model(spec=SPEC) -> torch.nn.Module:
    return untrained_like_trained(spec_from_config(spec) | {"num_classes": 5})


def _clips(count: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((count, *SHAPE)) * 3 + 1).astype(np.float32)


def _weighted(model):
    return [(m, 0 if isinstance(m, torch.nn.Conv2d) else None) for m in model.modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


@pytest.mark.parametrize("bits", [8, 4])
def test_weights_on_the_grid_are_exactly_the_levels_the_writer_stores(bits):
    model = round_to_weight_grid(fold_batchnorm(_model()), bits)
    top = 2 ** (bits - 1) - 1
    for layer, axis in _weighted(model):
        weights = layer.weight.detach().numpy()
        levels, scales = symmetric_levels(weights, axis, bits)
        assert np.abs(levels).max() <= top and (np.abs(levels).max() == top)
        shape = [-1] + [1] * (weights.ndim - 1) if axis == 0 else [1] * weights.ndim
        assert np.allclose(levels * scales.reshape(shape), weights, rtol=0, atol=1e-7 * np.abs(weights).max())
    again = round_to_weight_grid(copy.deepcopy(model), bits)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """The same model written by tflite_int8 and tflite_int4 (post-training), with its calibration clips."""
    folder = tmp_path_factory.mktemp("bits")
    model = _model()
    fp32 = export_to_onnx(model, folder / "m.onnx", input_shape=(1, 1, *SHAPE))
    calibration = _clips(30)[:, None]
    files = {}
    for name in ("tflite_int8", "tflite_int4", "tflite_int16x8", "tflite_mixed"):
        (folder / name).mkdir()
        out = folder / name / "variant.tflite"
        used = METHODS[name].apply(QuantizationInputs(model, fp32, calibration, "minmax", False,
                                                      options={"mixed_weight_fraction": 0.75}), out)
        files[name] = (out, used)
    return model, calibration, files


def test_int4_weights_are_packed_two_to_a_byte(deployed):
    from ai_edge_litert import schema_py_generated as schema

    _, _, files = deployed
    int8, int4 = (files[name][0] for name in ("tflite_int8", "tflite_int4"))
    graph = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(int4.read_bytes(), 0))
    weights = [t for t in graph.subgraphs[0].tensors if t.name.endswith(b"/weights")]
    # every layer's weights in int4 but the input normalisation's (one weight per channel, kept at 8 bits)
    assert [t.type for t in weights] == [schema.TensorType.INT8] + [schema.TensorType.INT4] * (len(weights) - 1)
    for tensor in weights[1:]:
        assert len(graph.buffers[tensor.buffer].data) == -(-int(np.prod(tensor.shape)) // 2)
    assert os.path.getsize(int4) < os.path.getsize(int8)
    assert files["tflite_int4"][1]["training"] == "post-training" and METHODS["tflite_int4"].weight_bits == 4


@pytest.mark.parametrize("bits", [8, 4])
def test_the_search_size_of_an_untrained_model_at_each_bit_width_is_the_deployed_files_size(deployed, bits):
    """The search counts a candidate's bytes before training (random clips, initial weights): exactly the bytes of
    the trained and calibrated variant at the same bit width."""
    _, _, files = deployed
    fp32 = files["tflite_int8"][0].parent.parent / "m.onnx"
    assert tflite_bytes(fp32, bits) == os.path.getsize(files[f"tflite_int{bits}"][0])


def test_16x8_means_int16_activations_int8_weights_and_int64_biases(deployed):
    from ai_edge_litert.interpreter import Interpreter

    _, _, files = deployed
    interpreter = Interpreter(model_path=str(files["tflite_int16x8"][0]))
    interpreter.allocate_tensors()
    details = interpreter.get_tensor_details()
    assert interpreter.get_input_details()[0]["dtype"] == interpreter.get_output_details()[0]["dtype"] == np.int16
    assert {np.dtype(t["dtype"]) for t in details if t["name"].endswith("/weights")} == {np.dtype(np.int8)}
    assert {np.dtype(t["dtype"]) for t in details if t["name"].endswith("/bias")} == {np.dtype(np.int64)}
    activations = [t for t in details if t["name"] and not t["name"].endswith(("/weights", "/bias", "/axes",
                                                                                "/shape"))]
    assert activations and all(np.dtype(t["dtype"]) == np.int16 and t["quantization"][1] == 0 for t in activations)


def test_mixed_precision_sends_the_least_sensitive_layers_to_4_bits_within_the_budget(deployed):
    from ai_edge_litert import schema_py_generated as schema

    _, _, files = deployed
    path, used = files["tflite_mixed"]
    mixed = used["mixed"]
    bits, sensitivity = mixed["layer_bits"], mixed["sensitivity"]
    assert used["layer_bits"] == bits and set(bits) == {4, 8}  # this model needs some layers at each width
    assert mixed["weight_bytes"] <= mixed["weight_budget_bytes"] < mixed["weight_bytes_int8"]
    graph = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(path.read_bytes(), 0))
    written = [t.type for t in graph.subgraphs[0].tensors if t.name.endswith(b"/weights")][1:]
    assert written == [schema.TensorType.INT4 if b == 4 else schema.TensorType.INT8 for b in bits]
    sizes = [os.path.getsize(files[name][0]) for name in ("tflite_int4", "tflite_mixed", "tflite_int8")]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3


def test_the_budget_decides_how_many_layers_take_4_bits():
    model = fold_batchnorm(_model())
    calibration = _clips(16)[:, None]
    layers = len(_weighted(model))
    assert layer_bits_for_budget(model, calibration, 1.0)["layer_bits"] == [8] * layers
    assert layer_bits_for_budget(model, calibration, 0.5)["layer_bits"] == [4] * layers
    counts = [sum(b == 4 for b in layer_bits_for_budget(model, calibration, f)["layer_bits"]) for f in (0.9, 0.7)]
    assert 0 < counts[0] <= counts[1] < layers
    with pytest.raises(ParameterError, match="mixed_weight_fraction"):
        layer_bits_for_budget(model, calibration, 0.3)


def test_a_float_graph_cannot_be_written_with_int4_weights(deployed, tmp_path):
    model, _, _ = deployed
    fp32 = export_to_onnx(model, tmp_path / "m.onnx", input_shape=(1, 1, *SHAPE))
    with pytest.raises(ConversionError, match="float graph"):
        onnx_to_tflite(fp32, tmp_path / "m.tflite", weight_bits=4)
    with pytest.raises(ValueError, match="weight_bits"):
        onnx_to_tflite(fp32, tmp_path / "m.tflite", weight_bits=2)


@pytest.mark.parametrize("method", ["tflite_int8", "tflite_int4", "tflite_int16x8", "tflite_mixed"])
def test_the_simulated_scheme_computes_what_the_deployed_file_computes(deployed, method):
    """FakeQuantization (what QAT trains through) and the file LiteRT runs agree to a few output quantization steps:
    the same weight levels, the same activation ranges, the same quantization points."""
    model, calibration, files = deployed
    path, used = files[method]
    clips = _clips(40, seed=1)[:, None]
    session = open_model(path)
    got = session.predict(clips)
    simulated = fold_batchnorm(model)
    with FakeQuantization(simulated, used.get("layer_bits", 8), calibration,
                          METHODS[method].activation_bits), torch.no_grad():
        expected = simulated(torch.from_numpy(clips)).numpy()
    step = session.output["quantization"][0]
    assert np.abs(got - expected).max() <= 4 * step
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9
    # TensorFlow Lite Micro plans the file, and the package's planner finds its arena (int4: with each operator's
    # weights unpacked to int8 while it runs, which TFLite Micro's kernels ask for)
    tflm = tflm_arena(path)["head_bytes"]
    assert tflm == used["tflm"]["head_bytes"] > 0
    planned = memory_report(path.with_name(used["source_graph"]),
                            unpacked_weights=[bits < 8 for bits in used.get("layer_bits", [])] or False)
    assert planned["arena_bytes"] == tflm


def _separable(count: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Clips of 5 classes, each class a louder band of mels in noise."""
    labels = np.arange(count) % 5
    clips = np.random.default_rng(0).standard_normal((count, *SHAPE)).astype(np.float32)
    for i, label in enumerate(labels):
        clips[i, 4 * label:4 * label + 6] += 1.0
    return clips, labels


def _trained_and_folded(clips, labels) -> torch.nn.Module:
    torch.manual_seed(0)
    model = LightweightCNN.from_spec(spec_from_config({"name": "m", "channels": [4, 8], "fc_size": 0}), num_classes=5)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    x, y = torch.from_numpy(clips[:, None]), torch.from_numpy(labels)
    model.train()
    for _ in range(10):
        for start in range(0, len(x), 32):
            loss = torch.nn.functional.cross_entropy(model(x[start:start + 32]), y[start:start + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return fold_batchnorm(model.eval())


def _simulated_loss(model, bits, calibration, clips, labels) -> float:
    with FakeQuantization(model, bits, calibration), torch.no_grad():
        logits = model(torch.from_numpy(clips[:, None]))
    return float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)))


@pytest.mark.parametrize("bits", [8, 4])
def test_quantization_aware_training_lowers_the_loss_of_the_deployed_scheme(bits):
    """Fine-tuning through the fake quantization lowers the training loss of the simulated model (which computes
    what the deployed file computes: the test above), leaves the weights on the grid, and is repeatable."""
    clips, labels = _separable()
    model = _trained_and_folded(clips, labels)
    calibration = clips[:40, None]
    before = _simulated_loss(copy.deepcopy(model), bits, calibration, clips, labels)
    inputs = QuantizationInputs(model, None, calibration, "minmax", False, training=(clips, labels),
                                options={"qat_epochs": 4, "qat_learning_rate": 3e-3, "batch_size": 32, "seed": 0})
    trained = copy.deepcopy(model)
    done = quantization_aware_training(trained, inputs, bits)
    after = _simulated_loss(copy.deepcopy(trained), bits, calibration, clips, labels)
    assert after < before - 0.02, (before, after)
    assert len(done["history"]) == 4 and done["train_clips"] == len(clips) and done["epochs"] == 4
    grid = round_to_weight_grid(copy.deepcopy(trained), bits)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), grid.state_dict().values()))
    again = copy.deepcopy(model)
    quantization_aware_training(again, inputs, bits)
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), again.state_dict().values()))


def test_quantization_aware_training_needs_its_clips_and_settings():
    model = fold_batchnorm(_model())
    with pytest.raises(ValueError, match="training clips"):
        quantization_aware_training(model, QuantizationInputs(model, None, _clips(4)[:, None], "minmax", False), 8)


def test_the_generated_c_of_every_bit_width_is_bit_exact_with_tflite_micro(deployed):
    """int8, int4, mixed and 16x8 files as generated C (edge_audio.firmware), compiled on the host: TensorFlow Lite
    Micro's reference kernels' bytes on every clip (one differing byte fails)."""
    from edge_audio.firmware.build import host_outputs, tflm_outputs
    from edge_audio.firmware.network import generate

    _, _, files = deployed
    clips = _clips(8, seed=1)
    for name, (path, _) in files.items():
        network = generate(path.read_bytes())
        info = np.iinfo(network.input.dtype)
        inputs = np.clip(np.round(clips / network.input.scale[0]) + network.input.zero_point[0], info.min,
                         info.max).astype(network.input.dtype).reshape(len(clips), -1)
        assert np.array_equal(host_outputs(network, inputs), tflm_outputs(path, inputs)), name
