"""Figures the chapters show. Each function draws one figure and returns it (the chapter calls ``plt.show()``)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from .config import FeatureConfig
from .data import Dataset, ValidationReport
from .features import LogMelFrontEnd, load_audio

BIT_DEPTH_NAMES = {"PCM_16": "16-bit PCM", "PCM_24": "24-bit PCM", "PCM_32": "32-bit PCM", "FLOAT": "32-bit float",
                   "DOUBLE": "64-bit float", "PCM_U8": "8-bit PCM"}


def plot_fold_counts(dataset: Dataset) -> plt.Figure:
    """Heatmap of clips per class (rows) and fold (columns)."""
    counts = dataset.counts()
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * counts.shape[1], 0.9 + 0.38 * counts.shape[0]))
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
    ax.set(xlabel="fold", ylabel="", title=f"Clips per class and fold ({len(dataset)} usable clips)")
    fig.tight_layout()
    return fig


def plot_file_properties(report: ValidationReport) -> plt.Figure:
    """The spread of sample rates, bit depths, channel counts and durations over the readable files."""
    files = report.files.dropna(subset=["sample_rate"])
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    rates = files["sample_rate"].astype(int).value_counts().sort_index()
    axes[0].bar([f"{r / 1000:g}" for r in rates.index], rates.values, color="tab:blue")
    axes[0].set(xlabel="sample rate (kHz)", ylabel="files")
    depths = files["subtype"].map(lambda s: BIT_DEPTH_NAMES.get(s, s)).value_counts()
    axes[1].bar(depths.index, depths.values, color="tab:orange")
    axes[1].set(xlabel="sample format")
    channels = files["channels"].astype(int).value_counts().sort_index()
    axes[2].bar([{1: "mono", 2: "stereo"}.get(c, str(c)) for c in channels.index], channels.values, color="tab:green")
    axes[2].set(xlabel="channels")
    axes[3].hist(files["duration"], bins=20, color="tab:purple")
    axes[3].set(xlabel="duration (s)")
    fig.suptitle(f"File properties of the {len(files)} readable files")
    fig.tight_layout()
    return fig


def plot_class_examples(dataset: Dataset, config: FeatureConfig) -> plt.Figure:
    """For each class, its first clip: the waveform after loading (mono, resampled, padded) and its log-mel."""
    front_end = LogMelFrontEnd(config)
    names = dataset.class_names
    fig, axes = plt.subplots(len(names), 2, figsize=(12, 1.5 * len(names)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.3]})
    seconds = np.arange(config.num_samples) / config.sample_rate
    for row, name in enumerate(names):
        path = dataset.table.loc[dataset.table["class_name"] == name, "path"].iloc[0]
        wave = load_audio(path, config)
        with torch.no_grad():
            logmel = front_end(torch.from_numpy(wave)[None])[0, 0].numpy()
        axes[row, 0].plot(seconds, wave, linewidth=0.4, color="tab:blue")
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
        axes[row, 0].set_yticks([])
        axes[row, 1].imshow(logmel, origin="lower", aspect="auto", cmap="magma",
                            extent=(0, config.duration, 0, config.n_mels))
        axes[row, 1].set_yticks([])
        for ax in axes[row]:
            if row < len(names) - 1:
                ax.set_xticks([])
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel(f"time (s); {config.n_mels} mel bands, low to high")
    axes[0, 0].set_title("waveform (mono, resampled, padded)")
    axes[0, 1].set_title("log-mel spectrogram")
    fig.tight_layout()
    return fig
