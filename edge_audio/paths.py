"""Paths: where the project and the output are, and the layout of one run's output folder.

The project root is the edge-audio checkout this package was installed from (the folder holding ``_toc.yml``
and ``book/``), found from the package's own location, so ``edge-audio run`` works from any directory. Relative
paths in chapter parameters (``output_dir``, ``dataset_path``) are resolved against it: papermill runs a chapter
in the caller's directory while nbval and Jupyter Book run it in ``book/``, and resolving this way makes the same
parameter mean the same folder in all three. (The command line resolves paths a user types against the
directory they were typed in before passing them on.)
"""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path


#: Environment variable that moves the default output folder (the test suite points it at a temporary folder).
OUTPUT_DIR_ENV = "EDGE_AUDIO_OUTPUT_DIR"
PACKAGE_DIR = Path(__file__).resolve().parent


def is_project(folder: Path) -> bool:
    """Whether ``folder`` is an edge-audio checkout (it holds ``_toc.yml`` and ``book/``)."""
    return (folder / "_toc.yml").is_file() and (folder / "book").is_dir()


def project_root() -> Path:
    """The edge-audio checkout: the package's parent folder when it is one (an editable or in-place install),
    else the nearest checkout at or above the current directory, else the current directory."""
    if is_project(PACKAGE_DIR.parent):
        return PACKAGE_DIR.parent
    here = Path.cwd().resolve()
    return next((candidate for candidate in (here, *here.parents) if is_project(candidate)), here)


def resolve_path(path: str | os.PathLike) -> Path:
    """Resolve a user-given path: absolute paths as they are, relative ones against :func:`project_root`."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (project_root() / path).resolve()


def default_output_dir() -> Path:
    """``$EDGE_AUDIO_OUTPUT_DIR`` when set, else ``output/`` under the project root."""
    return resolve_path(os.environ.get(OUTPUT_DIR_ENV) or "output")


#: The free space an output folder must have when a run starts: the embedded dataset, its features, the models
#: and the caches of one run take about 170 MB (measured with --quick).
MIN_FREE_BYTES = 200 * 1024 * 1024


def check_output_folder(folder: Path) -> None:
    """Refuse, in one line, an output folder that cannot be created or written (a read-only file system, no
    permission) or that has less than :data:`MIN_FREE_BYTES` free, before any work starts. The folders it makes
    to try are removed again, so a run refused later, before any work (a storage that cannot work, say), leaves
    nothing behind."""
    made = [path for path in (folder, *folder.parents) if not os.path.lexists(path)]  # innermost first
    try:
        _probe(folder)
    finally:
        for path in made:
            with contextlib.suppress(OSError):  # another run may have filled it meanwhile: then it stays
                path.rmdir()


@contextlib.contextmanager
def new_output_folder(out: Path, what: str):
    """Create the folder ``out`` that a command writes ``what`` into, refusing in one line, before any work, a
    folder that holds files or cannot be written; if the block fails, nothing half-written is left: the folder is
    as it was (absent, or empty)."""
    from .errors import PathError

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PathError(f"{out} exists and is not an empty folder; give a new folder for {what}")
    existed = out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".probe-{os.getpid()}"
        probe.write_bytes(b"\0")
        probe.unlink()
    except OSError as exc:
        raise PathError(f"cannot write {what} to {out}: {exc.strerror or exc}") from None
    try:
        yield out
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        if existed:
            out.mkdir()
        raise


def _probe(folder: Path) -> None:
    """Create ``folder``, write and sync 64 kB in it, and check its free space (see
    :func:`check_output_folder`)."""
    from .errors import PathError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 65536)
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        raise PathError(f"cannot write to the output folder {folder}: {exc.strerror or exc}; choose another "
                        "--output-dir (or output_dir)") from None
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise PathError(f"the output folder {folder} has {free / 2**20:.0f} MB free, and a run needs about "
                        f"{MIN_FREE_BYTES / 2**20:.0f} MB: free some space or choose another --output-dir")


#: The file naming the dataset whose results an output folder holds (:func:`check_dataset_of`).
DATASET_FILE = "dataset.json"


def check_dataset_of(folder: Path, dataset: str) -> None:
    """Refuse, in one line, an output folder that holds another dataset's results than ``dataset`` (its
    description: the dataset's path, or the synthetic dataset's settings; see
    :attr:`edge_audio.settings.Settings.dataset_identity`). Every dataset publishes ``models/<name>.onnx`` under
    the same names, so a second dataset's run would replace the first's published models under its records."""
    from .errors import PathError
    from .storage import read_json

    path = folder / DATASET_FILE
    try:
        held = read_json(path, default={"dataset": dataset})["dataset"]
    except (ValueError, KeyError, TypeError):
        raise PathError(f"{path} is damaged: it should name the dataset whose results {folder} holds; delete "
                        f"{folder} to start over, or give another --output-dir") from None
    if held != dataset:
        raise PathError(f"the output folder {folder} holds the results of {held}, not of {dataset}: give this "
                        f"dataset its own --output-dir (or delete {folder} to start over)")


def claim_for_dataset(folder: Path, dataset: str) -> None:
    """Name ``dataset`` as the one whose results ``folder`` holds (after :func:`check_dataset_of`)."""
    from .storage import atomic_write_json

    check_dataset_of(folder, dataset)
    if not (folder / DATASET_FILE).is_file():
        atomic_write_json(folder / DATASET_FILE, {"dataset": dataset})


#: The headline chapter 5 writes under ``reports/`` and the introduction shows (the runner copies both beside it
#: when it builds the book): a figure and a Markdown table.
HEADLINE_FILES = ("headline.png", "headline.md")


@dataclass(frozen=True)
class OutputLayout:
    """The folders of one run's output tree (``models/``, ``reports/``, ``logs/``, ``cache/``, ``data/``)."""

    root: Path = field(default_factory=default_output_dir)

    @classmethod
    def at(cls, output_dir: str | os.PathLike | None = None) -> "OutputLayout":
        """The layout under ``output_dir`` (None: :func:`default_output_dir`), folders created."""
        layout = cls(default_output_dir() if output_dir is None else resolve_path(output_dir))
        for folder in (layout.models, layout.reports, layout.logs, layout.cache, layout.data):
            folder.mkdir(parents=True, exist_ok=True)
        return layout

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def data(self) -> Path:
        return self.root / "data"
