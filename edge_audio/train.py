"""Training and evaluation on the dataset's own folds, with resumable checkpoints and idempotent runs.

Protocols (named in every result, never a random split):

* ``holdout``: train on all folds but two, early-stop on ``val_fold``, report ``test_fold`` (defaults: the last
  two folds, so 9 and 10 for UrbanSound8K, 4 and 5 for ESC-50).
* ``kfold``: the dataset's official cross-validation; each fold is the test fold once (validation: the fold
  before it), and the result is the mean and standard deviation over folds.

A training run is a :func:`~edge_audio.storage.cached` entry keyed by (architecture spec, features, training
settings and seed, split, device type, torch version): a run on a GPU, or with another torch, is another run.
While it trains, its ``.partial`` folder holds ``checkpoint.pt`` (updated every epoch: model, optimiser,
scheduler, best weights, RNG state, history); once finished, the entry holds ``best.pt`` and the metrics. A
finished run is loaded, never retrained; an interrupted one resumes from its last epoch and ends with the same
numbers an uninterrupted run gives.

On CUDA, the forward pass and the loss run under bf16 autocast (mixed precision: bf16 matmuls and convolutions,
FP32 weights and optimizer; no loss scaling is needed with bf16), and the training folds are copied to the GPU
once, every batch indexed there: no DataLoader, no per-batch host-to-device copy, nothing for the GPU to wait on
(the full-size UrbanSound8K's features are under 200 MB). On CPU, training is FP32.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import time
import warnings
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .errors import ParameterError, UserError
from .features import FeatureSet
from .metrics import classification_metrics
from .models import LightweightCNN
from .notices import notice
from .parameters import default
from .runtimes.base import predict_batches
from .storage import atomic_write_with, cached

SCHEDULES = ("onecycle", "cosine")


class TrainingDiverged(UserError, RuntimeError):
    """A loss or a weight became NaN or infinite: the settings (learning rate) or the features are at fault."""



PROTOCOLS = ("holdout", "kfold")
#: Bump when training changes what it computes, so earlier runs are not reused.
TRAIN_VERSION = 3


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. ``patience`` 0 disables early stopping; ``mixup_alpha`` 0 disables mixup."""

    epochs: int = default("epochs")
    batch_size: int = default("batch_size")
    lr: float = default("learning_rate")
    weight_decay: float = 1e-2
    schedule: str = "onecycle"
    patience: int = 10
    spec_augment: bool = True
    freq_mask: int = 8
    time_mask: int = 24
    mixup_alpha: float = 0.0
    label_smoothing: float = 0.05
    seed: int = default("seed")

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.patience < 0 or self.mixup_alpha < 0:
            problems.append("patience and mixup_alpha must be >= 0")
        if problems:
            raise ParameterError("invalid training settings: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Split:
    """One train/validation/test assignment of folds."""

    train_folds: tuple[int, ...]
    val_fold: int
    test_fold: int


@dataclass(frozen=True)
class Protocol:
    """How folds become splits: ``holdout`` (one split) or ``kfold`` (one split per fold)."""

    kind: str = "holdout"
    val_fold: int | None = None
    test_fold: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in PROTOCOLS:
            raise ParameterError(f"protocol must be one of {PROTOCOLS}, got {self.kind!r}")

    def splits(self, folds: list[int]) -> list[Split]:
        """The splits over the dataset's folds; raises ``ValueError`` for folds the dataset lacks."""
        folds = sorted(folds)
        if len(folds) < 3:
            raise ParameterError(f"need at least 3 folds for train/validation/test, the dataset has {folds}")
        if self.kind == "kfold":
            return [Split(tuple(f for f in folds if f not in (folds[i - 1], test)), folds[i - 1], test)
                    for i, test in enumerate(folds)]
        val = folds[-2] if self.val_fold is None else self.val_fold
        test = folds[-1] if self.test_fold is None else self.test_fold
        for name, fold in (("val_fold", val), ("test_fold", test)):
            if fold not in folds:
                raise ParameterError(f"{name} {fold} is not a fold of this dataset (folds: {folds})")
        if val == test:
            raise ParameterError(f"val_fold and test_fold must differ, both are {val}")
        return [Split(tuple(f for f in folds if f not in (val, test)), val, test)]

    def describe(self, folds: list[int]) -> str:
        """A human-readable name, e.g. ``holdout (val fold 9, test fold 10)`` or ``10-fold cross-validation``."""
        if self.kind == "kfold":
            return f"{len(folds)}-fold cross-validation"
        split = self.splits(folds)[0]
        return f"holdout (val fold {split.val_fold}, test fold {split.test_fold})"


def select_device(device: str = "auto") -> torch.device:
    """``auto``: CUDA when present, else CPU; or an explicit torch device string."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    """Seed torch's global RNGs (weight init) and ask for deterministic kernels."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False


def _spec_augment(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """One frequency and one time mask per sample, filled with that sample's mean."""
    batch, _, n_mels, frames = x.shape
    cpu = torch.device("cpu")

    def mask(size: int, width: int) -> torch.Tensor:
        widths = torch.randint(0, width + 1, (batch, 1), generator=generator, device=cpu)
        starts = (torch.rand((batch, 1), generator=generator, device=cpu) * (size - widths + 1)).long()
        positions = torch.arange(size, device=cpu).unsqueeze(0)
        return ((positions >= starts) & (positions < starts + widths)).to(x.device)

    freq = mask(n_mels, min(config.freq_mask, n_mels // 2))[:, None, :, None]
    time_ = mask(frames, min(config.time_mask, frames // 2))[:, None, None, :]
    fill = x.mean(dim=(2, 3), keepdim=True)
    return torch.where(freq | time_, fill, x)


#: CPU instruction sets with native bf16 arithmetic, where bf16 autocast pays (/proc/cpuinfo names).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def training_precision(device: torch.device) -> str:
    """What the training step's forward pass and loss compute in: ``bf16`` (autocast) on CUDA and on a CPU with
    native bf16 arithmetic (:data:`BF16_FLAGS`), ``fp32`` elsewhere. Measured on an AMD EPYC with AVX-512 bf16,
    2 cores (book settings, seeds 0 and 1): medium trains in 46 s instead of 71 s, small 31 s instead of 40 s,
    at test accuracies within the seeds' own spread (``benchmarks/training_precision.py`` measures it anew). It is
    part of every run's key."""
    if device.type == "cuda":
        return "bf16"
    from .machine import cpu_isa

    return "bf16" if set(BF16_FLAGS) & set(cpu_isa()) else "fp32"


def mixed_precision(device: torch.device):
    """The context the training step's forward pass and loss run in (:func:`training_precision`)."""
    if training_precision(device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(model: nn.Module, features: np.ndarray, device: torch.device | None = None,
            batch_size: int = 128) -> np.ndarray:
    """Logits of ``model`` for log-mel ``features`` ``(clips, n_mels, frames)``, in eval mode."""
    device = device or next(model.parameters()).device
    model.eval()
    return predict_batches(lambda batch: model(torch.from_numpy(batch).unsqueeze(1).to(device)).float().cpu().numpy(),
                           features, batch_size)


def evaluate(model: nn.Module, features: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """:func:`edge_audio.metrics.classification_metrics` of ``model`` on the given clips."""
    return classification_metrics(labels, predict(model, features).argmax(axis=1), num_classes)


@dataclass(frozen=True)
class Distillation:
    """Soft targets for a student (knowledge distillation, Hinton et al. 2015): a teacher's logits on the split's
    training clips, in the order of ``features.select(split.train_folds)``, and how they are taught.

    The loss is ``(1 - weight) * cross-entropy(labels) + weight * T^2 * KL(softmax(teacher / T) ||
    softmax(student / T))`` at temperature ``T``; under mixup the teacher's probabilities are mixed like the labels.
    ``teacher`` names what made the logits (the teacher runs' cache keys): it enters the student's run key.
    """

    logits: np.ndarray = dataclass_field(repr=False, compare=False)
    teacher: dict = dataclass_field(default_factory=dict)
    temperature: float = default("distill_temperature")
    weight: float = default("distill_weight")

    def __post_init__(self) -> None:
        if not self.temperature > 0 or not 0.0 <= self.weight <= 1.0:
            raise ParameterError(f"distillation needs temperature > 0 and weight in [0, 1], got {self.temperature} "
                                 f"and {self.weight}")

    def key(self) -> dict:
        return {"teacher": self.teacher, "temperature": self.temperature, "weight": self.weight}


def optimizer_step(loss: torch.Tensor, optimizer, scheduler, where: str, remedy: str) -> None:
    """One step of ``optimizer`` and ``scheduler`` on ``loss``; a NaN or infinite loss stops first with
    :class:`TrainingDiverged` (``"<where> (loss nan): lower <remedy>"``), so nothing after it is checkpointed or
    cached."""
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"{where} (loss {float(loss.detach())}): lower {remedy}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()


def distillation_loss(logits: torch.Tensor, teacher_probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(teacher || student)`` at temperature ``T``, averaged over the batch (``teacher_probabilities``
    are the teacher's softmax at the same temperature)."""
    return F.kl_div(F.log_softmax(logits.float() / temperature, dim=1), teacher_probabilities,
                    reduction="batchmean") * temperature ** 2


@dataclass
class TrainResult:
    """A finished training run: the best-epoch model's metrics, the history and where things are on disk."""

    key: str  # the run's cache entry name
    spec: dict
    split: Split
    train_config: TrainConfig
    best_epoch: int
    epochs_run: int
    history: list[dict]
    val: dict
    test: dict
    train_seconds: float
    run_dir: Path
    device: str
    reused: bool

    @property
    def checkpoint(self) -> Path:
        """The best epoch's state dict."""
        return self.run_dir / "best.pt"

    def load_model(self) -> LightweightCNN:
        """The best-epoch model, on CPU, in eval mode (its cache entry verified its bytes when it was loaded)."""
        model = LightweightCNN.from_spec(self.spec)
        model.load_state_dict(torch.load(self.checkpoint, map_location="cpu", weights_only=True))
        return model.eval()


def run_key(spec: dict, features: FeatureSet, config: TrainConfig, split: Split, device: torch.device,
            distillation: Distillation | None = None, initial: nn.Module | None = None) -> dict:
    """Everything that changes a training run's result (the weights it starts from by their content; the threads it
    computes with, which change its sums' order on a CPU)."""
    return {"spec": spec, "features": features.key, "train": config.to_dict(), "split": asdict(split),
            "device": device.type, "precision": training_precision(device), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "version": TRAIN_VERSION,
            **({} if distillation is None else {"distillation": distillation.key()}),
            **({} if initial is None else {"initial": state_digest(initial)})}


def state_digest(model: nn.Module) -> str:
    """The SHA-256 of a model's state (every tensor's name, shape and bytes, in order)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def train_model(spec: dict, features: FeatureSet, split: Split, config: TrainConfig, runs_dir: str | Path,
                device: str = "auto", progress: bool = True, stop_after_epoch: int | None = None,
                distillation: Distillation | None = None, initial: nn.Module | None = None) -> TrainResult:
    """Train ``spec`` on ``split`` (or load the finished run with the same key) and evaluate its best epoch;
    with ``distillation``, against the teacher's soft targets as well as the labels; from ``initial``'s weights
    (a model of the same spec: fine-tuning) instead of a seeded initialisation.

    ``stop_after_epoch`` interrupts the run after that epoch, leaving its checkpoint (used to test resuming).
    """
    torch_device = select_device(device)
    spec = LightweightCNN.from_spec(spec, num_classes=features.num_classes).spec
    entry = cached(runs_dir, run_key(spec, features, config, split, torch_device, distillation, initial),
                   lambda folder: _train(spec, features, split, config, folder, torch_device, progress,
                                         stop_after_epoch, distillation, initial), name=f"run-{spec['name']}")
    value = entry.value
    return TrainResult(key=entry.path.name, spec=value["spec"], split=split, train_config=config,
                       best_epoch=value["best_epoch"], epochs_run=value["epochs_run"], history=value["history"],
                       val=value["val"], test=value["test"], train_seconds=value["train_seconds"],
                       run_dir=entry.path, device=value["device"], reused=entry.hit)


@dataclass
class _Clips:
    """A split's clips on the training device (training clips as tensors, channel first; validation and test as
    arrays) and the teacher's softened targets of the training clips, or None."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    teacher: torch.Tensor | None


def _clips(features: FeatureSet, split: Split, num_classes: int, torch_device: torch.device,
           distillation: Distillation | None) -> _Clips:
    """``split``'s clips of ``features``, checked non-empty, and the teacher's targets checked against them."""
    x_train, y_train = features.select(split.train_folds)
    val, test = features.select([split.val_fold]), features.select([split.test_fold])
    if len(x_train) == 0 or len(val[0]) == 0 or len(test[0]) == 0:
        raise ParameterError(f"split {split} leaves an empty train, validation or test set")
    teacher = None
    if distillation is not None:
        if distillation.logits.shape != (len(x_train), num_classes):
            raise ValueError(f"the teacher's logits have shape {distillation.logits.shape}, the training clips "
                             f"need {(len(x_train), num_classes)}")
        teacher = torch.softmax(torch.from_numpy(distillation.logits).float() / distillation.temperature,
                                dim=1).to(torch_device)
    return _Clips(torch.from_numpy(x_train).unsqueeze(1).to(torch_device), torch.from_numpy(y_train).to(torch_device),
                  val, test, teacher)


def _optimizer(model: nn.Module, config: TrainConfig, steps_per_epoch: int):
    """AdamW and its schedule (one-cycle or cosine) over the whole run."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.schedule == "onecycle":
        return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, epochs=config.epochs,
                                                              steps_per_epoch=steps_per_epoch)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)


def _resume(checkpoint_path: Path, model: nn.Module, optimizer, scheduler, generator: torch.Generator,
            torch_device: torch.device) -> dict:
    """The run's state: a fresh one, or the one an interrupted run left (its model, optimizer, schedule and random
    generators restored)."""
    saved = _resume_point(checkpoint_path, torch_device)
    if saved is None:
        return {"epoch": 0, "history": [], "best_val": -1.0, "best_epoch": 0, "best_state": None,
                "train_seconds": 0.0, "stale": 0}
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    generator.set_state(saved["generator"].cpu())  # map_location moved it to the training device
    torch.set_rng_state(saved["torch_rng"].cpu())  # dropout draws from torch's global generator
    if torch_device.type == "cuda":
        torch.cuda.set_rng_state(saved["cuda_rng"].cpu(), torch_device)
    return saved["state"]


def _batch_loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, soft: torch.Tensor | None, config: TrainConfig,
                distillation: Distillation | None, generator: torch.Generator, mix: tuple[int, int, int],
                torch_device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch's logits and loss: cross-entropy (label smoothing; mixup when ``mixup_alpha``, its weight drawn
    from the ``mix`` seed, epoch and step), plus the distillation term against the teacher's ``soft`` targets."""
    with mixed_precision(torch_device):
        if config.mixup_alpha > 0:
            lam = float(np.random.default_rng(list(mix)).beta(config.mixup_alpha, config.mixup_alpha))
            perm = torch.randperm(len(xb), generator=generator).to(torch_device)
            logits = model(lam * xb + (1 - lam) * xb[perm])
            loss = lam * F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing) + (
                1 - lam) * F.cross_entropy(logits, yb[perm], label_smoothing=config.label_smoothing)
            soft = None if soft is None else lam * soft + (1 - lam) * soft[perm]
        else:
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
        if soft is not None:
            loss = (1 - distillation.weight) * loss + distillation.weight * distillation_loss(
                logits, soft, distillation.temperature)
    return logits, loss


def _epoch(model: nn.Module, clips: _Clips, config: TrainConfig, distillation: Distillation | None, optimizer,
           scheduler, generator: torch.Generator, state: dict, name: str, torch_device: torch.device) -> dict:
    """One epoch over the training clips in a seeded order; returns its history row (without validation)."""
    model.train()
    steps = max(1, int(np.ceil(len(clips.x_train) / config.batch_size)))
    order = torch.randperm(len(clips.x_train), generator=generator)
    total_loss, correct = 0.0, 0
    for step in range(steps):
        index = order[step * config.batch_size:(step + 1) * config.batch_size].to(torch_device)
        xb, yb = clips.x_train[index].contiguous(memory_format=torch.channels_last), clips.y_train[index]
        if config.spec_augment:
            xb = _spec_augment(xb, config, generator)
        soft = None if clips.teacher is None else clips.teacher[index]
        logits, loss = _batch_loss(model, xb, yb, soft, config, distillation, generator,
                                   (config.seed, state["epoch"], step), torch_device)
        optimizer_step(loss, optimizer, scheduler, f"training {name} diverged at epoch {state['epoch'] + 1}, step "
                       f"{step + 1}", "learning_rate, or check the features")
        total_loss += float(loss.detach()) * len(yb)
        correct += int((logits.argmax(1) == yb).sum())
    return {"train_loss": round(total_loss / len(clips.x_train), 5),
            "train_accuracy": round(100.0 * correct / len(clips.x_train), 3)}


def _keep_best(model: nn.Module, state: dict, row: dict, val_metrics: dict) -> None:
    """Record the epoch's row in ``state`` and keep the weights when validation accuracy improved."""
    state["history"].append(row)
    if val_metrics["accuracy"] > state["best_val"]:
        state.update(best_val=val_metrics["accuracy"], best_epoch=state["epoch"], stale=0,
                     best_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    else:
        state["stale"] += 1


def _save_checkpoint(path: Path, model: nn.Module, optimizer, scheduler, generator: torch.Generator, state: dict,
                     torch_device: torch.device) -> None:
    """Everything a resumed run needs to continue exactly (``weights_only``-loadable: tensors, numbers, dicts)."""
    snapshot = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                "torch_rng": torch.get_rng_state(), "state": state,
                **({"cuda_rng": torch.cuda.get_rng_state(torch_device)} if torch_device.type == "cuda" else {})}
    atomic_write_with(path, lambda handle: torch.save(snapshot, handle))


def _train(spec: dict, features: FeatureSet, split: Split, config: TrainConfig, folder: Path,
           torch_device: torch.device, progress: bool, stop_after_epoch: int | None,
           distillation: Distillation | None, initial: nn.Module | None = None) -> dict:
    """Train in ``folder`` (resuming from its checkpoint when there is one); write ``best.pt``; return the metrics."""
    num_classes = spec["num_classes"]
    seed_everything(config.seed)
    model = LightweightCNN.from_spec(spec)
    if initial is not None:
        model.load_state_dict(initial.state_dict())
    # channels_last: ~30% faster convolutions on CPU (measured); same numbers.
    model = model.to(torch_device, memory_format=torch.channels_last)
    clips = _clips(features, split, num_classes, torch_device, distillation)
    optimizer, scheduler = _optimizer(model, config, max(1, int(np.ceil(len(clips.x_train) / config.batch_size))))
    generator = torch.Generator().manual_seed(config.seed)
    checkpoint_path = folder / "checkpoint.pt"
    state = _resume(checkpoint_path, model, optimizer, scheduler, generator, torch_device)
    bar = tqdm(total=config.epochs, initial=state["epoch"], desc=f"training {spec['name']}", unit="epoch",
               disable=not progress)
    while state["epoch"] < config.epochs and not (config.patience and state["stale"] >= config.patience):
        started = time.perf_counter()
        row = _epoch(model, clips, config, distillation, optimizer, scheduler, generator, state, spec["name"],
                     torch_device)
        val_metrics = evaluate(model, *clips.val, num_classes)
        state["epoch"] += 1
        state["train_seconds"] += time.perf_counter() - started
        _keep_best(model, state, {"epoch": state["epoch"], **row, "val_accuracy": val_metrics["accuracy"],
                                  "val_macro_f1": val_metrics["macro_f1"], "lr": float(scheduler.get_last_lr()[0])},
                   val_metrics)
        _save_checkpoint(checkpoint_path, model, optimizer, scheduler, generator, state, torch_device)
        bar.update()
        bar.set_postfix(loss=row["train_loss"], train_acc=row["train_accuracy"], val_acc=val_metrics["accuracy"])
        if stop_after_epoch is not None and state["epoch"] >= stop_after_epoch:
            bar.close()
            raise KeyboardInterrupt(f"stopped after epoch {state['epoch']} as asked")
    bar.close()
    return _finish_run(model, state, folder, spec, clips, torch_device)


def _finish_run(model: nn.Module, state: dict, folder: Path, spec: dict, clips: _Clips,
                torch_device: torch.device) -> dict:
    """The best epoch's weights checked finite and written as ``best.pt`` (the checkpoint removed), and the run's
    metrics on its validation and test clips."""
    model.load_state_dict(state["best_state"])
    best_state = copy.deepcopy(state["best_state"])
    if not all(torch.isfinite(t).all() for t in best_state.values() if t.is_floating_point()):
        raise TrainingDiverged(f"training {spec['name']} ended with non-finite weights: lower learning_rate")
    atomic_write_with(folder / "best.pt", lambda handle: torch.save(best_state, handle))
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    num_classes = spec["num_classes"]
    return {"spec": spec, "best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
            "history": state["history"], "val": evaluate(model, *clips.val, num_classes),
            "test": evaluate(model, *clips.test, num_classes), "train_seconds": round(state["train_seconds"], 3),
            "device": str(torch_device)}


def _resume_point(path: Path, device: torch.device) -> dict | None:
    """The snapshot an interrupted run left (loaded with ``weights_only=True``: tensors, numbers, lists and dicts,
    never code), or None. One that cannot be loaded that way (damaged, or not written by edge-audio) is
    reported in one line and removed: the run starts over rather than trust it."""
    if not path.is_file():
        return None
    try:
        with warnings.catch_warnings():  # a file written with another pickle protocol: refused below, not warned of
            warnings.simplefilter("ignore", UserWarning)
            saved = torch.load(path, map_location=device, weights_only=True)
        if not {"model", "optimizer", "scheduler", "generator", "torch_rng", "state"} <= set(saved):
            raise ValueError("not an edge-audio training snapshot")
    except Exception as exc:  # a planted pickle is refused here, before any of it runs
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        notice(f"refusing to resume from {path} ({reason}): training this run from the start")
        path.unlink()
        return None
    return saved


def summarize_folds(results: list[TrainResult]) -> dict[str, Any]:
    """Mean and standard deviation of test accuracy and macro-F1 over the splits of a protocol."""
    acc = np.array([r.test["accuracy"] for r in results])
    f1 = np.array([r.test["macro_f1"] for r in results])
    return {"accuracy": round(float(acc.mean()), 4), "accuracy_std": round(float(acc.std(ddof=0)), 4),
            "macro_f1": round(float(f1.mean()), 4), "macro_f1_std": round(float(f1.std(ddof=0)), 4),
            "folds": [r.split.test_fold for r in results]}
