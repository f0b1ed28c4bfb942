"""Test-session setup shared by the unit tests (tests/) and the nbval run over the chapters (book/).

The default output folder is moved to a temporary one for the whole session (unless EDGE_AUDIO_OUTPUT_DIR is
already set), so tests never write into the user's output/. nbval's kernels inherit the variable, and the
chapters run in order share what earlier ones cached, exactly as in a book run. The suite runs on two xdist
workers (``pyproject.toml``); the workers inherit the folder from the controlling process.
"""
import os
import shutil
import tempfile

# One math thread per process: the suite runs two xdist workers on two cores, and each of them (and each chapter's
# kernel, and the end-to-end run, which inherit the environment) would otherwise start a thread per core, whose
# OpenMP threads spin against each other's. Measured on a 2-core Xeon: 412 tests in 8 min 39 s with the default,
# 5 min 08 s with this. Set before anything imports torch; a value the caller set is kept. Latencies are measured
# with the thread count each runtime is given explicitly, so no number the tests check depends on it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

from edge_audio.paths import OUTPUT_DIR_ENV


def pytest_configure(config):
    if not os.environ.get(OUTPUT_DIR_ENV):
        path = tempfile.mkdtemp(prefix="edge-audio-tests-")
        os.environ[OUTPUT_DIR_ENV] = path
        config._edge_audio_output = path


def pytest_unconfigure(config):
    path = getattr(config, "_edge_audio_output", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items):
    """Share the suite out in whole units: nbval's cells of the chapters in one (they run in order, sharing one
    output folder), the tests of the end-to-end book run in another, and each other test module in its own (so a
    module's fixtures are built once, not once per worker). The two long units go first."""
    def group(item) -> str:
        if item.path.suffix == ".ipynb":
            return "chapters"
        if "book_run" in getattr(item, "fixturenames", ()):
            return "book_run"
        return item.path.stem

    for item in items:
        item.add_marker(pytest.mark.xdist_group(group(item)))
    first = {"chapters": 0, "book_run": 1}
    items.sort(key=lambda item: first.get(group(item), 2))  # a stable sort: each unit keeps its own order
