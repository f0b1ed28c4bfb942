"""Waveform -> log-mel features, the on-disk feature cache, and the same front end as an ``nn.Module``.

One implementation of the front end exists: :class:`LogMelFrontEnd` (``torch.stft`` -> power -> librosa's mel
filterbank -> natural log). The cache is filled with it, and an exported model can carry it in its graph, so a
deployed model given raw audio computes exactly what the model was trained on.

Loading a clip (:func:`load_audio`): read with soundfile, mix to mono, resample with soxr (high quality), then
crop or zero-pad at the end to ``duration`` seconds.

The cache (:func:`extract_features`) is one :func:`~edge_audio.storage.cached` entry per (dataset content,
feature settings, feature code version, librosa and soxr versions); extraction runs in worker processes on every
core and shows a progress bar. The features are written clip by clip into a memory-mapped ``.npy`` (never the
whole set in memory at once, whatever the dataset's size) and loaded memory-mapped, so a chapter touches only the
folds it selects. An interrupted extraction resumes: the entry's partial folder keeps the clips written so far and
how many, and the next call goes on from there.
"""
from __future__ import annotations

import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr
import torch
from torch import nn
from tqdm import tqdm

from .data import Dataset
from .errors import DatasetError, ParameterError
from .machine import versions
from .parameters import default
from .processes import process_pool
from .storage import atomic_write_json, cached, read_json

#: Bump when the feature computation changes, so old cache entries are not reused.
FEATURE_VERSION = 2
LOG_EPSILON = 1e-6


@dataclass(frozen=True)
class FeatureConfig:
    """How a clip becomes a log-mel spectrogram: resample, mix to mono, pad/crop, mel filterbank, log."""

    sample_rate: int = default("sample_rate")
    duration: float = default("duration")
    n_mels: int = default("n_mels")
    n_fft: int = default("n_fft")
    hop_length: int = default("hop_length")
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
        elif self.hop_length > self.n_fft:
            problems.append(f"hop_length {self.hop_length} > n_fft {self.n_fft} skips samples between windows")
        if self.n_fft >= 8 and self.n_mels > self.n_fft // 2 + 1:
            problems.append(f"n_mels {self.n_mels} > n_fft / 2 + 1 = {self.n_fft // 2 + 1} frequency bins: mel bands "
                            "would be empty; lower n_mels or raise n_fft")
        if self.fmax is not None and not (self.fmin < self.fmax <= self.sample_rate / 2):
            problems.append(f"need fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}")
        if problems:
            raise ParameterError("invalid feature settings: " + "; ".join(problems))

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



class LogMelFrontEnd(nn.Module):
    """Raw mono waveform ``(batch, samples)`` -> log-mel ``(batch, 1, n_mels, frames)``.

    Centred STFT with a Hann window and reflect padding, power spectrum, librosa's Slaney mel filterbank,
    ``log(mel + 1e-6)``. Exports to ONNX (``STFT`` op, opset >= 17) through the dynamo exporter.
    """

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        mel = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels,
                                  fmin=config.fmin, fmax=config.fmax)
        self.register_buffer("mel_filterbank", torch.from_numpy(mel.astype(np.float32)), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(waveform, self.config.n_fft, self.config.hop_length, window=self.window,
                          center=True, pad_mode="reflect", return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2
        return torch.log(torch.matmul(self.mel_filterbank, power) + LOG_EPSILON).unsqueeze(1)


def read_mono(path: str | os.PathLike, sample_rate: int) -> np.ndarray:
    """A whole recording as float32 mono at ``sample_rate`` (channels averaged, resampled with soxr)."""
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)
    return mono


def fit_window(wave: np.ndarray, num_samples: int) -> np.ndarray:
    """``wave`` cropped or zero-padded at the end to ``num_samples``."""
    out = np.zeros(num_samples, dtype=np.float32)
    n = min(wave.size, num_samples)
    out[:n] = wave[:n]
    return out


def load_audio(path: str | os.PathLike, config: FeatureConfig) -> np.ndarray:
    """One clip as float32 mono at ``config.sample_rate``, cropped or zero-padded to ``config.num_samples``."""
    return fit_window(read_mono(path, config.sample_rate), config.num_samples)


def _extract_chunk(args: tuple[list[str], FeatureConfig]) -> np.ndarray:
    """Worker: log-mels of a list of files, one torch thread per process."""
    paths, config = args
    torch.set_num_threads(1)
    front_end = LogMelFrontEnd(config)
    waves = torch.from_numpy(np.stack([load_audio(p, config) for p in paths]))
    with torch.no_grad():
        return front_end(waves)[:, 0].numpy()


@dataclass
class FeatureSet:
    """Log-mel features of a dataset, aligned with its table: ``features[i]`` is ``dataset.table.iloc[i]``."""

    features: np.ndarray  # (clips, n_mels, frames), float32
    labels: np.ndarray  # (clips,), int64 class labels 0..K-1 (see edge_audio.data)
    folds: np.ndarray  # (clips,), int64
    num_classes: int
    config: FeatureConfig
    key: str  # the cache entry's name and its bytes' digest: identifies these features in every key built on them
    cache_hit: bool
    seconds: float  # time this call spent: extracting on a miss, loading on a hit
    clips_per_second: float  # extraction throughput of the run that filled the cache entry (stored with it)

    def select(self, folds: list[int] | tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Features and labels of the clips in ``folds``."""
        mask = np.isin(self.folds, list(folds))
        return self.features[mask], self.labels[mask]


def extract_features(dataset: Dataset, config: FeatureConfig, cache_root: str | os.PathLike, fingerprint: str,
                     workers: int | None = None, progress: bool = True, chunk_size: int = 16) -> FeatureSet:
    """Log-mel features of every clip of ``dataset``: loaded from the cache, or computed on all cores and cached.

    ``fingerprint`` is the dataset's content fingerprint (:meth:`~edge_audio.data.Dataset.fingerprint`); the
    entry's key adds the feature settings, :data:`FEATURE_VERSION` and the audio libraries' versions.
    """
    library = versions()
    key = {"dataset": fingerprint, "features": config.to_dict(), "version": FEATURE_VERSION,
           "librosa": library["librosa"], "soxr": library["soxr"], "torch": library["torch"]}
    start = time.perf_counter()

    def compute(folder: Path) -> dict:
        paths = dataset.table["path"].tolist()
        target, progress_file = folder / "features.npy", folder / "progress.json"
        shape = (len(paths), *config.shape)
        done = 0
        if target.is_file() and progress_file.is_file():  # an interrupted extraction: go on where it stopped
            out = np.load(target, mmap_mode="r+")
            done = read_json(progress_file)["clips"] if out.shape == shape else 0
        if not done:
            out = np.lib.format.open_memmap(target, mode="w+", dtype=np.float32, shape=shape)
        resumed = done
        chunks = [(paths[i:i + chunk_size], config) for i in range(done, len(paths), chunk_size)]
        count = min(workers or len(os.sched_getaffinity(0)), max(len(chunks), 1))
        with tqdm(total=len(paths), initial=done, desc="extracting log-mels", unit="clip",
                  disable=not progress) as bar, process_pool(count) if count > 1 else nullcontext() as pool:
            for part in (pool.map if pool else map)(_extract_chunk, chunks):
                out[done:done + len(part)] = part
                done += len(part)
                bar.update(len(part))
                if done == len(paths) or (done // chunk_size) % 32 == 0:  # the written clips survive a kill
                    out.flush()
                    atomic_write_json(progress_file, {"clips": done})
        finite = np.isfinite(out).all(axis=(1, 2))
        del out
        if not finite.all():  # never cached: a NaN here would train NaN runs
            bad = [paths[i] for i in np.flatnonzero(~finite)[:3]]
            raise DatasetError(f"{int((~finite).sum())} clip(s) give non-finite log-mel features (NaN or infinite "
                               f"samples in the audio), e.g. {', '.join(bad)}: fix or remove them")
        progress_file.unlink()
        return {"clips": len(paths), "clips_per_second": (len(paths) - resumed) / (time.perf_counter() - start)}

    entry = cached(Path(cache_root) / "features", key, compute, name="features")
    features = np.load(entry.file("features.npy"), mmap_mode="r")
    return FeatureSet(features, dataset.table["label"].to_numpy(np.int64), dataset.table["fold"].to_numpy(np.int64),
                      dataset.num_classes, config, f"{entry.path.name}-{entry.digests['features.npy'][:16]}",
                      entry.hit, time.perf_counter() - start,
                      float(entry.value["clips_per_second"]))
