"""Calibration: the clips a static quantizer calibrates on, and how ONNX Runtime is fed and kept quiet."""
from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np

with warnings.catch_warnings():
    # ONNX Runtime's calibrator imports tqdm.auto, which warns inside kernels without ipywidgets; import it once,
    # quietly, so the warning does not land in the chapters.
    warnings.simplefilter("ignore")
    import tqdm.auto  # noqa: F401


from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod

CALIBRATION_METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                       "percentile": CalibrationMethod.Percentile}


def calibration_set(features: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` clips drawn without replacement (seeded) from ``features``, shaped ``(n, 1, mels, frames)``.

    Warns and uses every clip there is when fewer than ``count`` are available.
    """
    if count < 1:
        raise ValueError(f"calibration size must be >= 1, got {count}")
    available = len(features)
    if available < count:
        warnings.warn(f"calibration set: {count} clips requested but the training folds hold {available}; "
                      f"calibrating on {available}", stacklevel=2)
        count = available
    chosen = np.sort(np.random.default_rng(seed).choice(available, size=count, replace=False))
    return features[chosen][:, None].astype(np.float32)


class CalibrationReader(CalibrationDataReader):
    """Feeds calibration clips to ONNX Runtime one at a time (the histogram calibrators, Entropy and
    Percentile, stack per-call outputs and need equal batch sizes; batch 1 is also how the model is deployed)."""

    def __init__(self, clips: np.ndarray, input_name: str):
        self._batches = iter([{input_name: clips[i:i + 1]} for i in range(len(clips))])

    def get_next(self):
        return next(self._batches, None)


@contextlib.contextmanager
def quiet_quantizer():
    """ONNX Runtime's quantizer logs advice and per-weight notes on the root logger; keep chapters readable."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
