import dataclasses
import os
import warnings

import numpy as np
import pytest
import torch

from edge_audio.errors import ModelFileError, ParameterError
from edge_audio.export import export_to_onnx, fold_batchnorm
from edge_audio.runtimes import open_model
from edge_audio.metrics import classification_metrics
from edge_audio.models import LightweightCNN
from edge_audio.quantize import METHODS, calibration_set, evaluate_onnx, float_operators, quantize_onnx_static
from edge_audio.steps.baselines import train_baselines
from edge_audio.steps.data import prepare_data
from edge_audio.chapters.quantization import failure_note
from edge_audio.steps.quantization import export_deployable, quantize_models
from edge_audio.tables import quantization_table
from edge_audio.storage import file_sha256
from helpers import small_settings

SPECS = [{"name": "mini", "channels": [8, 16], "fc_size": 16}, {"name": "mini_ds", "channels": [8, 16],
                                                                "block": "dsconv", "fc_size": 0}]


@pytest.fixture(scope="module")
def trained(us8k_dir, tmp_path_factory):
    settings = small_settings(us8k_dir, tmp_path_factory.mktemp("quant"), model_configs=SPECS, epochs=3,
                              batch_size=16, latency_runs=5, calibration_size=20)
    data = prepare_data(settings)
    return data, settings, train_baselines(data, settings)


def test_exported_onnx_matches_pytorch(trained):
    data, _, baselines = trained
    model = baselines[0].deployed_run.load_model()
    x = np.array(data.features.features[:6])  # a writable copy of the memory-mapped features
    onnx_logits = open_model(data.layout.models / "mini.onnx").predict(x[:, None])
    torch_logits = model(torch.from_numpy(x[:, None])).detach().numpy()
    assert np.abs(onnx_logits - torch_logits).max() < 1e-4


def test_deployed_files_carry_no_exporter_metadata_and_int8_files_short_names(trained, tmp_path):
    import onnx

    from edge_audio.export import strip_for_deployment

    data, _, _ = trained
    fp32 = onnx.load(str(data.layout.models / "mini.onnx"))
    assert not fp32.graph.value_info and not fp32.graph.metadata_props
    assert not any(node.metadata_props for node in fp32.graph.node)  # no stack traces, FX names, scopes
    assert all(node.name for node in fp32.graph.node)  # the FP32 graph keeps its names (layer sensitivity)
    calibration = data.features.features[:8][:, None]
    int8 = onnx.load(str(quantize_onnx_static(data.layout.models / "mini.onnx", tmp_path / "int8.onnx", calibration)))
    names = [name for node in int8.graph.node for name in [*node.input, *node.output] if name]
    assert not any(node.name for node in int8.graph.node) and max(map(len, names)) <= 6
    assert [v.name for v in int8.graph.input] == ["input"] and [v.name for v in int8.graph.output] == ["logits"]

    renamed = strip_for_deployment(onnx.load(str(data.layout.models / "mini.onnx")), short_names=True)
    (tmp_path / "short.onnx").write_bytes(renamed.SerializeToString())
    x = data.features.features[:4][:, None]
    assert np.array_equal(open_model(tmp_path / "short.onnx").predict(x),
                          open_model(data.layout.models / "mini.onnx").predict(x))
    assert renamed.ByteSize() < fp32.ByteSize()


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
    data, _, baselines = trained
    result = export_deployable(data, baselines[0], clips=4)
    assert result["within_tolerance"] and result["predictions_agree"]
    assert result["max_abs_logit_difference"] < result["tolerance"]
    assert (data.layout.root / result["path"]).is_file()


def test_static_int8_is_smaller_and_scored_from_its_own_outputs(trained):
    data, settings, baselines = trained
    results = quantize_models(data, settings, baselines, ["ort_static", "pytorch_dynamic"])
    assert all(r.error is None for r in results), [r.error for r in results]
    assert failure_note(results).startswith("All 4 (model, method) pairs")
    static = next(r.record for r in results if r.model == "mini" and r.method == "ort_static")
    int8_path = data.layout.root / static["artifact"]["path"]
    assert static["size_bytes"] == os.path.getsize(int8_path) < os.path.getsize(data.layout.models / "mini.onnx")
    x_test, y_test = data.features.select([10])
    logits = open_model(int8_path).predict(x_test[:, None])
    assert static["accuracy"] == classification_metrics(y_test, logits.argmax(1), 10)["accuracy"]
    assert static["quantization"]["per_channel"] and static["quantization"]["calibration_clips"] == 20
    assert static["variant"] == static["method"] == "ort_static"
    assert int8_path.name == METHODS["ort_static"].artifact("mini") == "mini_ort_static.onnx"
    assert file_sha256(int8_path) == static["artifact"]["sha256"]
    assert static["quantization"]["float_operators"] == float_operators(int8_path)
    assert not {"Conv", "Gemm"} & set(static["quantization"]["float_operators"]), "weighted layers stayed float"
    assert {"Conv", "Gemm"} <= set(float_operators(data.layout.models / "mini.onnx"))  # an FP32 graph: all float
    table = quantization_table(results)
    assert {"Method", "Size ratio", "Speedup", "Drop (points)", "Acc (%)", "Precision"} <= set(table.columns)


def test_a_model_that_fails_to_quantize_gets_an_error_row_and_the_others_go_on(trained):
    data, settings, baselines = trained
    broken = next(b for b in baselines if b.name == "mini_ds").onnx_path
    saved = broken.read_bytes()
    broken.write_bytes(b"this is not an onnx model")
    try:
        results = quantize_models(data, settings, baselines, ["ort_dynamic"])
    finally:
        broken.write_bytes(saved)
    failed = [r for r in results if r.model == "mini_ds"]
    assert failed[0].record is None and "model.onnx" in failed[0].error
    assert next(r for r in results if r.model == "mini").record is not None
    assert "Error" in quantization_table(results).columns
    note = failure_note(results)
    assert note.startswith("**1 of 2") and "mini_ds with ort_dynamic" in note


def test_a_bug_in_a_method_is_not_turned_into_an_error_row(trained, monkeypatch):
    data, settings, baselines = trained

    def broken(inputs, out):
        raise KeyError("a bug")

    monkeypatch.setitem(METHODS, "ort_dynamic", dataclasses.replace(METHODS["ort_dynamic"], apply=broken))
    with pytest.raises(KeyError, match="a bug"):
        quantize_models(data, settings.replace(calibration_size=21), baselines, ["ort_dynamic"])


def test_calibration_set_smaller_than_requested_warns_and_uses_what_there_is():
    features = np.zeros((7, 4, 5), dtype=np.float32)
    with pytest.warns(UserWarning, match="12 clips requested .* hold 7"):
        chosen = calibration_set(features, 12)
    assert chosen.shape == (7, 1, 4, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert calibration_set(features, 3, seed=1).shape == (3, 1, 4, 5)


def test_unknown_methods_are_rejected(trained):
    data, settings, baselines = trained
    with pytest.raises(ParameterError, match="unknown quantization method"):
        quantize_models(data, settings, baselines, ["magic"])
    with pytest.raises(ParameterError, match="unknown calibration method"):
        quantize_models(data, settings.replace(calibration_method="guess"), baselines, ["ort_static"])


def test_corrupt_or_mismatched_onnx_is_named_in_the_error(trained, tmp_path):
    data, _, _ = trained
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x00garbage")
    x_test, y_test = data.features.select([10])
    with pytest.raises(ModelFileError, match="corrupt.onnx"):
        evaluate_onnx(corrupt, x_test, y_test, 10)
    with pytest.raises(ModelFileError, match="absent.onnx does not exist"):
        evaluate_onnx(tmp_path / "absent.onnx", x_test, y_test, 10)
    other = export_to_onnx(LightweightCNN(channels=[4], fc_size=0), tmp_path / "other.onnx",
                           input_shape=(1, 1, 64, 173))
    model_shape_mismatch = np.zeros((3, 32, 63), dtype=np.float32)
    with pytest.raises(ModelFileError, match=r"other.onnx expects input .*64, 173.* got \(1, 32, 63\)"):
        evaluate_onnx(other, model_shape_mismatch, np.zeros(3, dtype=np.int64), 10)


def test_an_onnx_runtime_failure_is_not_reported_as_a_shape_mismatch(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    # a graph whose input fits but whose Reshape fails at run time
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["input", "shape"], ["logits"])], "bad",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [helper.make_tensor("shape", TensorProto.INT64, [2], [3, 3])])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    with pytest.raises(Exception) as info:
        open_model(path).predict(np.zeros((2, 4), dtype=np.float32))
    assert not isinstance(info.value, ModelFileError) and "expects input" not in str(info.value)


def test_static_quantization_with_entropy_calibration_runs(trained, tmp_path):
    data, _, _ = trained
    x_train, _ = data.features.select([1, 2])
    out = quantize_onnx_static(data.layout.models / "mini.onnx", tmp_path / "e.onnx", calibration_set(x_train, 8),
                               calibration_method="entropy")
    assert out.is_file() and os.path.getsize(out) < os.path.getsize(data.layout.models / "mini.onnx")


def test_bf16_in_openvino_is_a_variant_paired_with_its_fp32_twin_or_an_error_row(trained, monkeypatch):
    """bf16 is measured where the CPU has it (paired accuracy, latency against OpenVINO with FP32 pinned); on a CPU
    without it OpenVINO would silently compute FP32, so the variant is an error row that says so."""
    from edge_audio.runtimes import openvino as ov_runtime

    data, settings, baselines = trained
    if ov_runtime.bf16_supported():
        [result, _] = quantize_models(data, settings, baselines, ["openvino_bf16"])
        record = result.record
        assert record["precision"] == "bf16" and record["runtime"] == "openvino"
        assert record["quantization"]["precision"] == "bf16"
        assert record["paired"]["test"]["n"] == record["test"]["n"] and record["size_ratio"] == 1.0
        assert record["latency"]["openvino"]["runtime"].startswith("openvino")
    monkeypatch.setattr(ov_runtime, "bf16_supported", lambda: False)
    fresh = settings.replace(calibration_size=19)  # a new cache key: the variant is made again, on "this" CPU
    results = quantize_models(data, fresh, baselines, ["openvino_bf16"])
    assert all(r.record is None and "no bf16 support" in r.error for r in results)


def test_the_static_int8_file_in_openvino_is_a_variant_paired_with_openvino_fp32(trained):
    """The ort_static QDQ file run by OpenVINO: an INT8 variant with its own accuracy (paired with the FP32 file
    in OpenVINO, FP32 pinned), latency and memory counted on the INT8 graph."""
    data, settings, baselines = trained
    [result, _] = quantize_models(data, settings, baselines, ["openvino_int8"])
    record, static = result.record, quantize_models(data, settings, baselines, ["ort_static"])[0].record
    assert (record["runtime"], record["precision"], record["int8_activations"]) == ("openvino", "int8", True)
    assert record["quantization"]["runtime"].startswith("openvino") and record["size_bytes"] == static["size_bytes"]
    assert record["paired"]["test"]["n"] == record["test"]["n"] and record["size_ratio"] == static["size_ratio"] > 1
    assert record["latency"]["openvino"]["runtime"].startswith("openvino")
    assert record["memory"]["arena_bytes"] == static["memory"]["arena_bytes"]  # both count the INT8 graph


def test_a_new_runtime_is_one_registry_entry_and_a_method_runs_there(trained, monkeypatch):
    """Adding a runtime is a Runtime in the registry; a method naming it is quantized, evaluated against its FP32
    twin and timed there, with no other change (here: ONNX Runtime's session under another name)."""
    import dataclasses

    from edge_audio import quantize, runtimes
    from edge_audio.runtimes.base import Runtime
    from edge_audio.runtimes.onnxruntime import OnnxRuntimeSession

    data, settings, baselines = trained
    mine = Runtime("mine", "onnxruntime", ".onnx", OnnxRuntimeSession, twin=lambda model, folder: model.onnx,
                   version=lambda: "mine 1.0")
    monkeypatch.setitem(runtimes.RUNTIMES, "mine", mine)
    monkeypatch.setitem(quantize.METHODS, "mine_int8",
                        dataclasses.replace(quantize.METHODS["ort_static"], name="mine_int8", runtime="mine"))
    mine_record = quantize_models(data, settings, baselines[:1], ["mine_int8"])[0].record
    static = quantize_models(data, settings, baselines[:1], ["ort_static"])[0].record
    assert mine_record["runtime"] == "mine" and mine_record["latency"]["mine"]["runtime"] == "mine 1.0"
    assert mine_record["test"]["by_seed"] == static["test"]["by_seed"]  # the same file, the same clips
    assert mine_record["paired"]["test"]["n"] == mine_record["test"]["n"] * len(mine_record["test"]["seeds"])
    assert (data.layout.models / "mini_mine_int8.onnx").is_file()


def test_a_new_method_is_one_function_and_one_registration(trained):
    """Adding a quantization method is a function that writes the variant's file beside one register(Method(...))
    naming its traits (here: the FP32 file as it is, in ONNX Runtime); the step compresses, evaluates, pairs, times
    and publishes it with no other change, and the registry's selections read its traits."""
    import shutil

    from edge_audio.quantize import METHODS, Method, register, selection
    from edge_audio.settings import Settings

    def copy_fp32(inputs, out):
        shutil.copyfile(inputs.fp32_onnx, out)
        return {"format": "the FP32 ONNX file as it is"}

    data, settings, baselines = trained
    register(Method(name="toy_copy", runtime="onnxruntime", int8_weights=False, int8_activations=False,
                    description="the FP32 file, unchanged", apply=copy_fp32, precision="fp32"))
    try:
        assert "toy_copy" in selection("all") and "toy_copy" not in selection("default") + selection("book")
        Settings(methods=["toy_copy"]).check()  # a known name now
        [result] = quantize_models(data, settings, baselines[:1], ["toy_copy"])
        record = result.record
        assert record["size_ratio"] == 1.0 and record["accuracy_drop"] == 0.0  # the same file computes the same
        assert record["paired"]["test"]["changed"] == 0 and record["weight_bits"] == 32
        assert (data.layout.models / "mini_toy_copy.onnx").is_file()
        with pytest.raises(ValueError, match="registered already"):
            register(METHODS["toy_copy"])
    finally:
        METHODS.pop("toy_copy")


def test_a_methods_own_parameters_key_its_variants_and_no_others(trained):
    """qat_epochs is read by the QAT methods only: changing it recomputes their variants and reuses the rest; the
    QAT record says what the fine-tuning did and is full-integer TFLite with 4-bit weights."""
    data, settings, baselines = trained
    mini = [b for b in baselines if b.name == "mini"]
    entries = lambda: {p.name for p in (data.layout.cache / "quantized").iterdir() if p.is_dir()}  # noqa: E731
    first = quantize_models(data, settings.replace(qat_epochs=1), mini, ["tflite_int4", "qat_int4"])
    assert all(r.error is None for r in first), [r.error for r in first]
    before = entries()
    again = quantize_models(data, settings.replace(qat_epochs=2), mini, ["tflite_int4", "qat_int4"])
    added = entries() - before
    assert len(added) == 1 and next(iter(added)).startswith("mini-qat_int4-")
    qat = next(r.record for r in again if r.method == "qat_int4")
    assert len(qat["quantization"]["qat"]["history"]) == 2 and qat["weight_bits"] == 4
    assert qat["full_integer_tflite"] and set(qat["quantization"]["layer_bits"]) == {4}



def test_the_bits_table_shows_every_rows_size_and_its_verdicts(trained):
    """Chapter 3's bits x model table: one row per (model, bits), the file's size in every row, QAT's verdicts
    where QAT ran."""
    from edge_audio.chapters.quantization import bit_widths
    from edge_audio.tables import bit_width_table

    data, settings, baselines = trained
    mini = [b for b in baselines if b.name == "mini"]
    results = quantize_models(data, settings.replace(qat_epochs=2), mini, ["tflite_int8", "tflite_int4", "qat_int4"])
    table = bit_width_table(bit_widths(results, settings.accuracy_margin))
    assert list(table.index) == [("mini", "w8\u00a0a8"), ("mini", "w4\u00a0a8")]
    sizes = {r.method: r.record["size_bytes"] / 1e3 for r in results}
    assert table["Size (kB)"].tolist() == [round(sizes["tflite_int8"], 1), round(sizes["tflite_int4"], 1)]
    assert table["QAT against PTQ"].isna().tolist() == [True, False]
