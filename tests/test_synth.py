import hashlib
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from edge_audio.errors import PathError
from edge_audio.synth import (CLASS_SUBTYPES, LAYERS, URBANSOUND8K_CLASSES, URBANSOUND8K_COLUMNS, SynthConfig,
                              ensure_dataset, generate_dataset)


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_same_seed_gives_byte_identical_files_whatever_the_worker_count(tmp_path, us8k_dir):
    again = generate_dataset(tmp_path / "again", SynthConfig(seed=3, clips_per_class_per_fold=1), workers=1,
                             progress=False)
    assert tree_digest(again) == tree_digest(us8k_dir)


def test_another_seed_gives_other_audio(tmp_path, us8k_dir):
    other = generate_dataset(tmp_path / "other", SynthConfig(seed=4, clips_per_class_per_fold=1), progress=False)
    assert tree_digest(other) != tree_digest(us8k_dir)


def test_metadata_has_the_real_columns_classes_and_folds(us8k_dir):
    table = pd.read_csv(us8k_dir / "metadata" / "UrbanSound8K.csv")
    assert tuple(table.columns) == URBANSOUND8K_COLUMNS
    assert dict(zip(table["classID"], table["class"])) == dict(enumerate(URBANSOUND8K_CLASSES))
    assert sorted(table["fold"].unique()) == list(range(1, 11))
    assert len(table) == 100 and table.groupby(["fold", "classID"]).size().eq(1).all()
    assert set(table["salience"]) <= {1, 2}
    for row in table.itertuples():
        assert (us8k_dir / "audio" / f"fold{row.fold}" / row.slice_file_name).is_file()


@pytest.fixture(scope="module")
def four_per_fold(tmp_path_factory):
    """400 clips (4 per class and fold), generated once for the tests that need more than one per fold."""
    return generate_dataset(tmp_path_factory.mktemp("synth4") / "d", SynthConfig(seed=0, clips_per_class_per_fold=4),
                            progress=False)


def test_every_source_lives_in_one_fold(four_per_fold):
    table = pd.read_csv(four_per_fold / "metadata" / "UrbanSound8K.csv")
    assert table.groupby("fsID")["fold"].nunique().max() == 1
    assert table.groupby("fsID").size().max() > 1, "sources should yield several slices"


def test_files_are_heterogeneous_like_the_real_dataset(four_per_fold):
    root = four_per_fold
    infos = [sf.info(p) for p in (root / "audio").rglob("*.wav")]
    assert len({i.samplerate for i in infos}) >= 5
    assert min(i.samplerate for i in infos) >= 8000 and max(i.samplerate for i in infos) <= 48000
    assert {i.subtype for i in infos} == {"PCM_16", "PCM_24", "FLOAT"}
    assert {i.channels for i in infos} == {1, 2}
    durations = [i.duration for i in infos]
    assert min(durations) >= 0.5 - 1e-3 and max(durations) <= 4.0 + 1e-3


def test_generate_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(PathError, match="not empty"):
        generate_dataset(tmp_path / "taken", SynthConfig(clips_per_class_per_fold=1), progress=False)


def test_ensure_dataset_generates_once(tmp_path):
    config = SynthConfig(seed=2, clips_per_class_per_fold=1)
    first = ensure_dataset(tmp_path, config, progress=False)
    stamp = (first / "metadata" / "UrbanSound8K.csv").stat().st_mtime_ns
    assert ensure_dataset(tmp_path, config, progress=False) == first
    assert (first / "metadata" / "UrbanSound8K.csv").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("kwargs", [{"clips_per_class_per_fold": 0}, {"snr_db": (10, 0)}, {"distractor_prob": 2}])
def test_bad_synth_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        SynthConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"generator": 3}, {"generator": 0}])
def test_an_unknown_generator_is_rejected(kwargs):
    with pytest.raises(ValueError, match="generator must be one of"):
        SynthConfig(**kwargs)


def test_the_benchmark_generator_is_another_dataset_and_as_deterministic(tmp_path, us8k_dir):
    benchmark = generate_dataset(tmp_path / "v2", SynthConfig(seed=3, generator=2, clips_per_class_per_fold=1),
                                 progress=False)
    assert SynthConfig(generator=2).folder_name.startswith("synth-us8k-v2-")
    assert SynthConfig(generator=1).folder_name.startswith("synth-us8k-v1-")
    assert tree_digest(benchmark) != tree_digest(us8k_dir)  # us8k_dir: generator 1, the same seed
    again = generate_dataset(tmp_path / "v2-again", SynthConfig(seed=3, generator=2, clips_per_class_per_fold=1),
                             workers=1, progress=False)
    assert tree_digest(again) == tree_digest(benchmark)


def test_only_a_pair_of_layers_names_a_class():
    pairs = [pair for subtypes in CLASS_SUBTYPES for pair in subtypes]
    assert len(CLASS_SUBTYPES) == len(URBANSOUND8K_CLASSES) and len(set(pairs)) == len(pairs)
    assert all(a != b for a, b in pairs)
    for layer in {layer for pair in pairs for layer in pair}:
        classes = {c for c, subtypes in enumerate(CLASS_SUBTYPES) for pair in subtypes if layer in pair}
        assert len(classes) >= 2, f"layer {LAYERS[layer]} alone names class {classes}"
