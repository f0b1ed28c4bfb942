"""The reference pipeline's interface: :class:`PipelineConfig` (the book's defaults) and :class:`NotebookPipeline`.

Both read their defaults from the one parameter table (:mod:`edge_audio.parameters`): ``PipelineConfig``'s
settings are the table's book values under the reference pipeline's names, and ``NotebookPipeline`` runs the
steps the chapters call, in this process, with the book values unless told otherwise::

    from edge_audio import NotebookPipeline

    pipeline = NotebookPipeline(dataset_path=None)          # None: the embedded synthetic UrbanSound8K
    baselines = pipeline.train_baseline(epochs=12)          # list[BaselineResult]
    variants = pipeline.quantize_models()                   # list[QuantizationResult]
    search = pipeline.run_nas(generations=3)                # NASResult
    frontier = pipeline.generate_reports()                  # FrontierChapter: the frontier and its reports
    everything = pipeline.run_all(baseline_epochs=12, nas_generations=3)

Each step is cached on disk like the chapters' (same output folder, same keys), so a step the book already ran is
loaded, not recomputed, and the other way round.
"""
from __future__ import annotations

import copy
import os
from typing import Any

from .errors import ParameterError
from .parameters import PARAMETERS
from .pipeline import Pipeline
from .settings import Settings

#: PipelineConfig's settings (the reference pipeline's names) and the parameters they stand for.
SETTING_PARAMETERS = {"NAS_POPULATION_SIZE": "nas_population", "NAS_GENERATIONS": "nas_generations",
                      "NAS_PROXY_EPOCHS": "proxy_epochs", "NAS_TOP_K": "top_k", "EPOCHS": "epochs",
                      "BATCH_SIZE": "batch_size", "SYNTH_CLIPS_PER_CLASS_PER_FOLD": "synth_clips_per_class_per_fold",
                      "LATENCY_RUNS": "latency_runs"}
CONSTRAINT_PARAMETERS = ("max_size_mb", "max_latency_ms", "min_accuracy")


def _model_configs(names: list) -> list[dict[str, Any]]:
    """The reference pipeline's ``MODEL_CONFIGS`` form of a ``model_configs`` value: one dict per model."""
    from .models import PRESETS

    return [{"name": c, **PRESETS[c]} if isinstance(c, str) else copy.deepcopy(c) for c in names]


class PipelineConfig:
    """The defaults of a full run (the book values of the parameter table). Override any per instance:
    ``PipelineConfig(NAS_GENERATIONS=5, CONSTRAINTS={"max_size_mb": 0.5})``.

    ``parameters()`` turns them into the chapters' parameter names (what ``edge-audio run`` passes; ``-p`` and
    the CLI flags override them).
    """

    CONSTRAINTS: dict[str, float] = {name: PARAMETERS[name].book_value for name in CONSTRAINT_PARAMETERS}
    MODEL_CONFIGS: list[dict[str, Any]] = _model_configs(PARAMETERS["model_configs"].book_value)
    NAS_POPULATION_SIZE: int = PARAMETERS["nas_population"].book_value
    NAS_GENERATIONS: int = PARAMETERS["nas_generations"].book_value
    NAS_PROXY_EPOCHS: int = PARAMETERS["proxy_epochs"].book_value
    NAS_TOP_K: int = PARAMETERS["top_k"].book_value
    EPOCHS: int = PARAMETERS["epochs"].book_value
    BATCH_SIZE: int = PARAMETERS["batch_size"].book_value
    SYNTH_CLIPS_PER_CLASS_PER_FOLD: int = PARAMETERS["synth_clips_per_class_per_fold"].book_value
    LATENCY_RUNS: int = PARAMETERS["latency_runs"].book_value

    def __init__(self, **overrides: Any):
        known = ["CONSTRAINTS", "MODEL_CONFIGS", *SETTING_PARAMETERS]
        for name, value in overrides.items():
            if name not in known:
                raise ParameterError(f"PipelineConfig has no setting {name!r}; known: {', '.join(known)}")
            setattr(self, name, value)
        for name in ("CONSTRAINTS", "MODEL_CONFIGS"):  # never share the class-level mutable defaults
            setattr(self, name, copy.deepcopy(getattr(self, name)))
        unknown = set(self.CONSTRAINTS) - set(CONSTRAINT_PARAMETERS)
        if unknown:
            raise ParameterError(f"unknown constraint(s) {sorted(unknown)}; use {list(CONSTRAINT_PARAMETERS)}")

    def parameters(self) -> dict[str, Any]:
        """The chapter parameters these settings stand for."""
        return {"model_configs": self.MODEL_CONFIGS, **{p: getattr(self, s) for s, p in SETTING_PARAMETERS.items()},
                **{**PipelineConfig.CONSTRAINTS, **self.CONSTRAINTS}}


class NotebookPipeline:
    """The book's steps as Python calls, each returning its results (see the module docstring), wired as the
    chapters wire them (:class:`~edge_audio.pipeline.Pipeline`).

    ``parameters`` are chapter parameters by name (``n_mels=40``, ``max_size_mb=0.5``, ...), over ``config``'s
    (default :class:`PipelineConfig`) and the other book values. An unknown name is an error naming the closest.
    """

    def __init__(self, dataset_path: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None,
                 config: PipelineConfig | None = None, progress: bool = True, **parameters: Any):
        self.settings = Settings.book(**((config or PipelineConfig()).parameters() | parameters
                                         | {"dataset_path": dataset_path, "output_dir": output_dir}))
        self.progress = progress
        self._pipeline = Pipeline(self.settings, progress)

    def _with(self, **changes: Any) -> Pipeline:
        """The pipeline of these settings with ``changes`` (None values ignored), on the same prepared data."""
        changes = {name: value for name, value in changes.items() if value is not None}
        if not changes:
            return self._pipeline
        return Pipeline(self.settings.replace(**changes), self.progress, data=self.data)

    @property
    def data(self):
        """The prepared dataset and features (:func:`edge_audio.steps.data.prepare_data`), computed once."""
        return self._pipeline.data

    def train_baseline(self, epochs: int | None = None) -> list:
        """Train (or load) every model of ``model_configs``; returns a list of ``BaselineResult``."""
        return self._with(epochs=epochs).baselines

    def quantize_models(self, methods: list[str] | None = None) -> list:
        """Quantize every baseline with every method, and the distilled students like the search's finalists (as
        chapter 3 does); returns a list of ``QuantizationResult``."""
        pipeline = self._with(methods=methods)
        return pipeline.quantization + pipeline.student_quantization

    def run_nas(self, generations: int | None = None, population: int | None = None):
        """The architecture search of chapter 4 (resumed if interrupted); returns a ``NASResult``."""
        return self._with(nas_generations=generations, nas_population=population).nas

    def generate_reports(self):
        """The frontier of chapter 5 over everything evaluated so far, its figures and reports written under
        ``reports/``; returns a ``FrontierChapter`` (``.report``, ``.records``, ``.figures``, ``.paths``)."""
        from .chapters.frontier import FrontierChapter

        return FrontierChapter.of(self.settings, self.data, self._pipeline.frontier)

    def run_all(self, baseline_epochs: int | None = None, nas_generations: int | None = None) -> dict[str, Any]:
        """Every step in order; returns ``{"baselines", "quantization", "nas", "frontier"}``."""
        if baseline_epochs is not None:  # the finalists are retrained the same way
            self.settings = self.settings.replace(epochs=baseline_epochs)
            self._pipeline = Pipeline(self.settings, self.progress, data=self.data)
        return {"baselines": self.train_baseline(), "quantization": self.quantize_models(),
                "nas": self.run_nas(generations=nas_generations), "frontier": self.generate_reports()}
