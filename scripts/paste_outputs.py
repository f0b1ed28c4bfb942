"""Run the commands a page names and paste their output into it, so that no measurement in it is typed by hand.

    python scripts/paste_outputs.py PAGE [PAGE ...] [--list]

A page marks each measured block with the command that makes it:

    <!-- output: python benchmarks/file_sizes.py -->
    (anything: replaced)
    <!-- /output -->

Each marked block is replaced by a fenced block holding the command's standard output, under one line naming the
command, the CPU it ran on and the date. Commands run from the repository root, ``python`` being this interpreter;
they run one at a time, so that their timings do not share the CPU. A command that fails stops the script before
the page is written (one line, exit 2): a page never holds half of a refresh. ``--list`` prints the commands
without running them. Prose around a block says how to read it, never what it measured: a number belongs inside a
block.
"""
from __future__ import annotations

import argparse
import datetime
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- output: (?P<command>.+?) -->\n(?P<body>.*?)<!-- /output -->", re.S)


def commands(page: str) -> list[str]:
    """The commands a page's marked blocks name, in order."""
    return [match["command"].strip() for match in BLOCK.finditer(page)]


def run(command: str) -> str:
    """The standard output of ``command`` (``python`` is this interpreter), run from the repository root."""
    argv = shlex.split(command)
    if argv and argv[0] == "python":
        argv[0] = sys.executable
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"{command!r} failed with exit {result.returncode}: {last}")
    return result.stdout.rstrip("\n")


def pasted(page: str, outputs: dict[str, str], where: str) -> str:
    """``page`` with every marked block holding its command's output (``outputs``), under a line saying where and
    when it ran."""
    def block(match: re.Match) -> str:
        command = match["command"].strip()
        return (f"<!-- output: {command} -->\nOutput of `{command}` on {where}:\n\n```text\n{outputs[command]}\n```\n"
                "<!-- /output -->")

    return BLOCK.sub(block, page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    from edge_audio.machine import cores, cpu_isa, cpu_name

    where = f"{cpu_name()} ({', '.join(cpu_isa())}; {cores()} cores), {datetime.date.today().isoformat()}"
    texts = {}
    for page in args.pages:
        try:
            texts[page] = page.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"paste_outputs: cannot read {page}: {exc}", file=sys.stderr)
            return 2
    texts = {page: text for page, text in texts.items() if commands(text)}  # pages without a block: nothing to do
    if not texts:
        print(f"paste_outputs: no page of {', '.join(map(str, args.pages))} marks an output block "
              "(<!-- output: COMMAND --> ... <!-- /output -->)", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(f"{page}: {command}" for page, text in texts.items() for command in commands(text)))
        return 0
    outputs = {}
    for page, text in texts.items():
        for command in commands(text):
            if command not in outputs:
                print(f"running {command}", file=sys.stderr, flush=True)
                try:
                    outputs[command] = run(command)
                except (RuntimeError, OSError) as exc:
                    print(f"paste_outputs: {exc}; {page} is left as it was", file=sys.stderr)
                    return 2
    for page, text in texts.items():
        page.write_text(pasted(text, outputs, where), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
