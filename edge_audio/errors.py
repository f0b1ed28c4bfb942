"""The kinds of failure edge-audio tells apart.

* :class:`UserError`: something the user gave is wrong (a path, a parameter, a dataset, a model file). The message
  says what is wrong and what was expected; the command line prints it as one line and exits with status 2.
* :class:`DownloadError`: the network or a server failed a download (unreachable, interrupted, a corrupt
  archive). Nothing is wrong with what the user typed and the message says how to go on (usually: run the same
  command again, which resumes); the command line prints it as one line and exits with status 1.
* :class:`InvariantError`: a chapter's invariant (:func:`invariant`) does not hold: a bug in the package, never
  the user's input; like anything else below, it keeps its traceback.
* Anything else is a bug or a failure of the environment: it keeps its traceback, and the command line exits
  with status 1.
"""
from __future__ import annotations


class UserError(Exception):
    """Something the user gave cannot be used; the message says what and what was expected."""


class ParameterError(UserError, ValueError):
    """A parameter with an unknown name or an invalid value."""


class DatasetError(UserError, ValueError):
    """A dataset that cannot be used as given."""


class ModelFileError(UserError, ValueError):
    """A model file that is missing, cannot be loaded, or does not fit the input it is given; names the file."""


class PathError(UserError, OSError):
    """A path the user gave that cannot be used as asked (say, an output folder that must be empty and is not)."""


class DownloadError(Exception):
    """A download that failed for a reason outside the user's input; the message says how to go on."""


class InvariantError(RuntimeError):
    """Something a chapter guarantees does not hold (a bug); the message names what."""


def invariant(holds: object, detail: object) -> None:
    """Raise :class:`InvariantError` with ``detail`` unless ``holds``: a chapter's check that, unlike ``assert``,
    also runs under ``python -O``."""
    if not holds:
        raise InvariantError(str(detail))


def user_error_names() -> set[str]:
    """Class names of every :class:`UserError` subclass (a chapter's failure is reported by class name)."""
    names, pending = set(), [UserError]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names

