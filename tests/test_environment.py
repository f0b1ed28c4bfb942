"""What the environment does wrong, and what a user mistypes, stops a run in one line (exit 2) before any chapter
runs: a full disk, a read-only output folder, a storage URL that cannot work, a parameter without bounds. And two
runs into one output folder both finish."""
import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from edge_audio.cli import main
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
    ("my-study", "storage must be a database URL"),
])
def test_a_storage_that_cannot_work_is_one_line_before_any_chapter(tmp_path, url, phrase):
    result = run_cli("run", "--quick", "--no-build", "--output-dir", tmp_path / "out", "--storage", url)
    one_line_error(result, phrase)
    assert not (tmp_path / "out" / "notebooks").exists()  # nothing ran
    assert not Path("/nonexistent-edge-audio").exists()  # and no folder was made for it


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
])
def test_parameters_that_would_make_a_run_endless_or_meaningless_are_refused(tmp_path, name, value, phrase):
    extra = ["-p", "n_fft", "256", "-p", "hop_length", "128"] if value == "200" else []
    result = run_cli("run", "--quick", "--no-build", "--output-dir", tmp_path / "out", *extra, "-p", name, value)
    one_line_error(result, phrase)


def test_two_runs_into_one_new_output_folder_both_finish(tmp_path):
    """Two processes execute chapter 1 (the dataset synthesis, its validation and features) into one new output
    folder at the same moment, as two `edge-audio run`s do first: both finish, and the executed chapter is one
    run's whole copy."""
    out = tmp_path / "out"
    script = (f"from pathlib import Path; from edge_audio.book import chapters, execute_chapter; "
              f"execute_chapter(chapters()[0], Path({str(out / 'notebooks' / '01_data.ipynb')!r}), "
              f"{{'output_dir': {str(out)!r}}}, progress=False)")
    runs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-3000:]
    from edge_audio.book import glued_values

    assert glued_values(out / "notebooks" / "01_data.ipynb")  # a whole executed chapter, not a mix
    assert not list((out / "notebooks").glob(".*"))  # no run's working copy is left behind
    assert len(list((out / "data").glob("synth-us8k-*/audio/fold1/*.wav"))) == 30  # made once, whole
