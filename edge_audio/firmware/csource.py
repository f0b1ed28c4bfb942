"""C99 literals for generated sources (the export bundle, the generated network and front end)."""
from __future__ import annotations

import numpy as np


def c_float(value: float) -> str:
    """A float32 literal that reads back to the same float32."""
    text = f"{float(np.float32(value)):.9g}"
    return text + ("f" if any(c in text for c in ".en") else ".0f")


def c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def c_rows(values, per_line: int, format_value) -> str:
    """``values`` formatted, ``per_line`` to a line, indented, comma-separated (an initializer's body)."""
    items = [format_value(v) for v in values]
    return ",\n".join("    " + ", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line))


def c_header(comment: str, guard: str, lines: list[str], includes: tuple[str, ...] = ()) -> str:
    """A C header: ``comment`` (a block comment), the include guard ``guard``, ``includes`` (e.g. ``<stdint.h>``)
    and ``lines`` (ending in an empty one) inside an ``extern "C"`` block when compiled as C++."""
    return "\n".join([comment, f"#ifndef {guard}", f"#define {guard}", "",
                      *[f"#include {name}" for name in includes], *([""] if includes else []),
                      "#ifdef __cplusplus", 'extern "C" {', "#endif", "", *lines,
                      "#ifdef __cplusplus", "}", "#endif", "#endif", ""])
