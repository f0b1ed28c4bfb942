"""The reference pipeline's interface: :class:`PipelineConfig` (the book's defaults) and :class:`NotebookPipeline`.

``PipelineConfig`` holds the book-quality settings ``edge-audio run`` gives the chapters (the chapters' own
``parameters`` cells hold small smoke-run defaults). ``NotebookPipeline`` runs the same steps the chapters call,
in this process, and returns their results::

    from edge_audio import NotebookPipeline

    pipeline = NotebookPipeline(dataset_path=None)          # None: the embedded synthetic UrbanSound8K
    baselines = pipeline.train_baseline(epochs=12)          # list[BaselineResult]
    variants = pipeline.quantize_models()                   # list[QuantizationResult]
    search = pipeline.run_nas(generations=3)                # NASResult
    frontier = pipeline.generate_reports()                  # FrontierResult
    everything = pipeline.run_all(baseline_epochs=12, nas_generations=3)

Each step is cached on disk like the chapters' (same output folder, same keys), so a step the book already ran is
loaded, not recomputed, and the other way round.
"""
from __future__ import annotations

import copy
import os
from typing import Any

from .frontier import Budgets
from .models import MODEL_CONFIGS


class PipelineConfig:
    """The defaults of a full run. Override any of them per instance: ``PipelineConfig(NAS_GENERATIONS=5)``.

    ``parameters()`` turns them into the chapters' parameter names (what ``edge-audio run`` passes; ``-p`` and the
    CLI flags override them).
    """

    CONSTRAINTS: dict[str, float] = Budgets().to_dict()  # max_size_mb 2.0, max_latency_ms 50.0, min_accuracy 70.0
    MODEL_CONFIGS: list[dict[str, Any]] = MODEL_CONFIGS
    NAS_POPULATION_SIZE: int = 4
    NAS_GENERATIONS: int = 3
    NAS_PROXY_EPOCHS: int = 6
    NAS_TOP_K: int = 2
    EPOCHS: int = 12
    BATCH_SIZE: int = 32
    SYNTH_CLIPS_PER_CLASS_PER_FOLD: int = 8
    LATENCY_RUNS: int = 200

    def __init__(self, **overrides: Any):
        for name, value in overrides.items():
            if not name.isupper() or not hasattr(type(self), name):
                known = ", ".join(n for n in vars(PipelineConfig) if n.isupper())
                raise ValueError(f"PipelineConfig has no setting {name!r}; known: {known}")
            setattr(self, name, value)
        for name in ("CONSTRAINTS", "MODEL_CONFIGS"):  # never share the class-level mutable defaults
            setattr(self, name, copy.deepcopy(getattr(self, name)))
        unknown = set(self.CONSTRAINTS) - set(PipelineConfig.CONSTRAINTS)
        if unknown:
            raise ValueError(f"unknown constraint(s) {sorted(unknown)}; use {sorted(PipelineConfig.CONSTRAINTS)}")

    def parameters(self) -> dict[str, Any]:
        """The chapter parameters these settings stand for."""
        return {
            "synth_clips_per_class_per_fold": self.SYNTH_CLIPS_PER_CLASS_PER_FOLD,
            "model_configs": self.MODEL_CONFIGS, "epochs": self.EPOCHS, "batch_size": self.BATCH_SIZE,
            "latency_runs": self.LATENCY_RUNS, **{**PipelineConfig.CONSTRAINTS, **self.CONSTRAINTS},
            "nas_population": self.NAS_POPULATION_SIZE, "nas_generations": self.NAS_GENERATIONS,
            "proxy_epochs": self.NAS_PROXY_EPOCHS, "top_k": self.NAS_TOP_K,
        }


#: Every step's settings by chapter parameter name, with the values a chapter run by ``edge-audio run`` gets.
STEP_DEFAULTS: dict[str, Any] = {
    "seed": 0, "sample_rate": 22050, "duration": 4.0, "n_mels": 64, "n_fft": 1024, "hop_length": 512,
    "learning_rate": 0.003, "protocol": "holdout", "device": "auto", "latency_threads": 1,
    "methods": ["pytorch_dynamic", "ort_static", "ort_static_per_tensor", "ort_dynamic"],
    "calibration_size": 100, "calibration_method": "minmax", "nas_storage": None, "proxy_train_folds": None,
    "nas_n_mels": [], "profiles": None,
}


class NotebookPipeline:
    """The book's steps as Python calls, each returning its results (see the module docstring).

    ``parameters`` are chapter parameters by name (``n_mels=40``, ``max_size_mb=0.5``, ...), over ``config``'s
    (default :class:`PipelineConfig`) and the chapters' other defaults. An unknown name is an error.
    """

    def __init__(self, dataset_path: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
                 config: PipelineConfig | None = None, progress: bool = True, **parameters: Any):
        settings = {**STEP_DEFAULTS, **(config or PipelineConfig()).parameters()}
        unknown = set(parameters) - set(settings)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; known: {', '.join(sorted(settings))}")
        self.settings = {**settings, **parameters}
        self.dataset_path, self.output_dir, self.progress = dataset_path, output_dir, progress
        self._data = None

    # -- helpers -----------------------------------------------------------------------------------------------
    @property
    def data(self):
        """The prepared dataset and features (:func:`edge_audio.pipeline.prepare_data`), computed once."""
        if self._data is None:
            from .pipeline import prepare_data

            s = self.settings
            self._data = prepare_data(self.dataset_path, self.output_dir, seed=s["seed"],
                                      synth_clips_per_class_per_fold=s["synth_clips_per_class_per_fold"],
                                      sample_rate=s["sample_rate"], duration=s["duration"], n_mels=s["n_mels"],
                                      n_fft=s["n_fft"], hop_length=s["hop_length"], progress=self.progress)
        return self._data

    def _train_config(self, epochs: int | None = None):
        from .train import TrainConfig

        s = self.settings
        return TrainConfig(epochs=s["epochs"] if epochs is None else epochs, batch_size=s["batch_size"],
                           lr=s["learning_rate"], seed=s["seed"])

    def _budgets(self):
        from .frontier import Budgets

        s = self.settings
        return Budgets(s["max_size_mb"], s["max_latency_ms"], s["min_accuracy"])

    # -- the steps ---------------------------------------------------------------------------------------------
    def train_baseline(self, epochs: int | None = None) -> list:
        """Train (or load) every model of ``model_configs``; returns a list of ``BaselineResult``."""
        from .pipeline import train_baselines
        from .train import Protocol

        s = self.settings
        return train_baselines(self.data, s["model_configs"], self._train_config(epochs), Protocol(s["protocol"]),
                               s["device"], s["latency_threads"], s["latency_runs"], self.progress)

    def quantize_models(self, methods: list[str] | None = None) -> list:
        """Quantize every baseline with every method (chapter 3); returns a list of ``QuantizationResult``."""
        from .pipeline import quantize_models

        s = self.settings
        return quantize_models(self.data, self.train_baseline(), methods or s["methods"], s["calibration_size"],
                               s["calibration_method"], s["latency_threads"], s["latency_runs"])

    def run_nas(self, generations: int | None = None, population: int | None = None):
        """The architecture search of chapter 4 (resumed if interrupted); returns a ``NASResult``."""
        from .nas import SearchConfig
        from .pipeline import run_nas
        from .train import Protocol

        s = self.settings
        search = SearchConfig(population=population or s["nas_population"],
                              generations=generations or s["nas_generations"], proxy_epochs=s["proxy_epochs"],
                              proxy_train_folds=s["proxy_train_folds"], n_mels_choices=tuple(s["nas_n_mels"]),
                              top_k=s["top_k"], seed=s["seed"], threads=s["latency_threads"])
        budgets = self._budgets()  # invalid budgets fail before any training
        return run_nas(self.data, self.train_baseline(), budgets, search, self._train_config(),
                       Protocol(s["protocol"]), s["nas_storage"], s["device"], s["latency_runs"],
                       s["calibration_size"], self.progress)

    def generate_reports(self):
        """The frontier of chapter 5 over everything evaluated so far; returns a ``FrontierResult``."""
        from .pipeline import build_frontier
        from .train import Protocol

        return build_frontier(self.data, self._budgets(), Protocol(self.settings["protocol"]),
                              self.settings["profiles"])

    def run_all(self, baseline_epochs: int | None = None, nas_generations: int | None = None) -> dict[str, Any]:
        """Every step in order; returns ``{"baselines", "quantization", "nas", "frontier"}``."""
        if baseline_epochs is not None:
            self.settings["epochs"] = baseline_epochs  # the NAS finalists are retrained the same way
        return {"baselines": self.train_baseline(), "quantization": self.quantize_models(),
                "nas": self.run_nas(generations=nas_generations), "frontier": self.generate_reports()}
