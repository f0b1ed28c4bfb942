"""Chapters executed through their own code cells in this process (:func:`helpers.execute_chapter_here`), where a
papermill run per case would cost too much: every method list the parameter table accepts runs chapter 3, and a
model that learns nothing is a finding of chapter 2, not a crash."""
import numpy as np
import pytest
import soundfile as sf

from edge_audio.quantize import METHODS
from helpers import SMALL_FEATURES, execute_chapter_here

SPEC = {"name": "mini", "channels": [8, 16], "fc_size": 16}


@pytest.fixture(scope="module")
def chapter_parameters(us8k_dir, tmp_path_factory):
    return {"dataset_path": str(us8k_dir), "output_dir": str(tmp_path_factory.mktemp("alone")), **SMALL_FEATURES,
            "model_configs": [SPEC], "epochs": 1, "latency_runs": 3, "calibration_size": 10, "qat_epochs": 1,
            "device": "cpu"}


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_alone_runs_chapter_3(method, chapter_parameters, monkeypatch):
    """Each section that needs a method it did not get says so in one line, and every value the prose quotes is
    glued (a missing one fails the book build). Here without the Arm toolchain (the book run and nbval have it):
    the emulated boards' section says in one line what it skipped."""
    monkeypatch.setattr("edge_audio.steps.quantization.missing_tools", lambda: "qemu-system-arm not found: install")
    glued, quoted = execute_chapter_here("03", {**chapter_parameters, "methods": [method],
                                                "emulated_boards": ["cortex_m4"]}, monkeypatch)
    missing = quoted - set(glued)
    assert not missing, f"quoted but not glued with methods [{method}]: {sorted(missing)}"
    assert glued["fw_sentence"] == "Skipped on this machine: qemu-system-arm not found: install."
    if method != "ort_static":
        assert "ort_static was not among this run's methods" in glued["static_sentence"]
        assert "the analysis is of the pick by validation accuracy, mini" in glued["sensitivity_sentence"]


def test_models_that_learn_nothing_are_a_finding_not_a_crash(tmp_path, monkeypatch):
    """Two classes of white noise that no model can tell apart: chapter 2 ends, and says that no baseline lies
    resolvably above chance, with the best one's interval."""
    root, rows = tmp_path / "noise", ["file,fold,label"]
    generator = np.random.default_rng(0)
    for fold in range(1, 5):
        for label in ("hiss", "static"):
            for clip in range(2):
                name = f"clips/{label}_{fold}_{clip}.wav"
                (root / "clips").mkdir(parents=True, exist_ok=True)
                sf.write(root / name, 0.3 * generator.standard_normal(8000).astype(np.float32), 8000)
                rows.append(f"{name},{fold},{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    parameters = {"dataset_path": str(root / "labels.csv"), "output_dir": str(tmp_path / "out"), **SMALL_FEATURES,
                  "model_configs": [SPEC], "epochs": 1, "latency_runs": 3, "device": "cpu"}
    glued, quoted = execute_chapter_here("02", parameters, monkeypatch)
    assert "chance_sentence" in quoted and not quoted - set(glued)
    assert glued["chance_sentence"].startswith("Chance on 2 classes is 50.0%; baselines resolvably above it")
    assert ": 0 of 1. None does: the highest test accuracy, mini's" in glued["chance_sentence"]
