"""Datasets on disk: the UrbanSound8K and ESC-50 layouts, a generic CSV, validation, and the embedded default.

Every loader returns a :class:`Dataset`: the root folder plus one table with at least ``path`` (absolute),
``fold``, ``class_id``, ``class_name`` and ``label``. ``class_id`` is the dataset's own id (any integers, in any
order); ``label`` is the class's index 0..K-1 in ``Dataset.classes`` (ids sorted), what models are trained to
output. The class list is fixed when the metadata is read, so excluding bad files never renumbers the classes.
Folds are always the dataset's own; nothing here reshuffles clips across folds (the UrbanSound8K authors warn
that random splits inflate accuracy, because slices of one recording then land on both sides).

:func:`check_dataset` reads every file and reports the missing, unreadable or corrupt (truncated), empty,
silent and unsupported ones, each with a count (given a dataset's published index, see :mod:`edge_audio.download`,
also every file whose MD5 differs from the published one); :meth:`Dataset.valid_only` drops exactly the reported files,
and :func:`edge_audio.pipeline.prepare_data` stops with a clear error when more than a set fraction is bad.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm import tqdm

from .errors import DatasetError
from .parameters import default
from .storage import atomic_write_json, read_json
from .synth import URBANSOUND8K_CLASSES, SynthConfig, ensure_dataset

#: Extensions libsndfile can decode (checked against soundfile at import time).
SUPPORTED_EXTENSIONS = frozenset(f".{fmt.lower()}" for fmt in sf.available_formats()) | {".aif", ".oga"}


@dataclass
class Dataset:
    """A folder of audio files plus its metadata table (``path, fold, class_id, class_name, label`` at least) and
    its classes: ``(class_id, class_name)`` pairs in label order (label i is ``classes[i]``)."""

    root: Path
    layout: str
    table: pd.DataFrame
    classes: list[tuple[int, str]]
    name: str = ""
    #: What the dataset was loaded from, as `edge-audio data check` and `--dataset-path` take it: the folder of an
    #: UrbanSound8K or ESC-50 layout, the CSV file of a generic one.
    source: Path | None = None

    def __post_init__(self) -> None:
        self.source = self.root if self.source is None else self.source

    @property
    def class_names(self) -> list[str]:
        """Class names in label order (ids ascending)."""
        return [name for _, name in self.classes]

    @property
    def class_ids(self) -> list[int]:
        """The dataset's own class ids in label order."""
        return [class_id for class_id, _ in self.classes]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def folds(self) -> list[int]:
        return sorted(int(f) for f in self.table["fold"].unique())

    def __len__(self) -> int:
        return len(self.table)

    def valid_only(self, report: "ValidationReport") -> "Dataset":
        """This dataset without the files the report lists as problems."""
        bad = set(report.problems["path"])
        keep = self.table[~self.table["path"].isin(bad)].reset_index(drop=True)
        return Dataset(self.root, self.layout, keep, self.classes, self.name, self.source)

    def counts(self) -> pd.DataFrame:
        """Clips per class (rows) and fold (columns)."""
        return pd.crosstab(self.table["class_name"], self.table["fold"]).reindex(self.class_names, fill_value=0)

    def fingerprint(self, digests: "FileDigests | None" = None) -> str:
        """A digest of the dataset's content: the metadata rows and the bytes of every audio file.

        Two copies of a dataset in different folders have the same fingerprint; changing one byte of one file
        changes it. This keys every cache. ``digests`` remembers each file's digest by (path, size, mtime), so a
        dataset fingerprinted before is fingerprinted again without reading its audio.
        """
        rows = self.table[["path", "fold", "class_id", "class_name"]].copy()
        rows["path"] = [os.path.relpath(p, self.root) for p in rows["path"]]
        digests = digests or FileDigests(None)
        h = hashlib.blake2b(digest_size=16)
        h.update(rows.to_csv(index=False).encode())
        for digest in digests.of(self.table["path"].tolist()):
            h.update(digest.encode())
        digests.save()
        return h.hexdigest()


def _file_digest(path: str) -> str:
    """The BLAKE2b digest of a file's bytes (hex), or ``"missing"``; this reads the whole file."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "blake2b").hexdigest()
    except OSError:
        return "missing"


class FileDigests:
    """A memo of file digests keyed by (path, size, modification time): only new or changed files are read.

    Kept as JSON at ``path`` (None: in memory only). A file rewritten in place with the same size within the
    file system's timestamp resolution would be missed; every file system this runs on records nanoseconds.
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else Path(path)
        self._memo: dict[str, list] = (read_json(self.path, default={}) if self.path else {})
        self._changed = False

    def of(self, paths: list[str]) -> list[str]:
        """The digests of ``paths`` (hex; ``"missing"`` for a file that does not exist), reading only new files."""
        stats = [_stat(p) for p in paths]
        todo = [p for p, stat in zip(paths, stats) if stat is not None and self._memo.get(p, [None])[:2] != stat]
        with ThreadPoolExecutor(4) as pool:
            for path, digest in zip(todo, pool.map(_file_digest, todo)):
                self._memo[path] = [*_stat(path), digest]
                self._changed = True
        return [self._memo[p][2] if stat is not None else "missing" for p, stat in zip(paths, stats)]

    def save(self) -> None:
        """Write the memo if it learned anything new."""
        if self.path is not None and self._changed:
            atomic_write_json(self.path, self._memo)
            self._changed = False


def _stat(path: str) -> list[int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _read_metadata(csv_path: Path, required: tuple[str, ...], layout_hint: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(csv_path)
    except Exception as exc:  # pandas raises many types for bad CSVs
        raise DatasetError(f"cannot read metadata {csv_path}: {exc}") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DatasetError(
            f"metadata {csv_path} is missing required column(s) {', '.join(missing)}; "
            f"{layout_hint} needs columns {', '.join(required)} (found: {', '.join(map(str, table.columns))})")
    if table.empty:
        raise DatasetError(f"metadata {csv_path} has no rows")
    for column in required:
        blank = table[column].isna() | (table[column].astype("string").str.strip() == "")
        if blank.any():
            first = int(blank.to_numpy().argmax())
            row = ", ".join(f"{c}={v}" for c, v in table.iloc[first].items() if c != column and pd.notna(v))
            raise DatasetError(f"metadata {csv_path}: {int(blank.sum())} row(s) have no {column}, e.g. line "
                               f"{first + 2} ({row}): every row needs a value in each of {', '.join(required)}")
    return table


def _integer_column(table: pd.DataFrame, column: str, csv_path: Path) -> pd.Series:
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        example = table.loc[bad, column].iloc[0]
        raise DatasetError(f"metadata {csv_path}: column {column} must hold integers, found {example!r} "
                           f"in {int(bad.sum())} row(s)")
    return values.astype(int)


def dataset_from_table(root: Path, layout: str, table: pd.DataFrame, csv_path: Path, name: str,
                       source: Path | None = None) -> Dataset:
    """The dataset of a layout's metadata ``table`` (``path``, ``fold``, ``class_id``, ``class_name``; other columns
    kept) under ``root``: folds and ids checked as integers, ids and names one to one, labels 0..K-1 in id order, and
    every file present (``csv_path`` names the metadata in messages). Every layout's loader ends here."""
    table["fold"] = _integer_column(table, "fold", csv_path)
    table["class_id"] = _integer_column(table, "class_id", csv_path)
    table["class_name"] = table["class_name"].astype(str)
    per_id = table.groupby("class_id")["class_name"].nunique()
    per_name = table.groupby("class_name")["class_id"].nunique()
    if (per_id > 1).any() or (per_name > 1).any():
        raise DatasetError(f"metadata {csv_path}: class ids and class names do not match one to one")
    classes = [(int(i), str(n)) for i, n in table[["class_id", "class_name"]].drop_duplicates()
               .sort_values("class_id").itertuples(index=False)]
    if len(classes) < 2:
        raise DatasetError(f"metadata {csv_path}: a classifier needs at least 2 classes, found {len(classes)}")
    table["label"] = table["class_id"].map({class_id: label for label, (class_id, _) in enumerate(classes)})
    _check_paths(root, table, csv_path)
    ordered = ["path", "fold", "class_id", "class_name", "label"]
    table = table[ordered + [c for c in table.columns if c not in ordered]].reset_index(drop=True)
    return Dataset(root=root, layout=layout, table=table, classes=classes, name=name or root.name, source=source)


def _check_paths(root: Path, table: pd.DataFrame, csv_path: Path) -> None:
    """Every file inside the dataset's folder, and listed once: a file in two rows (two folds) would be trained on
    and tested on."""
    inside = Path(os.path.realpath(root))
    outside = [p for p in table["path"] if not Path(os.path.realpath(p)).is_relative_to(inside)]
    if outside:
        raise DatasetError(f"metadata {csv_path}: {len(outside)} file(s) resolve outside the dataset folder {root}, "
                           f"e.g. {outside[0]}: keep every file under it")
    resolved = pd.Series([os.path.realpath(p) for p in table["path"]], index=table.index)
    repeated = resolved[resolved.duplicated(keep=False)]
    if not repeated.empty:
        first = repeated.iloc[0]
        rows = table.loc[resolved == first]
        raise DatasetError(f"metadata {csv_path}: {repeated.nunique()} file(s) are listed more than once, e.g. "
                           f"{os.path.relpath(first, inside)} in folds {sorted(rows['fold'].tolist())} (rows "
                           f"{', '.join(str(i + 2) for i in rows.index)}): a clip must be in one fold only")


def check_training_classes(dataset: Dataset, protocol) -> None:
    """Every class has clips in the training folds of every split of ``protocol`` (an
    :class:`edge_audio.train.Protocol`): a class seen only when validating or testing cannot be learned, and its
    accuracy would say nothing about the model. A :class:`DatasetError` names the classes and the split."""
    for split in protocol.splits(dataset.folds):
        present = set(dataset.table.loc[dataset.table["fold"].isin(split.train_folds), "label"])
        missing = [name for label, name in enumerate(dataset.class_names) if label not in present]
        if missing:
            raise DatasetError(f"class(es) {', '.join(missing)} of {dataset.source} have no usable clips in the "
                               f"training folds {list(split.train_folds)} of {protocol.kind} (validation fold "
                               f"{split.val_fold}, test fold {split.test_fold}): add clips of them to those folds, "
                               "or leave them out")


def leaked_clips(dataset: Dataset, digests: "FileDigests") -> None:
    """Refuse a dataset in which the same audio (by content) is in two folds, under two names: it would be trained
    on in one split and tested on in another. Names both files of the first pair."""
    table = dataset.table.assign(digest=digests.of(dataset.table["path"].tolist()))
    table = table[table["digest"] != "missing"]
    folds = table.groupby("digest")["fold"].nunique()
    leaked = folds[folds > 1]
    if not leaked.empty:
        pair = table[table["digest"] == leaked.index[0]]
        named = " and ".join(f"{os.path.relpath(p, dataset.root)} (fold {f})" for p, f in
                             zip(pair["path"][:2], pair["fold"][:2]))
        raise DatasetError(f"{len(leaked)} clip(s) of {dataset.root} have the same audio in two folds, e.g. {named}: "
                           "remove the copies, or put them in one fold")


def load_urbansound8k(root: str | os.PathLike) -> Dataset:
    """An UrbanSound8K-layout folder: ``metadata/UrbanSound8K.csv`` and ``audio/foldN/<slice_file_name>``."""
    root = Path(root)
    csv_path = root / "metadata" / "UrbanSound8K.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path} not found; the UrbanSound8K layout is "
                           "metadata/UrbanSound8K.csv plus audio/fold1..fold10/")
    table = _read_metadata(csv_path, ("slice_file_name", "fold", "classID", "class"), "UrbanSound8K")
    table["fold"] = _integer_column(table, "fold", csv_path)
    table.insert(0, "path", [str(root / "audio" / f"fold{fold}" / name)
                             for fold, name in zip(table["fold"], table["slice_file_name"])])
    table["class_id"] = table["classID"]
    table["class_name"] = table["class"]
    return dataset_from_table(root, "urbansound8k", table, csv_path, "UrbanSound8K" if root.name == "UrbanSound8K" else "")


def load_esc50(root: str | os.PathLike) -> Dataset:
    """An ESC-50-layout folder: ``meta/esc50.csv`` (filename, fold, target, category) and ``audio/<filename>``."""
    root = Path(root)
    csv_path = root / "meta" / "esc50.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path} not found; the ESC-50 layout is meta/esc50.csv plus audio/")
    table = _read_metadata(csv_path, ("filename", "fold", "target", "category"), "ESC-50")
    table.insert(0, "path", [str(root / "audio" / name) for name in table["filename"]])
    table["class_id"] = table["target"]
    table["class_name"] = table["category"]
    return dataset_from_table(root, "esc50", table, csv_path, "ESC-50" if root.name.upper().startswith("ESC") else "")


def load_csv_dataset(csv_path: str | os.PathLike) -> Dataset:
    """A generic CSV with columns ``file, fold, label`` (optional ``class_id``); files relative to the CSV's folder.

    Without a ``class_id`` column, ids are assigned to labels in sorted order.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path} not found; {expected_layouts()}")
    table = _read_metadata(csv_path, ("file", "fold", "label"), "a generic CSV dataset")
    root = csv_path.parent
    table.insert(0, "path", [str(p if Path(p).is_absolute() else root / p) for p in table["file"].astype(str)])
    table["class_name"] = table["label"].astype(str)
    if "class_id" not in table.columns:
        ids = {label: i for i, label in enumerate(sorted(table["class_name"].unique()))}
        table["class_id"] = table["class_name"].map(ids)
    return dataset_from_table(root, "csv", table, csv_path, csv_path.stem, source=csv_path)


@dataclass(frozen=True)
class Layout:
    """A dataset layout on disk: its name, whether a path holds one, how to load it, and what it looks like (for
    the message when no layout matches)."""

    name: str
    holds: Callable[[Path], bool]
    load: Callable[[Path], "Dataset"]
    looks_like: str


#: Every dataset layout, tried in this order by :func:`detect_layout`. Adding one is its loader (returning
#: :func:`dataset_from_table`'s Dataset) and a :func:`register_layout` call.
LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> Layout:
    """Add ``layout`` to :data:`LAYOUTS`."""
    if layout.name in LAYOUTS or layout.name == "auto":
        raise ValueError(f"a dataset layout named {layout.name!r} exists already")
    LAYOUTS[layout.name] = layout
    return layout


register_layout(Layout("urbansound8k", lambda path: (path / "metadata" / "UrbanSound8K.csv").is_file(),
                       load_urbansound8k, "an UrbanSound8K folder (metadata/UrbanSound8K.csv, audio/fold1..fold10/)"))
register_layout(Layout("esc50", lambda path: (path / "meta" / "esc50.csv").is_file(), load_esc50,
                       "an ESC-50 folder (meta/esc50.csv, audio/)"))
register_layout(Layout("csv", lambda path: path.is_file() and path.suffix.lower() == ".csv", load_csv_dataset,
                       "a CSV file with columns file, fold, label"))


def expected_layouts() -> str:
    """What the registered layouts look like, for an error message."""
    shapes = [layout.looks_like for layout in LAYOUTS.values()]
    return "expected " + (", ".join(shapes[:-1]) + " or " + shapes[-1] if len(shapes) > 1 else shapes[0])


def detect_layout(path: str | os.PathLike) -> str:
    """Which of :data:`LAYOUTS` a path is, or a :class:`DatasetError` naming the path and the expected layouts."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset path {path} does not exist; {expected_layouts()}")
    layout = next((layout.name for layout in LAYOUTS.values() if layout.holds(path)), None)
    if layout is None:
        raise DatasetError(f"dataset path {path} has no known layout; {expected_layouts()}")
    return layout


def load_dataset(path: str | os.PathLike, layout: str = "auto") -> Dataset:
    """Load a dataset from ``path``; ``layout`` is one of :data:`LAYOUTS` or ``"auto"`` (detected)."""
    if layout == "auto":
        layout = detect_layout(path)
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown layout {layout!r}; choose one of auto, {', '.join(LAYOUTS)}")
    return LAYOUTS[layout].load(Path(path))


def default_dataset(data_dir: str | os.PathLike, synth: SynthConfig = SynthConfig(),
                    progress: bool = True) -> Dataset:
    """The embedded synthetic UrbanSound8K under ``data_dir``: generated on first use, loaded afterwards."""
    dataset = load_urbansound8k(ensure_dataset(data_dir, synth, progress=progress))
    dataset.name = "synthetic UrbanSound8K"
    return dataset


# ---------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------

PROBLEM_KINDS = ("missing", "unsupported format", "wrong format", "unreadable", "truncated", "empty", "silent")
#: What a file's first bytes say it is, by the extensions that name that format.
_SIGNATURES = (({".wav", ".wave"}, "WAV",
                lambda head: head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE"),
               ({".flac"}, "FLAC", lambda head: head[:4] == b"fLaC"),
               ({".ogg", ".oga", ".opus"}, "Ogg", lambda head: head[:4] == b"OggS"),
               ({".aif", ".aiff", ".aifc"}, "AIFF", lambda head: head[:4] == b"FORM" and head[8:11] == b"AIF"),
               ({".mp3"}, "MP3", lambda head: head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0)))
#: The kind only a check against a published index (file -> MD5) can find.
INDEX_PROBLEM = "checksum mismatch"


@dataclass
class ValidationReport:
    """What :func:`check_dataset` found: one row per file in ``files`` and one per bad file in ``problems``."""

    dataset: Dataset
    files: pd.DataFrame
    problems: pd.DataFrame
    silence_threshold: float = field(default=default("silence_threshold"))
    #: With a published index: how many files it lists, and those of them the metadata does not list.
    index_files: int | None = None
    not_in_metadata: list[str] = field(default_factory=list)

    @property
    def num_files(self) -> int:
        return len(self.files)

    @property
    def num_bad(self) -> int:
        return len(self.problems)

    @property
    def bad_fraction(self) -> float:
        return self.num_bad / max(self.num_files, 1)

    def counts(self) -> dict[str, int]:
        """Bad files per kind of problem, every kind listed (zero where none)."""
        found = self.problems["problem"].value_counts()
        kinds = PROBLEM_KINDS + ((INDEX_PROBLEM,) if self.index_files is not None else ())
        return {kind: int(found.get(kind, 0)) for kind in kinds}

    def __str__(self) -> str:
        lines = [f"Dataset check of {self.dataset.name} ({self.dataset.layout} layout); paths below are relative "
                 "to its folder",
                 f"  files listed: {self.num_files}, usable: {self.num_files - self.num_bad}, "
                 f"excluded: {self.num_bad} ({100 * self.bad_fraction:.1f}%)"]
        for kind, count in self.counts().items():
            lines.append(f"  {kind:<19}{count}")
        if self.index_files is not None:
            lines.append(f"  published index: {self.index_files} files, {len(self.not_in_metadata)} of them not "
                         "in the metadata" + "".join(f"\n  - not in the metadata: {p}" for p in self.not_in_metadata))
        for row in self.problems.itertuples():
            lines.append(f"  - {row.problem}: {os.path.relpath(row.path, self.dataset.root)} ({row.detail})")
        return "\n".join(lines)


def _inspect_file(path: str, silence_threshold: float) -> dict:
    """Properties of one audio file, or the problem that makes it unusable."""
    info = {"path": path, "problem": None, "detail": "", "sample_rate": np.nan, "channels": np.nan,
            "subtype": None, "duration": np.nan, "peak": np.nan}
    if not os.path.isfile(path):
        return {**info, "problem": "missing", "detail": "no such file"}
    suffix = Path(path).suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        return {**info, "problem": "unsupported format", "detail": f"extension {Path(path).suffix or '(none)'}"}
    if os.path.getsize(path) == 0:
        return {**info, "problem": "empty", "detail": "0 bytes"}
    mismatch = _format_mismatch(path, suffix)
    if mismatch:
        return {**info, "problem": "wrong format", "detail": mismatch}
    try:
        with sf.SoundFile(path) as handle:
            declared = handle.frames
            info.update(sample_rate=handle.samplerate, channels=handle.channels, subtype=handle.subtype,
                        duration=declared / handle.samplerate)
            audio = handle.read(dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports corrupt files through several exception types
        return {**info, "problem": "unreadable", "detail": str(exc).strip().splitlines()[-1][:120]}
    if declared == 0 or audio.size == 0:
        return {**info, "problem": "empty", "detail": "no audio frames"}
    expected = _declared_data_frames(path, handle.channels, handle.subtype) or declared
    if len(audio) < expected:
        return {**info, "problem": "truncated", "detail": f"{len(audio)} of {expected} frames present"}
    peak = float(np.max(np.abs(audio)))
    info["peak"] = peak
    if not np.isfinite(peak):
        return {**info, "problem": "unreadable", "detail": "non-finite samples"}
    if peak < silence_threshold:
        return {**info, "problem": "silent", "detail": f"peak {peak:.2e} < {silence_threshold:g}"}
    return info


def _format_mismatch(path: str, suffix: str) -> str | None:
    """Why a file's content is another format than its name says (``"named .wav, holds Ogg"``), or None."""
    with open(path, "rb") as handle:
        head = handle.read(12).ljust(12, b"\0")
    named = next(((name, test) for suffixes, name, test in _SIGNATURES if suffix in suffixes), None)
    if named is None or named[1](head):
        return None
    held = next((name for _, name, test in _SIGNATURES if test(head)), None)
    return None if held is None else f"named {suffix}, holds {held}"  # unknown bytes: reported as unreadable


_BYTES_PER_SAMPLE = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


def _declared_data_frames(path: str, channels: int, subtype: str) -> int | None:
    """Frames a WAV's ``data`` chunk header declares (libsndfile reports only what is present when truncated)."""
    width = _BYTES_PER_SAMPLE.get(subtype)
    if width is None or Path(path).suffix.lower() != ".wav":
        return None
    with open(path, "rb") as handle:
        header = handle.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                return size // (width * channels)
            handle.seek(size + (size & 1), os.SEEK_CUR)


def check_dataset(dataset: Dataset, silence_threshold: float = default("silence_threshold"), workers: int = 4,
                  progress: bool = True, index: dict[str, str] | None = None) -> ValidationReport:
    """Read every file of ``dataset`` and report its properties and problems (nothing is dropped here).

    ``index``: a published index as ``{path relative to the dataset folder: MD5}`` (see
    :func:`edge_audio.download.read_index`); every readable file it lists must then have that MD5, and the
    index's files the metadata does not list are named in the report.
    """
    from .download import md5_of

    def inspect(path: str) -> dict:
        info = _inspect_file(path, silence_threshold)
        expected = (index or {}).get(os.path.normpath(os.path.relpath(path, dataset.root)))
        if info["problem"] is None and expected is not None and md5_of(path) != expected:
            info.update(problem=INDEX_PROBLEM, detail=f"MD5 differs from the published index ({expected})")
        return info

    paths = dataset.table["path"].tolist()
    with ThreadPoolExecutor(workers) as pool:
        rows = list(tqdm(pool.map(inspect, paths), total=len(paths), desc="checking files", unit="file",
                         disable=not progress))
    files = pd.DataFrame(rows)
    files.insert(1, "fold", dataset.table["fold"].values)
    files.insert(2, "class_name", dataset.table["class_name"].values)
    problems = files[files["problem"].notna()][["path", "fold", "class_name", "problem", "detail"]]
    report = ValidationReport(dataset, files, problems.reset_index(drop=True), silence_threshold)
    if index is not None:
        listed = {os.path.normpath(os.path.relpath(p, dataset.root)) for p in paths}
        audio = {p for p in index if Path(p).suffix.lower() in SUPPORTED_EXTENSIONS}
        report.index_files = len(audio)
        report.not_in_metadata = sorted(audio - listed)
    return report

__all__ = [
    "Dataset", "DatasetError", "LAYOUTS", "Layout", "URBANSOUND8K_CLASSES", "ValidationReport", "check_dataset",
    "default_dataset", "detect_layout", "load_csv_dataset", "load_dataset", "load_esc50", "load_urbansound8k",
    "register_layout",
]
