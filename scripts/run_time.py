"""How long a finished `make book` took, from the files it wrote: install, each chapter, the book build, in all.

    python scripts/run_time.py [--output-dir output] [--root DIR]

Reads the times the run itself recorded: the virtual environment's creation (``.venv/pyvenv.cfg``) and the end of
the install (``.venv/.installed``, written by the Makefile), papermill's start, end and duration of each executed
chapter (``<output>/notebooks/*.ipynb``), and the last file of the built book (``_build/html``); and the CPU the run's
records name. A number the README or the book states about run time comes from this script's output.
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {round(seconds % 60):02d} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("output"), help="the run's output folder")
    parser.add_argument("--root", type=Path, default=None,
                        help="the checkout `make book` ran in (default: the output folder's, links followed)")
    args = parser.parse_args()
    output = args.output_dir
    args.root = args.root or output.resolve().parent
    chapters = sorted((output / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not chapters:
        raise SystemExit(f"no executed chapter under {output / 'notebooks'}: run `make book` first")
    runs = {path.stem: json.loads(path.read_text())["metadata"]["papermill"] for path in chapters}
    records = json.loads((output / "logs" / "all_results.json").read_text())
    machine = next(r["machine"] for r in records if "machine" in r)
    print(f"CPU: {machine['cpu']} ({', '.join(machine['isa'])})")
    start = datetime.fromisoformat(min(run["start_time"] for run in runs.values())).timestamp()
    end = datetime.fromisoformat(max(run["end_time"] for run in runs.values())).timestamp()
    venv, installed = args.root / ".venv" / "pyvenv.cfg", args.root / ".venv" / ".installed"
    began = venv.stat().st_mtime if venv.is_file() else start
    if installed.is_file():
        print(f"install (.venv created to .venv/.installed): {minutes(installed.stat().st_mtime - began)}")
    for name, run in runs.items():
        print(f"chapter {name}: {minutes(run['duration'])}")
    print(f"chapters, first start to last end: {minutes(end - start)}")
    html = [path.stat().st_mtime for path in (args.root / "_build" / "html").rglob("*") if path.is_file()]
    if html:
        print(f"book build (last chapter's end to the last file under _build/html): {minutes(max(html) - end)}")
        print(f"make book in all ({'.venv created' if venv.is_file() else 'first chapter'} to the built book): "
              f"{minutes(max(html) - began)}")


if __name__ == "__main__":
    main()
