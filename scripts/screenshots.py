"""Screenshot every page of the built book as a reader sees it: headless Chromium (Debian's ``chromium``) at a
desktop width (1400 px) and a phone width (400 px).

    python scripts/screenshots.py [--html _build/html] [--out screenshots]

Writes ``<out>/<page>_<width>.png`` for every page under ``<html>/book``, each cut below the page's last
non-white row, and prints what it wrote. Look at them before resolving an issue that changes a page.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from edge_audio.browser import chromium

WIDTHS = (1400, 400)
#: Tall enough for the longest chapter; the blank below the page is cut off afterwards.
HEIGHT = 30000
#: Blank rows that mean the page has ended.
BLANK = 1500


def screenshot(page: Path, width: int, target: Path, browser: str) -> None:
    """One page at one width, cropped to its content."""
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={width},{HEIGHT}", f"--screenshot={target}", page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=180)
    image = Image.open(target)
    # a row is content when more than a few pixels are not white (the sidebar's one-pixel border runs all the way
    # down); the page ends where the first long blank stretch begins (fixed elements sit at the window's bottom)
    content = (np.asarray(image.convert("L")) < 250).sum(axis=1) > 4
    rows = np.flatnonzero(content)
    gaps = np.flatnonzero(np.diff(rows) > BLANK) if rows.size else []
    end = int(rows[gaps[0]] if len(gaps) else rows[-1] if rows.size else image.height - 1) + 40
    image.crop((0, 0, image.width, min(end, image.height))).save(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=Path("_build/html"))
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args()
    browser = chromium()
    if browser is None:
        sys.exit("no chromium on PATH: apt-get install chromium")
    pages = sorted((args.html / "book").glob("*.html"))
    if not pages:
        sys.exit(f"no built pages under {args.html / 'book'}: run `make book` first")
    args.out.mkdir(parents=True, exist_ok=True)
    for page in pages:
        for width in WIDTHS:
            target = args.out / f"{page.stem}_{width}.png"
            screenshot(page, width, target, browser)
            print(f"{target} ({Image.open(target).height} px tall)")


if __name__ == "__main__":
    main()
