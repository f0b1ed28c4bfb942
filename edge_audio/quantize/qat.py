"""Quantization-aware training: the deployed scheme simulated on a PyTorch model (:class:`FakeQuantization`) and
the fine-tuning through it (:func:`quantization_aware_training`), which ``qat_int8`` and ``qat_int4`` run before
writing their file like the post-training full-integer methods."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ..train import optimizer_step
from .registry import QuantizationInputs
from .weights import fake_quantized_weight, per_layer_bits, weighted_layers

#: The parameters quantization-aware training reads.
QAT_OPTIONS = ("qat_epochs", "qat_learning_rate", "batch_size", "seed")


@dataclass(frozen=True)
class QATConfig:
    """Quantization-aware fine-tuning: epochs (the last is kept), Adam's learning rate (cosine decay to zero),
    batch size and seed (the order of the clips), read from a method's options (:data:`QAT_OPTIONS`)."""

    epochs: int
    lr: float
    batch_size: int
    seed: int

    @classmethod
    def from_options(cls, options: dict) -> "QATConfig":
        return cls(options["qat_epochs"], options["qat_learning_rate"], options["batch_size"], options["seed"])


class _WeightGrid(nn.Module):
    """A parametrization: the latent weight seen through its fake quantization."""

    def __init__(self, axis: int | None, bits: int):
        super().__init__()
        self.axis, self.bits = axis, bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantized_weight(weight, self.axis, self.bits)


def _activation_points(model: nn.Module) -> list[nn.Module]:
    """The modules after whose outputs the QDQ graph quantizes an activation: the input normalisation, every ReLU
    (a convolution's or hidden layer's output, the ReLU fused), average pooling, the global average and the
    logits. Max pooling keeps its input's quantization and needs none."""
    layers = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.ReLU, nn.AvgPool2d,
                                                          nn.AdaptiveAvgPool2d))]
    return layers + [[m for m in model.modules() if isinstance(m, nn.Linear)][-1]]


#: The integer levels of an activation: int8 asymmetric, int16 symmetric (ONNX Runtime's ranges for each).
_ACTIVATION_LEVELS = {8: (-128, 127), 16: (-32767, 32767)}


def _activation_range(low: float, high: float, bits: int) -> tuple[float, int]:
    """ONNX Runtime's scale and zero point of a MinMax range (which always holds zero): asymmetric at 8 bits,
    symmetric (zero point 0) at 16."""
    low, high = min(low, 0.0), max(high, 0.0)
    if bits == 16:
        low, high = -max(-low, high), max(-low, high)
    first, last = _ACTIVATION_LEVELS[bits]
    scale = (high - low) / (last - first) if high > low else 1.0
    return scale, int(round(first - low / scale))


class FakeQuantization:
    """The deployed scheme simulated on a PyTorch model (BatchNorm already folded), as a context manager: inside,
    its weights are seen through :func:`fake_quantized_weight` (straight-through gradients to the latent weights),
    and its input and every output of :func:`_activation_points` through asymmetric int8 fake quantization at the
    ranges :meth:`calibrate` set (MinMax over the calibration clips: ONNX Runtime's rule), at ``activation_bits`` (8,
    or 16 for 16x8). On exit the weights are left on the ``bits``-bit grid and the model is plain again."""

    def __init__(self, model: nn.Module, bits: int | Sequence[int], calibration: np.ndarray,
                 activation_bits: int = 8):
        self.model, self.bits, self.activation_bits = model, bits, activation_bits
        self.calibration = torch.from_numpy(np.ascontiguousarray(calibration))
        self.ranges: dict[int, tuple[float, int]] = {}
        self._observed: dict[int, tuple[float, float]] | None = None
        self._hooks: list = []

    def __enter__(self) -> "FakeQuantization":
        for (layer, axis), width in zip(weighted_layers(self.model), per_layer_bits(self.model, self.bits)):
            parametrize.register_parametrization(layer, "weight", _WeightGrid(axis, width))
        self._hooks = [self.model.register_forward_pre_hook(lambda module, args: (self._fake(0, args[0]),))]
        self._hooks += [point.register_forward_hook(lambda module, args, output, i=i: self._fake(i, output))
                        for i, point in enumerate(_activation_points(self.model), start=1)]
        self.calibrate()
        return self

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()
        for layer, _ in weighted_layers(self.model):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)

    def _fake(self, index: int, tensor: torch.Tensor) -> torch.Tensor:
        if self._observed is not None:  # calibrating: the float activations, as ONNX Runtime's calibrator sees them
            low, high = self._observed.get(index, (np.inf, -np.inf))
            self._observed[index] = (min(low, float(tensor.min())), max(high, float(tensor.max())))
            return tensor
        scale, zero = self.ranges[index]
        low, high = _ACTIVATION_LEVELS[self.activation_bits]
        return torch.fake_quantize_per_tensor_affine(tensor, scale, zero, low, high)

    @torch.no_grad()
    def calibrate(self) -> None:
        """Set every activation's range from the calibration clips, the weights as they are now (eval mode)."""
        self._observed = {}
        try:
            for start in range(0, len(self.calibration), 64):
                self.model(self.calibration[start:start + 64])
            self.ranges = {i: _activation_range(*bounds, self.activation_bits) for i, bounds in self._observed.items()}
        finally:
            self._observed = None


def quantization_aware_training(model: nn.Module, inputs: QuantizationInputs, bits: int) -> dict:
    """Fine-tune ``model`` (BatchNorm already folded; in place) through :class:`FakeQuantization` of the deployed
    scheme at ``bits``-bit weights, and leave its weights on the grid. Returns what the fine-tuning did.

    Cross-entropy on the split's training clips, Adam, cosine decay to zero; the activation ranges are recalibrated
    at the start of each epoch; the model stays in eval mode (folded BatchNorm has no statistics left to update;
    dropout off); the last epoch is kept, so no validation clip chooses. The file is then calibrated again by ONNX
    Runtime on the same clips, as a post-training variant is.
    """
    if inputs.training is None or not set(QAT_OPTIONS) <= set(inputs.options):
        raise ValueError(f"quantization-aware training needs the training clips and the options {QAT_OPTIONS}")
    config = QATConfig.from_options(inputs.options)
    x_train, y_train = inputs.training
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model.eval()
    x, y = torch.from_numpy(np.ascontiguousarray(x_train)).unsqueeze(1), torch.from_numpy(y_train).long()
    steps = max(1, int(np.ceil(len(x) / config.batch_size)))
    history = []
    with FakeQuantization(model, bits, inputs.calibration) as simulated:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps)
        for epoch in range(config.epochs):
            if epoch:
                simulated.calibrate()
            order = torch.randperm(len(x), generator=generator)
            total, correct = 0.0, 0
            for step in range(steps):
                index = order[step * config.batch_size:(step + 1) * config.batch_size]
                logits = model(x[index])
                loss = F.cross_entropy(logits, y[index])
                optimizer_step(loss, optimizer, schedule, f"quantization-aware training diverged at epoch "
                               f"{epoch + 1}, step {step + 1}", "qat_learning_rate")
                total += float(loss.detach()) * len(index)
                correct += int((logits.argmax(1) == y[index]).sum())
            history.append({"train_loss": round(total / len(x), 5),
                            "train_accuracy": round(100.0 * correct / len(x), 3)})
    return {**asdict(config), "train_clips": int(len(x)), "history": history}
