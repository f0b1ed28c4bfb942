"""Storage: atomic writes, stable hashes, the one cache-or-compute helper, and publishing.

Every file the pipeline writes goes through :func:`atomic_write_with` (write a temporary file in the same folder,
then ``os.replace``), so an interrupted run never leaves a half-written result behind.

**The cache.** Every cached step (features, dataset checks, training runs, profiles, quantized variants, search
candidates, the machine's measurements) goes through :func:`cached`: an entry is a folder named by a hash of
*everything that changes its result* (its key), holding ``entry.json`` (the key, the computed value and the SHA-256 of
every file the computation wrote) and those files. Loading an entry checks every file against its digest: a
damaged entry (bytes garbled in place, a file missing, an unreadable ``entry.json``) is reported in one line,
discarded and recomputed, never used. A different key is a different folder, so nothing computed under other settings,
on another machine or with other library versions is ever reused. An entry is computed in a ``.partial`` folder
under a lock (two processes never compute one entry twice; a killed computation leaves its partial folder for
the next attempt, which training uses to resume) and renamed into place when done.

**Publishing.** Files users deploy (``models/tiny.onnx``, ...) are copies of cache files, made by
:func:`publish` every time a step runs, whether its entry was computed or loaded: a published file always holds
what the latest run of its step computed, and its SHA-256 is in the record that names it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .notices import notice

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process lock, one process at a time
    fcntl = None

ENTRY_FILE = "entry.json"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + rename) and return the path."""
    return atomic_write_with(path, lambda handle: handle.write(data))


def atomic_write_with(path: str | os.PathLike, writer: Callable[[Any], Any], suffix: str = "") -> Path:
    """Call ``writer(binary_file_handle)`` on a temporary file next to ``path``, then rename it into place.

    ``suffix`` is given to the temporary file for libraries that choose a format from the file name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{suffix}")
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """Read a JSON file, or return ``default`` when it does not exist."""
    path = Path(path)
    if not path.exists():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def plain(obj: Any) -> Any:
    """``obj`` as plain JSON values (tuples become lists, NumPy scalars numbers), as it reads back from JSON."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short hex digest of a JSON-serialisable object, independent of dict ordering."""
    blob = json.dumps(obj, sort_keys=True, default=_json_default).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=16).hexdigest()[:length]


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _json_default(value: Any) -> Any:
    """Turn NumPy scalars/arrays and paths into plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@dataclass
class CacheEntry:
    """A computed (or loaded) cache entry: its folder, the value the computation returned, whether it was
    loaded from disk (``hit``) rather than computed by this call, and the SHA-256 of each file it holds."""

    path: Path
    value: Any
    hit: bool
    digests: dict[str, str]

    def file(self, name: str) -> Path:
        """A file the computation wrote into the entry."""
        return self.path / name


@contextlib.contextmanager
def file_lock(lock_path: Path):
    """Hold an exclusive lock on ``lock_path`` (waits while another process holds it)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _load_entry(folder: Path, key: Any) -> dict | None:
    """The stored entry of ``folder`` when it is complete, made for exactly ``key`` and holds the bytes it was
    written with; None when there is none. A damaged entry (unreadable ``entry.json``, a file missing or changed
    since it was written) is reported in one line and removed, so the caller recomputes it."""
    if not (folder / ENTRY_FILE).is_file():
        return None
    try:
        stored = read_json(folder / ENTRY_FILE)
        files = stored["files"]
        if not all(isinstance(digest, str) for digest in files.values()):  # an earlier layout: sizes, no digests
            damaged, why = list(files), "written by an earlier edge-audio, without digests"
        else:
            damaged = [name for name, digest in files.items()
                       if not (folder / name).is_file() or file_sha256(folder / name) != digest]
            why = f"{', '.join(damaged)} not as written"
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        stored, damaged, why = None, [ENTRY_FILE], f"unreadable {ENTRY_FILE}: {type(exc).__name__}"
    if damaged:
        notice(f"cache entry {folder} is damaged ({why}): discarded, recomputing")
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return stored if stored.get("key") == plain(key) else None


def cached(root: str | os.PathLike, key: Any, compute: Callable[[Path], Any], name: str = "") -> CacheEntry:
    """The entry for ``key`` under ``root``: loaded when a complete one exists, else computed and stored.

    ``compute(folder)`` writes any files into ``folder`` and returns a JSON-serialisable value. It runs in
    ``<entry>.partial`` under a lock; a partial folder left by an interrupted computation is handed to the next
    call as it is (a computation may resume from what it finds there). ``name`` prefixes the folder's name for
    readability; the key alone decides what is reused.
    """
    root = Path(root)
    digest = stable_hash(key)
    folder = root / (f"{name}-{digest}" if name else digest)
    stored = _load_entry(folder, key)
    if stored is not None:
        return CacheEntry(folder, stored["value"], True, stored["files"])
    with file_lock(root / f".{folder.name}.lock"):
        stored = _load_entry(folder, key)  # another process may have finished it while we waited
        if stored is not None:
            return CacheEntry(folder, stored["value"], True, stored["files"])
        work = folder.with_name(folder.name + ".partial")
        work.mkdir(parents=True, exist_ok=True)
        value = plain(compute(work))
        files = {p.name: file_sha256(p) for p in sorted(work.iterdir())
                 if p.is_file() and p.name != ENTRY_FILE and not p.name.startswith(".")}
        atomic_write_json(work / ENTRY_FILE, {"key": key, "value": value, "files": files})
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(work, folder)
    return CacheEntry(folder, value, False, files)


def publish(source: str | os.PathLike, target: str | os.PathLike) -> str:
    """Copy ``source`` to ``target`` (atomically, only when their bytes differ); returns the SHA-256 of the bytes."""
    source, target = Path(source), Path(target)
    digest = file_sha256(source)
    if not target.is_file() or file_sha256(target) != digest:
        atomic_write_bytes(target, source.read_bytes())
    return digest
