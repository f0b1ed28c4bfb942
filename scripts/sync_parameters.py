"""Write the parameter table of edge_audio/parameters.py into the book: every chapter's ``parameters`` cell and the
table of ``book/configuration.md`` (between its ``parameters:start`` / ``parameters:end`` markers).

    python scripts/sync_parameters.py [--check]

Run it after editing the table and review the diff; ``--check`` changes nothing and exits 1 when the book is out
of date (the test suite makes the same comparison).
"""
import json
import sys
from pathlib import Path

from edge_audio.book import chapters
from edge_audio.parameters import configuration_table, parameters_cell

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- parameters:start -->", "<!-- parameters:end -->"


def synced_notebook(path: Path) -> str:
    """The notebook's JSON text with its parameters cell generated from the table."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    [cell] = [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    cell["source"] = parameters_cell(path.name[:2]).splitlines(keepends=True)
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def synced_configuration(path: Path) -> str:
    """The configuration page with its table generated from the table."""
    text = path.read_text(encoding="utf-8")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{configuration_table()}\n{END}{after}"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    targets = {path: synced_notebook(path) for path in chapters()}
    targets[ROOT / "book" / "configuration.md"] = synced_configuration(ROOT / "book" / "configuration.md")
    stale = [path for path, text in targets.items() if path.read_text(encoding="utf-8") != text]
    for path in stale:
        if check:
            print(f"out of date: {path.relative_to(ROOT)}")
        else:
            path.write_text(targets[path], encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
