import hashlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from edge_audio.cli import main
from helpers import BOOK_RUN_CLIPS, BOOK_RUN_FOLDS, run_cli


def checksums(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_twice_with_one_seed_gives_identical_checksums(tmp_path):
    for name in ("a", "b"):
        assert main(["data", "synth", str(tmp_path / name), "--seed", "7", "--clips-per-class-per-fold", "1",
                     "-q"]) == 0
    assert checksums(tmp_path / "a") == checksums(tmp_path / "b")
    assert len(checksums(tmp_path / "a")) == 100 + 2  # clips, metadata, generator info


def test_check_names_a_truncated_file_and_counts_it(us8k_copy):
    victim = next((us8k_copy / "audio" / "fold3").glob("*.wav"))
    victim.write_bytes(victim.read_bytes()[:300])
    result = run_cli("data", "check", us8k_copy, "-q")
    assert result.returncode == 0, result.stderr  # 1 bad file of 100 is under the default 5%
    assert f"truncated: audio/fold3/{victim.name}" in result.stdout
    assert "truncated          1" in result.stdout


def test_check_fails_above_the_threshold(us8k_copy):
    for victim in list((us8k_copy / "audio" / "fold1").glob("*.wav"))[:3]:
        victim.unlink()
    result = run_cli("data", "check", us8k_copy, "-q", "--max-bad-fraction", "0.02")
    assert result.returncode == 1 and "above --max-bad-fraction" in result.stderr


def test_wrong_dataset_path_is_one_line_without_traceback(tmp_path):
    result = run_cli("data", "check", tmp_path / "missing")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "missing") in lines[0] and "UrbanSound8K" in lines[0]


def test_missing_column_is_one_line_naming_the_column(us8k_copy):
    csv = us8k_copy / "metadata" / "UrbanSound8K.csv"
    csv.write_text(csv.read_text().replace("classID", "class_number"))
    result = run_cli("data", "check", us8k_copy)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "classID" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_run_with_wrong_dataset_path_fails_before_executing(tmp_path):
    result = run_cli("run", "--dataset-path", tmp_path / "nope", "--output-dir", tmp_path / "out")
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_bad_parameter_file_is_a_clear_error(tmp_path):
    (tmp_path / "p.yaml").write_text("- just\n- a list\n")
    result = run_cli("run", "-f", tmp_path / "p.yaml", "--output-dir", tmp_path / "out")
    assert result.returncode == 2 and "must hold a mapping" in result.stderr


def test_a_misspelt_parameter_is_an_error_naming_the_closest_and_runs_nothing(tmp_path):
    result = run_cli("run", "--output-dir", tmp_path / "out", "-p", "nmels", "40", "--quick", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown parameter 'nmels' (did you mean n_mels" in result.stderr
    assert not (tmp_path / "out" / "notebooks").exists()


def test_a_wrong_value_is_a_one_line_error_before_any_chapter_runs(tmp_path):
    result = run_cli("run", "--output-dir", tmp_path / "out", "-p", "max_bad_fraction", "lots", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "max_bad_fraction = 'lots': expected a number in [0, 1]" in result.stderr
    assert not (tmp_path / "out" / "notebooks").exists()


def test_the_whole_book_runs_from_another_folder_on_a_dataset_with_odd_class_ids(book_run, tmp_path, monkeypatch,
                                                                                 capsys):
    """Class ids 3, 7, 12 (not 0..K-1) through every chapter, started outside the checkout, relative paths (the
    session's end-to-end run, tests/conftest.py)."""
    from edge_audio.results import load_results

    root, stderr = book_run.root, book_run.stderr
    assert all(f"== executing {name}" in stderr for name in ("01_data", "02_baselines", "05_frontier"))
    assert "without encryption" not in stderr  # the chapters' kernels talk over private IPC sockets, not TCP
    assert sorted(p.name for p in (root / "out" / "notebooks").glob("*.ipynb")) == [
        "01_data.ipynb", "02_baselines.ipynb", "03_quantization.ipynb", "04_nas.ipynb", "05_frontier.ipynb"]
    records = load_results(root / "out" / "logs")
    variants = {(r["model"], r["variant"]) for r in records}
    assert {(m, v) for m in ("mini", "mini2", "nas_1") for v in ("fp32", "ort_static", "tflite_int8")} <= variants
    for record in records:
        assert record["dataset"]["class_ids"] == [3, 7, 12]
        if "confusion" in record:  # three classes, whatever their ids
            assert len(record["confusion"]) == 3
            assert record["class_names"] == ["pitch3", "pitch7", "pitch12"]
    assert all("frontier" in r for r in records)
    # k-fold on unequal folds, two seeds: every point (the mean over seeds) lies inside its interval, which holds
    # the spread between folds (each seed's) and between seeds
    tested = [r for r in records if "test" in r]
    # (a search finalist is a choice: it reports on the deployed split's test fold alone, three classes x its clips)
    pooled = [r for r in tested if r.get("source") not in ("nas_finalist", "supernet_finalist")]
    assert {r["test"]["n"] for r in pooled} == {3 * sum(BOOK_RUN_CLIPS)} and len(set(BOOK_RUN_CLIPS)) > 1
    assert {r["test"]["n"] for r in tested if r not in pooled} == {3 * BOOK_RUN_CLIPS[-1]}
    for r in tested:
        low, high = r["test"]["ci95"]
        assert low <= r["accuracy"] <= high and r["test"]["interval"].startswith("mean over seeds"), r["model"]
        assert r["test"]["seeds"] == [0, 1], r["model"]
        assert all(seed["interval"].startswith("the wider of") for seed in r["test"]["by_seed"]) == (r in pooled)
        assert high - low >= min(seed["ci95"][1] - seed["ci95"][0] for seed in r["test"]["by_seed"]), r["model"]
    # every published ONNX model has its card, and the frontier told it which profiles it meets
    models = root / "out" / "models"
    [waveform] = models.glob("*_waveform.onnx")  # the raw-audio export of the best baseline
    best = waveform.name.removesuffix("_waveform.onnx")
    for name in (f"{best}.onnx", f"{best}_ort_static.onnx", waveform.name, f"{best}_tflite_int8.tflite",
                 "nas_1.onnx", "nas_best_model.onnx", "nas_best_model_int8.onnx", "nas_best_model_tflite_int8.tflite"):
        stem = name.rsplit(".", 1)[0]
        card = json.loads((models / f"{stem}.card.json").read_text())
        assert card["file"] == name and card["classes"] == ["pitch3", "pitch7", "pitch12"], name
        assert (models / f"{stem}.card.md").is_file()
    assert json.loads((models / f"{best}.card.json").read_text())["profiles"] is not None
    for card in ("nas_best_model", "nas_best_model_int8", "nas_best_model_tflite_int8"):  # the best's copies too
        assert json.loads((models / f"{card}.card.json").read_text())["profiles"] is not None, card

    def classify(*args):
        """`edge-audio classify ARGS` from the run's folder, in this process (a fresh interpreter each would cost
        seconds of imports): its exit status, stdout and stderr."""
        monkeypatch.chdir(root)
        status = main(["classify", *map(str, args)])
        said = capsys.readouterr()
        return SimpleNamespace(returncode=status, stdout=said.out, stderr=said.err)

    # classify prints, for each test clip, what the published model (the split testing on the last fold)
    # predicted for it: the true class where it was right, as often as that split's record says
    last = {r["variant"]: r["test"] for r in records if r["model"] == best}
    clips = sorted((root / "odd" / "clips").glob(f"*_{BOOK_RUN_FOLDS}_*.wav"))
    correct = {variant: round(test["fold_accuracies"][-1] * len(clips) / 100) for variant, test in last.items()}
    truth = {str(p): f"pitch{p.name.split('_')[0]}" for p in clips}
    for model, variant in ((f"{best}.onnx", "fp32"), (waveform.name, "fp32"),
                           (f"{best}_ort_static.onnx", "ort_static"), (f"{best}_tflite_int8.tflite", "tflite_int8")):
        result = classify(f"out/models/{model}", *truth, "--top", "1")
        assert result.returncode == 0, result.stderr
        printed = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
        right = sum(printed[path].split()[0] == label for path, label in truth.items())
        assert right == correct[variant], (model, result.stdout)
    # a bad file is one line on stderr and exit 2, and the good ones are still classified; --stream slides
    (tmp_path / "bad.wav").write_text("not audio")
    result = classify(f"out/models/{best}.onnx", tmp_path / "bad.wav", str(clips[0]))
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith(f"edge-audio: error: cannot read audio file {tmp_path / 'bad.wav'}")
    assert result.stdout.startswith(str(clips[0]))
    long = tmp_path / "long.wav"
    rate = 44100  # not the model's rate, and stereo: classify resamples and mixes
    sf.write(long, np.stack([np.sin(2 * np.pi * 440 * np.arange(int(3.5 * rate)) / rate)] * 2, axis=1), rate)
    result = classify(f"out/models/{best}.onnx", str(long), "--stream", "--hop", "0.5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 + 6 + 1 and "real-time factor" in lines[-1]  # windows at 0, 0.5, ..., 2.5 s
    # NaN samples and a directory are refused in one line; silence and a short clip are classified, with a warning
    sf.write(tmp_path / "nan.wav", np.full(8000, np.nan, dtype=np.float32), 8000, subtype="FLOAT")
    sf.write(tmp_path / "quiet.wav", np.zeros(rate // 4, dtype=np.float32), rate)  # 0.25 s
    for audio, message in ((tmp_path / "nan.wav", "holds NaN or infinite samples"), (tmp_path, "is a directory")):
        result = classify(f"out/models/{best}.onnx", audio)
        assert result.returncode == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    result = classify(f"out/models/{best}.onnx", tmp_path / "quiet.wav")
    assert result.returncode == 0 and result.stdout.startswith(str(tmp_path / "quiet.wav"))
    assert "it is silent" in result.stderr and "less than the model's" in result.stderr
    # a model beside another model's card (a different class count) is refused, not given confident labels
    (tmp_path / "swapped").mkdir()
    shutil.copy(models / f"{best}.onnx", tmp_path / "swapped" / "m.onnx")
    card = json.loads((models / f"{best}.card.json").read_text())
    (tmp_path / "swapped" / "m.card.json").write_text(json.dumps({**card, "file": "m.onnx",
                                                                  "classes": card["classes"][:2]}))
    result = classify(tmp_path / "swapped" / "m.onnx", str(clips[0]))
    assert result.returncode == 2 and "outputs 3 classes but its card names 2" in result.stderr, result.stderr
    result = classify(tmp_path / "swapped", str(clips[0]))
    assert result.returncode == 2 and "is a directory" in result.stderr
    # another model with as many classes, under the name the card gives: refused by the card's SHA-256
    other = next(name for name in ("mini", "mini2") if name != best)
    shutil.copy(models / f"{other}.onnx", tmp_path / "swapped" / f"{best}.onnx")
    shutil.copy(models / f"{best}.card.json", tmp_path / "swapped")
    result = classify(tmp_path / "swapped" / f"{best}.onnx", str(clips[0]))
    assert result.returncode == 2 and "is another file's card" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


def test_a_user_error_in_a_chapter_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch, capsys, tmp_path):
    from edge_audio import book
    from edge_audio.book import ChapterFailed

    def failing(ename, evalue):
        def execute(notebook, out_path, parameters, progress=True):
            raise ChapterFailed(notebook.name, 3, ename, evalue, ["\x1b[31mTraceback (most recent call last)\x1b[0m",
                                                                  f"{ename}: {evalue}"], out_path)
        return execute

    monkeypatch.setattr(book, "execute_chapter", failing("DatasetError", "12 of 100 files are unusable"))
    assert main(["run", "--output-dir", str(tmp_path), "--no-build", "--quick"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["== executing 01_data.ipynb", "edge-audio: error: 01_data.ipynb: 12 of 100 files are unusable"]
    monkeypatch.setattr(book, "execute_chapter", failing("KeyError", "'accuracy'"))
    assert main(["run", "--output-dir", str(tmp_path), "--no-build", "--quick"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "\x1b[" not in err and "KeyError: 'accuracy'" in err


def test_a_bug_outside_a_chapter_is_not_reported_as_a_usage_error(monkeypatch, tmp_path):
    from edge_audio import book

    monkeypatch.setattr(book, "check_settings", lambda values: {}["boom"])
    with pytest.raises(KeyError):
        main(["run", "--output-dir", str(tmp_path), "--no-build", "--quick"])
