"""What the environment does wrong, and what a user mistypes, stops a run in one line (exit 2) before any chapter
runs: a full disk, a read-only output folder, a storage URL that cannot work, a parameter without bounds. And two
runs into one output folder both finish."""
import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from edge_audio.cli import main
from edge_audio.errors import PathError
from helpers import run_cli


@contextlib.contextmanager
def tmpfs(path, size: str, read_only: bool = False):
    """A real tmpfs of ``size`` mounted at ``path`` (root and mount permission needed: skipped without)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def one_line_error(result, *phrases):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines()]
    assert len(lines) == 1 and lines[0].startswith("edge-audio: error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


def refused_here(capsys, *args, phrase: str) -> None:
    """``edge-audio ARGS`` in this process (cheaper than a fresh interpreter) ends in one line naming ``phrase``,
    and exit 2."""
    assert main([str(arg) for arg in args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge-audio: error: ") and phrase in lines[0], lines


def test_a_full_disk_is_one_line_before_any_chapter(tmp_path):
    with tmpfs(tmp_path / "small", "8m") as mount:
        result = run_cli("run", "--quick", "--no-build", "--output-dir", mount / "out")
    one_line_error(result, f"the output folder {mount / 'out'} has 8 MB free", "free some space")


def test_a_disk_that_fills_during_a_chapter_is_one_line(tmp_path, monkeypatch, capsys):
    from edge_audio import book, paths

    monkeypatch.setattr(paths, "MIN_FREE_BYTES", 1024 * 1024)

    def fills_the_disk(notebook, out_path, parameters, progress=True):
        with open(out_path.parent.parent / "big.bin", "wb") as handle:  # what training's checkpoint write meets
            while True:
                handle.write(b"\0" * 1024 * 1024)

    monkeypatch.setattr(book, "execute_chapter", fills_the_disk)
    with tmpfs(tmp_path / "small", "4m") as mount:
        assert main(["run", "--quick", "--no-build", "--output-dir", str(mount / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edge-audio: error: 01_data.ipynb stopped: cannot write to the output folder")
    assert err[-1].endswith("No space left on device; choose another --output-dir (or output_dir)")


def test_a_read_only_output_folder_is_one_line(tmp_path):
    with tmpfs(tmp_path / "ro", "8m", read_only=True) as mount:
        result = run_cli("run", "--quick", "--no-build", "--output-dir", mount / "out")
    one_line_error(result, f"cannot write to the output folder {mount / 'out'}: Read-only file system")


@pytest.mark.parametrize("url, phrase", [
    ("postgresql://edge@127.0.0.1:9/edge_audio", "cannot open the storage database"),  # nothing listens on port 9
    ("mysql://edge@127.0.0.1/edge_audio", "no database driver for it is installed"),
    ("http://example.org/study", "is not a database URL SQLAlchemy knows"),
    ("journal:////nonexistent-edge-audio/dir/study.log", "does not exist; create it"),
    ("journal:///{tmp}/afile/study.log", "afile is a file, not a folder"),
    ("my-study", "storage must be a database URL"),
])
def test_a_storage_that_cannot_work_is_one_line_before_any_chapter(tmp_path, url, phrase, capsys):
    (tmp_path / "afile").write_text("")
    url = url.format(tmp=str(tmp_path).lstrip("/"))
    refused_here(capsys, "run", "--quick", "--no-build", "--output-dir", tmp_path / "new" / "out", "--storage", url,
                 phrase=phrase)
    assert not (tmp_path / "new").exists()  # nothing ran, and the output folder was not left behind
    assert not Path("/nonexistent-edge-audio").exists()  # and no folder was made for the storage


def test_postgresql_urls_use_the_installed_driver():
    from edge_audio.workers import with_installed_driver

    assert with_installed_driver("postgresql://u@h/db").startswith("postgresql+psycopg")
    assert with_installed_driver("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert with_installed_driver("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("name, value, phrase", [
    ("epochs", "1000000000", "expected an integer in [1, 10000]"),
    ("n_mels", "100000", "expected an integer in [1, 512]"),
    ("n_mels", "200", "n_mels 200 > n_fft / 2 + 1 = 129"),
    ("hop_length", "4096", "hop_length 4096 > n_fft"),
    ("model_configs", "[{name: big, channels: [100000, 100000]}]", "must be a non-empty list of ints in [1, 2048]"),
    ("model_configs", "[{name: big, channels: [2048, 2048, 2048]}]", "more than the 20,000,000 an edge model may"),
    ("methods", "[../ort_static]", "quantization method '../ort_static' is not allowed"),
    ("profiles", "{'../board': {max_size_bytes: 1000}}", "profile name '../board' is not allowed"),
])
def test_parameters_that_would_make_a_run_endless_or_meaningless_are_refused(tmp_path, name, value, phrase, capsys):
    extra = ["-p", "n_fft", "256", "-p", "hop_length", "128"] if value == "200" else []
    refused_here(capsys, "run", "--quick", "--no-build", "--output-dir", tmp_path / "out", *extra, "-p", name, value,
                 phrase=phrase)
    assert not (tmp_path / "out").exists()


def test_two_runs_into_one_new_output_folder_both_finish(tmp_path):
    """Two processes execute chapter 1 (the dataset synthesis, its validation and features) into one new output
    folder at the same moment, as two `edge-audio run`s do first: both finish, and the executed chapter is one
    run's whole copy."""
    out = tmp_path / "out"
    parameters = {"output_dir": str(out), "synth_clips_per_class_per_fold": 1, "sample_rate": 8000, "duration": 1.0,
                  "n_mels": 32, "n_fft": 256, "hop_length": 128}  # small: the race is the point, not the size
    script = (f"from pathlib import Path; from edge_audio.book import chapters, execute_chapter; "
              f"execute_chapter(chapters()[0], Path({str(out / 'notebooks' / '01_data.ipynb')!r}), "
              f"{parameters!r}, progress=False)")
    runs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-3000:]
    from edge_audio.book import glued_values

    assert glued_values(out / "notebooks" / "01_data.ipynb")  # a whole executed chapter, not a mix
    assert not list((out / "notebooks").glob(".*"))  # no run's working copy is left behind
    assert len(list((out / "data").glob("synth-us8k-*/audio/fold1/*.wav"))) == 10  # made once, whole


@pytest.mark.parametrize("name", ["../../escaped", "a/b", "..", ".hidden", "x" * 65, ""])
def test_a_model_name_that_is_not_a_file_name_is_refused_before_chapter_1(tmp_path, name, capsys):
    """A parameter file from someone else cannot write outside the output folder: a model name is refused, with
    the allowed form, before anything is written."""
    (tmp_path / "params.yaml").write_text(f"model_configs: [{{name: {name!r}, channels: [8, 16], fc_size: 16}}]\n")
    refused_here(capsys, "run", "--quick", "--no-build", "--mode", "baseline", "--output-dir", tmp_path / "a" / "out",
                 "-f", tmp_path / "params.yaml", phrase=f"model name {name!r} is not allowed: use 1 to 64 letters")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # nothing written, inside or out


@pytest.mark.parametrize("content, phrase", [(b"\xff\xfe not text", "is not UTF-8 text"), (None, "is a folder")])
def test_a_parameter_file_that_is_not_yaml_text_is_one_line(tmp_path, content, phrase, capsys):
    path = tmp_path / "params.yaml"
    path.mkdir() if content is None else path.write_bytes(content)
    refused_here(capsys, "run", "--quick", "--no-build", "--output-dir", tmp_path / "out", "-f", path,
                 phrase=f"parameter file {path} {phrase}")


@pytest.mark.parametrize("damage", [b"\xff\xfe", b'{"not": "a list"}', b'[{"model": 1}]'])
def test_a_damaged_results_log_is_one_line_before_chapter_1(tmp_path, damage, capsys):
    (tmp_path / "out" / "logs").mkdir(parents=True)
    (tmp_path / "out" / "logs" / "all_results.json").write_bytes(damage)
    refused_here(capsys, "run", "--quick", "--no-build", "--mode", "reports", "--output-dir", tmp_path / "out",
                 phrase=str(tmp_path / "out" / "logs" / "all_results.json"))
    assert not (tmp_path / "out" / "notebooks").exists()  # no chapter ran


def test_an_output_folder_of_another_dataset_is_refused_before_any_work(us8k_dir, csv_dataset, tmp_path, capsys):
    """Every dataset publishes models/<name>.onnx under the same names: a second dataset's run into the folder
    would replace the first's published models under the first's records. It is refused, in every mode."""
    from edge_audio.steps.data import prepare_data
    from helpers import small_settings

    prepare_data(small_settings(us8k_dir, tmp_path / "out"))
    for mode in ("baseline", "reports"):
        refused_here(capsys, "run", "--quick", "--no-build", "--mode", mode, "--output-dir", tmp_path / "out",
                     "--dataset-path", csv_dataset, phrase=f"the output folder {tmp_path / 'out'} holds the results "
                     f"of the dataset at {us8k_dir}, not of the dataset at {csv_dataset}")
    assert not (tmp_path / "out" / "notebooks").exists()  # no chapter ran
    with pytest.raises(PathError, match="holds the results of the dataset at"):  # nor does a chapter itself
        prepare_data(small_settings(csv_dataset, tmp_path / "out"))
