"""The steps wired once: :class:`Pipeline` runs each step of one run's settings at most once, in the order the data
flows, handing each the results it needs from the steps before it.

Both the chapters (:mod:`edge_audio.chapters`) and :class:`~edge_audio.reference.NotebookPipeline` read their
results from a ``Pipeline``, so what chapter 3 quantizes (the baselines and the distilled students) is what the
Python interface quantizes. Every step is cached on disk (:mod:`edge_audio.storage`), so a ``Pipeline`` whose
settings a chapter already ran loads its results instead of computing them.
"""
from __future__ import annotations

from functools import cached_property

from .settings import Settings


class Pipeline:
    """One run's steps, each computed on first use and kept (``data``, ``baselines``, ``students``,
    ``quantization``, ``student_quantization``, ``waveform``, ``nas``, ``frontier``)."""

    def __init__(self, settings: Settings, progress: bool = False, data=None):
        self.settings = settings
        self.progress = progress
        if data is not None:  # the prepared data of the same dataset and features, reused (NotebookPipeline)
            self.__dict__["data"] = data

    @cached_property
    def data(self):
        """Step 1: the dataset, validated, and its features (:func:`edge_audio.steps.data.prepare_data`)."""
        from .steps.data import prepare_data

        return prepare_data(self.settings, self.progress)

    @cached_property
    def baselines(self) -> list:
        """Step 2: the baselines trained under the protocol and seeds (``BaselineResult`` each)."""
        from .steps.baselines import train_baselines

        return train_baselines(self.data, self.settings, progress=self.progress)

    @cached_property
    def students(self) -> list:
        """Step 2: the baselines retrained by knowledge distillation (``distill_students``; empty without)."""
        from .steps.baselines import distill_students

        return distill_students(self.data, self.settings, self.baselines, self.progress)

    @cached_property
    def quantization(self) -> list:
        """Step 3: every baseline compressed with every method of ``methods`` (``QuantizationResult`` each)."""
        from .steps.quantization import quantize_models

        return quantize_models(self.data, self.settings, self.baselines)

    @cached_property
    def student_quantization(self) -> list:
        """Step 3: the distilled students compressed like the search's finalists."""
        from .steps.quantization import quantize_students

        return quantize_students(self.data, self.settings, self.students)

    @cached_property
    def waveform(self):
        """Step 3: the baseline picked by validation accuracy exported with its front end in the graph."""
        from .results import pick_key
        from .steps.quantization import export_deployable

        best = max(self.baselines, key=lambda b: pick_key(b.record))
        return export_deployable(self.data, best, threads=self.settings.latency_threads)

    @cached_property
    def firmware(self) -> dict:
        """Step 3: every published full-integer variant as generated C, on the host and on emulated boards."""
        from .steps.quantization import emulated_boards

        return emulated_boards(self.data, self.quantization, self.settings.boards)

    @cached_property
    def nas(self):
        """Step 4: the architecture search and its finalists (``NASResult``)."""
        from .steps.search import run_nas

        self.settings.budgets, self.settings.search  # invalid budgets or search settings stop before any work
        return run_nas(self.data, self.settings, self.baselines, self.progress)

    @cached_property
    def supernet(self):
        """Step 4: the supernet search, its finalists per deployment profile (``SupernetResult``)."""
        from .steps.search import run_supernet_nas

        self.settings.supernet_profiles  # unknown or NPU profiles stop before any work
        return run_supernet_nas(self.data, self.settings, self.baselines, self.nas, self.progress)

    @cached_property
    def frontier(self):
        """Step 5: the frontier over every record of this run's context (``FrontierResult``)."""
        from .steps.frontier import build_frontier

        return build_frontier(self.data, self.settings)
