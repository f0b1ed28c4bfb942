"""The CNN family, built from a plain architecture spec (a JSON-able dict) so any model can be rebuilt exactly.

A spec::

    {"name": "small", "channels": [24, 48, 96, 192], "fc_size": 256, "block": "standard",
     "kernel_size": 3, "dropout": 0.2, "pool": "max"}

Input is a log-mel batch ``(batch, 1, n_mels, frames)``. The network: an input BatchNorm (the features are not
normalised on disk), then one stage per entry of ``channels`` (a block, then 2x2 pooling), global average
pooling, dropout, an optional hidden linear layer of ``fc_size`` units, and the classifier.

Blocks: ``standard`` is Conv-BN-ReLU; ``dsconv`` is depthwise Conv-BN-ReLU then pointwise 1x1 Conv-BN-ReLU (the
DS-CNN block used for keyword spotting on microcontrollers). A dsconv network's first stage is a standard conv,
since a depthwise conv over a single input channel learns nothing.
"""
from __future__ import annotations

import copy
import numbers
from typing import Any

import torch
from torch import nn

from .errors import ParameterError
from .names import file_name

BLOCKS = ("standard", "dsconv")
POOLS = ("max", "avg")

#: The hand-designed baselines, from microcontroller size up. FP32 checkpoint sizes: nano ~25 kB, micro ~90 kB,
#: tiny ~0.5 MB, small ~1.2 MB, medium ~2.9 MB.
PRESETS: dict[str, dict[str, Any]] = {
    "nano": {"channels": [4, 8, 16, 24], "fc_size": 0, "block": "standard"},
    "micro": {"channels": [8, 16, 32, 48], "fc_size": 64, "block": "standard"},
    "tiny": {"channels": [16, 32, 64, 128], "fc_size": 256, "block": "standard"},
    "small": {"channels": [24, 48, 96, 208], "fc_size": 320, "block": "standard"},
    "medium": {"channels": [32, 64, 144, 352], "fc_size": 512, "block": "standard"},
    "ds_cnn": {"channels": [64, 64, 128, 128, 256], "fc_size": 0, "block": "dsconv"},
}
#: The reference pipeline's config list: the presets, named.
MODEL_CONFIGS: list[dict[str, Any]] = [{"name": name, **spec} for name, spec in PRESETS.items()]

_DEFAULTS = {"block": "standard", "kernel_size": 3, "dropout": 0.2, "pool": "max", "fc_size": 256}
#: The widest stage and hidden layer a spec may ask for, and the most parameters a model may have: far above any
#: model an edge device runs (medium, the largest preset, has 0.75 M parameters), far below what exhausts a
#: machine's memory before the first epoch (``channels: [100000, 100000]`` would need 360 GB).
MAX_CHANNELS = 2048
MAX_FC_SIZE = 8192
MAX_PARAMETERS = 20_000_000


def normalize_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A complete, validated copy of ``spec`` (defaults filled in).

    Raises :class:`~edge_audio.errors.ParameterError` naming the bad key.
    """
    full = {**_DEFAULTS, **copy.deepcopy(spec)}
    if "name" in full:
        file_name(full["name"], "model name")
    channels = full.get("channels")
    if not isinstance(channels, (list, tuple)) or not channels or not all(
            isinstance(c, int) and not isinstance(c, bool) and 0 < c <= MAX_CHANNELS for c in channels):
        raise ParameterError(f"spec 'channels' must be a non-empty list of ints in [1, {MAX_CHANNELS}], got "
                             f"{channels!r}")
    full["channels"] = [int(c) for c in channels]
    if full["block"] not in BLOCKS:
        raise ParameterError(f"spec 'block' must be one of {BLOCKS}, got {full['block']!r}")
    if full["pool"] not in POOLS:
        raise ParameterError(f"spec 'pool' must be one of {POOLS}, got {full['pool']!r}")
    if full["kernel_size"] not in (1, 3, 5, 7):
        raise ParameterError(f"spec 'kernel_size' must be 1, 3, 5 or 7, got {full['kernel_size']!r}")
    if not 0.0 <= float(full["dropout"]) < 1.0:
        raise ParameterError(f"spec 'dropout' must be in [0, 1), got {full['dropout']!r}")
    if not isinstance(full["fc_size"], numbers.Integral) or not 0 <= full["fc_size"] <= MAX_FC_SIZE:
        raise ParameterError(f"spec 'fc_size' must be an int in [0, {MAX_FC_SIZE}] (0: no hidden layer), got "
                             f"{full['fc_size']!r}")
    full["fc_size"], full["kernel_size"], full["dropout"] = int(full["fc_size"]), int(full["kernel_size"]), float(
        full["dropout"])
    return full


def preset_spec(name: str) -> dict[str, Any]:
    """The full spec of a named preset (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ParameterError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return normalize_spec({"name": name, **PRESETS[name]})


def spec_from_config(config: str | dict[str, Any]) -> dict[str, Any]:
    """A full spec from a preset name, a ``{"name": preset}`` dict, or a seed-style config dict.

    Seed-style: ``{'name': 'custom', 'channels': [16, 32, 64, 128], 'fc_size': 256}``; keys a preset of the
    same name does not set are filled from that preset, then from the defaults.
    """
    if isinstance(config, str):
        return preset_spec(config)
    if not isinstance(config, dict) or "name" not in config:
        raise ParameterError(f"a model config is a preset name or a dict with a 'name', got {config!r}")
    base = PRESETS.get(config["name"], {})
    if "channels" not in config and not base:
        raise ParameterError(f"model config {config['name']!r} is not a preset and has no 'channels'")
    spec = normalize_spec({**base, **config})
    with torch.device("meta"):  # counted without allocating a byte
        parameters = count_parameters(LightweightCNN.from_spec(spec))
    if parameters > MAX_PARAMETERS:
        raise ParameterError(f"model config {config['name']!r} has {parameters:,} parameters, more than the "
                             f"{MAX_PARAMETERS:,} an edge model may have; use fewer or narrower channels")
    return spec


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class LightweightCNN(nn.Module):
    """A small audio CNN (see the module docstring). ``LightweightCNN(**spec)`` or :meth:`from_spec`."""

    def __init__(self, channels: list[int], fc_size: int = 256, block: str = "standard", kernel_size: int = 3,
                 dropout: float = 0.2, pool: str = "max", num_classes: int = 10, name: str = "custom"):
        super().__init__()
        self._spec = normalize_spec({"name": name, "channels": channels, "fc_size": fc_size, "block": block,
                                     "kernel_size": kernel_size, "dropout": dropout, "pool": pool})
        self._spec["num_classes"] = int(num_classes)
        spec = self._spec
        pooling = nn.MaxPool2d if spec["pool"] == "max" else nn.AvgPool2d
        layers: list[nn.Module] = [nn.BatchNorm2d(1)]
        c_in = 1
        for stage, c_out in enumerate(spec["channels"]):
            if spec["block"] == "dsconv" and stage > 0:
                layers += _conv_bn_relu(c_in, c_in, spec["kernel_size"], groups=c_in)
                layers += _conv_bn_relu(c_in, c_out, 1)
            else:
                layers += _conv_bn_relu(c_in, c_out, spec["kernel_size"])
            layers.append(pooling(2, ceil_mode=True))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(spec["dropout"])]
        if spec["fc_size"]:
            head += [nn.Linear(c_in, spec["fc_size"]), nn.ReLU(inplace=True), nn.Dropout(spec["dropout"])]
            c_in = spec["fc_size"]
        head.append(nn.Linear(c_in, num_classes))
        self.classifier = nn.Sequential(*head)

    @classmethod
    def from_spec(cls, spec: dict[str, Any], num_classes: int | None = None) -> "LightweightCNN":
        """Rebuild a model from a spec (``num_classes`` from the spec unless given)."""
        spec = dict(spec)
        classes = num_classes if num_classes is not None else spec.pop("num_classes", 10)
        spec.pop("num_classes", None)
        return cls(**normalize_spec(spec), num_classes=classes)

    @property
    def spec(self) -> dict[str, Any]:
        """The plain architecture spec (JSON-able) that rebuilds this model."""
        return copy.deepcopy(self._spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class WaveformClassifier(nn.Module):
    """A front end (raw mono waveform -> log-mel) followed by a classifier: raw audio in, logits out."""

    def __init__(self, front_end: nn.Module, classifier: nn.Module):
        super().__init__()
        self.front_end = front_end
        self.classifier = classifier

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.front_end(waveform))


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable and frozen)."""
    return sum(p.numel() for p in model.parameters())


def untrained_like_trained(spec: dict[str, Any], seed: int = 0) -> LightweightCNN:
    """An untrained model of ``spec`` (eval mode) whose files and graphs look like a trained one's.

    Random weights, and every BatchNorm given the non-trivial running statistics and affine parameters training
    leaves: a fresh BatchNorm folds into the convolutions as zero biases, which the ONNX exporter drops, so an
    untrained model's files would lack the biases (and their quantization parameters) every trained model's files
    carry. For measuring sizes and latencies without training (``edge-audio bench``, ``benchmarks/``).
    """
    torch.manual_seed(seed)
    return with_trained_batchnorm(LightweightCNN.from_spec(spec), seed)


@torch.no_grad()
def with_trained_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` (in place, returned in eval mode) with every BatchNorm given seeded, non-trivial running
    statistics and affine parameters, as training leaves them (see :func:`untrained_like_trained`)."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            for tensor, low, high in ((module.running_mean, -0.5, 0.5), (module.running_var, 0.5, 2.0),
                                      (module.weight, 0.5, 1.5), (module.bias, -0.2, 0.2)):
                tensor.copy_(torch.empty(tensor.shape).uniform_(low, high, generator=generator))
    return model.eval()
