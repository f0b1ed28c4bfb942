"""Glue a step's values into its chapter: the numbers and sentences the prose quotes (``{glue:text}`name```).

Every value is glued as a plain Python ``int``, ``float`` or ``str`` (NumPy scalars repr as ``np.float64(...)``
under NumPy 2, which breaks ``{glue:text}`` formatting), without display.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def plain(value: Any) -> Any:
    """``value`` as a plain Python scalar (NumPy scalars converted; anything else as it is)."""
    return value.item() if isinstance(value, np.generic) else value


def counted(count: float, noun: str, plural: str | None = None) -> str:
    """``count`` with ``noun`` in the number it takes, for prose: ``counted(1, "point")`` is ``"1 point"``,
    ``counted(0.5, "point")`` ``"0.5 points"``, ``counted(3, "training run")`` ``"3 training runs"``; ``plural``
    where adding an s is wrong."""
    count = plain(count)
    shown = f"{count:g}" if isinstance(count, float) else f"{count:,}"
    return f"{shown} {noun if count == 1 else (plural or noun + 's')}"


def glue_all(values: dict[str, Any]) -> None:
    """Glue every ``name: value`` of ``values`` for the chapter's prose, without displaying it."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, plain(value), display=False)


def glue_figure(name: str, figure) -> None:
    """Glue a matplotlib ``figure`` under ``name`` for the chapter's ``{glue:figure}`` directive (which numbers and
    captions it), and close it, so the notebook does not also show it uncaptioned."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(name, figure, display=False)
    plt.close(figure)
