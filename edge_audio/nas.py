"""Hardware-aware architecture search under explicit budgets, with Optuna (NSGA-II) and a random-search control.

A candidate is a plain :mod:`edge_audio.models` spec (plus the front end's ``n_mels`` when that is searched too),
so any result rebuilds from its JSON. The genome is fixed-length, as NSGA-II's crossover wants: the number of
stages (2-5), five per-stage channel genes of which the first ``stages`` are used, kernel size, block type,
pooling, head size and dropout; and, when ``nas_weight_bits`` lists more than one, the bit width of the
candidate's deployed weights (8, or 4: packed int4 in its full-integer TFLite model).

Per trial, in this order:

1. **Cost before training.** The candidate is built, exported to ONNX and written as the full-integer TFLite
   model a device would store, with its weights at the candidate's bit width (size and flash = its bytes), its
   peak RAM with INT8 activations planned (4-bit weights unpacked while their layer runs, as TensorFlow Lite Micro
   does), and it is timed in ONNX Runtime at batch 1 (the runtime and threads of the baselines' headline
   latency); MACs counted. Cached per (spec, bits, input shape, classes, threads, runs, machine, library versions).
2. **Hard budgets.** A candidate over ``max_size_mb``, ``max_latency_ms``, ``max_ram_kb`` or ``max_flash_kb`` is
   recorded as infeasible, with why, and is **never trained**.
3. **Proxy accuracy.** A feasible one is trained briefly (``proxy_epochs`` on the cached features, optionally on
   the first ``proxy_train_folds`` training folds) and scored on the search's own fold with its weights as
   deployed (BatchNorm folded, every weight on its bit width's grid; activations in float): the *search score*,
   to which ``min_accuracy`` applies. Proxy runs are ordinary cached training runs, so a spec both searches
   sample is trained once (whatever bit width each drew). With ``nas_distill`` every proxy run also learns from
   the teacher's soft targets (:attr:`SearchContext.distillation`).

The three budgets reach Optuna as constraints (``trial.set_constraint``; <= 0 is feasible), so NSGA-II ranks
by constrained domination. Objectives: maximise proxy accuracy, minimise latency, minimise size. The study
lives in an Optuna storage (default: SQLite under ``logs/``), named by everything that defines the search but
the number of generations, so a killed search resumes and a longer one continues the same study. It records the
CPU it was started on, and refuses a worker on another CPU (``nas_mixed_machines`` overrides), so latencies
measured on two machines never mix in one objective unless asked for.

**Several workers, one study** (:func:`open_storage`): any number of processes or machines may run the same search
against one storage URL. A database URL (``postgresql://``, ``mysql://``, ``sqlite:///``) opens Optuna's RDB
storage with a heartbeat: a trial whose worker stops beating for :data:`GRACE_PERIOD_S` (killed, machine lost) is
marked failed and re-queued once (``RetryHeartbeatStaleTrialCallback``), so it is neither left running forever nor lost.
``journal:///path/file.log`` opens Optuna's journal storage, an append-only file for shared file systems without
a database. Workers share the trial budget exactly: a worker starts a trial only while the completed and running
trials of the study are fewer than population x generations (:func:`run_study`).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from .errors import ParameterError
from .export import export_to_onnx, fold_batchnorm
from .features import FeatureSet
from .machine import machine_identity, versions
from .memory import memory_report
from .models import LightweightCNN, count_parameters
from .parameters import default
from .pareto import hypervolume, pareto_mask
from .npu import NPUCompileError, compile_for_npu, npu_target, with_npu_arenas
from .quantize import round_to_weight_grid, uncalibrated_tflite
from .profile import count_macs, runtime_latency
from .runtimes.pytorch import save_checkpoint
from .runtimes.tflm import firmware_ram, tflm_arena
from .stats import seeds_comparison
from .storage import atomic_write_json, cached, stable_hash
from .targets import Budgets
from .train import Distillation, Split, TrainConfig, TrainResult, evaluate, train_model
from .workers import HEARTBEAT_S, open_storage, optuna, worker_name  # optuna, imported quietly there

#: The search space. Channels are per stage (``channels_1`` .. ``channels_5``, each from its own widening set, so a
#: network keeps its wide layers where the resolution is low, as the baselines do); a trial draws all five channel
#: genes and uses the first ``stages``.
SEARCH_SPACE: dict[str, tuple] = {
    "stages": (2, 3, 4, 5),
    "channels_1": (8, 12, 16, 24),
    "channels_2": (16, 24, 32, 48, 64),
    "channels_3": (32, 48, 64, 96, 128),
    "channels_4": (48, 64, 96, 128, 192),
    "channels_5": (64, 96, 128, 192, 256),
    "kernel_size": (3, 5),
    "block": ("standard", "dsconv"),
    "pool": ("max", "avg"),
    "fc_size": (0, 32, 64, 128, 256),
    "dropout": (0.0, 0.1, 0.2, 0.3),
}
MAX_STAGES = max(SEARCH_SPACE["stages"])
#: The bit widths a candidate's deployed weights may take (``nas_weight_bits`` chooses among them).
WEIGHT_BITS = (8, 4)
#: How far over its budget a cost that could not be measured is counted (instead of infinity).
UNKNOWN_COST = 1e9
#: Bump when the space, the trial procedure or the history format changes: a new study name, nothing stale reused.
SEARCH_VERSION = 4
SAMPLERS = ("nsga2", "random")
HISTORY_FILE = "nas_history.json"


@dataclass(frozen=True)
class SearchConfig:
    """How a search runs. ``population * generations`` trials per sampler; the random control gets as many."""

    population: int = default("nas_population")
    generations: int = default("nas_generations")
    proxy_epochs: int = default("proxy_epochs")
    proxy_lr: float = 1e-2
    proxy_batch_size: int = 32
    proxy_train_folds: int | None = default("proxy_train_folds")  # None: all training folds; N: the first N
    n_mels_choices: tuple[int, ...] = ()  # empty: the data's n_mels, not searched
    weight_bits: tuple[int, ...] = tuple(default("nas_weight_bits"))  # one: not searched; several: a gene
    top_k: int = default("top_k")
    seed: int = default("seed")
    threads: int = default("latency_threads")
    latency_runs: int = 30

    def __post_init__(self) -> None:
        problems = []
        for name in ("population", "generations", "proxy_epochs", "proxy_batch_size", "threads", "latency_runs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                problems.append(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            problems.append(f"top_k must be an integer >= 0, got {self.top_k!r}")
        if self.population < 2:
            problems.append(f"population must be >= 2 for NSGA-II, got {self.population}")
        if self.proxy_train_folds is not None and (not isinstance(self.proxy_train_folds, int)
                                                   or self.proxy_train_folds < 1):
            problems.append(f"proxy_train_folds must be None or a positive integer, got {self.proxy_train_folds!r}")
        if any(not isinstance(n, int) or n < 8 for n in self.n_mels_choices):
            problems.append(f"n_mels_choices must be integers >= 8, got {list(self.n_mels_choices)}")
        if (not self.weight_bits or len(set(self.weight_bits)) != len(self.weight_bits)
                or any(bits not in WEIGHT_BITS for bits in self.weight_bits)):
            problems.append(f"weight_bits must be distinct values of {list(WEIGHT_BITS)}, got {list(self.weight_bits)}")
        if not self.proxy_lr > 0:
            problems.append(f"proxy_lr must be > 0, got {self.proxy_lr}")
        if problems:
            raise ParameterError("invalid search settings: " + "; ".join(problems))

    @property
    def trials(self) -> int:
        return self.population * self.generations

    def proxy_train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.proxy_epochs, batch_size=self.proxy_batch_size, lr=self.proxy_lr,
                           patience=0, seed=self.seed)


@dataclass(frozen=True)
class Trial:
    """One candidate of a search, as its history records it: what was proposed (architecture, mels, weight bits),
    what it costs deployed (measured before training; on the target device when there is one), whether it was
    trained and how it scored on the proxy fold, and how far it is from each budget."""

    number: int  # the trial's number in its study
    sampler: str  # nsga2 or random
    seed: int  # the search seed
    generation: int  # number // population
    spec: dict  # the architecture (edge_audio.models.spec_from_config), without its name
    n_mels: int
    architecture_key: str  # the architecture and n_mels, hashed: one finalist per key
    weight_bits: int  # of the deployed full-integer TFLite model
    size_bytes: int  # the deployed file's bytes
    latency_ms: float  # ONNX Runtime, batch 1, on this machine
    params: int
    int8_peak_ram_bytes: int  # activations deployed in INT8, by the planner
    fp32_size_bytes: int
    device_ram_bytes: float | None  # on the target device (its profile's costs), else the planner's
    device_flash_bytes: float | None
    device_latency_ms: float | None  # estimated on the target device; None without one
    npu: dict  # Vela's reports by target (empty without an NPU target)
    macs: int
    flops: int
    latency: dict  # the latency summary (median, p90, runs, ...)
    trained: bool  # every hardware budget met, so the proxy trained it
    proxy_accuracy: float | None  # on the proxy's scoring fold (None: not trained)
    proxy_macro_f1: float | None
    proxy_float_accuracy: float | None  # before rounding the weights to the searched bit width
    distilled: bool
    proxy_reused: bool  # the proxy run came from the cache
    feasible: bool  # every budget met, accuracy included
    violations: dict[str, float]  # budget -> how far over (<= 0: met)
    reasons: list[str]  # why it is not feasible, one phrase per broken budget
    cost_seconds: float
    train_seconds: float
    seconds: float
    finished: str  # ISO time
    worker: str

    @classmethod
    def from_dict(cls, entry: dict) -> "Trial":
        return cls(**entry)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def suggest_candidate(trial: optuna.Trial, n_mels_choices: tuple[int, ...] = (),
                      weight_bits: tuple[int, ...] = (8,)) -> tuple[dict, int | None, int]:
    """Draw one candidate: (architecture spec, n_mels or None when the front end is not searched, the bit width of
    its deployed weights: drawn when ``weight_bits`` offers more than one)."""
    stages = trial.suggest_int("stages", min(SEARCH_SPACE["stages"]), MAX_STAGES)
    channels = [trial.suggest_categorical(f"channels_{i}", SEARCH_SPACE[f"channels_{i}"])
                for i in range(1, MAX_STAGES + 1)]
    spec = {
        "name": f"nas-trial-{trial.number}",
        "channels": channels[:stages],
        "kernel_size": trial.suggest_categorical("kernel_size", SEARCH_SPACE["kernel_size"]),
        "block": trial.suggest_categorical("block", SEARCH_SPACE["block"]),
        "pool": trial.suggest_categorical("pool", SEARCH_SPACE["pool"]),
        "fc_size": trial.suggest_categorical("fc_size", SEARCH_SPACE["fc_size"]),
        "dropout": trial.suggest_categorical("dropout", SEARCH_SPACE["dropout"]),
    }
    bits = trial.suggest_categorical("weight_bits", weight_bits) if len(weight_bits) > 1 else weight_bits[0]
    if len(n_mels_choices) > 1:
        return spec, trial.suggest_categorical("n_mels", n_mels_choices), bits
    return spec, (n_mels_choices[0] if n_mels_choices else None), bits


def architecture_key(spec: dict, n_mels: int) -> str:
    """What identifies an architecture regardless of its trial's name (a candidate is an architecture and a bit
    width: the same architecture at two bit widths trains once and is one finalist)."""
    return stable_hash({"spec": {k: v for k, v in spec.items() if k != "name"}, "n_mels": n_mels})


def candidate_cost(spec: dict, input_shape: tuple[int, int], num_classes: int, work_dir: Path, threads: int = 1,
                   runs: int = 30, weight_bits: int = 8, npu: str | None = None) -> dict:
    """What an untrained candidate costs deployed: the bytes of its full-integer TFLite model with
    ``weight_bits``-bit weights (``size_bytes``, its flash; :func:`~edge_audio.quantize.tflite_bytes`), its peak
    RAM with INT8 activations (4-bit weights counted unpacked while their layer runs), ONNX Runtime latency, params
    and MACs (and its FP32 checkpoint's bytes, ``fp32_size_bytes``); with ``npu`` (an Ethos-U target, when the
    run's target device is one), Vela's report of that file compiled for it (about a second); cached.

    Vela compresses the weights it stores, so the flash and latency it reports for the untrained weights are not
    exactly the trained model's (random weights compress worse: the budget errs on the safe side).

    The entry holds the measured artifacts ``fp32.pth`` and ``model.onnx`` (weights at initialisation: size and
    latency do not depend on the weights' values). Keyed by the architecture, input, threads, runs, this machine
    and the library versions, since latency is a property of all of them.
    """
    library = versions()
    key = {"arch": architecture_key(spec, input_shape[0]), "weight_bits": weight_bits, "frames": input_shape[1],
           "classes": num_classes, "npu": None if npu is None else asdict(npu_target(npu)),
           "threads": threads, "runs": runs, "machine": machine_identity(), "cost": 4,
           "versions": {name: library[name] for name in ("torch", "onnx", "onnxruntime", "onnxscript",
                                                         "ai-edge-litert", "tflite-micro")}}

    def measure(folder: Path) -> dict:
        started = time.perf_counter()
        torch.manual_seed(0)
        model = LightweightCNN.from_spec(spec, num_classes=num_classes).eval()
        save_checkpoint(model, folder / "fp32.pth", (1, *input_shape))
        export_to_onnx(model, folder / "model.onnx", input_shape=(1, 1, *input_shape))
        latency = runtime_latency("onnxruntime", folder / "model.onnx", threads, runs)
        deployed = uncalibrated_tflite(folder / "model.onnx", folder / "model.tflite", weight_bits)
        tflm = tflm_arena(deployed)
        reports = {}
        if npu is not None:
            try:
                reports[npu] = compile_for_npu(deployed, npu_target(npu), folder / "npu")
            except NPUCompileError as exc:
                reports[npu] = {"target": npu, "error": str(exc)}
        # the whole arena a firmware allocates: TFLite Micro's, both sections, and CMSIS-NN's im2col scratch
        scratch = memory_report(folder / "model.onnx", full_integer=True,
                                unpacked_weights=weight_bits < 8)["scratch_bytes"]
        ram = firmware_ram(tflm, scratch)
        return {"size_bytes": os.path.getsize(deployed), "flash_bytes": os.path.getsize(deployed),
                "fp32_size_bytes": os.path.getsize(folder / "fp32.pth"),
                "onnx_size_bytes": os.path.getsize(folder / "model.onnx"),
                "params": count_parameters(model), **count_macs(model, (1, *input_shape)),
                "latency": latency, "latency_ms": latency["median_ms"],
                # what the candidate needs on a device once deployed in INT8 (activations one byte each)
                "int8_peak_ram_bytes": ram["arena_bytes"], "peak_ram_bytes": ram["arena_bytes"],
                "npu": with_npu_arenas(reports, tflm),
                "seconds": round(time.perf_counter() - started, 3)}

    entry = cached(work_dir, key, measure, name="candidate")
    return {**entry.value, "cached": entry.hit}


@dataclass
class SearchContext:
    """What a trial needs: features per n_mels, the proxy split, budgets and where to put things."""

    features: Callable[[int], FeatureSet]  # n_mels -> features
    default_n_mels: int
    split: Split
    budgets: Budgets
    config: SearchConfig
    work_dir: Path  # candidates' cost artifacts and proxy runs
    device: str = "auto"
    train: Callable = train_model  # the training function (a test counts its calls)
    mixed_machines: bool = False  # let workers on different CPUs share a study (their latencies then mix)
    distillation: Distillation | None = None  # the teacher's soft targets on the proxy's training clips


def search_score(run: TrainResult, features: FeatureSet, fold: int, weight_bits: int) -> dict:
    """A proxy run's metrics on ``fold`` with its weights as deployed at ``weight_bits`` bits: BatchNorm folded
    and every convolution's and fully connected layer's weights on the grid the TFLite writer stores
    (:func:`~edge_audio.quantize.round_to_weight_grid`); activations stay in float."""
    model = round_to_weight_grid(fold_batchnorm(run.load_model()), weight_bits)
    x, y = features.select([fold])
    return evaluate(model, x, y, features.num_classes)


def _objective(context: SearchContext, sampler_name: str) -> Callable[[optuna.Trial], tuple[float, float, float]]:
    config, budgets = context.config, context.budgets

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        started = time.perf_counter()
        # two workers can start a trial at the same moment: trial numbers decide which are within the budget
        taken = sorted(t.number for t in trial.study.get_trials(deepcopy=False, states=TAKEN))
        if trial.number not in taken[:config.trials]:
            raise optuna.TrialPruned("the study's trial budget is taken by other workers' trials")
        spec, n_mels, bits = suggest_candidate(trial, config.n_mels_choices, config.weight_bits)
        n_mels = n_mels or context.default_n_mels
        features = context.features(n_mels)
        cost = candidate_cost(spec, features.config.shape, features.num_classes, context.work_dir / "candidates",
                              config.threads, config.latency_runs, bits, budgets.device and budgets.device.npu)
        # deployed: the full-integer TFLite model, and on the target device when there is one (Vela on an NPU)
        ram, flash, device_latency = budgets.device_costs(cost)
        trained = budgets.hardware_met(budgets.violations(cost["size_bytes"], cost["latency_ms"], None, ram, flash,
                                                          device_latency))
        accuracy = macro_f1 = float_accuracy = None
        train_seconds, reused = 0.0, False
        if trained:
            run = context.train(spec | {"name": "nas-proxy"}, features, context.split, config.proxy_train_config(),
                                context.work_dir / "proxy_runs", context.device, False,
                                distillation=context.distillation)
            score = search_score(run, features, context.split.val_fold, bits)
            accuracy, macro_f1, float_accuracy = score["accuracy"], score["macro_f1"], run.val["accuracy"]
            train_seconds, reused = run.train_seconds, run.reused
        violations = budgets.violations(cost["size_bytes"], cost["latency_ms"], accuracy, ram, flash, device_latency)
        # an unknown cost is infinitely over (Vela did not compile the candidate): a large finite number for Optuna
        # and the JSON history
        violations = {name: min(value, UNKNOWN_COST) for name, value in violations.items()}
        for name, value in violations.items():
            trial.set_constraint(name, float(value))
        entry = Trial(
            number=trial.number, sampler=sampler_name, seed=config.seed, generation=trial.number // config.population,
            spec={k: v for k, v in spec.items() if k != "name"}, n_mels=n_mels,
            architecture_key=architecture_key(spec, n_mels), weight_bits=bits,
            size_bytes=cost["size_bytes"], latency_ms=cost["latency_ms"], params=cost["params"],
            int8_peak_ram_bytes=cost["int8_peak_ram_bytes"], fp32_size_bytes=cost["fp32_size_bytes"],
            device_ram_bytes=ram, device_flash_bytes=flash, device_latency_ms=device_latency, npu=cost["npu"],
            macs=cost["macs"], flops=cost["flops"], latency=cost["latency"],
            trained=trained, proxy_accuracy=accuracy, proxy_macro_f1=macro_f1, proxy_float_accuracy=float_accuracy,
            distilled=context.distillation is not None, proxy_reused=reused,
            feasible=all(v <= 0 for v in violations.values()),
            violations={k: round(float(v), 6) for k, v in violations.items()},
            reasons=budgets.reasons(cost["size_bytes"], cost["latency_ms"], accuracy, ram, flash, device_latency),
            cost_seconds=0.0 if cost["cached"] else cost["seconds"], train_seconds=train_seconds,
            seconds=round(time.perf_counter() - started, 3),
            finished=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), worker=worker_name())
        trial.set_user_attr("entry", entry.to_dict())
        # an untrained candidate scores 0 for the sampler; its history entry says "not trained" (None)
        return (accuracy if accuracy is not None else 0.0), cost["latency_ms"], cost["size_bytes"] / 1e6

    return objective


def study_name(sampler_name: str, identity: dict) -> str:
    """The study's name: the sampler and a hash of everything that defines the search but its length."""
    key = stable_hash({**identity, "space": SEARCH_SPACE, "version": SEARCH_VERSION})
    return f"edge-audio-nas-{sampler_name}-{key[:12]}"


def make_sampler(sampler_name: str, config: SearchConfig) -> optuna.samplers.BaseSampler:
    """NSGA-II (population ``config.population``) or the random control, both seeded with ``config.seed``."""
    if sampler_name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=config.population, seed=config.seed)
    if sampler_name == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    raise ParameterError(f"sampler must be one of {SAMPLERS}, got {sampler_name!r}")


#: The trials that count toward a study's budget: done, or being done by a live worker.
TAKEN = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
def default_storage(logs_dir: Path) -> str:
    """The default Optuna storage: a SQLite file under ``logs/``."""
    return f"sqlite:///{(Path(logs_dir) / 'nas_study.db').resolve()}"


def run_study(context: SearchContext, sampler_name: str, storage: str, identity: dict,
              progress: bool = False) -> optuna.Study:
    """Create or reopen the study and run trials until ``config.trials`` have completed (all workers together).

    Several processes or machines may run this against one storage URL at once (:func:`open_storage`). A worker
    starts a trial only while the study's completed and running trials are fewer than the budget (and a trial
    that another worker's started at the same moment pushes beyond it is pruned at once), waits while the rest
    runs elsewhere, and returns when ``config.trials`` trials are complete: exactly that many, none computed twice.
    A dead worker's trial is failed once its heartbeat is :data:`GRACE_PERIOD_S` old and run again, so a search
    resumed after a hard kill may wait that long first.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name(sampler_name, identity), storage=open_storage(storage),
                                sampler=make_sampler(sampler_name, context.config),
                                directions=["maximize", "minimize", "minimize"], load_if_exists=True)
    _check_machine(study, context.mixed_machines)
    target = context.config.trials
    objective = _objective(context, sampler_name)
    bar = tqdm(total=target, initial=_completed(study), desc=f"NAS ({sampler_name})", unit="trial",
               disable=not progress)
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's trial: failed, re-queued by the callback
        if _completed(study) >= target:
            break
        if len(study.get_trials(deepcopy=False, states=TAKEN)) >= target:
            time.sleep(HEARTBEAT_S / 2)  # the rest of the budget is running in other workers: wait for them
            continue
        study.optimize(objective, n_trials=1)
        bar.n = _completed(study)
        bar.refresh()
    bar.close()
    return study


def _check_machine(study: optuna.Study, mixed: bool) -> None:
    """Candidate latency is an objective, so a study belongs to the CPU it was started on: it records that CPU,
    and a worker on another one is refused (:class:`~edge_audio.errors.ParameterError`) unless ``mixed``."""
    here = {key: machine_identity()[key] for key in ("cpu", "isa", "arch")}
    started_on = study.user_attrs.get("machine")
    if started_on is None:
        study.set_user_attr("machine", here)
    elif started_on != here and not mixed:
        raise ParameterError(
            f"study {study.study_name} was started on {started_on['cpu']} ({', '.join(started_on['isa'])}); this "
            f"worker runs on {here['cpu']} ({', '.join(here['isa'])}), and candidate latencies from two CPUs would "
            "mix in one objective. Search afresh with another storage, or pass -p nas_mixed_machines true to "
            "share the study anyway")


def _completed(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def study_history(study: optuna.Study) -> list[Trial]:
    """The history entries of a study's completed trials, in trial order."""
    return [Trial.from_dict(t.user_attrs["entry"])
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if "entry" in t.user_attrs]


def feasible_front(history: list[Trial]) -> list[Trial]:
    """The feasible, trained trials that no other feasible trial beats on (proxy accuracy, latency, size)."""
    feasible = [h for h in history if h.feasible]
    if not feasible:
        return []
    mask = pareto_mask(np.array([[-h.proxy_accuracy, h.latency_ms, h.size_bytes] for h in feasible]))
    return [h for h, keep in zip(feasible, mask) if keep]


def search_hypervolume(history: list[Trial], budgets: Budgets) -> float:
    """Hypervolume of a search's feasible trials in (1 - accuracy/100, latency/max, size/max), reference (1, 1, 1).

    Both searches are measured against the same budgets, so their hypervolumes compare directly; 0 means no
    feasible trial.
    """
    feasible = [h for h in history if h.feasible]
    if not feasible:
        return 0.0
    points = np.array([[1 - h.proxy_accuracy / 100, h.latency_ms / budgets.max_latency_ms,
                        h.size_bytes / budgets.max_size_bytes] for h in feasible])
    return round(hypervolume(points, np.ones(3) + 1e-9), 5)


def search_summary(history: list[Trial], budgets: Budgets) -> dict:
    """Trials, how many were feasible and trained, the best feasible proxy accuracy, the hypervolume."""
    feasible = [h for h in history if h.feasible]
    best = max(feasible, key=lambda h: (h.proxy_accuracy, -h.size_bytes)) if feasible else None
    return {"trials": len(history), "trained": sum(h.trained for h in history), "feasible": len(feasible),
            "best_feasible_accuracy": best.proxy_accuracy if best else None,
            "best_trial": best.number if best else None, "hypervolume": search_hypervolume(history, budgets),
            "seconds": round(sum(h.seconds for h in history), 1)}


def closest_candidate(history: list[Trial], budgets: Budgets) -> Trial | None:
    """The candidate that came closest to the budgets: the smallest total relative violation."""
    if not history:
        return None

    def distance(h: Trial) -> float:
        over = h.violations
        return (max(over["size_mb"], 0) / budgets.max_size_mb + max(over["latency_ms"], 0) / budgets.max_latency_ms
                + max(over["accuracy"], 0) / max(budgets.min_accuracy, 1e-9)
                + (max(over["ram_kb"], 0) / budgets.max_ram_kb if budgets.max_ram_kb else 0.0)
                + (max(over["flash_kb"], 0) / budgets.max_flash_kb if budgets.max_flash_kb else 0.0)
                + (max(over["device_latency_ms"], 0) / budgets.max_device_latency_ms
                   if budgets.max_device_latency_ms else 0.0))

    return min(history, key=distance)


@dataclass
class SearchOutcome:
    """The searches of every seed: histories, per-seed summaries, NSGA-II against random over seeds, finalists."""

    history: dict[str, list[Trial]]  # sampler -> entries of every seed (each entry names its seed)
    summaries: dict[int, dict[str, dict]]  # seed -> sampler -> search_summary
    comparison: dict[str, dict]  # score -> stats.seeds_comparison of NSGA-II (a) against random (b)
    finalists: list[Trial]  # history entries, best proxy accuracy first
    storage: str
    study_names: dict[int, dict[str, str]]
    budgets: Budgets
    config: SearchConfig

    @property
    def seeds(self) -> list[int]:
        return list(self.summaries)

    @property
    def winner(self) -> str:
        """``nsga2`` or ``random`` when its hypervolume is resolvably higher over the seeds (paired t-test), else
        ``tie`` (always with a single seed: one search per sampler cannot tell a method from luck)."""
        return {"a": SAMPLERS[0], "b": SAMPLERS[1], None: "tie"}[self.comparison["hypervolume"]["better"]]


def compare_searches(summaries: dict[int, dict[str, dict]]) -> dict[str, dict]:
    """NSGA-II against random over seeds, on hypervolume and on best feasible proxy accuracy (0 when none)."""
    return {score: seeds_comparison([summaries[seed][SAMPLERS[0]][score] or 0.0 for seed in summaries],
                                    [summaries[seed][SAMPLERS[1]][score] or 0.0 for seed in summaries])
            for score in ("hypervolume", "best_feasible_accuracy")}


def run_search(context: SearchContext, seeds: list[int], storage: str, identity: dict, history_path: Path,
               progress: bool = False) -> SearchOutcome:
    """Run (or resume) the NSGA-II search and the random control with the same budget, once per seed; write every
    trial to ``history_path``; compare the two over seeds; and pick the top-k distinct architectures of the
    NSGA-II feasible front (all seeds' trials together) by proxy accuracy."""
    histories: dict[str, list[Trial]] = {sampler: [] for sampler in SAMPLERS}
    summaries, names = {}, {}
    for seed in seeds:
        seeded = dataclasses.replace(context, config=dataclasses.replace(context.config, seed=seed))
        summaries[seed], names[seed] = {}, {}
        for sampler_name in SAMPLERS:
            study = run_study(seeded, sampler_name, storage, {**identity, "seed": seed, "distillation": (
                None if context.distillation is None else context.distillation.key())}, progress)
            entries = study_history(study)
            histories[sampler_name].extend(entries)
            summaries[seed][sampler_name] = search_summary(entries, context.budgets)
            names[seed][sampler_name] = study.study_name
    front = sorted(feasible_front(histories["nsga2"]), key=lambda h: (-h.proxy_accuracy, h.size_bytes))
    distinct = {}  # NSGA-II can propose one architecture several times: each is a finalist once
    for entry in front:
        distinct.setdefault(entry.architecture_key, entry)
    finalists = list(distinct.values())[:context.config.top_k]
    comparison = compare_searches(summaries)
    atomic_write_json(history_path, {
        "budgets": context.budgets.to_dict(), "search": asdict(context.config), "seeds": seeds, "space": SEARCH_SPACE,
        "proxy_split": asdict(context.split), "storage": _redact(storage), "studies": names,
        "summaries": summaries, "comparison": comparison,
        "finalists": [{"seed": h.seed, "number": h.number} for h in finalists],
        "trials": [h.to_dict() for s in SAMPLERS for h in histories[s]],
    })
    return SearchOutcome(histories, summaries, comparison, finalists, storage, names, context.budgets, context.config)


def _redact(url: str) -> str:
    """A database URL without its password (the history file may be shared)."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
    return url
