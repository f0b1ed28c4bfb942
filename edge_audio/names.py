"""Names that become file names: a model's, a method's, a deployment profile's.

A model called ``tiny`` is published as ``models/tiny.onnx``, cached under ``cache/waveform/waveform-tiny-...``
and named in reports; a parameter file from someone else must not be able to put a file anywhere else. Every such
name is checked here, once, by :func:`file_name`, wherever it enters (a model config, a method list, a profile
table): a name with a path separator, ``..``, a leading dot or anything outside the allowed characters is a
:class:`~edge_audio.errors.ParameterError` that states the allowed form.
"""
from __future__ import annotations

import re
from typing import Any

from .errors import ParameterError

#: The form of a name that becomes (part of) a file name.
NAME_FORM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ALLOWED_FORM = ("1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit, without '..' "
                "(it becomes a file name)")


def file_name(name: Any, what: str) -> str:
    """``name`` when it may become a file name (see :data:`NAME_FORM`); else a :class:`ParameterError` naming
    ``what`` it is (``"model name"``, ``"method"``, ...) and the allowed form."""
    if not isinstance(name, str) or not NAME_FORM.fullmatch(name) or ".." in name:
        raise ParameterError(f"{what} {name!r} is not allowed: use {ALLOWED_FORM}")
    return name
