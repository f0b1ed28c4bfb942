"""The idempotent pipeline steps that chapters call, and the papermill runner that executes the book.

A step loads what an earlier run computed with the same settings, or computes and caches it, so any chapter can
run on its own (nbval does exactly that) and re-running is cheap.

The runner (:func:`run_book`) executes the chapters of ``book/`` in order with papermill, in ``book/`` as their
working directory (as nbval and Jupyter Book do), writes the executed copies under ``<output>/notebooks/`` (the
sources stay untouched), then builds the HTML book from those copies into ``_build/html``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .config import FeatureConfig, OutputLayout, project_root, resolve_path
from .data import (Dataset, DatasetError, ValidationReport, check_dataset, default_dataset, detect_layout,
                   load_dataset)
from .features import FeatureSet, extract_features
from .storage import atomic_write_text
from .synth import SynthConfig


# ---------------------------------------------------------------------------------------------------------------
# Step: prepare the data
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class PreparedData:
    """The usable dataset, its validation report, its log-mel features and the run's output layout."""

    dataset: Dataset  # the usable files only
    report: ValidationReport  # every file, with the excluded ones listed
    features: FeatureSet
    layout: OutputLayout

    @property
    def feature_config(self) -> FeatureConfig:
        return self.features.config


def prepare_data(dataset_path: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
                 features: FeatureConfig = FeatureConfig(), synth: SynthConfig = SynthConfig(),
                 max_bad_fraction: float = 0.05, progress: bool = False) -> PreparedData:
    """Load (or generate) the dataset, validate it, exclude the bad files, and extract (or load) its features.

    ``dataset_path`` None means the embedded synthetic UrbanSound8K, generated once under ``<output>/data``.
    Raises :class:`~edge_audio.data.DatasetError` when more than ``max_bad_fraction`` of the files are unusable,
    or when a whole fold is.
    """
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
    layout = OutputLayout.at(output_dir)
    dataset = (default_dataset(layout.data, synth, progress) if dataset_path is None
               else load_dataset(resolve_path(dataset_path)))
    report = _cached_check(dataset, layout, progress)
    if report.bad_fraction > max_bad_fraction:
        raise DatasetError(f"{report.num_bad} of {report.num_files} files in {dataset.root} are unusable "
                           f"({100 * report.bad_fraction:.1f}% > max_bad_fraction {100 * max_bad_fraction:g}%); "
                           f"run `edge-audio data check {dataset.root}` for the list")
    usable = dataset.valid_only(report)
    lost = sorted(set(dataset.folds) - set(usable.folds))
    if lost:
        raise DatasetError(f"every file of fold(s) {lost} in {dataset.root} is unusable")
    feature_set = extract_features(usable, features, layout.cache, progress=progress)
    return PreparedData(usable, report, feature_set, layout)


def _cached_check(dataset: Dataset, layout: OutputLayout, progress: bool) -> ValidationReport:
    """:func:`check_dataset`, cached per dataset content (reading every file of a large dataset takes a while)."""
    cache = layout.cache / f"check-{dataset.fingerprint()}.csv"
    if cache.is_file():
        files = pd.read_csv(cache, keep_default_na=True)
        files["path"] = dataset.table["path"].values  # the cached paths may be of another copy of the dataset
        problems = files[files["problem"].notna()][["path", "fold", "class_name", "problem", "detail"]]
        return ValidationReport(dataset, files, problems.reset_index(drop=True))
    report = check_dataset(dataset, progress=progress)
    atomic_write_text(cache, report.files.to_csv(index=False))
    return report


# ---------------------------------------------------------------------------------------------------------------
# The book runner
# ---------------------------------------------------------------------------------------------------------------

#: What ``edge-audio run`` gives the chapters unless the user overrides it: book-quality sizes. A chapter's own
#: defaults (in its ``parameters`` cell) are small, so nbval and a plain papermill call run it quickly.
BOOK_PARAMETERS: dict[str, Any] = {
    "synth_clips_per_class_per_fold": 8,
}


class ChapterFailed(RuntimeError):
    """A chapter raised while papermill executed it; the message names the chapter and the failing cell."""


def book_dir() -> Path:
    """The ``book/`` folder of the project (the chapters' sources)."""
    return project_root() / "book"


def chapters(source_dir: Path | None = None) -> list[Path]:
    """The chapter notebooks, in order (their file names start with the chapter number)."""
    return sorted((source_dir or book_dir()).glob("[0-9][0-9]_*.ipynb"))


def chapter_parameters(notebook: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``overrides`` that ``notebook``'s ``parameters`` cell declares."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: value for name, value in overrides.items() if name in declared}


def execute_chapter(notebook: Path, out_path: Path, parameters: dict[str, Any], progress: bool = True) -> None:
    """Execute one chapter with papermill (working directory: the chapter's folder) into ``out_path``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(notebook), str(out_path), parameters=parameters, cwd=str(notebook.parent),
                                   kernel_name="python3", progress_bar=progress, log_output=False)
    except PapermillExecutionError as exc:
        raise ChapterFailed(f"chapter {notebook.name} failed in cell {exc.exec_count} "
                            f"({exc.ename}: {exc.evalue}); the executed notebook with the error is "
                            f"{out_path}") from None


def _mark_injected_cells_removed(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell`` so the book does not show it."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def build_book(executed_dir: Path, build_root: Path, staging_dir: Path) -> Path:
    """Build the HTML book from executed chapters; returns ``build_root/_build/html``.

    The project's ``_config.yml``, ``_toc.yml`` and the non-notebook pages of ``book/`` are copied into
    ``staging_dir`` next to the executed notebooks, and Jupyter Book runs there with warnings as errors.
    """
    root = project_root()
    shutil.rmtree(staging_dir, ignore_errors=True)
    (staging_dir / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, staging_dir / name)
    for page in (root / "book").iterdir():
        if page.suffix != ".ipynb" and page.is_file():
            shutil.copy2(page, staging_dir / "book" / page.name)
    for notebook in sorted(executed_dir.glob("*.ipynb")):
        target = staging_dir / "book" / notebook.name
        shutil.copy2(notebook, target)
        _mark_injected_cells_removed(target)
    build_root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
               str(staging_dir), "--path-output", str(build_root), "-W", "-n", "--keep-going"]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"the book build failed (jupyter-book exit {completed.returncode}):\n{tail}")
    return build_root / "_build" / "html"


def run_book(parameters: dict[str, Any] | None = None, output_dir: str | os.PathLike | None = None,
             build_root: str | os.PathLike | None = None, selected: list[str] | None = None,
             build: bool = True, progress: bool = True) -> Path | None:
    """Execute the chapters in order with papermill, then build the book; returns the HTML folder (or None).

    ``parameters`` (over :data:`BOOK_PARAMETERS`) are given to every chapter that declares them, and so is
    ``output_dir``; ``selected`` limits
    execution to chapters whose names start with one of its entries (e.g. ``["01", "02"]``); the book is built
    from every executed copy under ``<output>/notebooks``. A failing chapter raises :class:`ChapterFailed`, and
    what earlier chapters produced stays on disk.
    """
    overrides = {**BOOK_PARAMETERS, **(parameters or {})}
    if overrides.get("dataset_path") is not None:
        detect_layout(resolve_path(overrides["dataset_path"]))  # a wrong path fails here, before any kernel starts
    layout = OutputLayout.at(output_dir)
    overrides["output_dir"] = str(layout.root)
    executed_dir = layout.root / "notebooks"
    for notebook in chapters():
        if selected and not any(notebook.name.startswith(prefix) for prefix in selected):
            continue
        if progress:
            print(f"== executing {notebook.name}", file=sys.stderr, flush=True)
        execute_chapter(notebook, executed_dir / notebook.name, chapter_parameters(notebook, overrides), progress)
    if not build:
        return None
    missing = [nb.name for nb in chapters() if not (executed_dir / nb.name).is_file()]
    if missing:
        raise ChapterFailed(f"cannot build the book: chapter(s) {', '.join(missing)} have not been executed "
                            f"into {executed_dir}; run them first")
    if progress:
        print("== building the book", file=sys.stderr, flush=True)
    root = project_root() if build_root is None else resolve_path(build_root)
    return build_book(executed_dir, root, layout.root / "book_build")
