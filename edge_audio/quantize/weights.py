"""The weight grid: a PyTorch model's weights rounded to the symmetric ``bits``-bit grid the TFLite writer stores
(one width, or one per layer), and the choice of bits per layer under a flash budget (mixed precision)."""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError


def weighted_layers(model: nn.Module) -> list[tuple[nn.Module, int | None]]:
    """Every layer whose weights are stored quantized, with the axis of its scales: convolutions per output
    channel (0), fully connected layers per tensor (None), as :mod:`edge_audio.tflite` writes them."""
    return [(m, 0 if isinstance(m, nn.Conv2d) else None) for m in model.modules() if isinstance(m, (nn.Conv2d,
                                                                                                  nn.Linear))]


def weight_scale(weight: torch.Tensor, axis: int | None, bits: int) -> torch.Tensor:
    """The symmetric scale of :func:`edge_audio.tflite.symmetric_levels`: the largest magnitude (per output channel,
    or of the tensor) over the top level, 1 where every weight is zero."""
    peak = weight.detach().abs().amax() if axis is None else weight.detach().abs().flatten(1).amax(dim=1)
    return torch.where(peak > 0, peak / (2 ** (bits - 1) - 1), torch.ones_like(peak)).float()


def fake_quantized_weight(weight: torch.Tensor, axis: int | None, bits: int) -> torch.Tensor:
    """``weight`` on the symmetric ``bits``-bit grid, with the straight-through gradient (PyTorch's fake
    quantization ops)."""
    top = 2 ** (bits - 1) - 1
    scale = weight_scale(weight, axis, bits)
    if axis is None:
        return torch.fake_quantize_per_tensor_affine(weight, float(scale), 0, -top, top)
    zeros = torch.zeros(scale.numel(), dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(weight, scale, zeros, axis, -top, top)


def per_layer_bits(model: nn.Module, bits: int | Sequence[int]) -> list[int]:
    """``bits`` for every weighted layer of ``model``: one width for all, or a list with one per layer."""
    layers = len(weighted_layers(model))
    per_layer = [bits] * layers if isinstance(bits, int) else list(bits)
    if len(per_layer) != layers:
        raise ValueError(f"{len(per_layer)} bit widths for {layers} weighted layers")
    return per_layer


@torch.no_grad()
def round_to_weight_grid(model: nn.Module, bits: int | Sequence[int]) -> nn.Module:
    """``model`` (in place, returned) with every convolution's and fully connected layer's weights on the grid the
    TFLite writer stores at ``bits`` bits (one width, or one per layer), so that
    :func:`edge_audio.tflite.onnx_to_tflite` writes them exactly (ONNX Runtime's 8-bit symmetric quantization in
    between keeps them: their largest magnitude maps to 127)."""
    for (layer, axis), width in zip(weighted_layers(model), per_layer_bits(model, bits)):
        layer.weight.copy_(fake_quantized_weight(layer.weight, axis, width))
    return model


def _kl_from(reference: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean KL divergence of ``logits``' softmax from ``reference``'s, per clip."""
    return float(F.kl_div(F.log_softmax(logits, 1), F.log_softmax(reference, 1), log_target=True,
                          reduction="batchmean"))


@torch.no_grad()
def layer_bits_for_budget(model: nn.Module, calibration: np.ndarray, weight_fraction: float) -> dict:
    """Mixed precision: which weighted layers of ``model`` (BatchNorm folded) take 4 bits so that the weights
    keep at most ``weight_fraction`` of their 8-bit bytes, chosen by sensitivity on the calibration clips alone.

    A layer's sensitivity is how far the model's outputs move (mean KL divergence from the FP32 outputs on the
    calibration clips) when that layer alone is rounded to 4 bits, the others kept at 8. Layers go to 4 bits in
    order of sensitivity per byte saved, least first, until the budget holds. Returns ``layer_bits`` (one per
    layer, in order), ``sensitivity`` and the weights' bytes (8-bit, chosen, budget).
    """
    if not 0.5 <= weight_fraction <= 1.0:
        raise ParameterError(f"mixed_weight_fraction must be in [0.5, 1] (0.5: every layer at 4 bits), "
                             f"got {weight_fraction}")
    clips = torch.from_numpy(np.ascontiguousarray(calibration))
    reference = model.eval()(clips)
    counts = [layer.weight.numel() for layer, _ in weighted_layers(model)]
    sensitivity = []
    for index in range(len(counts)):
        trial = round_to_weight_grid(copy.deepcopy(model), [4 if i == index else 8 for i in range(len(counts))])
        sensitivity.append(_kl_from(reference, trial(clips)))
    budget = weight_fraction * sum(counts)
    bits = [8] * len(counts)
    for index in sorted(range(len(counts)), key=lambda i: sensitivity[i] / (counts[i] / 2)):
        if sum(n if b == 8 else n / 2 for n, b in zip(counts, bits)) <= budget:
            break
        bits[index] = 4
    return {"layer_bits": bits, "sensitivity": [round(v, 6) for v in sensitivity],
            "weight_bytes_int8": sum(counts), "weight_bytes": int(sum(n if b == 8 else -(-n // 2)
                                                                      for n, b in zip(counts, bits))),
            "weight_budget_bytes": int(budget)}
