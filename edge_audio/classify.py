"""Classify sound files with a published model: ``edge-audio classify MODEL AUDIO...``.

The model's card (:mod:`edge_audio.cards`) says which front end and input it expects. Any audio file soundfile
reads works, whatever its sample rate, channels and length: it is mixed to mono and resampled to the model's
rate. A clip is cropped or zero-padded to the model's window, as in training; ``stream`` instead slides that
window over the whole recording (``hop`` seconds apart) and labels each position, with the real-time factor
(processing time over audio time; below 1 keeps up with live audio).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .cards import read_card
from .features import FeatureConfig
from .errors import DatasetError, ModelFileError
from .features import LogMelFrontEnd, fit_window, read_mono
from .parameters import default
from .runtimes import for_file


#: A recording whose peak amplitude is below this is called silent (the datasets' default silence threshold).
SILENCE_PEAK = default("silence_threshold")


@dataclass
class Classifier:
    """A published model (a file type of :data:`edge_audio.runtimes.DEPLOYABLE`) with the front end its card names."""

    path: Path
    card: dict

    @classmethod
    def load(cls, path: str | Path) -> "Classifier":
        """The model at ``path`` and its card; a one-line error when either is missing or unusable."""
        path = Path(path)
        if path.is_dir():
            raise ModelFileError(f"model file {path} is a directory; give a model file in it (e.g. models/tiny.onnx)")
        if not path.is_file():
            raise ModelFileError(f"model file {path} does not exist")
        runtime = for_file(path)
        card = read_card(path)
        classifier = cls(path, card)
        classifier._logits = runtime.session(path).predict
        classifier._config = FeatureConfig(**card["front_end"])
        classifier._front_end = LogMelFrontEnd(classifier._config)
        outputs = classifier.probabilities(np.zeros((1, classifier.config.num_samples), np.float32)).shape[1]
        if outputs != len(card["classes"]):  # a model replaced beside another model's card
            raise ModelFileError(f"model file {path} outputs {outputs} classes but its card names "
                                 f"{len(card['classes'])}: the card is another model's; re-publish the model")
        return classifier

    @property
    def config(self) -> FeatureConfig:
        return self._config

    @property
    def raw_audio(self) -> bool:
        """Whether the model takes the waveform (its front end in the graph) rather than log-mel features."""
        return self.card["input"]["kind"] == "waveform"

    def read(self, audio_path: str | Path) -> np.ndarray:
        """The whole recording as float32 mono at the model's sample rate."""
        if Path(audio_path).is_dir():
            raise DatasetError(f"audio file {audio_path} is a directory; give the audio files in it")
        if not Path(audio_path).is_file():
            raise DatasetError(f"audio file {audio_path} does not exist")
        try:
            mono = read_mono(str(audio_path), self.config.sample_rate)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise DatasetError(f"cannot read audio file {audio_path}: {exc}") from None
        if mono.size == 0:
            raise DatasetError(f"audio file {audio_path} holds no samples")
        if not np.isfinite(mono).all():
            raise DatasetError(f"audio file {audio_path} holds NaN or infinite samples: its labels would mean nothing")
        return mono

    def warnings(self, wave: np.ndarray) -> list[str]:
        """What makes a recording's labels weak though it can be classified: silence, or less audio than the
        model's window (zero-padded, as in training)."""
        found = []
        peak = float(np.abs(wave).max())
        if peak < SILENCE_PEAK:
            found.append(f"it is silent (peak amplitude {peak:.1e}): the labels say little")
        seconds = wave.size / self.config.sample_rate
        if seconds < self.config.duration:
            found.append(f"it lasts {seconds:.2f} s, less than the model's {self.config.duration:g} s window: "
                         "zero-padded")
        return found

    def window(self, wave: np.ndarray) -> np.ndarray:
        """``wave`` cropped or zero-padded to the model's window, as in training."""
        return fit_window(wave, self.config.num_samples)

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities of each window (windows, samples) -> (windows, classes)."""
        if self.raw_audio:
            inputs = windows
        else:
            with torch.no_grad():
                inputs = self._front_end(torch.from_numpy(windows)).numpy()
        logits = self._logits(inputs)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def top(self, probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes of one window, most probable first."""
        order = np.argsort(probabilities)[::-1][:k]
        return [(self.card["classes"][i], float(probabilities[i])) for i in order]

    def stream(self, wave: np.ndarray, hop: float) -> tuple[list[tuple[float, float, np.ndarray]], float]:
        """Slide the window over ``wave`` every ``hop`` seconds: (start s, end s, probabilities) per position, and
        the real-time factor (processing seconds / audio seconds)."""
        size, step = self.config.num_samples, max(1, int(round(hop * self.config.sample_rate)))
        starts = list(range(0, max(wave.size - size, 0) + 1, step))
        if starts[-1] + size < wave.size:  # the tail gets a window of its own
            starts.append(wave.size - size)
        rate = self.config.sample_rate
        began = time.perf_counter()
        labelled = [(s / rate, min(s + size, wave.size) / rate, self.probabilities(self.window(wave[s:])[None])[0])
                    for s in starts]
        return labelled, (time.perf_counter() - began) / (wave.size / rate)
