"""Ethos-U through Vela (edge_audio.npu): every target compiles a full-integer file with every operator on the NPU,
reports are cached by content, files Vela cannot take give a reason instead of a crash, and the profiles and the
search's budgets read Vela's numbers."""
import numpy as np
import pytest
import torch

from edge_audio.errors import ParameterError
from edge_audio.export import export_to_onnx
from edge_audio.models import spec_from_config, untrained_like_trained
from edge_audio.npu import NPU_TARGETS, compile_for_npu, npu_report, npu_reports, npu_target, with_npu_arenas
from edge_audio.runtimes.tflm import tflm_arena
from edge_audio.quantize import METHODS, QuantizationInputs
from edge_audio.targets import DEPLOYMENT_PROFILES, Budgets, check_profiles, profile_from

SHAPE = (24, 31)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One small model written by tflite_int8, tflite_int16x8 and tflite_int4, and a corrupt file."""
    folder = tmp_path_factory.mktemp("npu")
    model = untrained_like_trained(spec_from_config({"name": "m", "channels": [8, 16], "fc_size": 16})
                                   | {"num_classes": 5})
    fp32 = export_to_onnx(model, folder / "m.onnx", input_shape=(1, 1, *SHAPE))
    calibration = (np.random.default_rng(0).standard_normal((20, 1, *SHAPE)) * 3).astype(np.float32)
    written = {}
    for name in ("tflite_int8", "tflite_int16x8", "tflite_int4"):
        written[name] = folder / f"{name}.tflite"
        METHODS[name].apply(QuantizationInputs(model, fp32, calibration, "minmax", False), written[name])
    written["corrupt"] = folder / "corrupt.tflite"
    written["corrupt"].write_bytes(written["tflite_int8"].read_bytes()[:2000])
    return written


def test_every_target_compiles_the_file_with_every_operator_on_the_npu(files, tmp_path):
    reports = npu_reports(files["tflite_int8"], tmp_path)
    assert list(reports) == list(NPU_TARGETS)
    for name, report in reports.items():
        assert report["npu_operators"] > 0 and report["cpu_operators"] == 0, report
        assert report["sram_bytes"] > 0 and report["flash_bytes"] > 0 and report["latency_ms"] > 0
        assert report["latency_ms"] == pytest.approx(report["cycles"] / report["clock_hz"] * 1e3, abs=1e-4)
        assert report["accelerator"] == NPU_TARGETS[name].accelerator
    # twice the MACs per cycle is not slower
    assert reports["ethos_u55_256"]["latency_ms"] <= reports["ethos_u55_128"]["latency_ms"]
    assert npu_reports(files["tflite_int16x8"], tmp_path)["ethos_u55_128"]["cpu_operators"] == 0  # 16x8 runs too


def test_a_report_is_cached_by_the_files_content_and_its_compiled_file_verified(files, tmp_path, monkeypatch):
    first = npu_report(files["tflite_int8"], NPU_TARGETS["ethos_u55_128"], tmp_path)
    from edge_audio import npu

    def refuse(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(npu.subprocess, "run", refuse)
    again = npu_report(files["tflite_int8"], NPU_TARGETS["ethos_u55_128"], tmp_path)
    assert again == first and open(again["compiled"], "rb").read(8)[4:8] == b"TFL3"


def test_a_file_vela_cannot_take_gives_a_reason_and_no_crash(files, tmp_path):
    int4 = npu_report(files["tflite_int4"], NPU_TARGETS["ethos_u55_128"], tmp_path)
    assert "4-bit weights" in int4["error"]
    corrupt = npu_report(files["corrupt"], NPU_TARGETS["ethos_u55_128"], tmp_path)
    assert corrupt["error"].startswith("not a readable TFLite file")
    with pytest.raises(ParameterError, match="ethos_u55_128"):
        npu_target("ethos_u99")


def test_an_npu_profile_reads_vela_and_a_variant_vela_did_not_compile_never_fits(files, tmp_path):
    profile = DEPLOYMENT_PROFILES["ethos_u55_128"]
    tflm = tflm_arena(files["tflite_int8"])
    reports = with_npu_arenas(npu_reports(files["tflite_int8"], tmp_path), tflm)
    compiled = {"macs": 10**6, "peak_ram_bytes": 1, "flash_bytes": 1, "npu": reports}
    costs = profile.costs(compiled)
    ram, flash, latency = costs.ram_bytes, costs.flash_bytes, costs.latency_ms
    vela = reports["ethos_u55_128"]
    assert (ram, flash, latency) == (vela["arena_bytes"], vela["flash_bytes"], round(vela["latency_ms"], 3))
    # the arena a firmware allocates: Vela's SRAM and TFLite Micro's persistent section, 16-byte aligned
    assert vela["sram_bytes"] + tflm["tail_bytes"] <= ram < vela["sram_bytes"] + tflm["tail_bytes"] + 16
    assert ram % 16 == 0 and tflm["tail_bytes"] > 0
    refused = {**compiled, "npu": with_npu_arenas(npu_reports(files["tflite_int4"], tmp_path),
                                                  tflm_arena(files["tflite_int4"]))}
    budgets = Budgets(2.0, 50.0, 0.0).for_device(profile)
    assert budgets.max_device_latency_ms == profile.max_device_latency_ms and budgets.max_ram_kb == 512.0
    assert not budgets.reasons(1000, 1.0, 50.0, *budgets.device_costs(compiled))
    assert "device latency unknown" in " ".join(budgets.reasons(1000, 1.0, 50.0, *budgets.device_costs(refused)))
    with pytest.raises(ParameterError, match="npu must name"):
        check_profiles({"mine": {"npu": "ethos_u99", "max_ram_bytes": 1000}})
    check_profiles({"mine": {"npu": "ethos_u65_256", "max_device_latency_ms": 5.0}})  # no clock needed with an npu


def test_the_search_budgets_the_npu_latency_before_training(tmp_path):
    """With an Ethos-U target device, each candidate is compiled by Vela before training: one over the device's
    latency limit is never trained, and its reason says so."""
    from edge_audio.nas import candidate_cost

    torch.manual_seed(0)
    spec = {"name": "c", "channels": [8, 16], "kernel_size": 3, "block": "standard", "pool": "max", "fc_size": 0,
            "dropout": 0.0}
    cost = candidate_cost(spec, SHAPE, 5, tmp_path, runs=3, npu="ethos_u55_128")
    report = cost["npu"]["ethos_u55_128"]
    assert report["cpu_operators"] == 0 and cost["flash_bytes"] == cost["size_bytes"]
    tight = Budgets(2.0, 50.0, 0.0).for_device(profile_from("tight", {
        "npu": "ethos_u55_128", "max_device_latency_ms": report["latency_ms"] / 2}))
    ram, flash, latency = tight.device_costs(cost)
    assert latency == round(report["latency_ms"], 3) and ram == report["arena_bytes"] > report["sram_bytes"]
    assert not tight.hardware_met(tight.violations(cost["size_bytes"], cost["latency_ms"], None, ram, flash, latency))
    assert any(reason.startswith("device latency") for reason in tight.reasons(
        cost["size_bytes"], cost["latency_ms"], None, ram, flash, latency))


def test_an_ethos_u_target_device_searches_8_bit_weights_only():
    """Vela does not compile 4-bit weights: with an NPU target the bit-width gene keeps 8 (and a search of 4 bits
    alone is a one-line error); a Cortex-M target keeps both."""
    from edge_audio.settings import Settings

    assert Settings(target_device="ethos_u55_128").search.weight_bits == (8,)
    assert Settings(target_device="cortex_m4").search.weight_bits == (8, 4)
    with pytest.raises(ParameterError, match="Ethos-U NPU.*has no 8"):
        Settings(target_device="ethos_u65_256", nas_weight_bits=[4]).search
