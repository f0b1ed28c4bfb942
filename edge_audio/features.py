"""Waveform -> log-mel features, the on-disk feature cache, and the same front end as an ``nn.Module``.

One implementation of the front end exists: :class:`LogMelFrontEnd` (``torch.stft`` -> power -> librosa's mel
filterbank -> natural log). The cache is filled with it, and an exported model can carry it in its graph, so a
deployed model given raw audio computes exactly what the model was trained on.

Loading a clip (:func:`load_audio`): read with soundfile, mix to mono, resample with soxr (high quality), then
crop or zero-pad at the end to ``duration`` seconds.

The cache (:func:`extract_features`) is one ``.npz`` per (dataset content, feature settings), written
atomically; extraction runs in worker processes on every core and shows a progress bar.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr
import torch
from torch import nn
from tqdm import tqdm

from .config import FeatureConfig
from .data import Dataset
from .storage import atomic_write_with, stable_hash

#: Bump when the feature computation changes, so old cache entries are not reused.
FEATURE_VERSION = 1
LOG_EPSILON = 1e-6


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


def load_audio(path: str | os.PathLike, config: FeatureConfig) -> np.ndarray:
    """One clip as float32 mono at ``config.sample_rate``, cropped or zero-padded to ``config.num_samples``."""
    audio, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != config.sample_rate:
        mono = soxr.resample(mono, rate, config.sample_rate, quality="HQ").astype(np.float32)
    out = np.zeros(config.num_samples, dtype=np.float32)
    n = min(mono.size, config.num_samples)
    out[:n] = mono[:n]
    return out


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
    labels: np.ndarray  # (clips,), int64 class ids
    folds: np.ndarray  # (clips,), int64
    config: FeatureConfig
    cache_path: Path
    cache_hit: bool
    seconds: float  # time this call spent: extracting on a miss, loading on a hit
    clips_per_second: float  # extraction throughput of the run that filled the cache entry (stored with it)

    def select(self, folds: list[int] | tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Features and labels of the clips in ``folds``."""
        mask = np.isin(self.folds, list(folds))
        return self.features[mask], self.labels[mask]


def feature_cache_key(fingerprint: str, config: FeatureConfig) -> str:
    """The cache key: the dataset's content fingerprint plus the feature settings and version."""
    return stable_hash({"dataset": fingerprint, "features": config.to_dict(), "version": FEATURE_VERSION})


def extract_features(dataset: Dataset, config: FeatureConfig, cache_dir: str | os.PathLike,
                     workers: int | None = None, progress: bool = True, chunk_size: int = 16,
                     fingerprint: str | None = None) -> FeatureSet:
    """Log-mel features of every clip of ``dataset``: loaded from the cache, or computed on all cores and cached.

    The cache entry lives at ``cache_dir/features-<key>.npz``; see :func:`feature_cache_key`. Pass the dataset's
    ``fingerprint`` when it is already known (computing it reads every audio file).
    """
    key = feature_cache_key(fingerprint or dataset.fingerprint(), config)
    path = Path(cache_dir) / f"features-{key}.npz"
    labels = dataset.table["class_id"].to_numpy(np.int64)
    folds = dataset.table["fold"].to_numpy(np.int64)
    start = time.perf_counter()
    if path.is_file():
        with np.load(path) as stored:
            features, throughput = stored["features"], float(stored["clips_per_second"])
        return FeatureSet(features, labels, folds, config, path, True, time.perf_counter() - start, throughput)

    paths = dataset.table["path"].tolist()
    chunks = [(paths[i:i + chunk_size], config) for i in range(0, len(paths), chunk_size)]
    workers = workers or len(os.sched_getaffinity(0))
    parts = []
    with tqdm(total=len(paths), desc="extracting log-mels", unit="clip", disable=not progress) as bar:
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for part in pool.map(_extract_chunk, chunks):
                    parts.append(part)
                    bar.update(len(part))
        else:
            for chunk in chunks:
                parts.append(_extract_chunk(chunk))
                bar.update(len(parts[-1]))
    features = np.concatenate(parts).astype(np.float32)
    seconds = time.perf_counter() - start
    throughput = len(paths) / seconds
    atomic_write_with(path, lambda handle: np.savez(handle, features=features, clips_per_second=throughput,
                                                    key=key), suffix=".npz")
    return FeatureSet(features, labels, folds, config, path, False, seconds, throughput)
