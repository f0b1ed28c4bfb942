"""TFLite models written from the ONNX graphs (edge_audio.tflite): what they compute, their format, their memory."""
import numpy as np
import onnx
import pytest
import torch

from edge_audio.errors import ModelFileError
from edge_audio.export import export_to_onnx
from edge_audio.runtimes import open_model
from edge_audio.models import LightweightCNN, spec_from_config
from edge_audio.quantize import quantize_onnx_static, tflite_bytes
from edge_audio.memory import memory_report
from edge_audio.runtimes.tflm import tflm_arena
from edge_audio.tflite import ConversionError, onnx_to_tflite

SHAPE = (1, 32, 63)  # one clip: 32 mel bands x 63 frames (odd: ceil-mode pooling pads at the end)
#: Architectures covering every operator the models use: standard and depthwise-separable blocks, max and
#: average pooling, kernels 3 and 5, with and without the hidden layer.
SPECS = {"standard_max": {"channels": [8, 16], "fc_size": 16},
         "dsconv_avg": {"channels": [8, 16, 24], "fc_size": 0, "block": "dsconv", "kernel_size": 5, "pool": "avg"}}


@pytest.fixture(scope="module", params=sorted(SPECS))
def graphs(request, tmp_path_factory):
    """One architecture (random weights, trained BatchNorm statistics) as FP32 ONNX, static QDQ INT8, and both
    written as TFLite; plus clips to run them on."""
    folder = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(0)
    model = LightweightCNN.from_spec(spec_from_config({"name": "m", **SPECS[request.param]}), num_classes=5)
    with torch.no_grad():  # non-trivial normalisation statistics, so the BatchNorm conversion is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    model.eval()
    rng = np.random.default_rng(0)
    clips = (rng.standard_normal((40, *SHAPE)) * 3 + 1).astype(np.float32)
    fp32 = export_to_onnx(model, folder / "m.onnx", input_shape=(1, *SHAPE))
    int8 = quantize_onnx_static(fp32, folder / "m_int8.onnx", clips[:20], reduce_range=False)
    return {"fp32": fp32, "int8": int8, "fp32_tflite": onnx_to_tflite(fp32, folder / "m.tflite"),
            "int8_tflite": onnx_to_tflite(int8, folder / "m_int8.tflite"), "clips": clips[20:]}


def test_fp32_tflite_computes_what_the_onnx_graph_computes(graphs):
    clips = graphs["clips"]
    expected = open_model(graphs["fp32"]).predict(clips)
    assert np.abs(open_model(graphs["fp32_tflite"]).predict(clips) - expected).max() < 1e-5


def test_full_integer_tflite_computes_what_the_qdq_graph_computes(graphs):
    """Same int8 arithmetic as ONNX Runtime's QDQ graph: the logits agree to a few output quantization steps (at most
    3 measured on CPUs with VNNI, 4 on an AVX2-only EPYC, where ONNX Runtime's AVX2 int8 kernels round otherwise)."""
    clips = graphs["clips"]
    expected = open_model(graphs["int8"]).predict(clips)
    model = open_model(graphs["int8_tflite"])
    got = model.predict(clips)
    step = model.output["quantization"][0]
    assert np.abs(got - expected).max() <= 5 * step
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9


def test_full_integer_means_int8_input_output_and_every_activation(graphs):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(graphs["int8_tflite"]))
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, SHAPE[1], SHAPE[2], 1]  # NHWC
    types = {np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    assert types <= {np.dtype(np.int8), np.dtype(np.int32)}  # int8 tensors, int32 biases and shapes: no float


def test_tflite_micro_runs_the_model_and_the_planner_matches_its_arena(graphs):
    """The greedy planner (edge_audio.memory) against TFLite Micro's recording allocator: within 5% (measured:
    equal on these graphs and on every model of the book; see README)."""
    tflm = tflm_arena(graphs["int8_tflite"])
    planned = memory_report(graphs["int8"])["arena_bytes"]
    assert tflm["head_bytes"] > 0 and tflm["total_bytes"] == tflm["head_bytes"] + tflm["tail_bytes"]
    assert abs(planned - tflm["head_bytes"]) <= 0.05 * tflm["head_bytes"]


def test_the_search_size_of_an_untrained_model_is_the_calibrated_files_size(graphs, tmp_path):
    assert tflite_bytes(graphs["fp32"]) == graphs["int8_tflite"].stat().st_size


def test_int8_tflite_is_smaller_than_fp32_tflite(graphs):
    assert graphs["int8_tflite"].stat().st_size < graphs["fp32_tflite"].stat().st_size


def test_unsupported_operators_and_bad_files_are_named(tmp_path):
    node = onnx.helper.make_node("Sigmoid", ["input"], ["logits"], name="squash")
    graph = onnx.helper.make_graph([node], "g", [onnx.helper.make_tensor_value_info("input", 1, [1, 4])],
                                   [onnx.helper.make_tensor_value_info("logits", 1, [1, 4])])
    onnx.save(onnx.helper.make_model(graph), tmp_path / "sigmoid.onnx")
    with pytest.raises(ConversionError, match="Sigmoid"):
        onnx_to_tflite(tmp_path / "sigmoid.onnx", tmp_path / "out.tflite")
    (tmp_path / "junk.onnx").write_text("not a model")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        onnx_to_tflite(tmp_path / "junk.onnx", tmp_path / "out.tflite")
    with pytest.raises(ModelFileError, match="does not exist"):
        open_model(tmp_path / "missing.tflite")
    (tmp_path / "junk.tflite").write_bytes(b"\0" * 64)
    with pytest.raises(ModelFileError, match="cannot load TFLite model"):
        open_model(tmp_path / "junk.tflite")


def test_a_clip_of_the_wrong_shape_is_named(graphs):
    with pytest.raises(ModelFileError, match="expects input"):
        open_model(graphs["int8_tflite"]).predict(np.zeros((2, 1, 16, 63), np.float32))
