"""Refresh the outputs stored in book/*.ipynb that nbval compares.

nbval (``--nbval-lax``) compares only cells tagged ``nbval-check-output`` with the outputs stored in the
committed notebook. This script executes each chapter given (default: all) with its own default parameters in
a temporary output folder, then writes it back keeping the outputs of the tagged cells only (figures and timings
are not stored: the book is built from freshly executed copies).

    python scripts/refresh_notebook_outputs.py [book/01_data.ipynb ...]

Run it after changing what a tagged cell prints, and review the diff.
"""
import json
import os
import sys
import tempfile
from pathlib import Path

from edge_audio.paths import OUTPUT_DIR_ENV
from edge_audio.book import chapters, execute_chapter

CHECK_TAG = "nbval-check-output"


def refresh(notebook: Path, scratch: Path) -> None:
    executed_path = scratch / "executed" / notebook.name
    execute_chapter(notebook, executed_path, {}, progress=True)
    executed = json.loads(executed_path.read_text(encoding="utf-8"))
    source = json.loads(notebook.read_text(encoding="utf-8"))
    assert len(executed["cells"]) == len(source["cells"]), "papermill changed the cell count"
    for cell, ran in zip(source["cells"], executed["cells"]):
        if cell["cell_type"] != "code":
            continue
        keep = CHECK_TAG in cell.get("metadata", {}).get("tags", [])
        cell["outputs"] = ran["outputs"] if keep else []
        cell["execution_count"] = ran["execution_count"] if keep else None  # nbval skips cells without one
    notebook.write_text(json.dumps(source, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"refreshed {notebook}")


def main(argv: list[str]) -> None:
    targets = [Path(a).resolve() for a in argv] or chapters()
    with tempfile.TemporaryDirectory(prefix="edge-audio-refresh-") as scratch:
        os.environ[OUTPUT_DIR_ENV] = str(Path(scratch) / "output")
        for notebook in targets:
            refresh(notebook, Path(scratch))


if __name__ == "__main__":
    main(sys.argv[1:])
