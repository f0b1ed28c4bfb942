import os
import warnings

import numpy as np
import pytest
import torch

from edge_audio.export import OnnxModelError, export_to_onnx, fold_batchnorm, onnx_predict, onnx_session
from edge_audio.metrics import classification_metrics
from edge_audio.models import LightweightCNN
from edge_audio.pipeline import export_deployable, prepare_data, quantization_table, quantize_models, train_baselines
from edge_audio.quantize import calibration_set, evaluate_onnx, float_operators, quantize_onnx_static
from edge_audio.train import Protocol, TrainConfig

SMALL_FEATURES = dict(sample_rate=8000, duration=2.0, n_mels=32, n_fft=256, hop_length=128)
SPECS = [{"name": "mini", "channels": [8, 16], "fc_size": 16}, {"name": "mini_ds", "channels": [8, 16],
                                                                "block": "dsconv", "fc_size": 0}]


@pytest.fixture(scope="module")
def trained(us8k_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("quant")
    data = prepare_data(us8k_dir, out, **SMALL_FEATURES)
    baselines = train_baselines(data, SPECS, TrainConfig(epochs=3, batch_size=16, seed=0), Protocol(),
                                latency_runs=5)
    return data, baselines


def test_exported_onnx_matches_pytorch(trained):
    data, baselines = trained
    model = baselines[0].deployed_run.load_model()
    x = data.features.features[:6]
    onnx_logits = onnx_predict(onnx_session(data.layout.models / "mini.onnx"), x[:, None])
    torch_logits = model(torch.from_numpy(x[:, None])).detach().numpy()
    assert np.abs(onnx_logits - torch_logits).max() < 1e-4


def test_batchnorm_folding_keeps_the_function():
    torch.manual_seed(0)
    model = LightweightCNN(channels=[4, 8], fc_size=0, block="dsconv").eval()
    for module in model.modules():  # non-trivial running statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    folded = fold_batchnorm(model)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules()) == 1  # the input BN stays
    x = torch.randn(2, 1, 16, 20)
    assert torch.allclose(folded(x), model(x), atol=1e-5)


def test_raw_audio_model_matches_the_feature_pipeline(trained):
    data, baselines = trained
    result = export_deployable(data, baselines[0], clips=4)
    assert result["within_tolerance"] and result["predictions_agree"]
    assert result["max_abs_logit_difference"] < result["tolerance"]
    assert (data.layout.root / result["path"]).is_file()


def test_static_int8_is_smaller_and_scored_from_its_own_outputs(trained):
    data, baselines = trained
    results = quantize_models(data, baselines, ["ort_static", "pytorch_dynamic"], calibration_size=20,
                              latency_runs=5)
    assert all(r.error is None for r in results)
    static = next(r.record for r in results if r.model == "mini" and r.method == "ort_static")
    int8_path = data.layout.root / static["artifact"]
    assert static["size_bytes"] == os.path.getsize(int8_path) < os.path.getsize(data.layout.models / "mini.onnx")
    x_test, y_test = data.features.select([10])
    logits = onnx_predict(onnx_session(int8_path), x_test[:, None])
    assert static["accuracy"] == classification_metrics(y_test, logits.argmax(1), 10)["accuracy"]
    assert static["quantization"]["per_channel"] and static["quantization"]["calibration_clips"] == 20
    assert static["quantization"]["float_operators"] == float_operators(int8_path)
    assert not {"Conv", "Gemm"} & set(static["quantization"]["float_operators"]), "weighted layers stayed float"
    assert {"Conv", "Gemm"} <= set(float_operators(data.layout.models / "mini.onnx"))  # an FP32 graph: all float
    table = quantization_table(results)
    assert {"Method", "Size ratio", "Speedup", "Drop (points)", "INT8 acc (%)"} <= set(table.columns)


def test_a_model_that_fails_to_quantize_gets_an_error_row_and_the_others_go_on(trained, tmp_path):
    data, baselines = trained
    broken = data.layout.models / "mini_ds.onnx"
    saved = broken.read_bytes()
    broken.write_bytes(b"this is not an onnx model")
    try:
        results = quantize_models(data, baselines, ["ort_dynamic"], calibration_size=10, latency_runs=5)
    finally:
        broken.write_bytes(saved)
    failed = [r for r in results if r.model == "mini_ds"]
    assert failed[0].record is None and "mini_ds.onnx" in failed[0].error
    assert next(r for r in results if r.model == "mini").record is not None
    assert "Error" in quantization_table(results).columns


def test_calibration_set_smaller_than_requested_warns_and_uses_what_there_is():
    features = np.zeros((7, 4, 5), dtype=np.float32)
    with pytest.warns(UserWarning, match="12 clips requested .* hold 7"):
        chosen = calibration_set(features, 12)
    assert chosen.shape == (7, 1, 4, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert calibration_set(features, 3, seed=1).shape == (3, 1, 4, 5)


def test_unknown_methods_are_rejected(trained):
    data, baselines = trained
    with pytest.raises(ValueError, match="unknown quantization method"):
        quantize_models(data, baselines, ["magic"])
    with pytest.raises(ValueError, match="unknown calibration method"):
        quantize_models(data, baselines, ["ort_static"], calibration_method="guess")


def test_corrupt_or_mismatched_onnx_is_named_in_the_error(trained, tmp_path):
    data, _ = trained
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00garbage")
    x_test, y_test = data.features.select([10])
    with pytest.raises(OnnxModelError, match="corrupt.onnx"):
        evaluate_onnx(corrupt, x_test, y_test, 10)
    with pytest.raises(OnnxModelError, match="not found"):
        evaluate_onnx(tmp_path / "absent.onnx", x_test, y_test, 10)
    other = export_to_onnx(LightweightCNN(channels=[4], fc_size=0), tmp_path / "other.onnx",
                           input_shape=(1, 1, 64, 173))
    model_shape_mismatch = np.zeros((3, 32, 63), dtype=np.float32)
    with pytest.raises(OnnxModelError, match="other.onnx"):
        evaluate_onnx(other, model_shape_mismatch, np.zeros(3, dtype=np.int64), 10)


def test_static_quantization_with_entropy_calibration_runs(trained, tmp_path):
    data, _ = trained
    x_train, _ = data.features.select([1, 2])
    out = quantize_onnx_static(data.layout.models / "mini.onnx", tmp_path / "e.onnx", calibration_set(x_train, 8),
                               calibration_method="entropy")
    assert out.is_file() and os.path.getsize(out) < os.path.getsize(data.layout.models / "mini.onnx")


def test_tflite_export_matches_pytorch_or_says_how_to_install(tmp_path):
    from edge_audio.export import TFLITE_EXTRA_HINT, export_to_tflite, tflite_available, tflite_predict

    torch.manual_seed(0)
    model = LightweightCNN(channels=[4, 8], fc_size=8).eval()
    if not tflite_available():
        with pytest.raises(RuntimeError, match="make tflite"):
            export_to_tflite(model, tmp_path / "m.tflite", (1, 1, 16, 20))
        pytest.skip(TFLITE_EXTRA_HINT)
    path = export_to_tflite(model, tmp_path / "m.tflite", (1, 1, 16, 20))
    x = torch.randn(3, 1, 16, 20)
    assert np.abs(tflite_predict(path, x.numpy()) - model(x).detach().numpy()).max() < 1e-4
