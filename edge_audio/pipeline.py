"""The idempotent pipeline steps that chapters call, and the papermill runner that executes the book.

A step loads what an earlier run computed with the same settings, or computes and caches it, so any chapter can
run on its own (nbval does exactly that) and re-running is cheap.

The runner (:func:`run_book`) executes the chapters of ``book/`` in order with papermill, in ``book/`` as their
working directory (as nbval and Jupyter Book do), writes the executed copies under ``<output>/notebooks/`` (the
sources stay untouched), then builds the HTML book from those copies into ``_build/html``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .config import MODES, FeatureConfig, OutputLayout, project_root, resolve_path
from .data import (Dataset, DatasetError, ValidationReport, check_dataset, default_dataset, detect_layout,
                   load_dataset)
from .export import export_to_onnx, export_waveform_model, onnx_predict, onnx_session
from .features import FeatureSet, LogMelFrontEnd, extract_features, load_audio
from .frontier import Budgets, FrontierReport, analyze_frontier, write_reports
from .models import spec_from_config
from .nas import HISTORY_FILE, SAMPLERS, SearchConfig, SearchContext, SearchOutcome, default_storage, run_search
from .profile import (ONNX_RUNTIME, TORCH_RUNTIME, compare_latency, machine_profile, onnx_call, onnx_latency,
                      profile_model, torch_call, torch_threads)
from .reference import PipelineConfig
from .quantize import (ARTIFACTS, calibration_set, check_methods, evaluate_onnx, float_operators,
                       quantize_onnx_dynamic, quantize_onnx_static, quantize_torch_dynamic)
from .results import load_results, upsert_results
from .storage import atomic_write_json, atomic_write_text, atomic_write_with, read_json
from .synth import SynthConfig
from .train import Protocol, TrainConfig, evaluate, predict, summarize_folds, train_model


# ---------------------------------------------------------------------------------------------------------------
# Step: prepare the data
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class PreparedData:
    """The usable dataset, its validation report, its log-mel features and the run's output layout."""

    dataset: Dataset  # the usable files only
    report: ValidationReport  # every file, with the excluded ones listed
    features: FeatureSet
    layout: OutputLayout
    fingerprint: str  # of the usable dataset's content (see Dataset.fingerprint), computed once here

    @property
    def feature_config(self) -> FeatureConfig:
        return self.features.config


def prepare_data(dataset_path: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None, *,
                 seed: int = 0, synth_clips_per_class_per_fold: int = 8, sample_rate: int = 22050,
                 duration: float = 4.0, n_mels: int = 64, n_fft: int = 1024, hop_length: int = 512,
                 max_bad_fraction: float = 0.05, progress: bool = False) -> PreparedData:
    """Load (or generate) the dataset, validate it, exclude the bad files, and extract (or load) its features.

    The keyword arguments are the chapters' data parameters, by the same names. ``dataset_path`` None means the
    embedded synthetic UrbanSound8K (``seed``, ``synth_clips_per_class_per_fold``), generated once under
    ``<output>/data``. Raises :class:`~edge_audio.data.DatasetError` when more than ``max_bad_fraction`` of the
    files are unusable, or when a whole fold is.
    """
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
    features = FeatureConfig(sample_rate=sample_rate, duration=duration, n_mels=n_mels, n_fft=n_fft,
                             hop_length=hop_length)
    synth = SynthConfig(seed=seed, clips_per_class_per_fold=synth_clips_per_class_per_fold)
    layout = OutputLayout.at(output_dir)
    dataset = (default_dataset(layout.data, synth, progress) if dataset_path is None
               else load_dataset(resolve_path(dataset_path)))
    report = _cached_check(dataset, layout, progress)
    if report.bad_fraction > max_bad_fraction:
        raise DatasetError(f"{report.num_bad} of {report.num_files} files in {dataset.root} are unusable "
                           f"({100 * report.bad_fraction:.1f}% > max_bad_fraction {100 * max_bad_fraction:g}%); "
                           f"run `edge-audio data check {dataset.root}` for the list")
    usable = dataset.valid_only(report)
    lost = sorted(set(dataset.folds) - set(usable.folds))
    if lost:
        raise DatasetError(f"every file of fold(s) {lost} in {dataset.root} is unusable")
    fingerprint = usable.fingerprint()
    feature_set = extract_features(usable, features, layout.cache, progress=progress, fingerprint=fingerprint)
    return PreparedData(usable, report, feature_set, layout, fingerprint)


def _cached_check(dataset: Dataset, layout: OutputLayout, progress: bool) -> ValidationReport:
    """:func:`check_dataset`, cached per dataset content (reading every file of a large dataset takes a while)."""
    cache = layout.cache / f"check-{dataset.fingerprint()}.csv"
    if cache.is_file():
        files = pd.read_csv(cache, keep_default_na=True)
        files["path"] = dataset.table["path"].values  # the cached paths may be of another copy of the dataset
        problems = files[files["problem"].notna()][["path", "fold", "class_name", "problem", "detail"]]
        return ValidationReport(dataset, files, problems.reset_index(drop=True))
    report = check_dataset(dataset, progress=progress)
    atomic_write_text(cache, report.files.to_csv(index=False))
    return report


# ---------------------------------------------------------------------------------------------------------------
# The book runner
# ---------------------------------------------------------------------------------------------------------------

#: What ``edge-audio run`` gives the chapters unless the user overrides it: book-quality sizes, from
#: :class:`~edge_audio.reference.PipelineConfig`. A chapter's own defaults (in its ``parameters`` cell) are small,
#: so nbval and a plain papermill call run it quickly.
BOOK_PARAMETERS: dict[str, Any] = PipelineConfig().parameters()

class ChapterFailed(RuntimeError):
    """A chapter raised while papermill executed it; the message names the chapter and the failing cell."""


def book_dir() -> Path:
    """The ``book/`` folder of the project (the chapters' sources)."""
    return project_root() / "book"


def chapters(source_dir: Path | None = None) -> list[Path]:
    """The chapter notebooks, in order (their file names start with the chapter number)."""
    return sorted((source_dir or book_dir()).glob("[0-9][0-9]_*.ipynb"))


def chapter_parameters(notebook: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``overrides`` that ``notebook``'s ``parameters`` cell declares."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {name: value for name, value in overrides.items() if name in declared}


def execute_chapter(notebook: Path, out_path: Path, parameters: dict[str, Any], progress: bool = True) -> None:
    """Execute one chapter with papermill (working directory: the chapter's folder) into ``out_path``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(notebook), str(out_path), parameters=parameters, cwd=str(notebook.parent),
                                   kernel_name="python3", progress_bar=progress, log_output=False)
    except PapermillExecutionError as exc:
        raise ChapterFailed(f"chapter {notebook.name} failed in cell {exc.exec_count} "
                            f"({exc.ename}: {exc.evalue}); the executed notebook with the error is "
                            f"{out_path}") from None


def _collapse_injected_cells(path: Path) -> None:
    """Tag papermill's injected-parameters cell ``hide-input``: the book shows it collapsed, one click away.

    The values a chapter really ran with are in that cell (the ``parameters`` cell shows the defaults), so a
    reader can always see them without the book leading with them.
    """
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def build_book(executed_dir: Path, build_root: Path, staging_dir: Path) -> Path:
    """Build the HTML book from executed chapters; returns ``build_root/_build/html``.

    The project's ``_config.yml``, ``_toc.yml`` and the non-notebook pages of ``book/`` are copied into
    ``staging_dir`` next to the executed notebooks, and Jupyter Book runs there with warnings as errors.
    """
    root = project_root()
    shutil.rmtree(staging_dir, ignore_errors=True)
    (staging_dir / "book").mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, staging_dir / name)
    for page in (root / "book").iterdir():
        if page.suffix != ".ipynb" and page.is_file():
            shutil.copy2(page, staging_dir / "book" / page.name)
    for notebook in sorted(executed_dir.glob("*.ipynb")):
        target = staging_dir / "book" / notebook.name
        shutil.copy2(notebook, target)
        _collapse_injected_cells(target)
    build_root.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
               str(staging_dir), "--path-output", str(build_root), "-W", "-n", "--keep-going"]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"the book build failed (jupyter-book exit {completed.returncode}):\n{tail}")
    return build_root / "_build" / "html"


def run_book(parameters: dict[str, Any] | None = None, output_dir: str | os.PathLike | None = None,
             build_root: str | os.PathLike | None = None, mode: str = "full", build: bool = True,
             quick: bool = False, progress: bool = True) -> Path | None:
    """Execute the chapters of ``mode`` (see :data:`MODES`) in order with papermill, then build the book; returns
    the HTML folder (or None without ``build``).

    ``parameters`` (over :data:`BOOK_PARAMETERS`, or over the chapters' own small defaults when ``quick``) are
    given to every chapter that declares them, and so is ``output_dir``. Each chapter reuses the cached results of
    earlier steps. The book is built from the executed copies under ``<output>/notebooks``; a chapter outside
    ``mode`` that has no executed copy yet is executed too (the book needs every chapter), and the others are
    left as they are. A failing chapter raises :class:`ChapterFailed`, and what earlier chapters produced stays
    on disk.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    overrides = {**({} if quick else BOOK_PARAMETERS), **(parameters or {})}
    if overrides.get("dataset_path") is not None:
        detect_layout(resolve_path(overrides["dataset_path"]))  # a wrong path fails here, before any kernel starts
    layout = OutputLayout.at(output_dir)
    overrides["output_dir"] = str(layout.root)
    executed_dir = layout.root / "notebooks"
    for notebook in chapters():
        selected = notebook.name[:2] in MODES[mode]
        missing = build and not (executed_dir / notebook.name).is_file()
        if not (selected or missing):
            continue
        if progress:
            reason = "" if selected else f" (not in mode {mode}, but the book needs it and it has not run yet)"
            print(f"== executing {notebook.name}{reason}", file=sys.stderr, flush=True)
        execute_chapter(notebook, executed_dir / notebook.name, chapter_parameters(notebook, overrides), progress)
    if not build:
        return None
    if progress:
        print("== building the book", file=sys.stderr, flush=True)
    root = project_root() if build_root is None else resolve_path(build_root)
    return build_book(executed_dir, root, layout.root / "book_build")


# ---------------------------------------------------------------------------------------------------------------
# Step: train and profile the baselines
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class BaselineResult:
    """One baseline: its training runs (one per split), its results record, and where its model is."""

    name: str
    runs: list  # list[TrainResult], one per split of the protocol
    record: dict
    model_path: Path

    @property
    def deployed_run(self):
        """The run whose model is saved and profiled: the split testing on the dataset's last fold."""
        return self.runs[-1]


def dataset_summary(data: PreparedData) -> dict:
    """The dataset part of a results record."""
    return {"name": data.dataset.name, "layout": data.dataset.layout, "clips": len(data.dataset),
            "fingerprint": data.fingerprint, "features": data.features.cache_path.stem}


def train_baselines(data: PreparedData, model_configs: list, train: TrainConfig, protocol: Protocol,
                    device: str = "auto", threads: int = 1, latency_runs: int = 200,
                    progress: bool = False) -> list[BaselineResult]:
    """Train (or load) every model config under ``protocol``, save ``models/{name}_fp32.pth``, profile it, and
    upsert its record into ``logs/all_results.json``.

    A model whose (spec, features, training settings, split) were trained before is loaded, not retrained; its
    profile (export, FLOPs, latency) is cached next to its run with the thread count and run count.
    """
    specs = [spec_from_config(config) for config in model_configs]
    names = [spec["name"] for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"model config names must be unique, got {names}")
    folds = data.dataset.folds
    splits = protocol.splits(folds)
    machine = machine_profile(data.layout.logs)
    runs_dir = data.layout.models / "runs"
    input_shape = (1, *data.feature_config.shape)
    summary = dataset_summary(data)
    results = []
    for spec in specs:
        runs = [train_model(spec, data.features, split, train, runs_dir, device, progress) for split in splits]
        deployed = runs[-1]
        model = deployed.load_model()
        model_path = data.layout.models / f"{spec['name']}_fp32.pth"
        payload = {"spec": deployed.spec, "state_dict": model.state_dict()}
        atomic_write_with(model_path, lambda handle: torch.save(payload, handle))
        profile_path = deployed.run_dir / f"profile-t{threads}-r{latency_runs}.json"
        profile = read_json(profile_path)
        if profile is None or profile.get("machine") != machine["cpu"]:
            profile = profile_model(model, input_shape, model_path, data.layout.models / f"{spec['name']}.onnx",
                                    machine["matmul_gflops_1thread"], threads, latency_runs)
            profile["machine"] = machine["cpu"]
            atomic_write_json(profile_path, profile)
        elif not (data.layout.models / f"{spec['name']}.onnx").is_file():
            export_to_onnx(model, data.layout.models / f"{spec['name']}.onnx", input_shape=(1, *input_shape))
        profile = {**profile, "size_bytes": os.path.getsize(model_path)}
        x_test = data.features.select([deployed.split.test_fold])[0][:32]
        onnx_logits = onnx_predict(onnx_session(data.layout.models / f"{spec['name']}.onnx"), x_test[:, None])
        onnx_difference = float(np.abs(onnx_logits - predict(model, x_test)).max())
        scores = (summarize_folds(runs) if protocol.kind == "kfold"
                  else {"accuracy": deployed.test["accuracy"], "accuracy_std": None,
                        "macro_f1": deployed.test["macro_f1"], "macro_f1_std": None, "folds": [deployed.split.test_fold]})
        record = {
            "model": spec["name"], "variant": "fp32", "runtime": "onnxruntime",
            "latency_ms": profile["latency"]["onnxruntime"]["median_ms"],
            "architecture": deployed.spec, "dataset": summary,
            "protocol": protocol.describe(folds), "protocol_kind": protocol.kind, "test_folds": scores["folds"],
            "accuracy": scores["accuracy"], "accuracy_std": scores["accuracy_std"],
            "macro_f1": scores["macro_f1"], "macro_f1_std": scores["macro_f1_std"],
            "val_accuracy": deployed.val["accuracy"], "per_class_accuracy": deployed.test["per_class_accuracy"],
            "confusion": deployed.test["confusion"], "class_names": data.dataset.class_names,
            **{k: profile[k] for k in ("params", "size_bytes", "onnx_size_bytes", "macs", "flops",
                                       "flop_counter_flops", "flop_gap_percent", "latency", "flop_floor_ms",
                                       "latency_floor_ratio")},
            "onnx_max_abs_difference": onnx_difference,
            "threads": threads, "seed": train.seed, "features": data.feature_config.to_dict(),
            "train": train.to_dict(), "best_epoch": deployed.best_epoch, "epochs_run": deployed.epochs_run,
            "train_seconds": round(sum(r.train_seconds for r in runs), 2), "device": deployed.device,
            "artifact": os.path.relpath(model_path, data.layout.root), "run_keys": [r.key for r in runs],
            "machine": machine,
        }
        results.append(BaselineResult(spec["name"], runs, record, model_path))
    upsert_results(data.layout.logs, [r.record for r in results])
    return results


# ---------------------------------------------------------------------------------------------------------------
# Step: quantize and export the baselines
# ---------------------------------------------------------------------------------------------------------------

#: Where each method's variant runs (its FP32 twin runs in the same runtime with the same threads).
METHOD_RUNTIMES = {"pytorch_dynamic": "pytorch", "ort_static": "onnxruntime",
                   "ort_static_per_tensor": "onnxruntime", "ort_dynamic": "onnxruntime"}
#: Bump when a quantization record gains or changes fields, so cached records are recomputed.
QUANT_RECORD_VERSION = 2
METHOD_VARIANTS = {"pytorch_dynamic": "dynamic_quant_pytorch", "ort_static": "int8_static",
                   "ort_static_per_tensor": "int8_static_per_tensor", "ort_dynamic": "int8_dynamic_ort"}


@dataclass
class QuantizationResult:
    """One (model, method): its record, or the error that stopped it (``record`` is then None)."""

    model: str
    method: str
    record: dict | None
    error: str | None = None


def _quantize_one(baseline: BaselineResult, method: str, data: PreparedData, calibration: np.ndarray,
                  calibration_method: str, threads: int, latency_runs: int) -> dict:
    """Quantize one baseline with one method, evaluate the variant from its own outputs, and time it against its
    FP32 twin in the same runtime and threads, interleaved (:func:`~edge_audio.profile.compare_latency`)."""
    fp32 = baseline.record
    model = baseline.deployed_run.load_model()
    split = baseline.deployed_run.split
    x_test, y_test = data.features.select([split.test_fold])
    num_classes = len(data.dataset.class_names)
    input_shape = (1, *data.feature_config.shape)
    models_dir = data.layout.models
    artifact = models_dir / ARTIFACTS[method].format(name=baseline.name)
    fp32_onnx = models_dir / f"{baseline.name}.onnx"
    if not fp32_onnx.is_file():
        export_to_onnx(model, fp32_onnx, input_shape=(1, *input_shape))
    if METHOD_RUNTIMES[method] == "pytorch":
        quantized = quantize_torch_dynamic(model)
        atomic_write_with(artifact, lambda handle: torch.save(quantized.state_dict(), handle))
        metrics = evaluate(quantized, x_test, y_test, num_classes)
        twin_metrics = evaluate(model, x_test, y_test, num_classes)
        with torch_threads(threads), torch.inference_mode():
            latency, twin_latency = compare_latency(torch_call(quantized, input_shape), torch_call(model, input_shape),
                                                    latency_runs)
        latency, twin_latency = ({**t, "threads": threads, "runtime": TORCH_RUNTIME} for t in (latency, twin_latency))
        twin_size = fp32["size_bytes"]
        settings = {"layers": "Linear", "dtype": "qint8"}
    else:
        if method == "ort_dynamic":
            quantize_onnx_dynamic(fp32_onnx, artifact)
            settings = {"weights": "int8", "activations": "dynamic"}
        else:
            per_channel = method == "ort_static"
            reduce_range = not fp32["machine"]["int8_dot_product"]
            quantize_onnx_static(fp32_onnx, artifact, calibration, calibration_method, per_channel,
                                 reduce_range=reduce_range)
            settings = {"format": "QDQ", "per_channel": per_channel, "activations": "int8",
                        "float_operators": float_operators(artifact),
                        "weights": "int8 (7-bit range)" if reduce_range else "int8", "reduce_range": reduce_range,
                        "calibration_method": calibration_method, "calibration_clips": len(calibration)}
        metrics = evaluate_onnx(artifact, x_test, y_test, num_classes, threads)
        twin_metrics = evaluate_onnx(fp32_onnx, x_test, y_test, num_classes, threads)
        latency, twin_latency = compare_latency(onnx_call(artifact, input_shape, threads),
                                                onnx_call(fp32_onnx, input_shape, threads), latency_runs)
        latency, twin_latency = ({**t, "threads": threads, "runtime": ONNX_RUNTIME} for t in (latency, twin_latency))
        twin_size = os.path.getsize(fp32_onnx)
    size = os.path.getsize(artifact)
    runtime = METHOD_RUNTIMES[method]
    shared = ("model", "architecture", "dataset", "protocol", "protocol_kind", "params", "macs", "flops",
              "flop_counter_flops", "seed", "features", "train", "class_names", "machine", "threads")
    return {
        **{k: fp32[k] for k in shared},
        "variant": METHOD_VARIANTS[method], "method": method, "runtime": runtime,
        "test_folds": [split.test_fold], "accuracy": metrics["accuracy"], "accuracy_std": None,
        "macro_f1": metrics["macro_f1"], "per_class_accuracy": metrics["per_class_accuracy"],
        "confusion": metrics["confusion"], "size_bytes": size,
        "artifact": os.path.relpath(artifact, data.layout.root),
        "latency": {runtime: latency}, "latency_ms": latency["median_ms"],
        "fp32": {"accuracy": twin_metrics["accuracy"], "size_bytes": twin_size,
                 "latency_ms": twin_latency["median_ms"], "latency": twin_latency},
        "size_ratio": round(twin_size / size, 3),
        "speedup": round(twin_latency["median_ms"] / latency["median_ms"], 3),
        "accuracy_drop": round(twin_metrics["accuracy"] - metrics["accuracy"], 4),
        "slower_than_fp32": latency["median_ms"] > twin_latency["median_ms"],
        "quantization": settings,
    }


def quantize_models(data: PreparedData, baselines: list[BaselineResult], methods: list[str],
                    calibration_size: int = 200, calibration_method: str = "minmax", threads: int = 1,
                    latency_runs: int = 200) -> list[QuantizationResult]:
    """Compress every baseline with every method, measure each variant, and upsert the records.

    Calibration clips are drawn (seeded) from the training folds of each baseline's split. A method that fails
    for a model gives a result with its error; the other models and methods go on. Results are cached per
    (training run, method, calibration, threads, runs), so a re-run re-measures nothing.
    """
    check_methods(methods, calibration_method)
    results = []
    for baseline in baselines:
        run = baseline.deployed_run
        x_train, _ = data.features.select(run.split.train_folds)
        calibration = calibration_set(x_train, calibration_size, seed=run.train_config.seed)
        for method in methods:
            reduce_range = not baseline.record["machine"]["int8_dot_product"]
            cache = run.run_dir / (f"quant-v{QUANT_RECORD_VERSION}-{method}-{calibration_method}-{len(calibration)}"
                                   f"-rr{int(reduce_range)}-t{threads}-r{latency_runs}-paired.json")
            record = read_json(cache)
            artifact = data.layout.models / ARTIFACTS[method].format(name=baseline.name)
            if record is None or not artifact.is_file():
                try:
                    record = _quantize_one(baseline, method, data, calibration, calibration_method, threads,
                                           latency_runs)
                except Exception as exc:  # one model's failure is reported in its row; the others go on
                    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                    results.append(QuantizationResult(baseline.name, method, None, (
                        f"{method} of models/{baseline.name}.onnx failed: {type(exc).__name__}: {message}")))
                    continue
                atomic_write_json(cache, record)
            results.append(QuantizationResult(baseline.name, method, record))
    upsert_results(data.layout.logs, [r.record for r in results if r.record is not None])
    return results


def quantization_table(results: list[QuantizationResult]) -> pd.DataFrame:
    """The quantization table, one row per (model, method): the reference columns (FP32 -> INT8 size ratio,
    speedup, accuracy drop), the absolute numbers, a flag where INT8 is slower than FP32, and the error of any
    (model, method) that failed."""
    rows = []
    for result in results:
        r = result.record
        if r is None:
            rows.append({"Model": result.model, "Method": result.method, "Error": result.error})
            continue
        rows.append({
            "Model": r["model"], "Method": r["method"], "Size ratio": r["size_ratio"], "Speedup": r["speedup"],
            "Drop (points)": r["accuracy_drop"], "INT8 acc (%)": r["accuracy"],
            "INT8 size (kB)": round(r["size_bytes"] / 1e3, 1), "FP32 size (kB)": round(r["fp32"]["size_bytes"] / 1e3, 1),
            "INT8 (ms)": r["latency_ms"], "FP32 (ms)": r["fp32"]["latency_ms"],
            "Flag": "INT8 slower: keep FP32" if r["slower_than_fp32"] else "", "Error": "",
        })
    table = pd.DataFrame(rows)
    if not table["Error"].fillna("").astype(bool).any():
        table = table.drop(columns="Error")
    return table.set_index("Model")


#: How close the raw-audio ONNX model's logits must be to the PyTorch model's on cached features.
WAVEFORM_TOLERANCE = 1e-3


def export_deployable(data: PreparedData, baseline: BaselineResult, clips: int = 16, threads: int = 1) -> dict:
    """Export ``models/{name}_waveform.onnx`` (front end in the graph) and compare it with the package's pipeline.

    The first ``clips`` clips of the test fold go through both paths: files -> :func:`load_audio` -> the ONNX
    graph, and the cached log-mels -> the PyTorch model. Returns the maximum absolute logit difference, whether
    it is within :data:`WAVEFORM_TOLERANCE`, whether the predictions agree, and the file's size.
    """
    model = baseline.deployed_run.load_model()
    config = data.feature_config
    path = export_waveform_model(model, LogMelFrontEnd(config), config.num_samples,
                                 data.layout.models / f"{baseline.name}_waveform.onnx")
    mask = data.features.folds == baseline.deployed_run.split.test_fold
    paths = data.dataset.table["path"].to_numpy()[mask][:clips]
    waves = np.stack([load_audio(p, config) for p in paths])
    # batch 1, as a device runs it (the exported STFT graph has a fixed batch dimension of 1)
    onnx_logits = onnx_predict(onnx_session(path, threads), waves, batch_size=1, name=str(path))
    torch_logits = predict(model, data.features.features[mask][:clips])
    difference = float(np.abs(onnx_logits - torch_logits).max())
    return {"model": baseline.name, "path": os.path.relpath(path, data.layout.root), "size_bytes": os.path.getsize(path),
            "clips": len(paths), "max_abs_logit_difference": difference, "tolerance": WAVEFORM_TOLERANCE,
            "within_tolerance": difference <= WAVEFORM_TOLERANCE,
            "predictions_agree": bool((onnx_logits.argmax(1) == torch_logits.argmax(1)).all()),
            "latency": onnx_latency(path, (config.num_samples,), threads, 50)}


# ---------------------------------------------------------------------------------------------------------------
# Step: hardware-aware architecture search
# ---------------------------------------------------------------------------------------------------------------

#: The files a search's best model is published as, under ``models/``.
NAS_BEST_FILES = {"pth": "nas_best_model.pth", "onnx": "nas_best_model.onnx", "int8": "nas_best_model_int8.onnx",
                  "spec": "nas_best_model.json"}
NAS_SOURCES = ("nas_candidate", "nas_finalist")


@dataclass
class NASResult:
    """A search: both searches' trials, the retrained finalists, their INT8 variants, and the best model."""

    search: SearchOutcome
    finalists: list[BaselineResult]
    quantized: list[QuantizationResult]
    best: BaselineResult | None
    best_files: dict[str, Path]  # empty when no candidate met the budgets
    history_path: Path

    def finalist_table(self) -> pd.DataFrame:
        """The finalists, retrained with the baseline protocol, with their INT8 variant: the baseline metrics."""
        rows = []
        for finalist in self.finalists:
            r = finalist.record
            int8 = next((q.record for q in self.quantized if q.model == finalist.name and q.record), None)
            rows.append({"Model": finalist.name, "NAS trial": r["nas"]["trial"],
                         "Proxy acc (%)": r["nas"]["proxy_accuracy"], "Val acc (%)": r["val_accuracy"],
                         "Accuracy (%)": r["accuracy"], "Size (MB)": round(r["size_bytes"] / 1e6, 3),
                         "Latency (ms)": r["latency_ms"], "FLOPs (M)": round(r["flops"] / 1e6, 1),
                         "Params": r["params"], "INT8 acc (%)": int8["accuracy"] if int8 else None,
                         "INT8 size (MB)": round(int8["size_bytes"] / 1e6, 3) if int8 else None,
                         "INT8 (ms)": int8["latency_ms"] if int8 else None,
                         "Architecture": _describe_spec(r["architecture"], r["features"]["n_mels"])})
        return pd.DataFrame(rows).set_index("Model") if rows else pd.DataFrame()


def _describe_spec(spec: dict, n_mels: int) -> str:
    """A one-line description of an architecture spec."""
    head = f"fc {spec['fc_size']}" if spec["fc_size"] else "no hidden fc"
    return (f"{spec['block']} {'-'.join(map(str, spec['channels']))}, k{spec['kernel_size']}, {spec['pool']} pool, "
            f"{head}, dropout {spec['dropout']:g}, {n_mels} mels")


def dominance_table(candidates: list[dict], baselines: list[dict]) -> pd.DataFrame:
    """For each (candidate, baseline) pair of FP32 records: does the candidate dominate the baseline on the test
    fold (at least as accurate, no larger, no slower)?"""
    rows = []
    for c in candidates:
        for b in baselines:
            checks = {"at least as accurate": c["accuracy"] >= b["accuracy"],
                      "no larger": c["size_bytes"] <= b["size_bytes"], "no slower": c["latency_ms"] <= b["latency_ms"]}
            rows.append({"NAS model": c["model"], "baseline": b["model"],
                         "accuracy (NAS / baseline)": f"{c['accuracy']:.2f} / {b['accuracy']:.2f}",
                         "size kB (NAS / baseline)": f"{c['size_bytes'] / 1e3:.1f} / {b['size_bytes'] / 1e3:.1f}",
                         "latency ms (NAS / baseline)": f"{c['latency_ms']:.3f} / {b['latency_ms']:.3f}",
                         **checks, "dominates": all(checks.values())})
    return pd.DataFrame(rows)


def _candidate_records(history: list[dict], data: PreparedData, split, search: SearchConfig) -> list:
    """Results records of the trained NAS candidates (proxy accuracy on the validation fold), one per spec."""
    records = {}
    summary = dataset_summary(data)
    for h in history:
        if not h["trained"] or h["architecture_key"] in records:
            continue
        records[h["architecture_key"]] = {
            "model": f"nas-{h['architecture_key'][:8]}", "variant": "proxy", "source": "nas_candidate",
            "accuracy_kind": "proxy", "runtime": "onnxruntime", "latency_ms": h["latency_ms"],
            "latency": {"onnxruntime": h["latency"]}, "architecture": h["spec"], "dataset": summary,
            "protocol": f"NAS proxy ({search.proxy_epochs} epochs, folds {list(split.train_folds)}, "
                        f"val fold {split.val_fold})",
            "accuracy": h["proxy_accuracy"], "macro_f1": h["proxy_macro_f1"], "size_bytes": h["size_bytes"],
            "params": h["params"], "macs": h["macs"], "flops": h["flops"], "threads": search.threads,
            "seed": search.seed,
            "features": {**data.feature_config.to_dict(), "n_mels": h["n_mels"]},
            "nas": {"sampler": h["sampler"], "trial": h["number"]},
        }
    return list(records.values())


def run_nas(data: PreparedData, baselines: list[BaselineResult], budgets: Budgets, search: SearchConfig,
            train: TrainConfig, protocol: Protocol, storage: str | None = None, device: str = "auto",
            latency_runs: int = 200, calibration_size: int = 200, progress: bool = False) -> NASResult:
    """Search under ``budgets`` (NSGA-II and the random control), retrain the top-k feasible candidates with the
    baseline protocol (``train``, ``protocol``), quantize them like chapter 3 (static INT8), and publish the best
    (by validation accuracy) as ``models/nas_best_model.*``; write ``logs/nas_history.json`` and the two
    reports. Resumes an interrupted search from ``storage`` (default: SQLite under ``logs/``).

    When no candidate meets the budgets there are no finalists: ``best`` is None and no best-model file exists
    (a previous search's files are removed, so nothing stale is published).
    """
    import matplotlib.pyplot as plt

    from . import plots

    layout = data.layout
    feature_sets = {data.feature_config.n_mels: data.features}

    def features_for(n_mels: int) -> FeatureSet:
        if n_mels not in feature_sets:
            config = dataclasses.replace(data.feature_config, n_mels=n_mels)
            feature_sets[n_mels] = extract_features(data.dataset, config, layout.cache, progress=progress,
                                                    fingerprint=data.fingerprint)
        return feature_sets[n_mels]

    split = protocol.splits(data.dataset.folds)[-1]
    if search.proxy_train_folds is not None:
        split = dataclasses.replace(split, train_folds=split.train_folds[:search.proxy_train_folds])
    context = SearchContext(features_for, data.feature_config.n_mels, split, budgets, search,
                            layout.models / "nas", device)
    identity = {"dataset": data.fingerprint, "features": {**data.feature_config.to_dict(), "n_mels": None},
                "budgets": budgets.to_dict(), "search": {**asdict(search), "generations": None, "top_k": None},
                "split": asdict(split)}
    storage = storage or default_storage(layout.logs)
    history_path = layout.logs / HISTORY_FILE
    outcome = run_search(context, storage, identity, history_path, progress)
    fingerprint = data.fingerprint

    def stale(record: dict) -> bool:
        return record.get("source") in NAS_SOURCES and record["dataset"]["fingerprint"] == fingerprint

    candidates = _candidate_records([h for s in SAMPLERS for h in outcome.history[s]], data, split, search)
    upsert_results(layout.logs, candidates, drop=stale)

    finalists, quantized = [], []
    for rank, entry in enumerate(outcome.finalists, start=1):
        finalist_data = dataclasses.replace(data, features=features_for(entry["n_mels"]))
        [finalist] = train_baselines(finalist_data, [{"name": f"nas_{rank}", **entry["spec"]}], train, protocol,
                                     device, search.threads, latency_runs, progress)
        results = quantize_models(finalist_data, [finalist], ["ort_static"], calibration_size, "minmax",
                                  search.threads, latency_runs)
        nas_info = {"trial": entry["number"], "sampler": "nsga2", "proxy_accuracy": entry["proxy_accuracy"],
                    "rank": rank}
        finalist.record.update(source="nas_finalist", nas=nas_info)
        for result in results:
            if result.record is not None:
                result.record.update(source="nas_finalist", nas=nas_info)
        upsert_results(layout.logs, [finalist.record] + [r.record for r in results if r.record is not None])
        finalists.append(finalist)
        quantized.extend(results)

    for name in NAS_BEST_FILES.values():
        (layout.models / name).unlink(missing_ok=True)
    best, best_files = None, {}
    if finalists:
        best = max(finalists, key=lambda f: (f.record["val_accuracy"], -f.record["size_bytes"]))
        int8 = next(q for q in quantized if q.model == best.name)
        sources = {"pth": best.model_path, "onnx": layout.models / f"{best.name}.onnx",
                   "int8": layout.root / int8.record["artifact"] if int8.record else None}
        for kind, source in sources.items():
            if source is not None:
                best_files[kind] = layout.models / NAS_BEST_FILES[kind]
                shutil.copy2(source, best_files[kind])
        best_files["spec"] = layout.models / NAS_BEST_FILES["spec"]
        atomic_write_json(best_files["spec"], {
            "model": best.name, "architecture": best.record["architecture"], "features": best.record["features"],
            "accuracy": best.record["accuracy"], "val_accuracy": best.record["val_accuracy"],
            "size_bytes": best.record["size_bytes"], "latency_ms": best.record["latency_ms"], "nas": best.record["nas"],
            "int8_accuracy": int8.record["accuracy"] if int8.record else None})

    figure = plots.plot_nas_evolution(outcome.history, search.population)
    figure.savefig(layout.reports / "nas_evolution.png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    result = NASResult(outcome, finalists, quantized, best, best_files, history_path)
    figure = plots.plot_constraint_feasibility(nas_feasibility_points(result, baselines), budgets)
    figure.savefig(layout.reports / "constraint_feasibility.png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    return result


def nas_feasibility_points(nas: NASResult, baselines: list[BaselineResult]) -> pd.DataFrame:
    """The points of the search's constraint-feasibility figure: every candidate of both searches (unlabelled)
    and the baselines (labelled), each marked by whether it meets the budgets."""
    budgets = nas.search.budgets
    return pd.DataFrame(
        [{"size_bytes": h["size_bytes"], "latency_ms": h["latency_ms"], "kind": "nas candidate",
          "feasible": h["feasible"], "label": None} for entries in nas.search.history.values() for h in entries]
        + [{"size_bytes": b.record["size_bytes"], "latency_ms": b.record["latency_ms"], "kind": "baseline",
            "feasible": not budgets.reasons(b.record["size_bytes"], b.record["latency_ms"], b.record["accuracy"]),
            "label": b.name} for b in baselines])


# ---------------------------------------------------------------------------------------------------------------
# Step: the frontier and the reports
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class FrontierResult:
    """The frontier analysis of every evaluated model of one dataset and protocol, and the reports written."""

    report: FrontierReport
    records: list[dict]
    paths: dict[str, Path]


def build_frontier(data: PreparedData, budgets: Budgets, protocol: Protocol,
                   profiles: dict[str, dict] | None = None) -> FrontierResult:
    """Analyse every record of ``data``'s dataset in ``logs/all_results.json`` evaluated under ``protocol`` (plus
    the NAS candidates' proxy records), write the frontier reports, and complete the records (see
    :func:`edge_audio.frontier.write_reports`). Reads results only: it never trains or measures anything."""
    described = protocol.describe(data.dataset.folds)
    records = [r for r in load_results(data.layout.logs, data.fingerprint)
               if r["protocol"] == described or r.get("source") == "nas_candidate"]
    report = analyze_frontier(records, budgets, profiles)
    paths = write_reports(report, records, data.layout)
    return FrontierResult(report, load_results(data.layout.logs, data.fingerprint), paths)
