"""Test-session setup shared by the unit tests (tests/) and the nbval run over the chapters (book/).

The default output folder is moved to a temporary one for the whole session (unless EDGE_AUDIO_OUTPUT_DIR is
already set), so tests never write into the user's output/. nbval's kernels inherit the variable, and the
chapters run in order share what earlier ones cached, exactly as in a book run.
"""
import os
import shutil
import tempfile

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
