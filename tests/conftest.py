"""Fixtures: small datasets in each supported layout, generated once per session."""
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
            write_tone(root / "audio" / name, freq=200 + 150 * target)
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
            write_tone(root / rel, freq=freq, channels=2)
            rows.append(f"{rel},{fold},{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"

