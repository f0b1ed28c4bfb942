"""The book runner: execute the chapters with papermill, then build the HTML book with Jupyter Book.

:func:`run_book` checks every parameter against :mod:`edge_audio.parameters` before any kernel starts (an unknown
name or an invalid value is a :class:`~edge_audio.errors.ParameterError`), executes the chapters of ``book/``
in order with papermill, in ``book/`` as their working directory (as nbval and Jupyter Book do), giving each
chapter exactly the parameters it declares, writes the executed copies under ``<output>/notebooks/`` (the
sources stay untouched), then builds the HTML book from those copies into ``_build/html``. The chapters are
found from the package's location (:func:`edge_audio.paths.project_root`), so it runs from any directory.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .paths import (HEADLINE_FILES, OutputLayout, check_dataset_of, check_output_folder, default_output_dir, is_project,
                    project_root, resolve_path)
from .results import check_results_log
from .errors import PathError, UserError, user_error_names
from .parameters import PARAMETERS, book_values, chapter_parameters, check_names
from .settings import Settings
from .storage import file_lock

#: ``edge-audio run --mode``: the chapters (by number) each mode executes.
MODES: dict[str, tuple[str, ...]] = {"full": ("01", "02", "03", "04", "05"), "baseline": ("01", "02"),
                                     "quantization": ("03",), "nas": ("04",), "reports": ("05",)}


class ChapterFailed(RuntimeError):
    """A chapter raised while papermill executed it: which chapter, which cell, the error and its traceback."""

    def __init__(self, chapter: str, cell: int | None, ename: str, evalue: str, traceback: list[str],
                 executed: Path):
        self.chapter, self.cell, self.ename, self.evalue = chapter, cell, ename, evalue
        self.traceback, self.executed = traceback, executed
        super().__init__(f"chapter {chapter} failed in cell {cell} ({ename}: {evalue}); the executed notebook "
                         f"with the error is {executed}")

    @property
    def is_user_error(self) -> bool:
        """Whether the chapter stopped on something the user gave (a :class:`~edge_audio.errors.UserError`)."""
        return self.ename in user_error_names()

    def traceback_text(self) -> str:
        """The kernel's traceback, without terminal colour codes."""
        return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(self.traceback))


def book_dir() -> Path:
    """The ``book/`` folder of the project (the chapters' sources); a :class:`UserError` outside a checkout."""
    root = project_root()
    if not is_project(root):
        raise UserError(f"cannot find the book's chapters: edge-audio is installed from {Path(__file__).parent}, "
                        "which is not in an edge-audio checkout; install it from one (pip install -e .)")
    return root / "book"


def chapters(source_dir: Path | None = None) -> list[Path]:
    """The chapter notebooks, in order (their file names start with the chapter number)."""
    return sorted((source_dir or book_dir()).glob("[0-9][0-9]_*.ipynb"))


def chapter_values(notebook: Path, values: dict[str, Any]) -> dict[str, Any]:
    """The part of ``values`` that ``notebook``'s ``parameters`` cell declares (see the parameter table)."""
    declared = {p.name for p in chapter_parameters(notebook.name[:2])}
    return {name: value for name, value in values.items() if name in declared}


def ipc_kernel_manager(sockets: Path) -> type:
    """The chapters' kernel manager: the kernel's ZeroMQ sockets are files in ``sockets`` (a private temporary
    folder, a short path) rather than loopback TCP ports, so nothing else on the machine can reach them and the kernel
    does not warn, once per chapter, that its traffic is unencrypted. TCP on Windows, which has no IPC sockets."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _transport_default(self) -> str:
            return "tcp" if os.name == "nt" else "ipc"

        @default("ip")
        def _ip_default(self) -> str:
            return "127.0.0.1" if os.name == "nt" else str(sockets / "kernel")

    return IPCKernelManager


def execute_chapter(notebook: Path, out_path: Path, parameters: dict[str, Any], progress: bool = True) -> None:
    """Execute one chapter with papermill (working directory: the chapter's folder) into ``out_path``, then check
    that it states no difference its own tests do not back (:func:`statement_problems`)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_path.parent.mkdir(parents=True, exist_ok=True)
    # papermill rewrites its output after every cell: this run's own file, renamed into place when the chapter
    # ends, so a run sharing the output folder never reads or overwrites a half-executed copy of another's
    working = out_path.with_name(f".{out_path.stem}.{os.getpid()}.ipynb")
    try:
        with tempfile.TemporaryDirectory(prefix="edge-audio-kernel-") as sockets:
            papermill.execute_notebook(str(notebook), str(working), parameters=parameters, cwd=str(notebook.parent),
                                       kernel_name="python3", progress_bar=progress, log_output=False,
                                       kernel_manager_class=ipc_kernel_manager(Path(sockets)))
    except PapermillExecutionError as exc:
        os.replace(working, out_path)  # papermill wrote the notebook with the error in its cell
        _repeat_notices(out_path)
        raise ChapterFailed(notebook.name, exc.exec_count, exc.ename, exc.evalue, exc.traceback, out_path) from None
    except BaseException:
        working.unlink(missing_ok=True)
        raise
    os.replace(working, out_path)
    _repeat_notices(out_path)
    problems = statement_problems(out_path)
    if problems:  # a bug in the chapter's prose, not the user's input
        raise RuntimeError(f"{notebook.name} states differences its own tests do not back: " + "; ".join(problems))


def _repeat_notices(executed: Path) -> None:
    """Repeat on the terminal the notices (:mod:`edge_audio.notices`) a chapter wrote into its executed notebook: a
    discarded cache entry, a refused checkpoint."""
    from .notices import notices_in

    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    text = "".join("".join(output.get("text", "")) for cell in cells for output in cell.get("outputs", [])
                   if output.get("output_type") == "stream" and output.get("name") == "stderr")
    for line in notices_in(text):
        print(line, file=sys.stderr, flush=True)


def _remove_injected_cells(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``remove-cell``: each chapter shows the values it really ran with
    as a table (:meth:`~edge_audio.settings.Settings.table`), so the book shows neither that cell nor the
    ``parameters`` cell, whose defaults papermill overrides."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def build_book(executed_dir: Path, build_root: Path, staging_dir: Path) -> Path:
    """Build the HTML book from executed chapters; returns ``build_root/_build/html``.

    The project's ``_config.yml``, ``_toc.yml`` and the non-notebook pages of ``book/`` (and its subfolders) are copied into
    ``staging_dir`` next to the executed notebooks, and Jupyter Book runs there with warnings as errors.
    """
    root = book_dir().parent
    shutil.rmtree(staging_dir, ignore_errors=True)
    (staging_dir / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, staging_dir / name)
    for page in (root / "book").rglob("*"):  # the prose pages, the Reference part's folder included
        if page.suffix != ".ipynb" and page.is_file():
            target = staging_dir / "book" / page.relative_to(root / "book")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(page, target)
    for notebook in chapters(executed_dir):
        target = staging_dir / "book" / notebook.name
        shutil.copy2(notebook, target)
        _remove_injected_cells(target)
    for name in HEADLINE_FILES:  # the introduction shows chapter 5's headline figure and table
        headline = executed_dir.parent / "reports" / name
        if not headline.is_file():
            raise PathError(f"{headline} is missing: the introduction shows it; execute chapter 5 first")
        shutil.copy2(headline, staging_dir / "book" / name)
    build_root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
               str(staging_dir), "--path-output", str(build_root), "-W", "-n", "--keep-going"]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"the book build failed (jupyter-book exit {completed.returncode}):\n{tail}")
    return build_root / "_build" / "html"


def check_settings(values: dict[str, Any]) -> Settings:
    """Check run parameters as the chapters will (:meth:`edge_audio.settings.Settings.check`); returns them."""
    return Settings(**values).check()


def glued_values(executed: Path) -> dict[str, str]:
    """Every value an executed chapter glued (``myst_nb.glue``), as the plain text the book renders."""
    import ast

    values = {}
    for cell in json.loads(Path(executed).read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            text = output.get("data", {}).get("application/papermill.record/text/plain")
            if name and text is not None:
                values[name] = ast.literal_eval(text) if text[:1] in "'\"" else text
    return values


def statement_problems(executed: Path) -> list[str]:
    """What an executed chapter states about differences that its own tests do not back: a sentence it glued as a
    claim (``claims``, see :class:`edge_audio.claims.Claims`) asserting a difference its test did not resolve, or a
    sentence of its computed prose (Markdown outputs, glued text) asserting one that no resolved claim states."""
    from .claims import unbacked_claims  # scipy, behind it, is not needed to start the command line

    glued = glued_values(executed)
    texts = [value for name, value in glued.items() if name != "claims"]
    for cell in json.loads(Path(executed).read_text(encoding="utf-8"))["cells"]:
        for output in cell.get("outputs", []):
            markdown = output.get("data", {}).get("text/markdown")
            if markdown:
                texts.append("".join(markdown))
    claims = json.loads(glued.get("claims", "[]"))
    return unbacked_claims(claims, texts)


def _raise_environment_problem(root: Path, chapter: str) -> None:
    """When a chapter failed because the output folder became unusable (the disk filled up, it was remounted
    read-only), say that in one line (:class:`~edge_audio.errors.PathError`) instead of the traceback of whichever
    library happened to be writing."""
    try:
        check_output_folder(root)
    except PathError as exc:
        raise PathError(f"{chapter} stopped: {exc}") from None


def page_problems(text: str, executed_dir: Path) -> list[str]:
    """What a rendered page (the introduction quotes the chapters) claims that no executed chapter's verdict backs
    (:func:`edge_audio.claims.unbacked_page_claims`)."""
    from .claims import unbacked_page_claims

    claims = [claim for notebook in chapters(executed_dir)
              for claim in json.loads(glued_values(notebook).get("claims", "[]"))]
    return unbacked_page_claims(claims, text)


#: What a table cell never shows a reader: Python's and pandas' placeholders for a missing value, and pandas'
#: truncation.
UNREADABLE_CELLS = ("None", "NaN", "nan", "...", "…")


def html_problems(html: str, max_columns: int = 8) -> list[str]:
    """What a reader would trip over on a built page (its HTML): a figure without a caption or without a link to its
    full-size image (what a phone reader opens to read it), a table cell showing
    ``None``, ``NaN`` or pandas' "...", a table with more than ``max_columns`` columns (index included), a raw
    dict or list in a cell, and code left on show (a chapter's code cells are all tagged to hide their input)."""
    from bs4 import BeautifulSoup

    page = BeautifulSoup(html, "html.parser")
    main = page.find("main") or page
    problems = []
    for image in main.find_all("img"):
        figure = image.find_parent("figure")
        if figure is None or figure.find("figcaption") is None:
            problems.append(f"a figure without a caption ({image.get('alt') or image.get('src', '')[:40]})")
        elif image.find_parent("a") is None:
            problems.append(f"a figure without a full-size link ({image.get('alt') or image.get('src', '')[:40]})")
    for table in main.find_all("table"):
        header = table.find("tr")
        width = sum(int(cell.get("colspan", 1)) for cell in header.find_all(["th", "td"])) if header else 0
        if width > max_columns:
            problems.append(f"a table of {width} columns (at most {max_columns}): "
                            + ", ".join(cell.get_text(strip=True) for cell in header.find_all(["th", "td"]))[:120])
        for cell in table.find_all(["td", "th"]):
            text, code = cell.get_text(strip=True), cell.find("code")
            if code is not None and code.get_text(strip=True) == text:  # a parameter's value, the literal it is
                continue
            if text in UNREADABLE_CELLS or text.endswith("...") or text.startswith("{'"):
                problems.append(f"a table cell reads {text[:60]!r}")
    for block in main.select("div.cell_input"):
        problems.append("code on show: " + block.get_text(" ", strip=True)[:60])
    return problems


def run_book(parameters: dict[str, Any] | None = None, output_dir: str | os.PathLike | None = None,
             build_root: str | os.PathLike | None = None, mode: str = "full", build: bool = True,
             quick: bool = False, progress: bool = True) -> Path | None:
    """Execute the chapters of ``mode`` (see :data:`MODES`) in order with papermill, then build the book; returns
    the HTML folder (or None without ``build``).

    ``parameters`` (over the book values of :mod:`edge_audio.parameters`, or over the chapters' own small
    defaults when ``quick``) are checked (:func:`check_settings`), then each chapter gets the ones it declares,
    and ``output_dir``. Each chapter reuses the cached results of earlier steps. The book is built from the
    executed copies under ``<output>/notebooks``; a chapter outside ``mode`` that has no executed copy yet is
    executed too (the book needs every chapter), and the others are left as they are. A failing chapter raises
    :class:`ChapterFailed`, and what earlier chapters produced stays on disk.
    """
    if mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    parameters = dict(parameters or {})
    check_names(parameters)
    if "output_dir" in parameters:
        raise UserError("give the output folder as output_dir=... (edge-audio run --output-dir), not as a parameter")
    base = {} if quick else {name: value for name, value in book_values().items()
                             if PARAMETERS[name].book_overrides}
    root = default_output_dir() if output_dir is None else resolve_path(output_dir)
    overrides = {**base, **parameters, "output_dir": str(root)}
    settings = check_settings(overrides)  # the output folder and the storage too: writable, with space, reachable
    check_dataset_of(root, settings.dataset_identity)  # and it holds no other dataset's results
    check_results_log(root / "logs")  # nor a damaged results log
    layout = OutputLayout.at(root)
    executed_dir = layout.root / "notebooks"
    notebooks = chapters()
    for notebook in notebooks:
        selected = notebook.name[:2] in MODES[mode]
        missing = build and not (executed_dir / notebook.name).is_file()
        if not (selected or missing):
            continue
        if progress:
            reason = "" if selected else f" (not in mode {mode}, but the book needs it and it has not run yet)"
            print(f"== executing {notebook.name}{reason}", file=sys.stderr, flush=True)
        try:
            execute_chapter(notebook, executed_dir / notebook.name, chapter_values(notebook, overrides), progress)
        except (ChapterFailed, OSError) as exc:
            if isinstance(exc, ChapterFailed) and exc.is_user_error:
                raise
            _raise_environment_problem(layout.root, notebook.name)
            raise
        except RuntimeError:  # nbclient's DeadKernelError among them: Ray ends a driver whose head node died
            if settings.executor == "ray":
                from .executor import check_head

                check_head(settings.ray_address, notebook.name)
            raise
    if not build:
        return None
    if progress:
        print("== building the book", file=sys.stderr, flush=True)
    root = book_dir().parent if build_root is None else resolve_path(build_root)
    with file_lock(layout.root / ".book_build.lock"):  # two runs sharing the output folder build one at a time
        return build_book(executed_dir, root, layout.root / "book_build")
