"""PyTorch eager (CPU): the package's checkpoints (``{"spec", "state_dict", "input_shape"}``), FP32 or with the
Linear layers in dynamic INT8 (``"quantized": "dynamic-linear"`` too: what the ``pytorch_dynamic`` method writes).
The FP32 twin is the model's own FP32 checkpoint. Checkpoints are read with ``weights_only=True``: tensors,
numbers, strings, lists and dicts, never code."""
from __future__ import annotations

import contextlib
import copy
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ModelFileError
from .base import Runtime, predict_batches, random_input

#: The value of a checkpoint's ``quantized`` field for Linear layers in dynamic INT8.
DYNAMIC_LINEAR = "dynamic-linear"


@contextlib.contextmanager
def torch_threads(threads: int):
    """Temporarily set torch's intra-op thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def quantize_dynamic_linear(model):
    """PyTorch eager dynamic INT8 of the Linear layers (convolutions stay FP32), on a copy of ``model``."""
    import torch
    from torch import nn
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return quantize_dynamic(copy.deepcopy(model).eval().cpu(), {nn.Linear}, dtype=torch.qint8)


def save_checkpoint(model, path: Path, input_shape: tuple[int, ...], quantized: str | None = None) -> Path:
    """``model`` saved as a checkpoint this runtime opens: its spec, its state dict and one clip's input shape."""
    import torch

    from ..storage import atomic_write_with

    saved = {"spec": model.spec, "state_dict": model.state_dict(), "input_shape": [int(d) for d in input_shape]}
    if quantized:
        saved["quantized"] = quantized
    return atomic_write_with(Path(path), lambda handle: torch.save(saved, handle))


def load_checkpoint(path: Path) -> tuple[object, tuple[int, ...] | None]:
    """The model saved at ``path``, rebuilt from its spec, and one clip's input shape (None if not saved)."""
    import torch

    from ..models import LightweightCNN

    try:
        with warnings.catch_warnings():  # packed quantized weights load through torch's deprecated TypedStorage
            warnings.filterwarnings("ignore", "TypedStorage is deprecated")
            saved = torch.load(path, map_location="cpu", weights_only=True)
        model = LightweightCNN.from_spec(saved["spec"])
    except Exception as exc:  # a truncated file, another format, a checkpoint without a spec
        raise ModelFileError(f"cannot load PyTorch checkpoint {path}: {str(exc).strip().splitlines()[0][:200]}"
                             ) from None
    if saved.get("quantized") == DYNAMIC_LINEAR:
        model = quantize_dynamic_linear(model)
    model.load_state_dict(saved["state_dict"])
    shape = saved.get("input_shape")
    return model.eval(), (tuple(shape) if shape else None)


class PyTorchSession:
    """A checkpoint in PyTorch eager on the CPU with ``threads`` intra-op threads."""

    def __init__(self, path: Path, precision: str = "fp32", threads: int = 1):
        self.path, self.precision, self.threads = Path(path), precision, threads
        self.model, self.input_shape = load_checkpoint(self.path)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch_threads(self.threads), torch.inference_mode():
            return self.model(torch.from_numpy(batch)).float().numpy()

    def predict(self, inputs: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """Logits of every clip of ``inputs`` ``(clips, 1, mels, frames)``."""
        return predict_batches(self._run, inputs, batch_size)

    def call(self) -> Callable[[], object]:
        import torch

        if self.input_shape is None:
            raise ModelFileError(f"PyTorch checkpoint {self.path} does not say its input shape; it cannot be timed")
        x = torch.from_numpy(random_input(self.input_shape))
        model, threads = self.model, self.threads

        def run():
            with torch_threads(threads), torch.inference_mode():
                return model(x)
        return run


def pytorch_version() -> str:
    from importlib.metadata import version

    return f"pytorch {version('torch')} eager"


RUNTIME = Runtime("pytorch", "torch", ".pth", PyTorchSession, twin=lambda model, folder: model.checkpoint,
                  version=pytorch_version)
