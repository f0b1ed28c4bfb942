"""Runtimes side by side (edge_audio.runtimes, edge-audio bench --runtimes)."""
import json

from edge_audio.bench import gemm_floors, run_runtime_benchmarks
from edge_audio.runtimes import installed_runtimes
from helpers import run_cli


def test_every_installed_runtime_is_timed_and_an_absent_one_is_reported_absent(tmp_path, capsys):
    report = run_runtime_benchmarks(latency_runs=3, presets=["tiny"], out=str(tmp_path / "runtimes.json"))
    rows = report["models"]["tiny"]["deployments"]
    expected = {"onnxruntime fp32", "onnxruntime int8", "litert fp32", "litert int8"}
    assert expected <= set(rows)
    for name in expected:
        assert rows[name]["median_ms"] > 0 and rows[name]["runs"] == 3, (name, rows[name])
    assert rows["onnxruntime fp32"]["speedup_vs_onnxruntime_fp32"] == 1.0
    # full-integer TFLite stores every weight in one byte: about 4x below the FP32 ONNX file
    assert rows["litert int8"]["size_ratio_vs_fp32_onnx"] > 3.0
    assert report["installed"] == installed_runtimes()
    if report["installed"]["openvino"]:  # FP32 pinned, bf16 where the CPU has it (an error row elsewhere), QDQ INT8
        from edge_audio.runtimes.openvino import bf16_supported

        assert {"openvino fp32", "openvino int8", "openvino bf16"} <= set(rows)
        assert ("error" not in rows["openvino bf16"]) == bf16_supported()
    assert json.loads((tmp_path / "runtimes.json").read_text())["models"]["tiny"]["macs"] > 0


def test_a_runtime_that_is_not_installed_is_reported_absent(monkeypatch, capsys):
    from edge_audio.runtimes import RUNTIMES

    monkeypatch.setattr(type(RUNTIMES["openvino"]), "installed", lambda runtime: runtime.name != "openvino")
    report = run_runtime_benchmarks(latency_runs=2, presets=["tiny"])
    assert not any(name.startswith("openvino") for name in report["models"]["tiny"]["deployments"])
    assert "runtimes absent: openvino" in capsys.readouterr().out


def test_the_floors_are_measured_through_the_runtimes_kernels():
    floors = gemm_floors(m=64, k=64, n=64, runs=3)
    for precision in ("fp32", "int8"):
        rates = floors[precision]["gops"]
        assert rates["onnxruntime"] > 0 and floors[precision]["best"] == max(v for v in rates.values() if v)
    assert floors["fp32"]["gops"]["pytorch"] > 0 and "pytorch" not in floors["int8"]["gops"]


def test_an_unknown_preset_is_a_one_line_error(tmp_path):
    result = run_cli("bench", "--runtimes", "--models", "tinyy", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "unknown preset 'tinyy'" in result.stderr
