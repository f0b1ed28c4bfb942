"""The one parameter table: the chapters, the configuration page, the CLI and the checks all agree with it."""
import json
import subprocess
import sys

import papermill
import pytest

from edge_audio.book import chapters
from edge_audio.cli import build_parser
from edge_audio.paths import project_root
from edge_audio.errors import ParameterError
from edge_audio.parameters import PARAMETERS, chapter_parameters, check_names, configuration_table, parameters_cell
from edge_audio.settings import Settings


@pytest.mark.parametrize("notebook", chapters(), ids=lambda p: p.name)
def test_each_chapters_parameters_cell_is_the_tables(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    [cell] = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert "".join(cell["source"]) == parameters_cell(notebook.name[:2])
    declared = papermill.inspect_notebook(str(notebook))  # what papermill itself reads from the cell
    table = chapter_parameters(notebook.name[:2])
    assert list(declared) == [p.name for p in table]
    for p in table:
        assert eval(declared[p.name]["default"]) == p.default, p.name  # noqa: S307 (our own notebooks)


def test_the_configuration_page_and_the_chapters_are_in_sync_with_the_table():
    result = subprocess.run([sys.executable, str(project_root() / "scripts" / "sync_parameters.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert configuration_table() in (project_root() / "book" / "configuration.md").read_text()


def test_every_chapter_declares_the_data_and_validation_parameters():
    for notebook in chapters():
        names = {p.name for p in chapter_parameters(notebook.name[:2])}
        assert {"dataset_path", "max_bad_fraction", "silence_threshold", "n_mels"} <= names, notebook.name


def test_the_cli_takes_its_defaults_from_the_table():
    args = build_parser().parse_args(["data", "check", "somewhere"])
    assert args.max_bad_fraction == PARAMETERS["max_bad_fraction"].default
    assert args.silence_threshold == PARAMETERS["silence_threshold"].default
    args = build_parser().parse_args(["data", "synth", "out"])
    assert args.clips_per_class_per_fold == PARAMETERS["synth_clips_per_class_per_fold"].book_value


def test_dataclass_defaults_are_the_tables():
    from edge_audio.features import FeatureConfig
    from edge_audio.nas import SearchConfig
    from edge_audio.targets import Budgets
    from edge_audio.train import TrainConfig

    settings = Settings()
    assert FeatureConfig() == settings.features and Budgets() == settings.budgets
    assert TrainConfig() == settings.train and SearchConfig() == settings.search


@pytest.mark.parametrize("name, closest", [("nmels", "n_mels"), ("epoch", "epochs"), ("n_melz", "n_mels"),
                                           ("max_size", "max_size_mb")])
def test_an_unknown_name_names_the_closest_known_ones(name, closest):
    with pytest.raises(ParameterError, match=rf"unknown parameter '{name}' \(did you mean [^)]*\b{closest}\b"):
        check_names([name])


@pytest.mark.parametrize("name, value, expected", [
    ("epochs", "five", r"an integer in \[1, 10000\]"), ("epochs", 0, r"an integer in \[1, 10000\]"),
    ("epochs", True, "an integer"), ("duration", -1, r"a number in \(0, 60\]"),
    ("duration", 3600, r"a number in"), ("min_accuracy", 101, r"a percentage in \[0, 100\]"),
    ("protocol", "random", "'holdout' or 'kfold'"), ("model_configs", [], "a non-empty list"),
    ("nas_n_mels", [40, "x"], "a list of integers"), ("max_bad_fraction", 2, r"a number in \[0, 1\]"),
    ("distill_students", -1, r"an integer in \[0, 100\] or a list"), ("distill_students", ["nano", "nano"], "an integer in .* or a list of distinct names"),
    ("distill_teacher", "worst", "'best' or 'ensemble'"), ("distill_weight", 1.5, r"a number in \[0, 1\]"),
])
def test_a_value_of_the_wrong_type_says_what_was_expected(name, value, expected):
    with pytest.raises(ParameterError, match=rf"parameter {name} = .*: expected {expected}"):
        Settings(**{name: value})


def test_a_student_that_is_not_a_baseline_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ParameterError, match=r"distill_students \['nanoo'\] are not in model_configs \(tiny, small\)"):
        Settings(distill_students=["nanoo"], output_dir=str(tmp_path)).check()
    Settings(distill_students=["tiny"], output_dir=str(tmp_path)).check()


def test_numbers_are_stored_in_their_parameters_type():
    settings = Settings(max_size_mb=1, duration=2)
    assert isinstance(settings.max_size_mb, float) and isinstance(settings.duration, float)
    assert Settings(max_size_mb=1).budgets == Settings(max_size_mb=1.0).budgets


def test_a_chapter_missing_a_declared_parameter_is_told_to_regenerate_its_cell():
    namespace = {p.name: p.default for p in chapter_parameters("02")}
    del namespace["epochs"]
    with pytest.raises(ParameterError, match="does not define epochs"):
        Settings.of_chapter("02", namespace)


def test_methods_take_a_list_or_a_selection_of_the_registry_and_the_table_shows_what_ran():
    from edge_audio.quantize import METHODS

    assert Settings(methods="all").methods == list(METHODS)
    default, book = Settings().methods, Settings.book().methods
    assert default and set(default) < set(book) <= set(METHODS)  # the chapters' few, the book's more
    assert all(METHODS[m].default for m in default) and all(METHODS[m].book for m in book)
    assert Settings(methods=["ort_static"]).methods == ["ort_static"]
    with pytest.raises(ParameterError, match="default, book or all"):
        Settings(methods="bok")
    shown = Settings().table("03").loc["methods", "value"]
    assert "&#x27;default&#x27;: " + ", ".join(default) in shown
