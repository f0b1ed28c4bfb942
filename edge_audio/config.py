"""The typed run configuration: paths, seed and feature settings, built from chapter parameters.

Relative paths given by a user (``output_dir``, ``dataset_path``) are resolved against the project root, the
nearest folder at or above the current directory holding ``_toc.yml``; outside a checkout they are resolved
against the current directory. papermill runs a chapter in the caller's directory while nbval and Jupyter Book
run it in ``book/``: resolving this way makes the same parameter mean the same folder in all three.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: Environment variable that moves the default output folder (the test suite points it at a temporary folder).
OUTPUT_DIR_ENV = "EDGE_AUDIO_OUTPUT_DIR"

#: ``edge-audio run --mode``: the chapters (by number) each mode executes.
MODES: dict[str, tuple[str, ...]] = {"full": ("01", "02", "03", "04", "05"), "baseline": ("01", "02"),
                                     "quantization": ("03",), "nas": ("04",), "reports": ("05",)}


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the current directory) that holds ``_toc.yml``.

    Falls back to ``start`` itself when no such folder exists (the package used outside a checkout).
    """
    here = Path(start or os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "_toc.yml").is_file():
            return candidate
    return here


def resolve_path(path: str | os.PathLike) -> Path:
    """Resolve a user-given path: absolute paths as they are, relative ones against :func:`project_root`."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else (project_root() / path).resolve()


def default_output_dir() -> Path:
    """``$EDGE_AUDIO_OUTPUT_DIR`` when set, else ``output/`` under the project root."""
    return resolve_path(os.environ.get(OUTPUT_DIR_ENV) or "output")


@dataclass(frozen=True)
class FeatureConfig:
    """How a clip becomes a log-mel spectrogram: resample, mix to mono, pad/crop, mel filterbank, log."""

    sample_rate: int = 22050
    duration: float = 4.0
    n_mels: int = 64
    n_fft: int = 1024
    hop_length: int = 512
    fmin: float = 0.0
    fmax: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate < 1000:
            problems.append(f"sample_rate must be >= 1000 Hz, got {self.sample_rate}")
        if self.duration <= 0:
            problems.append(f"duration must be > 0 s, got {self.duration}")
        if self.n_mels < 1:
            problems.append(f"n_mels must be >= 1, got {self.n_mels}")
        if self.hop_length < 1 or self.n_fft < 8:
            problems.append(f"need n_fft >= 8 and hop_length >= 1, got {self.n_fft} and {self.hop_length}")
        if self.fmax is not None and not (self.fmin < self.fmax <= self.sample_rate / 2):
            problems.append(f"need fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}")
        if problems:
            raise ValueError("invalid feature settings: " + "; ".join(problems))

    @property
    def num_samples(self) -> int:
        """Samples per clip after padding/cropping."""
        return int(round(self.sample_rate * self.duration))

    @property
    def num_frames(self) -> int:
        """Time frames of the log-mel (centred STFT)."""
        return 1 + self.num_samples // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        """(n_mels, frames) of one clip's features."""
        return (self.n_mels, self.num_frames)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class OutputLayout:
    """The folders of one run's output tree (``models/``, ``reports/``, ``logs/``, ``cache/``, ``data/``)."""

    root: Path = field(default_factory=default_output_dir)

    @classmethod
    def at(cls, output_dir: str | os.PathLike | None = None) -> "OutputLayout":
        """The layout under ``output_dir`` (None: :func:`default_output_dir`), folders created."""
        layout = cls(default_output_dir() if output_dir is None else resolve_path(output_dir))
        for folder in (layout.models, layout.reports, layout.logs, layout.cache, layout.data):
            folder.mkdir(parents=True, exist_ok=True)
        return layout

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def data(self) -> Path:
        return self.root / "data"
