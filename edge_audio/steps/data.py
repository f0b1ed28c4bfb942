"""Step 1 (chapter 1): the dataset on disk, validated, and its log-mel features.

Reading the data once: every file's digest is remembered by (path, size, modification time) in
``cache/file-digests.json``, the validation of a dataset is cached by its content, and so are its features, so a
re-run with everything cached reads no audio it has already fingerprinted.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..paths import OutputLayout, check_dataset_of, claim_for_dataset, resolve_path

from ..features import FeatureConfig
from ..data import (Dataset, FileDigests, ValidationReport, check_dataset, check_training_classes, default_dataset,
                    leaked_clips, load_dataset)
from ..errors import DatasetError
from ..features import FeatureSet, extract_features
from ..machine import machine_profile
from ..settings import Settings
from ..results import run_context
from ..storage import cached
from ..synth import SynthConfig

#: Bump when validation changes what it reports, so earlier checks are not reused.
CHECK_VERSION = 2


@dataclass
class PreparedData:
    """The usable dataset, its validation report, its log-mel features, the output layout, and the machine."""

    dataset: Dataset  # the usable files only
    report: ValidationReport  # every file, with the excluded ones listed
    features: FeatureSet
    layout: OutputLayout
    fingerprint: str  # of the usable dataset's content (see Dataset.fingerprint)
    machine: dict  # edge_audio.machine.machine_profile: CPU, instruction sets, library versions, FP32 floor
    synth: SynthConfig | None = None  # what generated the dataset, when it is the embedded synthetic one

    @property
    def feature_config(self) -> FeatureConfig:
        return self.features.config

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def summary(self) -> dict:
        """The dataset part of a results record."""
        return {"name": self.dataset.name, "layout": self.dataset.layout, "clips": len(self.dataset),
                "fingerprint": self.fingerprint, "features": self.features.key,
                "class_ids": self.dataset.class_ids}

    def context(self, settings: Settings) -> dict:
        """The context of this run's records (see :func:`edge_audio.results.run_context`)."""
        versions = self.machine["versions"]
        machine = {k: self.machine[k] for k in ("cpu", "isa", "cores", "arch")} | {
            "versions": {name: versions[name] for name in ("torch", "onnx", "onnxruntime")}}
        train = {**settings.train.to_dict(), "seeds": settings.training_seeds}
        return run_context(self.fingerprint, self.feature_config.to_dict(), train,
                           settings.protocol.describe(self.dataset.folds), settings.latency_threads, machine)


def prepare_data(settings: Settings, progress: bool = False) -> PreparedData:
    """Load (or generate) the dataset, validate it, exclude the bad files, and extract (or load) its features.

    ``settings.dataset_path`` None means the embedded synthetic UrbanSound8K (``seed``,
    ``synth_clips_per_class_per_fold``), generated once under ``<output>/data``. Raises
    :class:`~edge_audio.errors.DatasetError` when more than ``max_bad_fraction`` of the files are unusable, or
    when a whole fold is.
    """
    feature_config = settings.features  # invalid feature settings fail here, before anything is read
    layout = settings.layout
    check_dataset_of(layout.root, settings.dataset_identity)
    dataset = (default_dataset(layout.data, settings.synth, progress) if settings.dataset_path is None
               else load_dataset(resolve_path(settings.dataset_path)))
    digests = FileDigests(layout.cache / "file-digests.json")
    report = _validated(dataset, layout, settings.silence_threshold, digests, progress)
    if report.bad_fraction > settings.max_bad_fraction:
        raise DatasetError(f"{report.num_bad} of {report.num_files} files in {dataset.root} are unusable "
                           f"({100 * report.bad_fraction:.1f}% > max_bad_fraction "
                           f"{100 * settings.max_bad_fraction:g}%); run `edge-audio data check {dataset.source}` "
                           "for the list")
    usable = dataset.valid_only(report)
    lost = sorted(set(dataset.folds) - set(usable.folds))
    if lost:
        raise DatasetError(f"every file of fold(s) {lost} in {dataset.root} is unusable")
    fingerprint = usable.fingerprint(digests)
    leaked_clips(usable, digests)
    check_training_classes(usable, settings.protocol)
    features = extract_features(usable, feature_config, layout.cache, fingerprint, progress=progress)
    claim_for_dataset(layout.root, settings.dataset_identity)
    return PreparedData(usable, report, features, layout, fingerprint, machine_profile(layout.cache),
                        settings.synth if settings.dataset_path is None else None)


def _validated(dataset: Dataset, layout: OutputLayout, silence_threshold: float, digests: FileDigests,
               progress: bool) -> ValidationReport:
    """:func:`~edge_audio.data.check_dataset`, cached by the dataset's content and the silence threshold."""
    key = {"dataset": dataset.fingerprint(digests), "silence_threshold": silence_threshold,
           "version": CHECK_VERSION}

    def check(folder) -> dict:
        report = check_dataset(dataset, silence_threshold=silence_threshold, progress=progress)
        report.files.to_csv(folder / "files.csv", index=False)
        return {"files": report.num_files, "bad": report.num_bad}

    entry = cached(layout.cache / "checks", key, check, name="check")
    files = pd.read_csv(entry.file("files.csv"), keep_default_na=True)
    files["path"] = dataset.table["path"].values  # the cached paths may be of another copy of the dataset
    problems = files[files["problem"].notna()][["path", "fold", "class_name", "problem", "detail"]]
    return ValidationReport(dataset, files, problems.reset_index(drop=True), silence_threshold)
