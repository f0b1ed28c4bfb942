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
from ..glue import counted
from ..data import (Dataset, FileDigests, ValidationReport, check_dataset, check_training_classes, default_dataset,
                    leaked_clips, load_dataset)
from ..errors import DatasetError, invariant
from ..features import FeatureSet, extract_features
from ..machine import machine_profile
from ..settings import Settings
from ..results import run_context
from ..storage import cached
from ..synth import GENERATOR_SUMMARIES, SynthConfig

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

    def glued(self) -> dict:
        """Every value chapter 1's prose quotes."""
        dataset, report, features, config = self.dataset, self.report, self.features, self.feature_config
        readable = report.files.dropna(subset=["sample_rate"])
        return {
            "dataset_name": dataset.name, "dataset_layout": dataset.layout, "n_listed": int(report.num_files),
            "n_usable": len(dataset), "n_classes": len(dataset.class_names), "n_folds": len(dataset.folds),
            "target_rate": int(config.sample_rate), "target_duration": float(config.duration),
            "n_rates": int(readable["sample_rate"].nunique()), "min_rate": int(readable["sample_rate"].min()),
            "max_rate": int(readable["sample_rate"].max()),
            "min_duration": round(float(readable["duration"].min()), 2),
            "max_duration": round(float(readable["duration"].max()), 2),
            "n_excluded": int(report.num_bad),
            "excluded_sentence": ("No file was excluded." if not report.num_bad else
                                  f"{counted(report.num_bad, 'file was', 'files were')} excluded."),
            "n_mels_shape": int(features.features.shape[1]), "n_frames": int(features.features.shape[2]),
            "n_fft_value": int(config.n_fft), "hop_value": int(config.hop_length),
            "clips_per_second": round(float(features.clips_per_second), 1),
            "dataset_note": (GENERATOR_SUMMARIES[self.synth.generator] if self.synth is not None
                             else "These are the dataset's own recordings."),
        }

    def check(self) -> str:
        """Chapter 1's invariants (an InvariantError names the first that fails); returns a one-line summary."""
        dataset, report, features = self.dataset, self.report, self.features
        # every fold of the dataset is present after validation
        invariant(dataset.folds == sorted(report.files["fold"].unique().tolist()), "a fold lost all its files")
        # no clip is lost without a report: usable + excluded = listed
        invariant(len(dataset) + report.num_bad == report.num_files,
                  "every file is either a clip of the dataset or a bad file")
        # one feature row per usable clip, of the configured shape
        invariant(features.features.shape == (len(dataset), *self.feature_config.shape), features.features.shape)
        # labels are the class's index 0..K-1 in id order, whatever ids the dataset uses
        invariant((features.labels == dataset.table["class_id"].map(dataset.class_ids.index).to_numpy()).all(),
                  "every clip's features carry its own label")
        return "all data invariants hold"

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
