"""The real datasets, fetched through soundata, resumable, every file verified.

soundata (the field's maintained dataset loaders) knows each dataset's archive, the archive's MD5, how it unpacks,
and the dataset's published index: every file's path and MD5. :func:`download_dataset` takes all of that from
soundata and adds what its own ``download()`` lacks:

* **resume**: an archive is fetched into ``NAME.part``; an interrupted download leaves it there, and the next run
  asks the server for the rest (an HTTP ``Range`` request) instead of starting over;
* **a corrupt archive is not kept**: a finished ``.part`` whose MD5 is not the published one is deleted with a
  clear error, so the next run fetches it afresh (soundata would find the bad file again and fail forever);
* **the index beside the data**, not inside the installed package, so ``edge-audio data check DIR --index
  DIR/<index>.json`` can verify every file later;
* a progress bar, a mirror (``mirror``: a URL the archive and index file names are appended to) and a final
  check of every file against the index.

soundata itself unpacks the verified archive into the layout :mod:`edge_audio.data` reads (UrbanSound8K:
``metadata/UrbanSound8K.csv`` and ``audio/fold1..fold10``; ESC-50: ``meta/esc50.csv`` and ``audio/``).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .errors import DatasetError, DownloadError, ParameterError

#: edge-audio's name of a dataset -> soundata's loader name.
SOURCES = {"urbansound8k": "urbansound8k", "esc50": "esc50"}
_CHUNK = 1 << 20


def _loader(name: str):
    """soundata's loader module for one of :data:`SOURCES` (its ``REMOTES``, ``INDEXES`` and ``Dataset``)."""
    if name not in SOURCES:
        raise ParameterError(f"unknown dataset {name!r}; choose one of {', '.join(SOURCES)}")
    return importlib.import_module(f"soundata.datasets.{SOURCES[name]}")


def md5_of(path: str | os.PathLike) -> str:
    """The MD5 hex digest of a file (the checksum soundata publishes), read in 1 MiB blocks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, destination: Path, checksum: str, progress: bool = True, timeout: float = 60.0) -> int:
    """Download ``url`` to ``destination`` unless it is already there with the right MD5; the bytes resumed.

    The bytes arrive in ``destination.part``. A ``.part`` left by an interrupted run is continued with an HTTP
    ``Range`` request (a server that ignores it sends the whole file, and the download starts over). A download
    that ends short raises :class:`DownloadError` and keeps the ``.part`` for the next run; a complete one whose
    MD5 differs from ``checksum`` is deleted and raises :class:`DownloadError`.
    """
    destination = Path(destination)
    if destination.is_file():
        if md5_of(destination) == checksum:
            return 0
        destination.unlink()  # only a verified file is ever renamed into place: this one was damaged since
    part = destination.with_name(destination.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:  # 416: nothing after the offset, the .part is already whole
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        response = None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    if response is not None:
        with response:
            resumed = offset if response.status == 206 else 0
            length = response.headers.get("Content-Length")
            total = resumed + int(length) if length is not None else None
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                    total=total, initial=resumed, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=destination.name, disable=not progress) as bar:
                try:
                    for block in iter(lambda: response.read(_CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
                except OSError as exc:  # a reset connection or a timeout mid-body
                    raise DownloadError(f"download of {url} interrupted after {out.tell():,} bytes ({exc}); "
                                        "run the same command again to resume") from None
        received = part.stat().st_size
        if total is not None and received < total:
            raise DownloadError(f"download of {url} interrupted after {received:,} of {total:,} bytes; run the "
                                "same command again to resume")
        offset = resumed
    found = md5_of(part)
    if found != checksum:
        part.unlink()
        raise DownloadError(f"{destination.name} from {url} is corrupt: MD5 {found}, published {checksum}; the "
                            "broken file was deleted, run the same command again to fetch it afresh")
    part.rename(destination)
    return offset


def index_checksums(index: dict, source: str = "the index") -> dict[str, str]:
    """Every file a soundata index lists, as ``{relative path: MD5}`` (clips' files and the metadata files)."""
    if not isinstance(index, dict) or not isinstance(index.get("clips"), dict):
        raise DatasetError(f"{source} is not a soundata index (a JSON object with a 'clips' mapping)")
    entries = [entry for clip in index["clips"].values() for entry in clip.values()]
    entries += list((index.get("metadata") or {}).values())
    checksums = {}
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2):
            raise DatasetError(f"{source}: expected [path, md5] entries, found {entry!r}")
        if entry[0] is not None:
            checksums[os.path.normpath(entry[0])] = entry[1]
    return checksums


def read_index(path: str | os.PathLike) -> dict[str, str]:
    """:func:`index_checksums` of a soundata index file, with a clear error for a missing or broken one."""
    try:
        index = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"index {path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"index {path} is not JSON: {exc}") from None
    return index_checksums(index, f"index {path}")


@dataclass
class DownloadReport:
    """What :func:`download_dataset` did: the dataset folder, its index, and every file it verified."""

    name: str
    root: Path
    index_path: Path
    files_verified: int
    archives_fetched: list[str]
    bytes_resumed: int

    def __str__(self) -> str:
        fetched = ", ".join(self.archives_fetched) or "nothing (already complete)"
        resumed = f"; resumed {self.bytes_resumed:,} bytes left by an earlier run" if self.bytes_resumed else ""
        return (f"{self.name} in {self.root}: {self.files_verified} files match the published index "
                f"{self.index_path.name}; fetched {fetched}{resumed}\n"
                f"check it again later with: edge-audio data check {self.root} --index {self.index_path}")


def _verify(root: Path, checksums: dict[str, str], progress: bool) -> tuple[list[str], list[str]]:
    """The index's files missing under ``root`` and those whose MD5 differs."""
    missing, corrupt = [], []
    for relative, checksum in tqdm(checksums.items(), desc="verifying files", unit="file", disable=not progress):
        path = root / relative
        if not path.is_file():
            missing.append(relative)
        elif md5_of(path) != checksum:
            corrupt.append(relative)
    return missing, corrupt


def download_dataset(name: str, root: str | os.PathLike, mirror: str | None = None, keep_archive: bool = False,
                     progress: bool = True) -> DownloadReport:
    """Fetch dataset ``name`` (one of :data:`SOURCES`) into ``root``, resumable, and verify every file.

    The published index comes first (into ``root``); when every file it lists is already present with its MD5,
    nothing more is fetched. Otherwise each archive is fetched with :func:`fetch` (``mirror``: a base URL to take
    the files from instead of soundata's), unpacked by soundata, deleted unless ``keep_archive``, and every file
    is verified against the index. Anything missing or corrupt after that raises :class:`DownloadError`.
    """
    loader = _loader(name)
    if mirror is not None:
        parts = urllib.parse.urlsplit(mirror)
        if parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.scheme == "file"):
            raise ParameterError(f"--mirror {mirror!r} is not a URL: give http://HOST/FOLDER, https://... or "
                                 "file:///FOLDER, which the archive's and the index's file names are appended to")
    root = Path(root).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise DatasetError(f"{root} is a file; give the folder to download {name} into")
    root.mkdir(parents=True, exist_ok=True)

    def url_of(remote) -> str:
        return remote.url if mirror is None else f"{mirror.rstrip('/')}/{remote.filename}"

    index_remote = loader.INDEXES[loader.INDEXES["default"]].remote
    index_path = root / index_remote.filename
    resumed = fetch(url_of(index_remote), index_path, index_remote.checksum, progress)
    checksums = read_index(index_path)
    missing, corrupt = _verify(root, checksums, progress)
    fetched = []
    if missing or corrupt:
        dataset = loader.Dataset(data_home=str(root))
        for key, remote in list(loader.REMOTES.items()):  # soundata's download() adds an "index" entry
            if not isinstance(remote, list) and key != "index":
                resumed += fetch(url_of(remote), root / remote.filename, remote.checksum, progress)
                fetched.append(remote.filename)
                # soundata finds the verified archive in place, checks it again, unpacks it into its layout; its
                # log lines (advice about its own force_overwrite) do not apply here, so they are held back
                logging.disable(logging.WARNING)
                try:
                    dataset.download(partial_download=[key], cleanup=not keep_archive)
                finally:
                    logging.disable(logging.NOTSET)
        missing, corrupt = _verify(root, checksums, progress)
    if missing or corrupt:
        examples = ", ".join((missing + corrupt)[:3])
        raise DownloadError(f"{name} in {root}: after unpacking, {len(missing)} file(s) of the index are missing "
                            f"and {len(corrupt)} differ from their published MD5 (e.g. {examples}); soundata does not "
                            "unpack over existing folders, so delete the unpacked folders (a kept archive is reused) "
                            "and run the same command again")
    return DownloadReport(name, root, index_path, len(checksums), fetched, resumed)


__all__ = ["SOURCES", "DownloadReport", "download_dataset", "fetch", "index_checksums", "md5_of", "read_index"]
