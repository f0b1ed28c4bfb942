"""The embedded default dataset: a synthetic UrbanSound8K, written in the exact on-disk layout of the real one.

``audio/fold1..fold10/*.wav`` plus ``metadata/UrbanSound8K.csv`` with the real columns
(``slice_file_name,fsID,start,end,salience,fold,classID,class``) and the real ten classes.

How a clip is made (generator 2, the benchmark the book runs):

* A class is a set of **sub-types** (three per class), and a sub-type is a **pair of sound layers** from a
  vocabulary of 27: a texture (a harmonic tone, a noise band, or knocks: short decaying hits) in one of three
  neighbouring frequency bands (200-320, 520-820, 1350-2100 Hz, so every sample rate keeps them) with a motion
  (steady, pulsed on and off at 1.5-3 Hz, or gliding up and down by 20-35%). Every layer belongs to sub-types of
  two or three classes and no layer is twice in one class (:data:`CLASS_SUBTYPES`, fixed): no single layer
  names a class, only the combination does, and a class's sub-types sound unrelated. A model must represent 30
  such combinations, each from a few spectro-temporal details, which is what a small network runs out of
  capacity for: accuracy grows with capacity, as on real recordings.
* Each layer sounds in one or two events of 0.8-2.5 s at random times in the clip, so the two layers of a clip
  may overlap or follow each other (events spread in time).
* A *source* (``fsID``) draws one sub-type of its class and its own fixed parameters (centre frequencies, rates,
  levels) and yields several slices, all in one fold, as in the real data, so a model cannot score by
  recognising a recording it saw in training.
* Each slice gets background noise at a random SNR (lower for ``salience`` 2, the background sounds) and, with
  probability ``distractor_prob``, a quieter third layer that is not one of its own.
* The class names are the real dataset's, for the layout; the sounds do not imitate them.

Generator 1 (``generator=1``, the chapters' own quick default) gives every class a parametric synthesizer of that kind of sound
(siren: swept tones; jackhammer: an impulse train; ...), with a quieter event of another class as the
distractor and three pairs that share parameter ranges (drilling/jackhammer, engine_idling/air_conditioner,
children_playing/street_music). Its errors come from noise a model cannot learn away, not from capacity: on it
models from 48k to 745k parameters score alike.

Files are heterogeneous like the real dataset (both generators): sample rates from 8 to 48 kHz, 16- and 24-bit PCM
and 32-bit float WAV, mono and stereo, 0.5-4 s long.

Difficulty is also set by ``snr_db`` (the background-noise SNR range, in dB) and ``distractor_prob``; the README
records the accuracies the baselines reach at the defaults.

Everything derives from ``seed`` through NumPy ``SeedSequence`` keyed by (source, slice), so the same seed gives
byte-identical files whatever the number of worker processes.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
from scipy import signal
from scipy.io import wavfile
from tqdm import tqdm

from .errors import ParameterError, PathError
from .parameters import default
from .processes import process_pool
from .storage import atomic_write_json, file_lock, read_json

#: The ten UrbanSound8K classes, in classID order.
URBANSOUND8K_CLASSES = (
    "air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling",
    "engine_idling", "gun_shot", "jackhammer", "siren", "street_music",
)
URBANSOUND8K_COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
NUM_FOLDS = 10
SAMPLE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
SAMPLE_RATE_WEIGHTS = (0.05, 0.07, 0.12, 0.16, 0.08, 0.10, 0.27, 0.15)
SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")
SUBTYPE_WEIGHTS = (0.6, 0.3, 0.1)
#: The generators: 1 is the first (classes told apart by their own synthesizer; capacity hardly matters), 2 the
#: default (compositional sub-types; accuracy grows with model capacity). A generator's output never changes:
#: a change is a new version, so a cached dataset of an old one is never mistaken for the new one.
GENERATORS = (1, 2)
#: What each generator makes, in a sentence (chapter 1 quotes the one that ran).
GENERATOR_SUMMARIES = {
    1: "It was made by generator 1: every class is a parametric synthesizer of that kind of sound (siren: swept "
       "tones; jackhammer: an impulse train; ...), with quieter distractor events and three pairs of classes that "
       "share parameter ranges; its errors come from noise, so model capacity hardly matters on it.",
    2: "It was made by generator 2, the benchmark: each class is three unrelated sub-types, each a pair of sound "
       "layers (a tone, a noise band or knocks, in one of three neighbouring bands, steady, pulsed or gliding), and "
       "every layer also belongs to other classes, so only the combination names a class and accuracy grows with "
       "model capacity. The class names are UrbanSound8K's, for the layout; the sounds do not imitate them.",
}
_COMPLETE_MARKER = "synth_info.json"


#: The folds holdout validates and tests on (the last two), which ``eval_clips_per_class_per_fold`` enlarges.
EVAL_FOLDS = (9, 10)


@dataclass(frozen=True)
class SynthConfig:
    """Settings of the synthetic dataset; together with the generator version they name its folder."""

    seed: int = default("seed")
    generator: int = default("synth_generator")
    clips_per_class_per_fold: int = default("synth_clips_per_class_per_fold")
    #: Clips per class in folds 9 and 10 (holdout's validation and test folds), or None: as many as the others.
    #: Evaluation costs little next to training, and more clips there are what resolves small differences.
    eval_clips_per_class_per_fold: int | None = default("synth_eval_clips_per_class_per_fold")
    snr_db: tuple[float, float] = (0.0, 20.0)
    distractor_prob: float = 0.35

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ParameterError(f"generator must be one of {GENERATORS}, got {self.generator!r}")
        if self.clips_per_class_per_fold < 1:
            raise ParameterError(f"clips_per_class_per_fold must be >= 1, got {self.clips_per_class_per_fold}")
        if self.eval_clips_per_class_per_fold is not None and self.eval_clips_per_class_per_fold < 1:
            raise ParameterError(f"eval_clips_per_class_per_fold must be None or >= 1, got "
                                 f"{self.eval_clips_per_class_per_fold}")
        if len(self.snr_db) != 2 or self.snr_db[0] > self.snr_db[1]:
            raise ParameterError(f"snr_db must be (low, high) with low <= high, got {self.snr_db}")
        if not 0.0 <= self.distractor_prob <= 1.0:
            raise ParameterError(f"distractor_prob must be in [0, 1], got {self.distractor_prob}")

    @property
    def folder_name(self) -> str:
        lo, hi = self.snr_db
        evaluation = "" if self.eval_clips_per_class_per_fold is None else f"-e{self.eval_clips_per_class_per_fold}"
        return (f"synth-us8k-v{self.generator}-seed{self.seed}-k{self.clips_per_class_per_fold}{evaluation}"
                f"-snr{lo:g}_{hi:g}-d{self.distractor_prob:g}")


# ---------------------------------------------------------------------------------------------------------------
# Signal building blocks
# ---------------------------------------------------------------------------------------------------------------

def _coloured_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=float)
    freqs[0] = 1.0
    spectrum /= freqs ** (exponent / 2.0)
    out = np.fft.irfft(spectrum, n)
    return out / (np.sqrt(np.mean(out ** 2)) + 1e-12)


def _bandpass(x: np.ndarray, sr: int, low: float, high: float, order: int = 4) -> np.ndarray:
    """Butterworth band-pass clipped to the clip's Nyquist band (low sample rates lose the top, as real ones do)."""
    nyq = sr / 2.0
    low = min(max(low, 20.0), 0.8 * nyq)
    high = min(max(high, low * 1.2), 0.95 * nyq)
    sos = signal.butter(order, [low / nyq, high / nyq], btype="band", output="sos")
    return signal.sosfilt(sos, x)


def _lowpass(x: np.ndarray, sr: int, cutoff: float, order: int = 4) -> np.ndarray:
    nyq = sr / 2.0
    sos = signal.butter(order, min(cutoff, 0.95 * nyq) / nyq, btype="low", output="sos")
    return signal.sosfilt(sos, x)


def _harmonics(freq: np.ndarray, sr: int, amplitudes: np.ndarray, phase0: float = 0.0) -> np.ndarray:
    """Sum of harmonics k*freq(t) with the given amplitudes, skipping those above Nyquist."""
    phase = 2 * np.pi * np.cumsum(freq) / sr + phase0
    out = np.zeros_like(freq)
    top = float(np.max(freq))
    for k, amp in enumerate(amplitudes, start=1):
        if k * top >= 0.45 * sr:
            break
        out += amp * np.sin(k * phase)
    return out


def _bursts(n: int, sr: int, onsets: np.ndarray, lengths: np.ndarray, attack: float, release: float) -> np.ndarray:
    """An envelope made of bursts: linear attack, flat, exponential release."""
    env = np.zeros(n)
    for onset, length in zip(onsets, lengths):
        start, stop = max(0, int(onset * sr)), int((onset + length) * sr)
        if start >= n:
            continue
        seg = np.arange(max(stop, start + 1) - start) / sr
        shape = np.minimum(1.0, seg / max(attack, 1e-4)) * np.exp(-np.maximum(0.0, seg - attack) / max(release, 1e-4))
        stop = min(start + seg.size, n)
        env[start:stop] = np.maximum(env[start:stop], shape[: stop - start])
    return env


def _event_times(rng: np.random.Generator, duration: float, count: int, min_len: float, max_len: float):
    onsets = np.sort(rng.uniform(0.0, max(duration - min_len, 0.01), count))
    return onsets, rng.uniform(min_len, max_len, count)


# ---------------------------------------------------------------------------------------------------------------
# One synthesizer per class: params(rng) draws a source's fixed parameters, render(p, rng, n, sr) makes a slice.
# ---------------------------------------------------------------------------------------------------------------

def _air_conditioner_params(rng):
    return {"hum": rng.uniform(45, 110), "tilt": rng.uniform(0.6, 1.6), "hum_level": rng.uniform(0.15, 0.6),
            "band": rng.uniform(300, 2500), "harm_decay": rng.uniform(0.4, 0.8)}


def _air_conditioner(p, rng, n, sr):
    t = np.arange(n) / sr
    noise = _lowpass(_coloured_noise(rng, n, p["tilt"]), sr, p["band"])
    freq = p["hum"] * (1 + 0.002 * np.sin(2 * np.pi * 0.3 * t))
    hum = _harmonics(freq, sr, p["harm_decay"] ** np.arange(8))
    return noise / (np.std(noise) + 1e-9) + p["hum_level"] * 3 * hum / (np.std(hum) + 1e-9)


def _engine_idling_params(rng):
    return {"f0": rng.uniform(22, 65), "jitter": rng.uniform(0.01, 0.06), "tilt": rng.uniform(0.8, 1.8),
            "noise_level": rng.uniform(0.2, 0.8), "harm_decay": rng.uniform(0.75, 0.92)}


def _engine_idling(p, rng, n, sr):
    # Cycle-to-cycle jitter: a slowly wandering fundamental plus fast random perturbation.
    wander = np.cumsum(rng.standard_normal(n)) / np.sqrt(sr * 2.0)
    wander = _lowpass(wander, sr, 8.0, order=2)
    freq = p["f0"] * (1 + p["jitter"] * np.clip(wander, -3, 3))
    tone = _harmonics(freq, sr, p["harm_decay"] ** np.arange(24))
    noise = _lowpass(_coloured_noise(rng, n, p["tilt"]), sr, 1500)
    return tone / (np.std(tone) + 1e-9) + p["noise_level"] * noise


def _car_horn_params(rng):
    return {"f0": rng.uniform(280, 520), "second": rng.uniform(1.18, 1.33), "decay": rng.uniform(0.55, 0.85),
            "honks": int(rng.integers(1, 4))}


def _car_horn(p, rng, n, sr):
    dur = n / sr
    onsets, lengths = _event_times(rng, dur, p["honks"], 0.15, min(1.5, dur))
    env = _bursts(n, sr, onsets, lengths, 0.01, 0.6)
    freq = np.full(n, p["f0"] * rng.uniform(0.98, 1.02))
    amps = p["decay"] ** np.arange(12)
    tone = _harmonics(freq, sr, amps) + 0.7 * _harmonics(freq * p["second"], sr, amps)
    return env * np.tanh(1.5 * tone)


def _children_playing_params(rng):
    return {"voices": int(rng.integers(2, 6)), "f0": rng.uniform(220, 420), "syllable_rate": rng.uniform(2.5, 6),
            "formant": rng.uniform(700, 1400)}


def _children_playing(p, rng, n, sr):
    t = np.arange(n) / sr
    dur = n / sr
    out = np.zeros(n)
    for _ in range(p["voices"]):
        f0 = p["f0"] * rng.uniform(0.8, 1.25)
        contour = f0 * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 6.3)))
        voiced = _harmonics(contour, sr, 0.7 ** np.arange(10))
        count = max(1, int(p["syllable_rate"] * dur * rng.uniform(0.5, 1.0)))
        onsets, lengths = _event_times(rng, dur, count, 0.08, 0.3)
        out += rng.uniform(0.4, 1.0) * voiced * _bursts(n, sr, onsets, lengths, 0.02, 0.08)
    shaped = _bandpass(out, sr, p["formant"] * 0.4, p["formant"] * 3.0, order=2)
    return shaped + 0.1 * _bandpass(rng.standard_normal(n), sr, 1000, 6000) * np.abs(shaped).max()


def _street_music_params(rng):
    return {"root": rng.uniform(180, 400), "tempo": rng.uniform(80, 160), "timbre": rng.uniform(0.45, 0.8),
            "drums": bool(rng.random() < 0.6), "scale": int(rng.integers(0, 2))}


def _street_music(p, rng, n, sr):
    dur = n / sr
    beat = 60.0 / p["tempo"]
    steps = (0, 2, 4, 5, 7, 9, 11, 12) if p["scale"] == 0 else (0, 3, 5, 7, 10, 12, 15)
    out = np.zeros(n)
    onset = rng.uniform(0, beat)
    while onset < dur:
        length = beat * rng.choice([0.5, 1.0, 1.0, 2.0])
        start = int(onset * sr)
        stop = min(n, int((onset + 2.8 * length) * sr))  # the note and its release tail
        freq = np.full(stop - start, p["root"] * 2 ** (rng.choice(steps) / 12.0))
        env = _bursts(stop - start, sr, np.array([0.0]), np.array([length]), 0.01, length * 0.6)
        out[start:stop] += env * _harmonics(freq, sr, p["timbre"] ** np.arange(10))
        onset += length
    if p["drums"]:
        kicks = np.arange(rng.uniform(0, beat), dur, beat)
        env = _bursts(n, sr, kicks, np.full(kicks.size, 0.05), 0.002, 0.06)
        out += 0.8 * env * _lowpass(rng.standard_normal(n), sr, 200) * 4
    return out


def _dog_bark_params(rng):
    return {"f0": rng.uniform(280, 750), "drop": rng.uniform(0.25, 0.6), "formant": rng.uniform(600, 1600),
            "barks": int(rng.integers(1, 6)), "rough": rng.uniform(0.1, 0.5)}


def _dog_bark(p, rng, n, sr):
    dur = n / sr
    onsets, lengths = _event_times(rng, dur, p["barks"], 0.08, 0.25)
    out = np.zeros(n)
    for onset, length in zip(onsets, lengths):
        start, stop = int(onset * sr), min(n, int((onset + length) * sr))
        if stop <= start:
            continue
        seg = np.arange(stop - start) / sr
        freq = p["f0"] * (1 - p["drop"] * seg / length)
        tone = _harmonics(freq, sr, 0.75 ** np.arange(12))
        tone += p["rough"] * rng.standard_normal(seg.size)
        out[start:stop] += tone * np.sin(np.pi * seg / length) ** 0.5
    return _bandpass(out, sr, p["formant"] * 0.3, p["formant"] * 4.0, order=2)


def _drilling_params(rng):
    return {"centre": rng.uniform(1500, 4500), "rate": rng.uniform(14, 40), "whine": rng.uniform(700, 2600),
            "depth": rng.uniform(0.3, 0.9), "whine_level": rng.uniform(0.2, 0.9)}


def _drilling(p, rng, n, sr):
    t = np.arange(n) / sr
    noise = _bandpass(rng.standard_normal(n), sr, p["centre"] * 0.6, p["centre"] * 1.6)
    am = 1 - p["depth"] * 0.5 * (1 + np.sin(2 * np.pi * p["rate"] * t))
    freq = p["whine"] * (1 + 0.01 * np.sin(2 * np.pi * p["rate"] * t))
    whine = _harmonics(freq, sr, np.array([1.0, 0.5, 0.25]))
    return am * (noise / (np.std(noise) + 1e-9) + p["whine_level"] * whine)


def _jackhammer_params(rng):
    return {"rate": rng.uniform(10, 30), "centre": rng.uniform(1200, 4000), "decay": rng.uniform(0.01, 0.035),
            "body": rng.uniform(120, 400), "regularity": rng.uniform(0.005, 0.04)}


def _jackhammer(p, rng, n, sr):
    dur = n / sr
    period = 1.0 / p["rate"]
    hits = np.arange(rng.uniform(0, period), dur, period)
    hits = hits + rng.normal(0, p["regularity"] * period, hits.size)
    env = _bursts(n, sr, hits, np.full(hits.size, period), 0.001, p["decay"])
    bright = _bandpass(rng.standard_normal(n), sr, p["centre"] * 0.5, p["centre"] * 1.8)
    body = _bandpass(rng.standard_normal(n), sr, p["body"] * 0.7, p["body"] * 1.5)
    return env * (bright + 0.8 * body / (np.std(body) + 1e-9) * np.std(bright))


def _gun_shot_params(rng):
    return {"shots": int(rng.integers(1, 4)), "decay": rng.uniform(0.008, 0.04), "reverb": rng.uniform(0.2, 0.9),
            "tail_cutoff": rng.uniform(800, 3500)}


def _gun_shot(p, rng, n, sr):
    dur = n / sr
    onsets, _ = _event_times(rng, dur, p["shots"], 0.05, 0.1)
    crack = _bursts(n, sr, onsets, np.full(onsets.size, 0.5), 0.0005, p["decay"])
    tail = _bursts(n, sr, onsets, np.full(onsets.size, 1.5), 0.005, p["reverb"])
    noise = rng.standard_normal(n)
    return crack * noise * 3 + 0.5 * tail * _lowpass(noise, sr, p["tail_cutoff"])


def _siren_params(rng):
    return {"centre": rng.uniform(550, 1400), "depth": rng.uniform(0.15, 0.45), "rate": rng.uniform(0.15, 4.0),
            "shape": int(rng.integers(0, 2)), "harm": rng.uniform(0.2, 0.6), "doppler": rng.uniform(-0.08, 0.08)}


def _siren(p, rng, n, sr):
    t = np.arange(n) / sr
    phase = 2 * np.pi * p["rate"] * t + rng.uniform(0, 2 * np.pi)
    sweep = np.sin(phase) if p["shape"] == 0 else signal.sawtooth(phase, 0.9)
    freq = p["centre"] * (1 + p["depth"] * sweep) * (1 + p["doppler"] * t / max(t[-1], 1e-3))
    return _harmonics(freq, sr, p["harm"] ** np.arange(4))


_SYNTHESIZERS: dict[str, tuple[Callable, Callable]] = {
    "air_conditioner": (_air_conditioner_params, _air_conditioner),
    "car_horn": (_car_horn_params, _car_horn),
    "children_playing": (_children_playing_params, _children_playing),
    "dog_bark": (_dog_bark_params, _dog_bark),
    "drilling": (_drilling_params, _drilling),
    "engine_idling": (_engine_idling_params, _engine_idling),
    "gun_shot": (_gun_shot_params, _gun_shot),
    "jackhammer": (_jackhammer_params, _jackhammer),
    "siren": (_siren_params, _siren),
    "street_music": (_street_music_params, _street_music),
}


# ---------------------------------------------------------------------------------------------------------------
# The dataset plan and the writer
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _SliceJob:
    fs_id: int
    class_id: int
    fold: int
    slice_index: int
    start: float
    duration: float
    salience: int
    sample_rate: int
    subtype: str
    channels: int

    @property
    def file_name(self) -> str:
        return f"{self.fs_id}-{self.class_id}-0-{self.slice_index}.wav"


def _plan(config: SynthConfig) -> list[_SliceJob]:
    """Split K clips per (class, fold) into sources of 1-4 slices and draw every file-level property."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0]))
    jobs: list[_SliceJob] = []
    fs_ids = rng.permutation(np.arange(10000, 200000))
    next_id = 0
    for fold in range(1, NUM_FOLDS + 1):
        for class_id in range(len(URBANSOUND8K_CLASSES)):
            remaining = (config.eval_clips_per_class_per_fold if fold in EVAL_FOLDS and
                         config.eval_clips_per_class_per_fold is not None else config.clips_per_class_per_fold)
            while remaining > 0:
                n_slices = int(min(remaining, rng.integers(1, 5)))
                fs_id = int(fs_ids[next_id])
                next_id += 1
                salience = int(rng.choice([1, 2], p=[0.65, 0.35]))
                sample_rate = int(rng.choice(SAMPLE_RATES, p=SAMPLE_RATE_WEIGHTS))
                subtype = str(rng.choice(SUBTYPES, p=SUBTYPE_WEIGHTS))
                channels = int(rng.choice([1, 2], p=[0.5, 0.5]))
                start = float(np.round(rng.uniform(0, 30), 6))
                for index in range(n_slices):
                    duration = 4.0 if rng.random() < 0.6 else float(np.round(rng.uniform(0.5, 4.0), 3))
                    jobs.append(_SliceJob(fs_id, class_id, fold, index, start, duration, salience,
                                          sample_rate, subtype, channels))
                    start = float(np.round(start + duration, 6))
                remaining -= n_slices
    return jobs


def _render_slice(job: _SliceJob, config: SynthConfig) -> bytes:
    """The WAV bytes of one slice; deterministic in (config.seed, fsID, slice index)."""
    draw_source, render_event = _GENERATOR_FUNCTIONS[config.generator]
    source_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1, job.fs_id]))
    source = draw_source(job.class_id, source_rng)
    snr_lo, snr_hi = config.snr_db
    source_snr = source_rng.uniform(snr_lo, snr_hi) - (6.0 if job.salience == 2 else 0.0)
    noise_tilt = source_rng.uniform(0.3, 1.8)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 2, job.fs_id, job.slice_index]))
    sr, n = job.sample_rate, max(16, int(round(job.duration * job.sample_rate)))

    event = render_event(source, job.class_id, config, rng, n, sr)
    noise = _coloured_noise(rng, n, noise_tilt)
    snr = source_snr + rng.normal(0, 2.0)
    mix = event + noise * 10 ** (-snr / 20)
    if job.channels == 2:
        delay = int(rng.integers(0, max(2, sr // 2000)))
        right = np.roll(mix, delay) * rng.uniform(0.7, 1.0) + 0.05 * rng.standard_normal(n) * np.std(mix)
        mix = np.stack([mix, right], axis=1)
    mix = mix / (np.max(np.abs(mix)) + 1e-9) * rng.uniform(0.1, 0.9)
    buffer = io.BytesIO()
    if job.subtype == "FLOAT":
        # libsndfile stamps float WAVs with a PEAK chunk holding the write time; scipy writes none, so the bytes
        # depend on the samples alone.
        wavfile.write(buffer, sr, mix.astype(np.float32))
    else:
        sf.write(buffer, mix.astype(np.float32), sr, subtype=job.subtype, format="WAV")
    return buffer.getvalue()


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-9)


# Generator 1: one synthesizer per class, a quieter event of another class as the distractor.

def _v1_source(class_id: int, source_rng: np.random.Generator) -> dict:
    return _SYNTHESIZERS[URBANSOUND8K_CLASSES[class_id]][0](source_rng)


def _v1_event(source: dict, class_id: int, config: SynthConfig, rng: np.random.Generator, n: int, sr: int):
    event = _unit_rms(_SYNTHESIZERS[URBANSOUND8K_CLASSES[class_id]][1](source, rng, n, sr))
    if rng.random() < config.distractor_prob:
        other = (class_id + int(rng.integers(1, len(URBANSOUND8K_CLASSES)))) % len(URBANSOUND8K_CLASSES)
        other_params, other_render = _SYNTHESIZERS[URBANSOUND8K_CLASSES[other]]
        distractor = _unit_rms(other_render(other_params(rng), rng, n, sr))
        event = event + distractor * 10 ** (-rng.uniform(6, 15) / 20)
    return event


# Generator 2: compositional sub-types (see the module docstring).

#: A layer is a texture in a frequency band with a motion: 3 x 3 x 3 = 27 layers.
LAYER_TEXTURES = ("tone", "noise", "knocks")
LAYER_BANDS = ((200.0, 320.0), (520.0, 820.0), (1350.0, 2100.0))  # Hz: the range a source's centre is drawn from
LAYER_MOTIONS = ("steady", "pulsed", "sweep")
LAYERS = tuple((texture, band, motion) for texture in range(3) for band in range(3) for motion in range(3))
SUBTYPES_PER_CLASS = 3


def _subtype_table() -> tuple[tuple[tuple[int, int], ...], ...]:
    """Each class's sub-types, as pairs of layer indices: fixed (drawn once from a constant seed), every pair
    distinct, no layer twice in one class, and the least-used layers taken first, so that every layer lies in two
    or three classes: a layer alone never names a class, only the pair does."""
    rng = np.random.default_rng(20261203)
    uses = np.zeros(len(LAYERS), dtype=int)
    table: list[list[tuple[int, int]]] = [[] for _ in URBANSOUND8K_CLASSES]
    chosen: set[tuple[int, int]] = set()
    for _ in range(SUBTYPES_PER_CLASS):
        for subtypes in table:
            taken = {layer for pair in subtypes for layer in pair}
            candidates = [(a, b) for a in range(len(LAYERS)) for b in range(a + 1, len(LAYERS))
                          if a not in taken and b not in taken and (a, b) not in chosen]
            ties = rng.random(len(candidates))
            a, b = candidates[min(range(len(candidates)), key=lambda i: (
                max(uses[candidates[i][0]], uses[candidates[i][1]]), uses[list(candidates[i])].sum(), ties[i]))]
            subtypes.append((a, b))
            chosen.add((a, b))
            uses[[a, b]] += 1
    return tuple(tuple(subtypes) for subtypes in table)


CLASS_SUBTYPES = _subtype_table()


def _layer_params(layer: int, rng: np.random.Generator) -> dict:
    texture, band, motion = LAYERS[layer]
    return {"layer": layer, "centre": rng.uniform(*LAYER_BANDS[band]), "pulse_rate": rng.uniform(1.5, 3.0),
            "sweep_rate": rng.uniform(0.5, 1.2), "sweep_depth": rng.uniform(0.2, 0.35),
            "knock_rate": rng.uniform(5.0, 9.0), "knock_decay": rng.uniform(0.012, 0.03),
            "spread": rng.uniform(0.15, 0.3), "level_db": rng.uniform(-3.0, 3.0)}


def _v2_source(class_id: int, source_rng: np.random.Generator) -> dict:
    pair = CLASS_SUBTYPES[class_id][int(source_rng.integers(SUBTYPES_PER_CLASS))]
    return {"layers": [_layer_params(layer, source_rng) for layer in pair]}


def _render_layer(p: dict, rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """One layer: a bank of partials around the centre (harmonics for a tone, a dense band for noise and knocks),
    moved by the motion, sounding in one or two events of the clip (computed only where it sounds)."""
    texture, _, motion = LAYERS[p["layer"]]
    duration = n / sr
    onsets, lengths = _event_times(rng, duration, int(rng.integers(1, 3)), min(0.8, duration), min(2.5, duration))
    envelope = _bursts(n, sr, onsets, lengths, 0.05, 0.15)
    on = np.flatnonzero(envelope)
    t = on / sr
    centre = p["centre"] * rng.uniform(0.97, 1.03)
    if motion == 2:  # a triangle glide around the centre
        glide = signal.sawtooth(2 * np.pi * p["sweep_rate"] * np.arange(n) / sr + rng.uniform(0, 2 * np.pi), 0.5)
        scale = 1 + p["sweep_depth"] * glide
    else:
        scale = np.ones(n)
    if texture == 0:
        ratios, amps = np.arange(1, 5, dtype=float), 0.6 ** np.arange(4)
    else:
        ratios = 2 ** rng.uniform(-p["spread"], p["spread"], 10)
        amps = rng.uniform(0.5, 1.0, 10)
    phase = (2 * np.pi * np.cumsum(centre * scale) / sr)[on]  # a partial at ratio r has phase r * phase
    top = centre * float(np.max(scale))
    sound = np.zeros(on.size)
    for ratio, amp in zip(ratios, amps):
        offset = rng.uniform(0, 2 * np.pi)
        if ratio * top < 0.45 * sr:
            sound += amp * np.sin(ratio * phase + offset)
    if texture == 2:  # knocks: short decaying hits
        hits = np.arange(rng.uniform(0, 1 / p["knock_rate"]), duration, 1 / p["knock_rate"])
        sound *= _bursts(n, sr, hits, np.full(hits.size, 0.1), 0.001, p["knock_decay"])[on]
    if motion == 1:  # on/off at the pulse rate
        sound *= 0.5 * (1 + np.sign(np.sin(2 * np.pi * p["pulse_rate"] * t + rng.uniform(0, 2 * np.pi))))
    out = np.zeros(n)
    out[on] = sound * envelope[on]
    return out


def _v2_event(source: dict, class_id: int, config: SynthConfig, rng: np.random.Generator, n: int, sr: int):
    event = np.zeros(n)
    for layer in source["layers"]:
        event += _unit_rms(_render_layer(layer, rng, n, sr)) * 10 ** (layer["level_db"] / 20)
    if rng.random() < config.distractor_prob:
        own = {layer["layer"] for layer in source["layers"]}
        other = int(rng.choice([layer for layer in range(len(LAYERS)) if layer not in own]))
        distractor = _unit_rms(_render_layer(_layer_params(other, rng), rng, n, sr))
        event = event + distractor * 10 ** (-rng.uniform(4, 12) / 20)
    return _unit_rms(event)


_GENERATOR_FUNCTIONS: dict[int, tuple[Callable, Callable]] = {1: (_v1_source, _v1_event), 2: (_v2_source, _v2_event)}


def _write_slice(args: tuple[_SliceJob, SynthConfig, str]) -> None:
    job, config, audio_dir = args
    path = Path(audio_dir) / f"fold{job.fold}" / job.file_name
    path.write_bytes(_render_slice(job, config))


def generate_dataset(out_dir: str | os.PathLike, config: SynthConfig = SynthConfig(), workers: int | None = None,
                     progress: bool = True) -> Path:
    """Write the synthetic UrbanSound8K into ``out_dir`` (created; must be empty or absent) and return it.

    The files appear atomically: everything is written into a temporary sibling folder that is renamed into
    place at the end, so an interrupted run leaves no half dataset behind.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise PathError(f"{out_dir} exists and is not empty; choose an empty or new folder")
    jobs = _plan(config)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for fold in range(1, NUM_FOLDS + 1):
        (tmp / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
    (tmp / "metadata").mkdir(parents=True)
    workers = workers or min(len(os.sched_getaffinity(0)), 8)
    tasks = [(job, config, str(tmp / "audio")) for job in jobs]
    bar = tqdm(total=len(tasks), desc="synthesising clips", unit="clip", disable=not progress)
    if workers > 1:
        with process_pool(workers) as pool:
            for _ in pool.map(_write_slice, tasks, chunksize=8):
                bar.update()
    else:
        for task in tasks:
            _write_slice(task)
            bar.update()
    bar.close()
    with open(tmp / "metadata" / "UrbanSound8K.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(URBANSOUND8K_COLUMNS)
        for job in jobs:
            writer.writerow([job.file_name, job.fs_id, f"{job.start:g}", f"{job.start + job.duration:g}",
                             job.salience, job.fold, job.class_id, URBANSOUND8K_CLASSES[job.class_id]])
    atomic_write_json(tmp / _COMPLETE_MARKER, asdict(config))
    if out_dir.exists():
        out_dir.rmdir()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out_dir)
    return out_dir


def ensure_dataset(data_dir: str | os.PathLike, config: SynthConfig = SynthConfig(), progress: bool = True) -> Path:
    """The synthetic dataset for ``config`` under ``data_dir``: generated on first use, reused afterwards. Generated
    under a lock, so two runs started at once into one output folder generate it once and both use it."""
    target = Path(data_dir) / config.folder_name
    if read_json(target / _COMPLETE_MARKER) is not None:
        return target
    with file_lock(Path(data_dir) / f".{config.folder_name}.lock"):
        if read_json(target / _COMPLETE_MARKER) is None:  # not made by another run while this one waited
            if target.exists():
                shutil.rmtree(target)
            generate_dataset(target, config, progress=progress)
    return target
