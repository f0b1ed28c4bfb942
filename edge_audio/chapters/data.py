"""Chapter 1, the data: what the dataset and its features are, in the chapter's values and invariants."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import invariant
from ..glue import counted, glue_all
from ..pipeline import Pipeline
from ..settings import Settings
from ..steps.data import PreparedData
from ..synth import GENERATOR_SUMMARIES


@dataclass
class DataChapter:
    """Chapter 1's settings and prepared data."""

    settings: Settings
    data: PreparedData

    def values(self) -> dict:
        """Every value chapter 1's prose quotes."""
        data = self.data
        dataset, report, features, config = data.dataset, data.report, data.features, data.feature_config
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
            "dataset_note": (GENERATOR_SUMMARIES[data.synth.generator] if data.synth is not None
                             else "These are the dataset's own recordings."),
        }

    def check(self) -> str:
        """Chapter 1's invariants (an InvariantError names the first that fails); returns a one-line summary."""
        data = self.data
        dataset, report, features = data.dataset, data.report, data.features
        # every fold of the dataset is present after validation
        invariant(dataset.folds == sorted(report.files["fold"].unique().tolist()), "a fold lost all its files")
        # no clip is lost without a report: usable + excluded = listed
        invariant(len(dataset) + report.num_bad == report.num_files,
                  "every file is either a clip of the dataset or a bad file")
        # one feature row per usable clip, of the configured shape
        invariant(features.features.shape == (len(dataset), *data.feature_config.shape), features.features.shape)
        # labels are the class's index 0..K-1 in id order, whatever ids the dataset uses
        invariant((features.labels == dataset.table["class_id"].map(dataset.class_ids.index).to_numpy()).all(),
                  "every clip's features carry its own label")
        return "all data invariants hold"


def run(namespace: dict) -> DataChapter:
    """Chapter 1's setup: its settings from ``namespace`` (the parameters cell's), the data prepared, the values
    glued."""
    settings = Settings.of_chapter("01", namespace)
    chapter = DataChapter(settings, Pipeline(settings).data)
    glue_all(chapter.values())
    return chapter
