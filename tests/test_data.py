import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import edge_audio.data
from edge_audio.cli import main
from helpers import small_settings, write_odd_class_csv
from edge_audio.data import DatasetError, check_dataset, load_dataset
from edge_audio.steps.data import prepare_data
from edge_audio.synth import URBANSOUND8K_CLASSES


def test_urbansound8k_layout(us8k_dir):
    dataset = load_dataset(us8k_dir)
    assert dataset.layout == "urbansound8k"
    assert dataset.class_names == list(URBANSOUND8K_CLASSES)
    assert dataset.folds == list(range(1, 11))
    row = dataset.table.iloc[0]
    assert row["path"] == str(us8k_dir / "audio" / f"fold{row['fold']}" / row["slice_file_name"])


def test_esc50_layout(esc50_dir):
    dataset = load_dataset(esc50_dir)
    assert dataset.layout == "esc50"
    assert dataset.folds == [1, 2, 3, 4, 5]
    assert dataset.class_names == ["dog", "rooster", "rain"]
    assert all(Path(p).is_file() for p in dataset.table["path"])


def test_generic_csv_layout_assigns_ids_to_sorted_labels(csv_dataset):
    dataset = load_dataset(csv_dataset)
    assert dataset.layout == "csv"
    assert dataset.class_names == ["beep", "hum"]
    assert dataset.folds == [1, 2, 3]
    assert all(Path(p).is_file() for p in dataset.table["path"])


def test_missing_path_names_it_and_the_expected_layouts(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*UrbanSound8K.*ESC-50.*CSV") as info:
        load_dataset(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_a_new_dataset_layout_is_one_loader_and_one_registration(tmp_path):
    """Adding a layout: a loader that builds the metadata table and a register_layout call; the path is then
    detected and loaded like the built-in layouts (here: fold<N>/<label>/<file>.wav folders, no metadata file)."""
    from edge_audio.data import LAYOUTS, Layout, dataset_from_table, register_layout
    from helpers import write_tone

    for fold in (1, 2):
        for label, freq in (("bird", 2000.0), ("bus", 150.0)):
            write_tone(tmp_path / "folders" / f"fold{fold}" / label / f"{label}{fold}.wav", freq=freq)

    def load_folders(root):
        files = sorted(root.glob("fold*/*/*.wav"))
        names = sorted({f.parent.name for f in files})
        table = pd.DataFrame({"path": [str(f) for f in files], "fold": [int(f.parent.parent.name[4:]) for f in files],
                              "class_name": [f.parent.name for f in files],
                              "class_id": [names.index(f.parent.name) for f in files]})
        return dataset_from_table(root, "folders", table, root, root.name)

    register_layout(Layout("folders", lambda path: path.is_dir() and any(path.glob("fold*/*/*.wav")), load_folders,
                           "a folder of fold<N>/<label>/ folders"))
    try:
        dataset = load_dataset(tmp_path / "folders")
        assert dataset.layout == "folders" and dataset.folds == [1, 2] and dataset.class_names == ["bird", "bus"]
        with pytest.raises(DatasetError, match="or a folder of fold<N>/<label>/ folders"):
            load_dataset(tmp_path / "nowhere")
    finally:
        LAYOUTS.pop("folders")


def test_folder_without_known_layout(tmp_path):
    with pytest.raises(DatasetError, match="no known layout"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("column", ["fold", "classID", "slice_file_name"])
def test_metadata_missing_a_required_column_names_it(us8k_copy, column):
    csv = us8k_copy / "metadata" / "UrbanSound8K.csv"
    pd.read_csv(csv).drop(columns=[column]).to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=f"missing required column.*{column}"):
        load_dataset(us8k_copy)


def test_csv_without_label_column(tmp_path):
    (tmp_path / "x.csv").write_text("file,fold\na.wav,1\n")
    with pytest.raises(DatasetError, match="missing required column.*label"):
        load_dataset(tmp_path / "x.csv")


def test_non_integer_fold_is_rejected(csv_dataset):
    table = pd.read_csv(csv_dataset)
    table["fold"] = table["fold"].astype(object)
    table.loc[0, "fold"] = "first"
    table.to_csv(csv_dataset, index=False)
    with pytest.raises(DatasetError, match="fold must hold integers"):
        load_dataset(csv_dataset)


def test_inconsistent_class_ids_are_rejected(us8k_copy):
    csv = us8k_copy / "metadata" / "UrbanSound8K.csv"
    table = pd.read_csv(csv)
    table.loc[0, "classID"] = 5 if table.loc[0, "classID"] != 5 else 6
    table.to_csv(csv, index=False)
    with pytest.raises(DatasetError, match="one to one"):
        load_dataset(us8k_copy)


def test_check_reports_each_kind_of_bad_file(us8k_copy):
    dataset = load_dataset(us8k_copy)
    paths = dataset.table["path"].tolist()
    raw = Path(paths[0]).read_bytes()
    Path(paths[0]).write_bytes(raw[: len(raw) // 2])  # truncated
    Path(paths[1]).write_bytes(b"not audio at all" * 8)  # corrupt
    os.remove(paths[2])  # missing
    sf.write(paths[3], np.zeros(1000, dtype=np.float32), 16000)  # silent
    sf.write(paths[4], np.zeros((0,), dtype=np.float32), 16000)  # empty
    report = check_dataset(dataset, progress=False)
    found = dict(zip(report.problems["path"], report.problems["problem"]))
    assert found == {paths[0]: "truncated", paths[1]: "unreadable", paths[2]: "missing", paths[3]: "silent",
                     paths[4]: "empty"}
    assert report.counts()["truncated"] == 1 and report.num_bad == 5
    text = str(report)
    for path in paths[:5]:
        assert os.path.relpath(path, us8k_copy) in text
    usable = dataset.valid_only(report)
    assert len(usable) == len(dataset) - 5 and not set(paths[:5]) & set(usable.table["path"])


def test_unsupported_format_is_reported(csv_dataset):
    table = pd.read_csv(csv_dataset)
    (csv_dataset.parent / "clips" / "song.xyz").write_bytes(b"\0" * 100)
    table.loc[len(table)] = ["clips/song.xyz", 1, "beep"]
    table.to_csv(csv_dataset, index=False)
    report = check_dataset(load_dataset(csv_dataset), progress=False)
    assert report.problems["problem"].tolist() == ["unsupported format"]


def test_prepare_data_excludes_bad_files_and_goes_on(us8k_copy, tmp_path):
    dataset = load_dataset(us8k_copy)
    bad = dataset.table["path"].iloc[7]
    Path(bad).write_bytes(Path(bad).read_bytes()[:200])
    data = prepare_data(small_settings(us8k_copy, tmp_path / "out", max_bad_fraction=0.05))
    assert len(data.dataset) == len(dataset) - 1 and bad not in set(data.dataset.table["path"])
    assert data.report.problems["path"].tolist() == [bad]
    assert data.features.features.shape[0] == len(dataset) - 1


def test_prepare_data_stops_above_the_bad_fraction(us8k_copy, tmp_path):
    for path in load_dataset(us8k_copy).table["path"].iloc[:10]:
        os.remove(path)
    with pytest.raises(DatasetError, match=r"10 of 100 files .* unusable .*max_bad_fraction"):
        prepare_data(small_settings(us8k_copy, tmp_path / "out", max_bad_fraction=0.05))


def test_a_cached_rerun_reads_no_audio(us8k_copy, tmp_path, monkeypatch):
    settings = small_settings(us8k_copy, tmp_path / "out")
    first = prepare_data(settings)
    reads = []
    digest, inspect = edge_audio.data._file_digest, edge_audio.data._inspect_file
    monkeypatch.setattr(edge_audio.data, "_file_digest", lambda path: reads.append(path) or digest(path))
    monkeypatch.setattr(edge_audio.data, "_inspect_file", lambda path, *a: reads.append(path) or inspect(path, *a))
    monkeypatch.setattr("soundfile.read", lambda *a, **k: reads.append(a) or pytest.fail("audio decoded"))
    again = prepare_data(settings)
    assert reads == [] and again.features.cache_hit and again.fingerprint == first.fingerprint
    # a changed file is read again (and only that one), and changes the fingerprint
    path = Path(again.dataset.table["path"].iloc[0])
    monkeypatch.undo()
    audio, rate = sf.read(path)
    sf.write(path, audio * 0.5, rate)
    monkeypatch.setattr(edge_audio.data, "_file_digest", lambda p: reads.append(p) or digest(p))
    changed = prepare_data(settings)
    assert reads == [str(path)] and changed.fingerprint != first.fingerprint and not changed.features.cache_hit


def test_class_ids_that_are_not_0_to_k_minus_1_become_labels_in_id_order(tmp_path):
    dataset = load_dataset(write_odd_class_csv(tmp_path / "odd"))
    assert dataset.class_ids == [3, 7, 12] and dataset.class_names == ["pitch3", "pitch7", "pitch12"]
    assert dataset.num_classes == 3
    labels = dict(zip(dataset.table["class_id"], dataset.table["label"]))
    assert labels == {3: 0, 7: 1, 12: 2}


def test_excluding_every_clip_of_a_class_keeps_the_class_list(tmp_path):
    dataset = load_dataset(write_odd_class_csv(tmp_path / "odd"))
    for path in dataset.table.loc[dataset.table["class_id"] == 7, "path"]:
        os.remove(path)
    usable = dataset.valid_only(check_dataset(dataset, progress=False))
    assert 7 not in set(usable.table["class_id"]) and usable.class_ids == [3, 7, 12] and usable.num_classes == 3


def test_a_file_listed_in_two_folds_is_refused_naming_both(csv_dataset):
    table = pd.read_csv(csv_dataset)
    table.loc[len(table)] = [table["file"].iloc[0], 3, table["label"].iloc[0]]  # fold 1's first clip, again in 3
    table.to_csv(csv_dataset, index=False)
    with pytest.raises(DatasetError, match=r"listed more than once, e.g. clips/beep_1.wav in folds \[1, 3\] "
                                           r"\(rows 2, 8\)"):
        load_dataset(csv_dataset)


def test_the_same_audio_under_two_names_in_two_folds_is_a_leak(csv_dataset, tmp_path):
    import shutil

    from edge_audio.data import FileDigests, leaked_clips

    table = pd.read_csv(csv_dataset)
    shutil.copy(csv_dataset.parent / table["file"].iloc[0], csv_dataset.parent / "clips" / "copy.wav")
    table.loc[len(table)] = ["clips/copy.wav", 3, table["label"].iloc[0]]
    table.to_csv(csv_dataset, index=False)
    dataset = load_dataset(csv_dataset)
    with pytest.raises(DatasetError, match=r"same audio in two folds, e.g. clips/beep_1.wav \(fold 1\) and "
                                           r"clips/copy.wav \(fold 3\)"):
        leaked_clips(dataset, FileDigests(None))
    with pytest.raises(DatasetError, match="same audio in two folds"):  # the run refuses it too
        prepare_data(small_settings(csv_dataset, tmp_path / "out"))


@pytest.mark.parametrize("name", ["../outside.wav", "ABSOLUTE"])
def test_a_path_outside_the_dataset_folder_is_refused(csv_dataset, tmp_path, name):
    outside = csv_dataset.parent.parent / "outside.wav"
    outside.write_bytes((csv_dataset.parent / "clips" / "beep_1.wav").read_bytes())
    table = pd.read_csv(csv_dataset)
    table.loc[len(table)] = [str(outside) if name == "ABSOLUTE" else name, 3, "beep"]
    table.to_csv(csv_dataset, index=False)
    with pytest.raises(DatasetError, match="resolve outside the dataset folder"):
        load_dataset(csv_dataset)


def test_a_class_with_no_training_clips_is_refused(tmp_path):
    csv = write_odd_class_csv(tmp_path / "odd")
    table = pd.read_csv(csv)
    table = table[(table["class_id"] != 12) | (table["fold"] == 5)]  # pitch12 only in the test fold
    table.to_csv(csv, index=False)
    with pytest.raises(DatasetError, match=r"class\(es\) pitch12 .* no usable clips in the training folds \[1, 2, 3\]"):
        prepare_data(small_settings(csv, tmp_path / "out"))


def test_content_that_is_not_its_names_format_and_empty_files_are_reported(csv_dataset, tmp_path):
    table = pd.read_csv(csv_dataset)
    clips = csv_dataset.parent / "clips"
    sf.write(clips / "really_ogg.wav", np.sin(np.arange(8000) / 5.0).astype(np.float32), 8000, format="OGG",
             subtype="VORBIS")
    (clips / "nothing.wav").write_bytes(b"")
    for name in ("really_ogg.wav", "nothing.wav"):
        table.loc[len(table)] = [f"clips/{name}", 2, "hum"]
    table.to_csv(csv_dataset, index=False)
    report = check_dataset(load_dataset(csv_dataset), progress=False)
    found = {Path(p).name: (problem, detail) for p, problem, detail in
             zip(report.problems["path"], report.problems["problem"], report.problems["detail"])}
    assert found == {"really_ogg.wav": ("wrong format", "named .wav, holds Ogg"), "nothing.wav": ("empty", "0 bytes")}


@pytest.mark.parametrize("layout", ["csv", "csv with class ids", "urbansound8k"])
def test_a_row_without_its_class_is_one_line_naming_the_row(tmp_path, us8k_copy, layout, capsys):
    if layout == "urbansound8k":
        csv, column = us8k_copy / "metadata" / "UrbanSound8K.csv", "class"
    else:
        csv, column = write_odd_class_csv(tmp_path / "odd"), "label"
    table = pd.read_csv(csv)
    if layout == "csv":
        table = table.drop(columns="class_id")
    table[column] = table[column].astype(object)
    table.loc[3, column] = None  # an empty cell
    table.to_csv(csv, index=False)
    assert main(["data", "check", str(csv.parent.parent if layout == "urbansound8k" else csv), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"1 row(s) have no {column}, e.g. line 5" in err, err


def test_data_check_refuses_a_class_with_clips_only_in_the_test_fold(tmp_path, capsys):
    csv = write_odd_class_csv(tmp_path / "odd")
    table = pd.read_csv(csv)
    table[(table["class_id"] != 12) | (table["fold"] == 5)].to_csv(csv, index=False)  # pitch12: test fold only
    assert main(["data", "check", str(csv), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"class(es) pitch12 of {csv} have no usable clips in the training folds [1, 2, 3] of holdout" in err


def test_the_hint_after_bad_files_names_what_data_check_takes(tmp_path, capsys):
    """For a CSV dataset that is the CSV file (its folder has no known layout), and data check then runs on it."""
    csv = write_odd_class_csv(tmp_path / "odd")
    for path in sorted((tmp_path / "odd" / "clips").glob("*_1_*.wav"))[:3]:
        path.unlink()
    with pytest.raises(DatasetError, match="unusable") as refused:
        prepare_data(small_settings(csv, tmp_path / "out", max_bad_fraction=0.05))
    assert f"run `edge-audio data check {csv}`" in str(refused.value)
    assert main(["data", "check", str(csv), "-q", "--max-bad-fraction", "0.5"]) == 0
    assert "missing            3" in capsys.readouterr().out
