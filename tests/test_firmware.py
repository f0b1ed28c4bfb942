"""The model as C (edge_audio.firmware): byte for byte what TensorFlow Lite Micro's reference kernels compute, on the
host and on emulated Cortex-M4 and Cortex-M55 boards, for a quick run's full-integer models and MLPerf Tiny's
keyword-spotting model; the C front end against the Python one; and every refusal in one line."""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from edge_audio.errors import ParameterError
from edge_audio.features import FeatureConfig, LogMelFrontEnd, load_audio
from edge_audio.firmware.boards import ToolMissingError, require_tools, tools_present
from edge_audio.firmware.build import EmulationError, _parse, board_run, host_outputs, tflm_outputs
from edge_audio.firmware.front_end import compare_front_ends
from edge_audio.firmware.network import FirmwareError, generate
from edge_audio.steps.quantization import KWS_MODEL
from edge_audio.tflite import onnx_to_tflite

# `make test` installs the tools where it can; in CI (CI set) they must be there, so nothing is skipped
needs_board = pytest.mark.skipif(not tools_present() and not os.environ.get("CI"),
                                 reason="arm-none-eabi-gcc / qemu-system-arm not installed (make firmware-tools)")


def full_integer_models(book_run) -> list[Path]:
    return sorted((book_run.output / "models").glob("*.tflite"))


def clips_of(book_run, model: Path):
    """Every clip of the quick run's dataset as the model's quantized input, and the waveforms."""
    card = json.loads(model.with_name(model.stem + ".card.json").read_text())
    config = FeatureConfig(**card["front_end"])
    waves = np.stack([load_audio(p, config) for p in sorted((book_run.root / "odd").rglob("*.wav"))])
    import torch
    with torch.no_grad():
        features = LogMelFrontEnd(config)(torch.from_numpy(waves))[:, 0].numpy()
    network = generate(model.read_bytes())
    scale, zero = network.input.scale[0], network.input.zero_point[0]
    inputs = np.clip(np.round(features / scale) + zero, -128, 127).astype(np.int8).reshape(len(waves), -1)
    return network, inputs, waves, card


def kws_inputs(count: int = 24) -> np.ndarray:
    rng = np.random.default_rng(7)
    inputs = rng.integers(-128, 128, (count, 490)).astype(np.int8)
    inputs[0] = -128  # the extremes of the range too
    inputs[1] = 127
    return inputs


def test_every_full_integer_model_of_a_quick_run_is_bit_exact_on_the_host(book_run):
    models = full_integer_models(book_run)
    assert {m.stem.split("_", 1)[1] for m in models} >= {"tflite_int8", "qat_int4"}
    for model in models:
        network, inputs, _, _ = clips_of(book_run, model)
        reference = tflm_outputs(model, inputs)
        assert np.array_equal(host_outputs(network, inputs), reference), model.name  # one differing byte fails


def test_the_mlperf_tiny_kws_model_is_bit_exact_on_the_host():
    network = generate(KWS_MODEL.read_bytes())
    assert network.operators == ["CONV_2D", *["DEPTHWISE_CONV_2D", "CONV_2D"] * 4, "AVERAGE_POOL_2D", "RESHAPE",
                                 "FULLY_CONNECTED", "SOFTMAX"]
    inputs = kws_inputs()
    assert np.array_equal(host_outputs(network, inputs), tflm_outputs(KWS_MODEL, inputs))


@needs_board
@pytest.mark.parametrize("core", ["cortex_m4", "cortex_m55"])
def test_the_same_bytes_on_emulated_cores_with_instructions_counted(book_run, core, tmp_path):
    model = book_run.output / "models" / "mini_tflite_int8.tflite"
    network, inputs, _, _ = clips_of(book_run, model)
    reference = tflm_outputs(model, inputs[:4])
    run = board_run(network, inputs[:4], core, tmp_path)
    assert np.array_equal(run.outputs, reference)
    macs = sum(layer.macs for layer in network.layers)
    assert macs < run.mean_instructions < 50 * macs  # at least one instruction per MAC, and no runaway count
    assert sum(run.layer_instructions) == pytest.approx(run.mean_instructions, rel=0.01)
    assert network.arena_bytes < run.ram_bytes and 0 < run.stack_bytes < 4096
    assert run.flash_bytes > sum(layer.macs > 0 for layer in network.layers)
    plain = board_run(network, inputs[:4], core, tmp_path, simd=False)
    assert np.array_equal(plain.outputs, reference) and plain.mean_instructions > run.mean_instructions
    again = board_run(network, inputs[:4], core, tmp_path)  # cached by its inputs: the same numbers
    assert again.instructions == run.instructions


@needs_board
@pytest.mark.parametrize("core", ["cortex_m4", "cortex_m55"])
def test_the_kws_model_gives_the_same_bytes_on_emulated_cores(core, tmp_path):
    network = generate(KWS_MODEL.read_bytes())
    inputs = kws_inputs(6)
    run = board_run(network, inputs, core, tmp_path)
    assert np.array_equal(run.outputs, tflm_outputs(KWS_MODEL, inputs))


def test_the_c_front_end_follows_the_python_one(book_run):
    model = book_run.output / "models" / "mini_tflite_int8.tflite"
    network, _, waves, card = clips_of(book_run, model)
    check = compare_front_ends(network, card["front_end"], waves)
    assert check.largest_difference < 1e-3
    assert check.same_prediction >= 0.99


def test_a_model_the_generator_does_not_cover_is_named(book_run, tmp_path):
    fp32 = onnx_to_tflite(book_run.output / "models" / "mini.onnx", tmp_path / "mini_fp32.tflite")
    with pytest.raises(FirmwareError, match="type 0.*full-integer"):
        generate(fp32.read_bytes())
    with pytest.raises(FirmwareError, match="not a readable TFLite model"):
        generate(b"not a model at all")


def test_an_unknown_board_a_missing_tool_a_fault_and_a_hang_are_one_line(book_run, tmp_path, monkeypatch):
    from edge_audio.settings import Settings

    with pytest.raises(ParameterError, match=r"emulated_boards \['cortex_m3'\] are not emulated boards; choose among "
                                             "cortex_m4, cortex_m7, cortex_m55"):
        Settings(emulated_boards=["cortex_m3"]).check()
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match="arm-none-eabi-gcc, qemu-system-arm not found.*apt-get install"):
        require_tools("arm-none-eabi-gcc", "qemu-system-arm")
    monkeypatch.undo()
    network = generate((book_run.output / "models" / "mini_tflite_int8.tflite").read_bytes())
    with pytest.raises(EmulationError, match="faulted: FAULT cfsr=00000100"):
        _parse("calibration_ticks 1\nFAULT cfsr=00000100 hfsr=40000000 pc=00000abc\n", network, 1)
    if tools_present():
        inputs = np.zeros((50, int(np.prod(network.input.shape))), np.int8)
        with pytest.raises(EmulationError, match="did not finish in 0.05 s"):
            board_run(network, inputs, "cortex_m4", tmp_path, timeout=0.05)


def test_a_cortex_m_profile_takes_the_counted_latency_where_the_record_has_it():
    from edge_audio.targets import DEPLOYMENT_PROFILES, profile_from

    profile = DEPLOYMENT_PROFILES["cortex_m4"]
    row = {"macs": 2_000_000, "peak_ram_bytes": 50_000, "flash_bytes": 60_000}
    estimated = profile.costs(row)
    assert estimated.latency_source == "estimated (MACs)" and estimated.latency_ms == profile.estimate_ms(row)
    counted = profile.costs({**row, "emulated": {"cortex_m4": {"instructions": 12e6}}})
    assert counted.latency_ms == pytest.approx(12e6 * 1.6 / 120e6 * 1e3, abs=0.05)
    assert counted.latency_source == "counted (emulated Cortex-M4, 1.6 cycles/instruction)"
    stack = DEPLOYMENT_PROFILES["cortex_m4_xcube_ai"]  # a profile of another stack keeps its estimate
    assert stack.costs({**row, "emulated": {"cortex_m4": {"instructions": 12e6}}}).latency_source == "estimated (MACs)"
    with pytest.raises(ParameterError, match="board must be one of cortex_m4, cortex_m7, cortex_m55"):
        profile_from("mine", {"kind": "cortex_m", "board": "cortex_m0", "max_ram_bytes": 1000})
