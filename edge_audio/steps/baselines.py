"""Step 2 (chapter 2): train the baselines on the dataset's own folds, profile them, export and publish them.

Per model: one training run per split of the protocol (:func:`edge_audio.train.train_model`, cached and
resumable), then a profile of the deployed run's model (the split testing on the dataset's last fold), cached by
that run, the input shape, the threads and runs, the machine and the library versions. The profile's entry holds
the model's ``fp32.pth`` and ``model.onnx``; they are published as ``models/<name>_fp32.pth`` and
``models/<name>.onnx`` every time the step runs, so the published files always are the latest run's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ParameterError
from ..export import onnx_predict, onnx_session
from ..machine import machine_identity, versions
from ..models import spec_from_config
from ..parameters import Settings
from ..profile import profile_model
from ..results import upsert_results
from ..storage import CacheEntry, cached, publish
from ..train import TrainResult, predict, summarize_folds, train_model
from .data import PreparedData

#: Bump when a profile gains or changes fields, so cached profiles are recomputed.
PROFILE_VERSION = 2
#: How close the exported ONNX model's logits must be to PyTorch's (max absolute difference on test clips).
ONNX_TOLERANCE = 1e-4


@dataclass
class BaselineResult:
    """One baseline: its training runs (one per split), its results record, and its files."""

    name: str
    runs: list[TrainResult]  # one per split of the protocol
    record: dict
    model_path: Path  # the published FP32 checkpoint, models/<name>_fp32.pth
    onnx_path: Path  # the FP32 ONNX export in its cache entry (what every ONNX variant is made from)

    @property
    def deployed_run(self) -> TrainResult:
        """The run whose model is saved and profiled: the split testing on the dataset's last fold."""
        return self.runs[-1]


def _profile(run: TrainResult, data: PreparedData, settings: Settings) -> CacheEntry:
    """The deployed run's model saved, exported to ONNX, checked against PyTorch and measured; cached."""
    library = versions()
    input_shape = (1, *data.feature_config.shape)
    key = {"run": run.key, "input": input_shape, "threads": settings.latency_threads, "runs": settings.latency_runs,
           "machine": machine_identity(), "version": PROFILE_VERSION,
           "versions": {name: library[name] for name in ("torch", "onnx", "onnxruntime", "onnxscript")}}

    def measure(folder: Path) -> dict:
        model = run.load_model()
        torch.save({"spec": run.spec, "state_dict": model.state_dict()}, folder / "fp32.pth")
        profile = profile_model(model, input_shape, folder / "fp32.pth", folder / "model.onnx",
                                data.machine["matmul_gflops_1thread"], settings.latency_threads, settings.latency_runs)
        x_test = data.features.select([run.split.test_fold])[0][:32]
        onnx_logits = onnx_predict(onnx_session(folder / "model.onnx"), x_test[:, None])
        return {**profile, "onnx_max_abs_difference": float(np.abs(onnx_logits - predict(model, x_test)).max())}

    return cached(data.layout.cache / "profiles", key, measure, name=f"profile-{run.spec['name']}")


def train_baselines(data: PreparedData, settings: Settings, model_configs: list | None = None,
                    progress: bool = False) -> list[BaselineResult]:
    """Train (or load) every model of ``model_configs`` (default: ``settings.model_configs``) under the run's
    protocol, profile it, publish ``models/<name>_fp32.pth`` and ``models/<name>.onnx``, and upsert its record
    into ``logs/all_results.json``."""
    specs = [spec_from_config(config) for config in (settings.model_configs if model_configs is None
                                                     else model_configs)]
    names = [spec["name"] for spec in specs]
    if len(set(names)) != len(names):
        raise ParameterError(f"model config names must be unique, got {names}")
    protocol, train = settings.protocol, settings.train
    splits = protocol.splits(data.dataset.folds)
    context = data.context(settings)
    results = []
    for spec in specs:
        runs = [train_model(spec, data.features, split, train, data.layout.cache / "runs", settings.device, progress)
                for split in splits]
        deployed = runs[-1]
        profile_entry = _profile(deployed, data, settings)
        profile = profile_entry.value
        model_path = data.layout.models / f"{spec['name']}_fp32.pth"
        onnx_published = data.layout.models / f"{spec['name']}.onnx"
        scores = (summarize_folds(runs) if protocol.kind == "kfold"
                  else {"accuracy": deployed.test["accuracy"], "accuracy_std": None,
                        "macro_f1": deployed.test["macro_f1"], "macro_f1_std": None,
                        "folds": [deployed.split.test_fold]})
        record = {
            "model": spec["name"], "variant": "fp32", "precision": "fp32", "int8_weights": False,
            "runtime": "onnxruntime", "latency_ms": profile["latency"]["onnxruntime"]["median_ms"],
            "architecture": deployed.spec, "dataset": data.summary(), "context": context,
            "protocol": context["protocol"], "protocol_kind": protocol.kind, "test_folds": scores["folds"],
            "accuracy": scores["accuracy"], "accuracy_std": scores["accuracy_std"],
            "macro_f1": scores["macro_f1"], "macro_f1_std": scores["macro_f1_std"],
            "val_accuracy": deployed.val["accuracy"], "per_class_accuracy": deployed.test["per_class_accuracy"],
            "confusion": deployed.test["confusion"], "class_names": data.dataset.class_names,
            **{k: profile[k] for k in ("params", "size_bytes", "onnx_size_bytes", "macs", "flops",
                                       "flop_counter_flops", "flop_gap_percent", "latency", "flop_floor_ms",
                                       "latency_floor_ratio", "onnx_max_abs_difference")},
            "threads": settings.latency_threads, "seed": settings.seed, "features": data.feature_config.to_dict(),
            "train": train.to_dict(), "best_epoch": deployed.best_epoch, "epochs_run": deployed.epochs_run,
            "train_seconds": round(sum(r.train_seconds for r in runs), 2), "device": deployed.device,
            "artifact": os.path.relpath(model_path, data.layout.root),
            "artifact_sha256": publish(profile_entry.file("fp32.pth"), model_path),
            "artifact_source": os.path.relpath(profile_entry.file("fp32.pth"), data.layout.root),
            "onnx_artifact": os.path.relpath(onnx_published, data.layout.root),
            "onnx_sha256": publish(profile_entry.file("model.onnx"), onnx_published),
            "onnx_source": os.path.relpath(profile_entry.file("model.onnx"), data.layout.root),
            "run_keys": [r.key for r in runs], "machine": data.machine,
        }
        results.append(BaselineResult(spec["name"], runs, record, model_path, profile_entry.file("model.onnx")))
    upsert_results(data.layout.logs, [r.record for r in results])
    return results
