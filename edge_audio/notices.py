"""Notices: one line on standard error for something the user should know that does not stop the run (a damaged
cache entry discarded, a checkpoint refused, records left out of the log).

Inside a chapter, standard error goes into the executed notebook, where nobody running ``edge-audio run`` looks;
the book runner therefore finds this run's notices in each executed chapter (:func:`notices_in`) and repeats them
on the terminal. A notice is written through tqdm, so that it starts on a line of its own even while a progress
bar is drawn (a bar's carriage return would otherwise overwrite it mid-sentence).
"""
from __future__ import annotations

import re
import sys

PREFIX = "edge-audio: "


def notice(message: str) -> None:
    """Write ``edge-audio: message`` as one line on standard error."""
    from tqdm import tqdm

    tqdm.write(PREFIX + message, file=sys.stderr)
    sys.stderr.flush()


def notices_in(text: str) -> list[str]:
    """The notices in ``text`` (what a chapter wrote to standard error, progress bars included), each once, in
    order."""
    lines = (line.strip() for line in re.split(r"[\r\n]", text))
    return list(dict.fromkeys(line for line in lines if line.startswith(PREFIX)))
