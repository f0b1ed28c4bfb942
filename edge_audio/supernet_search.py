"""The architecture search over one trained supernet: thousands of sub-networks per search, each costed from its
structure and scored with inherited weights in milliseconds (:class:`~edge_audio.supernet.Scorer`).

Per evaluation, in this order:

1. **Costs from the structure** (:func:`structural_costs`, microseconds): parameters and MACs exactly as the
   baselines' records count them (thop's rules, checked by the tests), the full-integer TFLite model's stored
   bytes (weights at 8 bits, biases at 32, and the per-channel quantization parameters the writer stores with
   them: ``flash_bytes``), and the activation RAM no planner can go below (the largest input-plus-output pair of one
   operator, in INT8) with CMSIS-NN's im2col scratch (``ram_bytes``). Both are lower bounds of what the written file
   and TensorFlow Lite Micro's arena measure (the file's flatbuffer tables, the arena's persistent section): the
   picks are measured (:func:`edge_audio.steps.search`), and the chapter shows how far apart the two are.
2. **Budgets before scoring**: a sub-network over a size, flash, RAM or device-latency budget (the latter
   estimated from its MACs by the target device's profile) is recorded as infeasible, with why, and not scored.
3. **The supernet score**: accuracy on the proxy fold with inherited weights, BatchNorm recalibrated on training
   clips; ``min_accuracy`` applies to it.

Optuna's NSGA-II searches with the budgets as constraints and three objectives (maximise the score, minimise MACs,
which every device's latency estimate is proportional to, minimise flash bytes); the random control draws as many.
The studies live in memory: a whole search takes seconds once the supernet is trained, so it is recomputed rather
than stored (its history is written to ``logs/supernet_history.json``).

A search's **hypervolume** is taken over its feasible sub-networks in (1 - score / 100, MACs / MACs of the largest
sub-network, flash / flash of the largest), reference (1, 1, 1), so two searches of one space compare directly.
"""
from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from .errors import ParameterError
from .nas import SAMPLERS, compare_searches
from .pareto import hypervolume
from .stats import ALPHA, exact_p
from .supernet import Scorer, SupernetSpace
from .targets import Budgets, DeviceProfile
from .workers import optuna

#: The space the book searches: microcontroller-sized widths (the baselines nano to tiny live in it), four per stage.
BOOK_SPACE = SupernetSpace(channels=((8, 12, 16, 20), (16, 24, 32, 40), (24, 32, 40, 48), (32, 40, 48, 64),
                                     (48, 64, 80, 96)), kernel_size=(3, 5), fc_size=(0, 32, 64), pool=("max", "avg"))


def structural_costs(arch: dict[str, Any], input_shape: tuple[int, int], num_classes: int) -> dict:
    """What sub-network ``arch`` (a :class:`~edge_audio.supernet.SupernetSpace` architecture, standard blocks) costs,
    from its structure alone: ``params``, ``macs`` (thop's rules: a convolution's output elements x input channels
    x kernel area, a BatchNorm 4 per input element, average pooling one per input and one per output element,
    max pooling none, a linear layer inputs x outputs), ``flash_bytes`` and ``ram_bytes`` (lower bounds of the
    full-integer TFLite file and of the firmware's arena; see the module docstring)."""
    height, width = input_shape
    channels, kernel, fc = arch["channels"], arch["kernel_size"], arch["fc_size"]
    params = 2  # the input BatchNorm's affine pair
    macs = 4 * height * width
    flash = 1 + 4 + 2 * 12  # the input BatchNorm as a 1x1 depthwise convolution: weight, bias, their quantization
    ram = 0
    scratch = 0
    c_in = 1
    for c_out in channels:
        weights = c_out * c_in * kernel * kernel
        params += weights + 2 * c_out
        macs += height * width * weights + 4 * height * width * c_out
        # int8 weights and int32 biases, each with a float32 scale and an int64 zero point per output channel
        flash += weights + 4 * c_out + 2 * 12 * c_out
        ram = max(ram, height * width * c_in + height * width * c_out)
        scratch = max(scratch, 2 * 2 * c_in * kernel * kernel)  # arm_convolve_s8's im2col: 2 columns of int16
        pooled_h, pooled_w = -(-height // 2), -(-width // 2)
        if arch["pool"] == "avg":
            macs += height * width * c_out + pooled_h * pooled_w * c_out
        ram = max(ram, height * width * c_out + pooled_h * pooled_w * c_out)
        height, width, c_in = pooled_h, pooled_w, c_out
    macs += height * width * c_in + c_in  # the global average
    for units in ([fc] if fc else []) + [num_classes]:
        params += c_in * units + units
        macs += c_in * units
        flash += c_in * units + 4 * units + 2 * 12  # one scale and zero point per fully connected tensor
        c_in = units
    return {"params": params, "macs": macs, "flash_bytes": flash, "ram_bytes": ram + scratch}


def _device_latency(budgets: Budgets, costs: dict) -> float | None:
    """The latency the budgets' device estimates from the MACs (None without a device, one without a clock, or an
    NPU, whose latency is Vela's)."""
    device = screening(budgets).device
    return device.costs({"macs": costs["macs"], "peak_ram_bytes": costs["ram_bytes"],
                         "flash_bytes": costs["flash_bytes"]}).latency_ms if device is not None else None


def screening(budgets: Budgets) -> Budgets:
    """The part of ``budgets`` a sub-network's structure can be checked against. An NPU's SRAM, flash and latency
    are Vela's (it compresses weights and plans its own memory), which the structure does not bound: for an NPU
    target only the size and accuracy limits screen, and the picks are measured with Vela."""
    if budgets.device is None or budgets.device.npu is None:
        return budgets
    return Budgets(budgets.max_size_mb, budgets.max_latency_ms, budgets.min_accuracy)


def _checked(budgets: Budgets, costs: dict, accuracy: float | None) -> tuple[dict[str, float], list[str]]:
    """How far structural ``costs`` are over what of ``budgets`` they can be checked against (:func:`screening`),
    and why. The host's latency budget (ONNX Runtime, measured) cannot be checked from the structure either: the
    picks are measured before they become finalists."""
    budgets = screening(budgets)
    args = (costs["flash_bytes"], 0.0, accuracy, costs["ram_bytes"], costs["flash_bytes"],
            _device_latency(budgets, costs))
    return budgets.violations(*args), budgets.reasons(*args)


@dataclass(frozen=True)
class SubnetTrial:
    """One sub-network a search evaluated: what it is, what it costs (from its structure), and its score."""

    number: int
    sampler: str
    seed: int
    arch: dict
    params: int
    macs: int
    flash_bytes: int  # lower bound of the full-integer TFLite file (structural_costs)
    ram_bytes: int  # lower bound of the firmware's arena
    device_latency_ms: float | None  # estimated on the target device from MACs (None without one)
    scored: bool  # every hardware budget met, so the supernet scored it
    proxy_accuracy: float | None  # the supernet score on the proxy fold (None: not scored)
    proxy_macro_f1: float | None
    feasible: bool
    violations: dict[str, float]
    reasons: list[str]
    seconds: float  # the evaluation's wall-clock (in a search: the sampler's proposal and update included)

    @property
    def key(self) -> str:
        return repr(self.arch)


@dataclass
class SubnetSearch:
    """What every search needs: the scorer (the trained supernet on the proxy fold), the space, the budgets."""

    scorer: Scorer
    space: SupernetSpace
    budgets: Budgets
    input_shape: tuple[int, int]
    num_classes: int
    evaluations: int
    population: int

    def __post_init__(self) -> None:
        if self.evaluations < self.population:
            raise ParameterError(f"supernet_evaluations ({self.evaluations}) must be at least one NSGA-II population "
                                 f"({self.population})")
        largest = structural_costs(self.space.largest(), self.input_shape, self.num_classes)
        self.reference = {"macs": largest["macs"], "flash_bytes": largest["flash_bytes"]}
        smallest = structural_costs(self.space.smallest(), self.input_shape, self.num_classes)
        violations, reasons = _checked(self.budgets, smallest, None)
        if not screening(self.budgets).hardware_met(violations):
            raise ParameterError("no sub-network can meet the budgets: the smallest of the space already breaks "
                                 + "; ".join(reasons))

    def evaluate(self, arch: dict, number: int, sampler: str, seed: int) -> SubnetTrial:
        """Cost ``arch``, and score it when its costs meet the hardware budgets."""
        started = time.perf_counter()
        costs = structural_costs(arch, self.input_shape, self.num_classes)
        scored = screening(self.budgets).hardware_met(_checked(self.budgets, costs, None)[0])
        metrics = self.scorer.score(arch) if scored else {"accuracy": None, "macro_f1": None}
        violations, reasons = _checked(self.budgets, costs, metrics["accuracy"])
        return SubnetTrial(number, sampler, seed, arch, costs["params"], costs["macs"], costs["flash_bytes"],
                           costs["ram_bytes"], _device_latency(self.budgets, costs), scored, metrics["accuracy"],
                           metrics["macro_f1"], all(v <= 0 for v in violations.values()),
                           {k: round(float(v), 6) for k, v in violations.items()}, reasons,
                           round(time.perf_counter() - started, 5))

    def suggest(self, trial: optuna.Trial) -> dict:
        """One sub-network drawn gene by gene (fixed-length: every stage's width is drawn, the first ``stages``
        used, as NSGA-II's crossover wants)."""
        depth = trial.suggest_categorical("stages", self.space.stages)
        widths = [trial.suggest_categorical(f"channels_{i + 1}", widths)
                  for i, widths in enumerate(self.space.channels)]
        return {"channels": widths[:depth], "kernel_size": trial.suggest_categorical("kernel_size",
                                                                                      self.space.kernel_size),
                "fc_size": trial.suggest_categorical("fc_size", self.space.fc_size),
                "pool": trial.suggest_categorical("pool", self.space.pool)}

    def run(self, sampler_name: str, seed: int, progress: bool = False) -> list[SubnetTrial]:
        """One search of ``evaluations`` sub-networks with ``sampler_name`` (nsga2 or random), seeded."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = (optuna.samplers.NSGAIISampler(population_size=self.population, seed=seed)
                   if sampler_name == "nsga2" else optuna.samplers.RandomSampler(seed=seed))
        study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize", "minimize"])
        history: list[SubnetTrial] = []
        bar = tqdm(total=self.evaluations, desc=f"supernet search ({sampler_name}, seed {seed})", unit="sub-network",
                   disable=not progress)
        for _ in range(self.evaluations):
            started = time.perf_counter()
            trial = study.ask()
            entry = self.evaluate(self.suggest(trial), trial.number, sampler_name, seed)
            for name, value in entry.violations.items():
                trial.set_constraint(name, float(min(value, 1e9)))
            study.tell(trial, (entry.proxy_accuracy or 0.0, entry.macs, entry.flash_bytes))
            # the sampler's own time counts: what a search costs is the wall-clock of its loop
            history.append(dataclasses.replace(entry, seconds=round(time.perf_counter() - started, 5)))
            bar.update()
        bar.close()
        return history

    def hypervolume(self, history: list[SubnetTrial]) -> float:
        """The hypervolume of ``history``'s feasible sub-networks (see the module docstring); 0 when none."""
        feasible = [h for h in history if h.feasible]
        if not feasible:
            return 0.0
        points = np.array([[1 - h.proxy_accuracy / 100, h.macs / self.reference["macs"],
                            h.flash_bytes / self.reference["flash_bytes"]] for h in feasible])
        return round(hypervolume(points, np.ones(3) + 1e-9), 5)

    def summary(self, history: list[SubnetTrial]) -> dict:
        feasible = [h for h in history if h.feasible]
        best = max(feasible, key=lambda h: (h.proxy_accuracy, -h.flash_bytes)) if feasible else None
        return {"evaluations": len(history), "distinct": len({h.key for h in history}),
                "scored": sum(h.scored for h in history), "feasible": len(feasible),
                "best_feasible_accuracy": best.proxy_accuracy if best else None,
                "hypervolume": self.hypervolume(history), "seconds": round(sum(h.seconds for h in history), 2)}


@dataclass
class SubnetSearchOutcome:
    """Both searches once per seed: histories, per-seed summaries, NSGA-II against random over seeds."""

    history: dict[str, list[SubnetTrial]]  # sampler -> every seed's evaluations
    summaries: dict[int, dict[str, dict]]  # seed -> sampler -> SubnetSearch.summary
    comparison: dict[str, dict]  # score -> stats.seeds_comparison of NSGA-II (a) against random (b)
    seconds: float  # wall-clock of every search together

    @property
    def winner(self) -> str:
        return {"a": SAMPLERS[0], "b": SAMPLERS[1], None: "tie"}[self.comparison["hypervolume"]["better"]]


def run_subnet_searches(search: SubnetSearch, seeds: list[int], progress: bool = False) -> SubnetSearchOutcome:
    """NSGA-II and the random control, ``search.evaluations`` sub-networks each, once per seed."""
    started = time.perf_counter()
    history: dict[str, list[SubnetTrial]] = {name: [] for name in SAMPLERS}
    summaries: dict[int, dict[str, dict]] = {}
    for seed in seeds:
        summaries[seed] = {}
        for name in SAMPLERS:
            entries = search.run(name, seed, progress)
            history[name].extend(entries)
            summaries[seed][name] = search.summary(entries)
    return SubnetSearchOutcome(history, summaries, compare_searches(summaries), round(time.perf_counter() - started, 1))


def candidates_for(outcome: SubnetSearchOutcome, search: SubnetSearch,
                   profile: DeviceProfile | None) -> list[SubnetTrial]:
    """The distinct feasible sub-networks (every search's) whose structural costs meet ``profile`` too (None: the
    run's budgets alone), in the order a profile's finalist is picked in: first those the proxy fold cannot tell
    from the best-scored one (exact McNemar test on the same clips, p >= 0.05), fewest MACs first (then fewest flash
    bytes): the cheapest of the statistically best; then the rest, best score first."""
    budgets = search.budgets if profile is None else search.budgets.for_device(profile)
    distinct = {h.key: h for entries in outcome.history.values() for h in entries if h.feasible}
    fitting = []
    for entry in distinct.values():
        costs = {"macs": entry.macs, "flash_bytes": entry.flash_bytes, "ram_bytes": entry.ram_bytes}
        if all(v <= 0 for v in _checked(budgets, costs, entry.proxy_accuracy)[0].values()):
            fitting.append(entry)
    if not fitting:
        return []
    fitting.sort(key=lambda h: (-h.proxy_accuracy, h.flash_bytes, h.macs))
    best = search.scorer.correct[fitting[0].key]

    def tied(entry: SubnetTrial) -> bool:
        right = search.scorer.correct[entry.key]
        return exact_p(int((right & ~best).sum()), int((~right & best).sum())) >= ALPHA

    ties = sorted((h for h in fitting if tied(h)), key=lambda h: (h.macs, h.flash_bytes, -h.proxy_accuracy))
    return ties + [h for h in fitting if not tied(h)]


def spread_over_params(space: SupernetSpace, count: int, seed: int, input_shape: tuple[int, int],
                       num_classes: int) -> list[dict]:
    """``count`` distinct sub-networks at evenly spaced quantiles of the parameters of 400 drawn with ``seed``:
    what rank fidelity is measured over, from the smallest to the largest."""
    rng = random.Random(seed)
    drawn = {}
    for _ in range(400):
        arch = space.sample(rng)
        drawn[repr(arch)] = (structural_costs(arch, input_shape, num_classes)["params"], arch)
    ordered = sorted(drawn.values(), key=lambda item: (item[0], repr(item[1])))
    picks = np.linspace(0, len(ordered) - 1, count).round().astype(int)
    return [ordered[i][1] for i in dict.fromkeys(picks)]
