import json

import pytest
import torch
from torch import nn

from edge_audio.models import MODEL_CONFIGS, PRESETS, LightweightCNN, preset_spec, spec_from_config
from edge_audio.profile import count_macs

FEATURE_SHAPE = (1, 64, 173)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_gives_logits_per_class(name):
    model = LightweightCNN.from_spec(preset_spec(name)).eval()
    assert model(torch.randn(3, *FEATURE_SHAPE)).shape == (3, 10)


def test_presets_are_sized_like_the_reference_table(tmp_path):
    sizes = {}
    for name in ("tiny", "small", "medium"):
        torch.save(LightweightCNN.from_spec(preset_spec(name)).state_dict(), tmp_path / name)
        sizes[name] = (tmp_path / name).stat().st_size / 1e6
    assert 0.4 < sizes["tiny"] < 0.7 and 1.0 < sizes["small"] < 1.5 and 2.5 < sizes["medium"] < 3.3, sizes


def test_json_spec_round_trips_to_an_identical_model():
    torch.manual_seed(0)
    model = LightweightCNN(channels=[8, 16, 24], fc_size=32, block="dsconv", kernel_size=5, dropout=0.1,
                           pool="avg", num_classes=7, name="roundtrip").eval()
    spec = json.loads(json.dumps(model.spec))
    rebuilt = LightweightCNN.from_spec(spec).eval()
    assert rebuilt.spec == model.spec
    assert [(k, v.shape) for k, v in rebuilt.state_dict().items()] == [
        (k, v.shape) for k, v in model.state_dict().items()]
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 32, 40)
    assert torch.equal(rebuilt(x), model(x))


def test_seed_style_config_list_is_accepted():
    spec = spec_from_config({"name": "custom", "channels": [16, 32, 64, 128], "fc_size": 256})
    assert spec["channels"] == [16, 32, 64, 128] and spec["block"] == "standard"
    assert [spec_from_config(c)["name"] for c in MODEL_CONFIGS] == list(PRESETS)
    assert spec_from_config({"name": "tiny", "dropout": 0.5})["channels"] == PRESETS["tiny"]["channels"]


@pytest.mark.parametrize("config, message", [
    ("huge", "unknown preset"),
    ({"name": "x"}, "no 'channels'"),
    ({"name": "x", "channels": []}, "channels"),
    ({"name": "x", "channels": [8], "block": "transformer"}, "block"),
    ({"name": "x", "channels": [8], "kernel_size": 4}, "kernel_size"),
    ({"name": "x", "channels": [8], "dropout": 1.5}, "dropout"),
    ({"channels": [8]}, "'name'"),
])
def test_bad_model_configs_are_rejected(config, message):
    with pytest.raises(ValueError, match=message):
        spec_from_config(config)


def test_flops_of_one_conv_layer_equal_the_analytic_count():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    counts = count_macs(conv, (3, 10, 12))
    analytic_macs = 8 * 10 * 12 * 3 * 3 * 3  # outputs x (kernel x kernel x input channels)
    assert counts["macs"] == analytic_macs
    assert counts["flops"] == 2 * analytic_macs == counts["flop_counter_flops"]
    assert counts["flop_gap_percent"] == 0


def test_an_untrained_model_for_benchmarks_exports_the_biases_a_trained_one_has(tmp_path):
    """A fresh BatchNorm folds into zero biases the exporter drops; untrained_like_trained's does not, so the
    benchmarks' untrained files have every bias (and its quantization parameters) a trained model's file has."""
    import onnx

    from edge_audio.export import export_to_onnx
    from edge_audio.models import untrained_like_trained

    def conv_biases(model) -> int:
        graph = onnx.load(str(export_to_onnx(model, tmp_path / "m.onnx", input_shape=(1, 1, 16, 20)))).graph
        return sum(len(node.input) == 3 for node in graph.node if node.op_type == "Conv")

    spec = preset_spec("ds_cnn")
    assert conv_biases(untrained_like_trained(spec)) == 9
    assert conv_biases(LightweightCNN.from_spec(spec).eval()) < 9
    first, again = untrained_like_trained(spec, seed=3), untrained_like_trained(spec, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("name", ["nano", "micro"])
def test_the_microcontroller_presets_fit_the_small_microcontroller_profile(tmp_path, name):
    from edge_audio.export import export_to_onnx
    from edge_audio.memory import memory_report
    from edge_audio.models import count_parameters, untrained_like_trained
    from edge_audio.quantize import tflite_bytes
    from edge_audio.targets import DEPLOYMENT_PROFILES

    model = untrained_like_trained(preset_spec(name))
    assert 5_000 <= count_parameters(model) <= 30_000
    path = export_to_onnx(model, tmp_path / f"{name}.onnx", input_shape=(1, 1, 40, 126))  # the book's features
    profile = DEPLOYMENT_PROFILES["cortex_m4_small"]
    assert memory_report(path, full_integer=True)["peak_ram_bytes"] < profile.max_ram_bytes
    assert tflite_bytes(path) < profile.max_flash_bytes
