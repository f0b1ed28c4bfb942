"""A weight-sharing supernet over the CNN family (:mod:`edge_audio.models`), trained once, from which any
sub-network is cut with its weights inherited (Once-for-All, BigNAS).

The space (:class:`SupernetSpace`): the number of stages, each stage's width from its own widening set, the kernel
size, the hidden layer's width (0: none) and the pooling. The supernet holds every stage at its widest, every
convolution at the largest kernel, and one head per number of stages (a hidden layer at its widest and two
classifiers, one after it and one straight from the features), so that:

* a narrower stage is the first ``c`` output channels of the widest one (and the first input channels the stage
  before it kept);
* a smaller kernel is the centre of the largest one;
* fewer stages end in the head of that depth (a head reads one stage's features, so heads are not shared between
  depths); a narrower hidden layer is its first units;
* pooling has no weights, so either kind is shared.

A standard block is the only one that shares cleanly: a depthwise-separable stage's weights do not slice into a
standard one's, so a space that asks for ``dsconv`` is refused (:meth:`SupernetSpace.check`).

Training (:func:`train_supernet`; cached and resumable like a training run: :func:`supernet_run`) follows the
sandwich rule with in-place distillation (BigNAS): each step trains the
largest sub-network on the labels and the smallest and two random ones on the largest's softened outputs, and
accumulates their gradients before one optimizer step. A sub-network is scored (:func:`score`) as a plain
:class:`~edge_audio.models.LightweightCNN` with copied weights (:meth:`Supernet.extract`) whose BatchNorm statistics
are recalibrated on training clips (:func:`recalibrate_batchnorm`): shared weights serve many widths, so the
running statistics of the whole supernet fit none of them.
"""
from __future__ import annotations

import contextlib
import random
import time
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ParameterError
from .features import FeatureSet
from .metrics import classification_metrics
from .models import LightweightCNN, normalize_spec
from .notices import notice
from .storage import CacheEntry, atomic_write_with, cached
from .train import Split, select_device

#: Bump when the supernet's layout or its training changes: a cached supernet of another version is not reused.
SUPERNET_VERSION = 1


@dataclass(frozen=True)
class SupernetSpace:
    """The choices a sub-network makes: ``stages`` (how many), ``channels`` (one widening set per stage, the
    first ``stages`` used), ``kernel_size``, ``fc_size`` (0: no hidden layer) and ``pool``; every other trait of the
    CNN family is fixed (``block``, ``dropout``)."""

    stages: tuple[int, ...] = (2, 3, 4, 5)
    channels: tuple[tuple[int, ...], ...] = ((8, 12, 16, 24), (16, 24, 32, 48, 64), (32, 48, 64, 96, 128),
                                             (48, 64, 96, 128, 192), (64, 96, 128, 192, 256))
    kernel_size: tuple[int, ...] = (3, 5)
    fc_size: tuple[int, ...] = (0, 32, 64, 128, 256)
    pool: tuple[str, ...] = ("max", "avg")
    block: str = "standard"
    dropout: float = 0.1

    def check(self) -> "SupernetSpace":
        """Refuse a space whose sub-networks cannot share weights, naming what is wrong; returns ``self``."""
        if self.block != "standard":
            raise ParameterError(f"a supernet shares weights over standard blocks only; block {self.block!r} does "
                                 "not slice into one (a depthwise stage's weights are not a standard stage's)")
        if not self.stages or min(self.stages) < 1 or max(self.stages) > len(self.channels):
            raise ParameterError(f"supernet stages {list(self.stages)} need a width set for each stage; "
                                 f"{len(self.channels)} given")
        for index, widths in enumerate(self.channels, start=1):
            if not widths or any(not isinstance(w, int) or w < 1 for w in widths):
                raise ParameterError(f"supernet stage {index}'s widths must be positive ints, got {list(widths)}")
        if any(k not in (1, 3, 5, 7) for k in self.kernel_size) or not self.kernel_size:
            raise ParameterError(f"supernet kernel sizes must be among 1, 3, 5, 7, got {list(self.kernel_size)}")
        if any(f < 0 for f in self.fc_size) or not self.fc_size:
            raise ParameterError(f"supernet hidden widths must be >= 0, got {list(self.fc_size)}")
        if not self.pool or any(p not in ("max", "avg") for p in self.pool):
            raise ParameterError(f"supernet pools must be max or avg, got {list(self.pool)}")
        return self

    @property
    def max_kernel(self) -> int:
        return max(self.kernel_size)

    def largest(self) -> dict[str, Any]:
        """The largest sub-network: every stage, at its widest, the largest kernel and hidden layer."""
        depth = max(self.stages)
        return {"channels": [max(w) for w in self.channels[:depth]], "kernel_size": self.max_kernel,
                "fc_size": max(self.fc_size), "pool": self.pool[0]}

    def smallest(self) -> dict[str, Any]:
        """The smallest sub-network: the fewest stages, at their narrowest, the smallest kernel and hidden layer."""
        depth = min(self.stages)
        return {"channels": [min(w) for w in self.channels[:depth]], "kernel_size": min(self.kernel_size),
                "fc_size": min(self.fc_size), "pool": self.pool[0]}

    def sample(self, rng: random.Random) -> dict[str, Any]:
        """A sub-network drawn uniformly, gene by gene."""
        depth = rng.choice(self.stages)
        return {"channels": [rng.choice(w) for w in self.channels[:depth]], "kernel_size": rng.choice(self.kernel_size),
                "fc_size": rng.choice(self.fc_size), "pool": rng.choice(self.pool)}

    def contains(self, arch: dict[str, Any]) -> bool:
        """Whether ``arch`` is a sub-network of this space."""
        depth = len(arch["channels"])
        return (depth in self.stages and all(c in w for c, w in zip(arch["channels"], self.channels))
                and arch["kernel_size"] in self.kernel_size and arch["fc_size"] in self.fc_size
                and arch["pool"] in self.pool)

    def spec(self, arch: dict[str, Any], name: str = "subnet") -> dict[str, Any]:
        """The :mod:`edge_audio.models` spec of a sub-network (what it is as a stand-alone model)."""
        return normalize_spec({"name": name, "channels": list(arch["channels"]), "kernel_size": arch["kernel_size"],
                               "fc_size": arch["fc_size"], "pool": arch["pool"], "block": self.block,
                               "dropout": self.dropout})

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(map(list, v)) if k == "channels" else list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}


def _centre(weight: torch.Tensor, kernel: int) -> torch.Tensor:
    """The centre ``kernel`` x ``kernel`` of a convolution's weights."""
    start = (weight.shape[-1] - kernel) // 2
    return weight[..., start:start + kernel, start:start + kernel]


class Supernet(nn.Module):
    """Every sub-network of a :class:`SupernetSpace` in one set of weights (see the module docstring)."""

    def __init__(self, space: SupernetSpace, num_classes: int):
        super().__init__()
        self.space = space.check()
        self.num_classes = num_classes
        kernel = space.max_kernel
        widths = [max(w) for w in space.channels]
        self.input_norm = nn.BatchNorm2d(1)
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c_in = 1
        for c_out in widths:
            self.convs.append(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False))
            self.norms.append(nn.BatchNorm2d(c_out))
            c_in = c_out
        hidden = max(space.fc_size)
        self.hidden = nn.ModuleList(nn.Linear(widths[d - 1], max(hidden, 1)) for d in range(1, len(widths) + 1))
        self.after_hidden = nn.ModuleList(nn.Linear(max(hidden, 1), num_classes) for _ in widths)
        self.direct = nn.ModuleList(nn.Linear(widths[d - 1], num_classes) for d in range(1, len(widths) + 1))

    def forward(self, x: torch.Tensor, arch: dict[str, Any]) -> torch.Tensor:
        """The logits of sub-network ``arch`` (its weights sliced from the supernet's; BatchNorm in the module's
        mode, on the sliced statistics)."""
        channels, kernel = arch["channels"], arch["kernel_size"]
        x = self.input_norm(x)
        c_in = 1
        for stage, c_out in enumerate(channels):
            conv, norm = self.convs[stage], self.norms[stage]
            x = F.conv2d(x, _centre(conv.weight[:c_out, :c_in], kernel), padding=kernel // 2)
            x = F.batch_norm(x, norm.running_mean[:c_out], norm.running_var[:c_out], norm.weight[:c_out],
                             norm.bias[:c_out], self.training, norm.momentum, norm.eps)
            x = F.relu(x)
            x = (F.max_pool2d if arch["pool"] == "max" else F.avg_pool2d)(x, 2, ceil_mode=True)
            c_in = c_out
        x = F.dropout(F.adaptive_avg_pool2d(x, 1).flatten(1), self.space.dropout, self.training)
        depth, fc = len(channels) - 1, arch["fc_size"]
        if fc:
            hidden = self.hidden[depth]
            x = F.dropout(F.relu(F.linear(x, hidden.weight[:fc, :c_in], hidden.bias[:fc])), self.space.dropout,
                          self.training)
            head = self.after_hidden[depth]
            return F.linear(x, head.weight[:, :fc], head.bias)
        head = self.direct[depth]
        return F.linear(x, head.weight[:, :c_in], head.bias)

    @torch.no_grad()
    def extract(self, arch: dict[str, Any], name: str = "subnet") -> LightweightCNN:
        """Sub-network ``arch`` as a stand-alone model with its weights (and BatchNorm statistics) copied."""
        if not self.space.contains(arch):
            raise ParameterError(f"{arch} is not a sub-network of this supernet's space")
        model = LightweightCNN.from_spec(self.space.spec(arch, name), num_classes=self.num_classes)
        convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
        norms = [m for m in model.features if isinstance(m, nn.BatchNorm2d)]
        _copy_norm(norms[0], self.input_norm, 1)
        c_in = 1
        for stage, (conv, norm, c_out) in enumerate(zip(convs, norms[1:], arch["channels"])):
            conv.weight.copy_(_centre(self.convs[stage].weight[:c_out, :c_in], arch["kernel_size"]))
            _copy_norm(norm, self.norms[stage], c_out)
            c_in = c_out
        linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
        depth, fc = len(arch["channels"]) - 1, arch["fc_size"]
        if fc:
            linears[0].weight.copy_(self.hidden[depth].weight[:fc, :c_in])
            linears[0].bias.copy_(self.hidden[depth].bias[:fc])
            linears[1].weight.copy_(self.after_hidden[depth].weight[:, :fc])
            linears[1].bias.copy_(self.after_hidden[depth].bias)
        else:
            linears[0].weight.copy_(self.direct[depth].weight[:, :c_in])
            linears[0].bias.copy_(self.direct[depth].bias)
        return model.eval()


def _copy_norm(target: nn.BatchNorm2d, source: nn.BatchNorm2d, channels: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(target, name).copy_(getattr(source, name)[:channels])


@torch.no_grad()
def recalibrate_batchnorm(model: LightweightCNN, clips: np.ndarray) -> LightweightCNN:
    """``model`` (in place, returned in eval mode) with every BatchNorm's running statistics recomputed on ``clips``
    (clips, mels, frames), stage by stage: each BatchNorm takes the mean and the (population) variance of what
    reaches it over all the clips, when the layers before it already run on their recalibrated statistics. The
    weights are unchanged. :class:`Scorer` computes exactly this, sharing what sub-networks have in common."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(clips)).unsqueeze(1)
    for module in model.features:
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(x.mean((0, 2, 3)))
            module.running_var.copy_(x.var((0, 2, 3), unbiased=False))
        x = module(x)
    return model


class Scorer:
    """Sub-networks of one supernet scored on one fold, in milliseconds once warm: each one's weights inherited,
    its BatchNorm recalibrated on ``calibration`` (training clips) as :func:`recalibrate_batchnorm` does, and its
    accuracy on ``x``, ``y``.

    Sub-networks that begin alike compute their first stages alike: the output of a stage (on the calibration
    clips and the scored ones together) depends only on the kernel, the pooling and the widths up to it, so it is
    kept (least recently used first out, within ``cache_bytes``) and a sub-network computes only the stages no
    other one computed before it. A sub-network scored once is not scored again."""

    def __init__(self, supernet: Supernet, calibration: np.ndarray, x: np.ndarray, y: np.ndarray,
                 cache_bytes: float = 1.5e9):
        self.supernet, self.y, self.cache_bytes = supernet.eval(), np.asarray(y), cache_bytes
        self.calibration = calibration
        self.n_calibration = len(calibration)
        both = torch.from_numpy(np.ascontiguousarray(np.concatenate([calibration, x]))).unsqueeze(1)
        # channels_last: the scoring's convolutions run faster on CPU (measured: about 15% of a search)
        self.inputs = self._normalise(both, supernet.input_norm.weight, supernet.input_norm.bias,
                                      supernet.input_norm.eps).contiguous(memory_format=torch.channels_last)
        self.stages: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.scores: dict[str, dict] = {}
        self.correct: dict[str, np.ndarray] = {}  # which scored clips each scored sub-network got right
        self.cached_bytes = 0

    def _normalise(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
        calibration = x[:self.n_calibration]
        mean, var = calibration.mean((0, 2, 3)), calibration.var((0, 2, 3), unbiased=False)
        return F.batch_norm(x, mean, var, weight, bias, False, 0.0, eps)

    @torch.no_grad()
    def _stage(self, kernel: int, pool: str, widths: tuple[int, ...]) -> torch.Tensor:
        key = (kernel, pool, widths)
        if key in self.stages:
            self.stages.move_to_end(key)
            return self.stages[key]
        stage, c_out = len(widths) - 1, widths[-1]
        x = self.inputs if stage == 0 else self._stage(kernel, pool, widths[:-1])
        conv, norm = self.supernet.convs[stage], self.supernet.norms[stage]
        x = F.conv2d(x, _centre(conv.weight[:c_out, :x.shape[1]], kernel), padding=kernel // 2)
        x = F.relu(self._normalise(x, norm.weight[:c_out], norm.bias[:c_out], norm.eps), inplace=True)
        x = (F.max_pool2d if pool == "max" else F.avg_pool2d)(x, 2, ceil_mode=True)
        self.stages[key] = x
        self.cached_bytes += x.numel() * x.element_size()
        while self.cached_bytes > self.cache_bytes and len(self.stages) > 1:
            _, dropped = self.stages.popitem(last=False)
            self.cached_bytes -= dropped.numel() * dropped.element_size()
        return x

    @torch.no_grad()
    def logits(self, arch: dict[str, Any]) -> torch.Tensor:
        """Sub-network ``arch``'s logits on the scored clips."""
        features = self._stage(arch["kernel_size"], arch["pool"], tuple(arch["channels"]))
        x = F.adaptive_avg_pool2d(features[self.n_calibration:], 1).flatten(1)
        depth, fc, c_in = len(arch["channels"]) - 1, arch["fc_size"], features.shape[1]
        supernet = self.supernet
        if fc:
            hidden, head = supernet.hidden[depth], supernet.after_hidden[depth]
            x = F.relu(F.linear(x, hidden.weight[:fc, :c_in], hidden.bias[:fc]))
            return F.linear(x, head.weight[:, :fc], head.bias)
        head = supernet.direct[depth]
        return F.linear(x, head.weight[:, :c_in], head.bias)

    def score(self, arch: dict[str, Any]) -> dict:
        """Sub-network ``arch``'s accuracy and macro-F1 on the scored clips (remembered)."""
        key = repr(arch)
        if key not in self.scores:
            if not self.supernet.space.contains(arch):
                raise ParameterError(f"{arch} is not a sub-network of this supernet's space")
            predicted = self.logits(arch).argmax(1).numpy()
            self.scores[key] = classification_metrics(self.y, predicted, self.supernet.num_classes)
            self.correct[key] = predicted == self.y
        return self.scores[key]

    def model(self, arch: dict[str, Any], name: str = "subnet") -> LightweightCNN:
        """Sub-network ``arch`` as a stand-alone model: weights copied, BatchNorm recalibrated as scored."""
        return recalibrate_batchnorm(self.supernet.extract(arch, name), self.calibration)


@torch.no_grad()
def score(supernet: Supernet, arch: dict[str, Any], calibration: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict:
    """One sub-network scored as :class:`Scorer` scores it (for a few; a search keeps one :class:`Scorer`)."""
    return Scorer(supernet, calibration, x, y).score(arch)


def distillation_step(supernet: Supernet, xb: torch.Tensor, yb: torch.Tensor, space: SupernetSpace,
                      rng: random.Random, temperature: float = 1.0) -> float:
    """One sandwich-rule step's gradients (accumulated in the supernet's parameters, no optimizer step): the
    largest sub-network on the labels, then the smallest and two random ones on the largest's softened outputs
    (in-place distillation). Returns the largest's loss."""
    largest = supernet(xb, space.largest())
    loss = F.cross_entropy(largest, yb)
    loss.backward()
    soft = F.softmax(largest.detach() / temperature, dim=1)
    for arch in (space.smallest(), space.sample(rng), space.sample(rng)):
        logits = supernet(xb, arch)
        F.kl_div(F.log_softmax(logits / temperature, dim=1), soft, reduction="batchmean").backward()
    return float(loss.detach())


def train_supernet(space: SupernetSpace, x_train: np.ndarray, y_train: np.ndarray, num_classes: int, epochs: int,
                   batch_size: int = 32, lr: float = 3e-3, seed: int = 0, checkpoint: Path | None = None,
                   stop_after_epoch: int | None = None, device: str = "cpu") -> tuple[Supernet, list[dict]]:
    """A supernet trained by the sandwich rule with in-place distillation on ``x_train`` (clips, mels, frames),
    seeded (the clips' order and the sampled sub-networks); returns it (eval mode) and its history per epoch.

    With ``checkpoint``, the state after each epoch is written there and a run that finds one resumes from it,
    to the same weights as a run never interrupted (``stop_after_epoch`` interrupts one, for the tests).
    ``device``: a torch device; on CUDA the forward passes run in bf16 autocast (on a CPU in float32)."""
    torch_device = torch.device(device)
    torch.manual_seed(seed)
    rng, generator = random.Random(seed), torch.Generator().manual_seed(seed)
    supernet = Supernet(space, num_classes).to(torch_device)  # before the optimizer: a resumed state follows it
    x, y = torch.from_numpy(np.ascontiguousarray(x_train)).unsqueeze(1), torch.from_numpy(y_train).long()
    steps = max(1, int(np.ceil(len(x) / batch_size)))
    optimizer = torch.optim.AdamW(supernet.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, epochs=epochs, steps_per_epoch=steps)
    history = _resume(checkpoint, supernet, optimizer, schedule, generator, rng)
    precision = (torch.autocast("cuda", dtype=torch.bfloat16) if torch_device.type == "cuda"
                 else contextlib.nullcontext())
    for epoch in range(len(history), epochs):
        supernet.train()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            optimizer.zero_grad(set_to_none=True)
            with precision:
                total += distillation_step(supernet, x[index].to(torch_device), y[index].to(torch_device), space,
                                           rng) * len(index)
            optimizer.step()
            schedule.step()
        history.append({"epoch": epoch + 1, "largest_train_loss": round(total / len(x), 5)})
        if checkpoint is not None:
            atomic_write_with(checkpoint, lambda handle: torch.save({
                "model": supernet.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "generator": generator.get_state(), "torch_rng": torch.get_rng_state(), "rng": rng.getstate(),
                "history": history}, handle))
        if stop_after_epoch is not None and len(history) == stop_after_epoch < epochs:
            raise KeyboardInterrupt(f"stopped after epoch {len(history)} as asked")
    return supernet.cpu().eval(), history


def _resume(checkpoint: Path | None, supernet: Supernet, optimizer, schedule, generator: torch.Generator,
            rng: random.Random) -> list[dict]:
    """The history of the epochs an interrupted training finished, its state restored (loaded with
    ``weights_only=True``); an empty one when there is nothing to resume. A checkpoint that cannot be loaded so is
    reported in one line and removed."""
    if checkpoint is None or not checkpoint.is_file():
        return []
    try:
        with warnings.catch_warnings():  # a file written with another pickle protocol: refused below, not warned of
            warnings.simplefilter("ignore", UserWarning)
            saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
        supernet.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
    except Exception as exc:  # a planted pickle is refused here, before any of it runs
        notice(f"refusing to resume the supernet from {checkpoint} ({type(exc).__name__}): training from the start")
        checkpoint.unlink()
        return []
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    version, state, gauss = saved["rng"]
    rng.setstate((version, tuple(state), gauss))
    return list(saved["history"])


def supernet_run(space: SupernetSpace, features: FeatureSet, split: Split, epochs: int, batch_size: int, lr: float,
                 seed: int, cache: Path, device: str = "auto") -> tuple[Supernet, CacheEntry]:
    """The supernet of ``space`` trained on ``split``'s training folds of ``features`` (cached by the space, the
    features' content, the split, the training settings, the seed and the library version; an interrupted training
    resumes), loaded and checked to be of ``space``. ``device``: where it trains (auto: CUDA when present)."""
    space.check()
    torch_device = select_device(device)
    key = {"device": torch_device.type, "threads": torch.get_num_threads(), "space": space.to_dict(), "features": features.key, "split": asdict(split),
           "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr}, "seed": seed,
           "version": SUPERNET_VERSION, "torch": torch.__version__}

    def compute(folder: Path) -> dict:
        started = time.perf_counter()
        x, y = features.select(split.train_folds)
        supernet, history = train_supernet(space, x, y, features.num_classes, epochs, batch_size, lr, seed,
                                           checkpoint=folder / "checkpoint.pt", device=str(torch_device))
        atomic_write_with(folder / "supernet.pt", lambda handle: torch.save(supernet.state_dict(), handle))
        (folder / "checkpoint.pt").unlink()
        # the seconds of this training, resumed or not (a resumed one counts only what it ran)
        return {"space": space.to_dict(), "num_classes": features.num_classes, "history": history,
                "seconds": round(time.perf_counter() - started, 1)}

    entry = cached(cache / "supernets", key, compute, name="supernet")
    if entry.value["space"] != space.to_dict():
        raise ParameterError(f"the supernet cached in {entry.path} is of another space; remove it")
    supernet = Supernet(space, entry.value["num_classes"])
    supernet.load_state_dict(torch.load(entry.file("supernet.pt"), weights_only=True))
    return supernet.eval(), entry
