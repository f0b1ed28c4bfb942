"""Flash and peak RAM from a deployed graph (edge_audio.memory)."""
import numpy as np
import onnx
import pytest
import torch

from edge_audio.errors import ModelFileError
from edge_audio.export import export_to_onnx
from edge_audio.memory import Activation, activations, greedy_arena, live_peak, memory_report
from edge_audio.models import LightweightCNN, spec_from_config
from edge_audio.quantize import quantize_onnx_static

SHAPE = (1, 32, 63)  # one clip: 32 mel bands x 63 frames


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """A small CNN exported to FP32 ONNX and quantized to static INT8 (QDQ)."""
    folder = tmp_path_factory.mktemp("memory")
    torch.manual_seed(0)
    model = LightweightCNN.from_spec(spec_from_config({"name": "m", "channels": [8, 16], "fc_size": 16}),
                                     num_classes=5).eval()
    fp32 = export_to_onnx(model, folder / "m.onnx", input_shape=(1, *SHAPE))
    calibration = np.random.default_rng(0).standard_normal((8, *SHAPE)).astype(np.float32)
    int8 = quantize_onnx_static(fp32, folder / "m_int8.onnx", calibration, reduce_range=False)
    return fp32, int8


def test_the_greedy_planner_reuses_memory_of_dead_tensors():
    tensors = [Activation("a", 100, 0, 1), Activation("b", 50, 1, 2), Activation("c", 100, 2, 3)]
    assert live_peak(tensors) == 150  # a + b at step 1, b + c at step 2
    assert greedy_arena(tensors) == 150  # c takes a's place: their lifetimes do not overlap
    apart = [Activation("a", 100, 0, 0), Activation("b", 100, 1, 1)]
    assert greedy_arena(apart) == 100 and live_peak(apart) == 100


def test_fp32_activations_count_four_bytes_and_the_first_feature_map_dominates(graphs):
    fp32, _ = graphs
    report = memory_report(fp32)
    first_map = 8 * SHAPE[1] * SHAPE[2] * 4  # 8 channels x 32 x 63 float32 after the first convolution
    tensors, _, _ = activations(onnx.load(str(fp32)))
    assert max(t.size for t in tensors) == first_map
    assert report["peak_ram_bytes"] >= report["live_peak_bytes"] >= first_map
    assert report["scratch_bytes"] == 0  # float convolutions are counted without im2col scratch
    assert report["flash_bytes"] == fp32.stat().st_size and 0 < report["weight_bytes"] < report["flash_bytes"]


def test_static_int8_stores_activations_in_one_byte_with_qdq_pairs_fused(graphs):
    fp32, int8 = graphs
    tensors, operators, _ = activations(onnx.load(str(int8)))
    assert not any(op.op_type in ("QuantizeLinear", "DequantizeLinear") for op in operators)
    assert not any("DequantizeLinear" in t.name for t in tensors)
    assert max(t.size for t in tensors) == 8 * SHAPE[1] * SHAPE[2]  # the first feature map, one byte a value
    full, quantized = memory_report(fp32), memory_report(int8)
    assert quantized["arena_bytes"] * 3 < full["arena_bytes"]  # about 4x, less what stays float
    # CMSIS-NN's im2col buffer of the largest INT8 convolution: 2 x 8 channels x 3 x 3 int16 values
    assert quantized["scratch_bytes"] == 2 * 8 * 3 * 3 * 2
    assert quantized["peak_ram_bytes"] == quantized["arena_bytes"] + quantized["scratch_bytes"]


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        memory_report(bad)
