"""scripts/paste_outputs.py: the measured blocks of the reference pages are pasted by running their commands, and
every measurement on those pages sits in such a block."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "paste_outputs.py"


def paste(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def test_a_marked_block_is_replaced_by_its_commands_output(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Intro.\n\n<!-- output: python -c \"print(6 * 7)\" -->\nold typed 41\n<!-- /output -->\n\nAfter.\n")
    result = paste(page)
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    assert "```text\n42\n```" in text and "old typed 41" not in text and text.endswith("After.\n")
    assert re.search(r"Output of `python -c \"print\(6 \* 7\)\"` on .+ cores\), \d{4}-\d\d-\d\d:", text)
    assert paste(page).returncode == 0 and page.read_text() == text  # a refresh on the same day: the same page
    assert text.count("<!-- output:") == text.count("<!-- /output -->") == 1


def test_a_failing_command_leaves_the_page_as_it_was_and_says_so_in_one_line(tmp_path):
    page = tmp_path / "page.md"
    original = ("<!-- output: python -c \"print(1)\" -->\n<!-- /output -->\n"
                "<!-- output: python -c \"import sys; sys.exit('no data here')\" -->\nkept\n<!-- /output -->\n")
    page.write_text(original)
    result = paste(page)
    assert result.returncode == 2 and "no data here" in result.stderr and "left as it was" in result.stderr
    assert page.read_text() == original
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    assert paste(bare).returncode == 2


def test_the_reference_pages_measured_blocks_name_committed_commands():
    pages = [ROOT / "book" / "reference" / name for name in ("runtimes.md", "models.md")]
    listed = paste("--list", *pages)
    assert listed.returncode == 0, listed.stderr
    for line in listed.stdout.splitlines():
        command = line.split(": ", 1)[1]
        script = command.split()[1]
        assert (ROOT / script).is_file() or script == "-m", command
