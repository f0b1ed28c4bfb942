"""Fixtures: small datasets in each supported layout, generated once per session, and the session's one
end-to-end book run. The suite runs on two xdist workers: nbval's chapters stay together, in order, in one of
them, and every test of the end-to-end run in one other (a session fixture is built once per worker)."""
from pathlib import Path

import pytest

from edge_audio.synth import SynthConfig, generate_dataset
from helpers import write_tone


@pytest.fixture(scope="session")
def us8k_dir(tmp_path_factory) -> Path:
    """A synthetic UrbanSound8K with one clip per class per fold (100 clips). Treat as read-only."""
    return generate_dataset(tmp_path_factory.mktemp("synth") / "UrbanSound8K", SynthConfig(
        seed=3, clips_per_class_per_fold=1), progress=False)


@pytest.fixture
def us8k_copy(us8k_dir, tmp_path) -> Path:
    """A private, writable copy of :func:`us8k_dir` to damage."""
    import shutil

    return Path(shutil.copytree(us8k_dir, tmp_path / "UrbanSound8K"))


@pytest.fixture
def esc50_dir(tmp_path) -> Path:
    """A tiny ESC-50-layout folder: 3 classes x 5 folds."""
    root = tmp_path / "ESC-50"
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, category in enumerate(["dog", "rooster", "rain"]):
            name = f"{fold}-{100 + target}-A-{target}.wav"
            write_tone(root / "audio" / name, freq=200 + 150 * target + 5 * fold)  # no two clips alike
            rows.append(f"{name},{fold},{target},{category},False,{100 + target},A")
    (root / "meta").mkdir()
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def csv_dataset(tmp_path) -> Path:
    """A generic CSV dataset (file, fold, label) with files in a sub-folder and string labels."""
    root = tmp_path / "mine"
    rows = ["file,fold,label"]
    for fold in (1, 2, 3):
        for label, freq in (("beep", 800), ("hum", 100)):
            rel = f"clips/{label}_{fold}.wav"
            write_tone(root / rel, freq=freq + 7 * fold, channels=2)  # no two clips alike
            rows.append(f"{rel},{fold},{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"



#: The suite's one end-to-end book run (`edge-audio run --quick` with these), at the size CI can afford: the
#: official k-fold protocol on a CSV dataset whose class ids are 3, 7 and 12 (4 unequal folds), two models (the
#: smaller also distilled from the ensemble of both: the chapters' own default distils none), two
#: training seeds and two search seeds, every chapter. The other execution of each chapter is nbval's, over book/ with the
#: chapters' own defaults (holdout on the embedded data).
BOOK_RUN = ["-p", "protocol", "kfold", "-p", "sample_rate", "8000", "-p", "duration", "1.0", "-p", "n_mels", "32",
            "-p", "n_fft", "256", "-p", "hop_length", "128", "-p", "epochs", "8", "-p", "batch_size", "8",
            "-p", "seeds", "[0, 1]", "-p", "search_seeds", "[0, 1]", "-p", "latency_runs", "5",
            "-p", "calibration_size", "10",
            "-p", "model_configs", "[{name: mini, channels: [8, 16], fc_size: 16}, {name: mini2, channels: [8, 16, 32]}]",
            "-p", "methods", "[ort_static, tflite_int8, qat_int4, pytorch_dynamic]",
            "-p", "nas_population", "2", "-p", "nas_generations", "1", "-p", "proxy_epochs", "1",
            "-p", "min_accuracy", "0", "-p", "distill_students", "1", "-p", "emulated_boards", "[cortex_m4]"]


@pytest.fixture(scope="session")
def book_run(tmp_path_factory):
    """The whole book, run once per session from a folder outside the checkout with relative paths
    (``edge-audio run --dataset-path odd/labels.csv --output-dir out``), then built into HTML. Returns the folder
    it ran in, its output folder, the HTML folder and the runner's stderr. Treat as read-only."""
    from types import SimpleNamespace

    from edge_audio.book import build_book
    from helpers import BOOK_RUN_CLIPS, BOOK_RUN_FOLDS, run_cli, write_odd_class_csv

    root = tmp_path_factory.mktemp("book-run")
    write_odd_class_csv(root / "odd", folds=BOOK_RUN_FOLDS, clips=BOOK_RUN_CLIPS)  # folds of 12, 9, 12, 15 clips
    result = run_cli("run", "--dataset-path", "odd/labels.csv", "--output-dir", "out", "--quick", "--no-build",
                     *BOOK_RUN, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    html = build_book(root / "out" / "notebooks", root / "build", root / "staging")
    return SimpleNamespace(root=root, output=root / "out", html=html, stderr=result.stderr)
