"""PyTorch's dynamic quantization: ``pytorch_dynamic`` (``torch.ao.quantization.quantize_dynamic`` on the Linear
layers, the reference pipeline's method). It leaves every convolution in FP32, so for a CNN it barely changes size
or speed."""
from __future__ import annotations

from pathlib import Path

from ..runtimes.pytorch import DYNAMIC_LINEAR, quantize_dynamic_linear, save_checkpoint
from .registry import Method, QuantizationInputs, register


def _pytorch_dynamic(inputs: QuantizationInputs, out: Path) -> dict:
    save_checkpoint(quantize_dynamic_linear(inputs.model), out, inputs.calibration.shape[1:], DYNAMIC_LINEAR)
    return {"layers": "Linear", "dtype": "qint8"}


register(Method(name="pytorch_dynamic", runtime="pytorch", int8_weights=False, int8_activations=False,
                description="PyTorch dynamic INT8 of the Linear layers; convolutions stay FP32", apply=_pytorch_dynamic,
                ram_graph="fp32"))
