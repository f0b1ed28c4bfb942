"""Step 3 (chapter 3): compress every baseline with every method, run each variant, and publish it.

Per (baseline, method) and per training seed and split of the protocol, one :func:`~edge_audio.storage.cached`
*variant* entry keyed by that seed's and split's FP32 export, the method, the calibration (clips, method, seed), ``reduce_range`` and the
library versions: the variant's file and its own evaluation of the split's test and validation folds. For the
deployed split of the first seed, one *timing* entry keyed by both files, the timing settings, the machine and the versions: the
variant timed interleaved with its FP32 twin in the same runtime and threads, with a paired latency test. The
deployed variant's file is published as ``models/<model>_<method>.<ext>`` on every run. A full-integer TFLite
variant is also compiled by Vela for every Ethos-U target (:mod:`edge_audio.npu`; cached by the file's content):
its record's ``npu`` holds Vela's report per target, or why Vela did not compile it.

Every variant is compared with its FP32 twin on the same clips, paired per seed and pooled over seeds (its own
weights: training is not part of that difference; :func:`edge_audio.stats.paired_over_seeds`, at the run's
``accuracy_margin``): on the test folds, which report, and on the validation folds, which decide
(:func:`deployment`).

A method that cannot handle a model (ONNX Runtime or the quantizer refuses it, the file is unusable) gives an
error row and the others go on; the chapter states every such failure in its prose, and its invariants check
that it did. Anything else (a bug) stops the step with its traceback.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from ..cards import model_card, write_card
from ..errors import ModelFileError
from ..executor import run_jobs
from ..export import export_waveform_model
from ..device_latency import PUBLISHED
from ..features import FeatureSet, LogMelFrontEnd, load_audio
from ..firmware.boards import BOARDS, missing_tools
from ..firmware.build import board_run, host_outputs, tflm_outputs
from ..firmware.front_end import compare_front_ends, radix2
from ..firmware.network import KERNEL_DIR, generate
from ..targets import DEPLOYMENT_PROFILES
from ..machine import machine_identity, versions
from ..memory import device_memory
from ..metrics import classification_metrics
from ..npu import npu_reports, with_npu_arenas
from ..runtimes.tflm import firmware_ram
from ..settings import Settings
from ..profile import compare_latency, runtime_latency
from ..quantize import (METHODS, derived_methods, QuantizationInputs, calibration_set, check_methods,
                        full_integer_method, layer_sensitivity)
from ..records import VariantRecord, make_record, publish_artifact, with_fields
from ..results import upsert_results
from ..stats import paired_over_seeds, test_and_val
from ..runtimes import DEPLOYABLE, FP32Model, open_model
from ..runtimes import get as get_runtime
from ..runtimes.onnxruntime import onnx_session
from ..storage import CacheEntry, cached, file_sha256, publish, stable_hash
from ..train import TrainResult, predict
from .baselines import BaselineResult
from .data import PreparedData

#: Bump when a variant or timing entry gains or changes fields, so cached entries are recomputed.
QUANT_VERSION = 7
#: Failures that mean "this method cannot handle this model": reported as an error row, the others go on.
QUANTIZATION_FAILURES = (ModelFileError, RuntimeError, onnx.checker.ValidationError, ort_errors.Fail,
                         ort_errors.InvalidArgument, ort_errors.InvalidGraph, ort_errors.NotImplemented,
                         ort_errors.RuntimeException, ort_errors.InvalidProtobuf, ort_errors.EPFail)
#: Record fields a variant shares with its FP32 baseline.
SHARED_FIELDS = ("model", "architecture", "dataset", "context", "protocol", "protocol_kind", "test_folds", "params",
                 "macs", "flops", "flop_counter_flops", "seed", "features", "train", "class_names", "machine",
                 "threads", "source", "nas")


@dataclass
class QuantizationResult:
    """One (model, method): its record, or the error that stopped it (``record`` is then None)."""

    model: str
    method: str
    record: dict | None
    error: str | None = None


def _variant(run: TrainResult, export: CacheEntry, method_name: str, features: FeatureSet, cache: Path,
             settings: Settings, reduce_range: bool) -> CacheEntry:
    """One split's model quantized with one method, and the variant's own evaluation of the split's test and
    validation folds of ``features`` beside its FP32 twin's, both run in the method's runtime; cached under
    ``cache``."""
    method = METHODS[method_name]
    runtime = get_runtime(method.runtime)
    library = versions()
    key = {"export": export.path.name, "method": method_name,
           "calibration": {"clips": settings.calibration_size, "method": settings.calibration_method,
                           "seed": settings.seed},
           "reduce_range": reduce_range, "version": QUANT_VERSION,
           **({"threads": torch.get_num_threads()} if method.trains else {}),  # a trained variant's sums' order
           **({"options": {name: getattr(settings, name) for name in method.options}} if method.options else {}),
           "versions": {n: library[n] for n in ("torch", "onnx", "onnxruntime", "ai-edge-litert", "tflite-micro",
                                                "openvino")}}

    def quantize(folder: Path) -> dict:
        model = run.load_model()
        fp32 = FP32Model(export.file("model.onnx"), export.file("fp32.pth"))
        onnx_session(fp32.onnx)  # an unusable FP32 file is named here, not deep inside the quantizer
        x_train, y_train = features.select(run.split.train_folds)
        calibration = calibration_set(x_train, settings.calibration_size, seed=settings.seed)
        artifact = folder / f"variant{method.suffix}"
        settings_used = method.apply(QuantizationInputs(
            model, fp32.onnx, calibration, settings.calibration_method, reduce_range,
            options={name: getattr(settings, name) for name in method.options},
            training=(x_train, y_train) if method.trains else None), artifact)
        twin_file = runtime.twin(fp32, folder)
        sessions = {"variant": runtime.session(artifact, method.precision, settings.latency_threads),
                    "twin": runtime.session(twin_file, "fp32", settings.latency_threads)}
        evaluations = {}
        for part, folds in (("test", [run.split.test_fold]), ("val", [run.split.val_fold])):
            x, y = features.select(folds)
            for name, session in sessions.items():
                evaluations.setdefault(name, {})[part] = classification_metrics(
                    y, session.predict(x[:, None]).argmax(1), features.num_classes)
        return {"size_bytes": os.path.getsize(artifact), "twin_size_bytes": os.path.getsize(twin_file),
                "quantization": settings_used, **evaluations["variant"],
                "twin": evaluations["twin"]}

    return cached(cache / "quantized", key, quantize, name=f"{run.spec['name']}-{method_name}")


def _timing(variant: CacheEntry, fp32: FP32Model, method_name: str, cache: Path, settings: Settings,
            against: str | None = None) -> CacheEntry:
    """The deployed variant timed interleaved with the FP32 model in the runtime ``against`` (None: its own
    runtime, its FP32 twin), at the same threads; cached under ``cache``."""
    method = METHODS[method_name]
    runtime = get_runtime(method.runtime)
    other = runtime if against is None else get_runtime(against)
    library = versions()
    threads, runs = settings.latency_threads, settings.latency_runs
    key = {"variant": variant.path.name, "threads": threads, "runs": runs,
           "machine": machine_identity(), "version": QUANT_VERSION,
           "versions": {n: library[n] for n in ("torch", "onnxruntime", "ai-edge-litert", "openvino")},
           **({} if against is None else {"against": against})}

    def time_it(folder: Path) -> dict:
        timed = compare_latency(
            runtime.session(variant.file(f"variant{method.suffix}"), method.precision, threads).call(),
            other.session(other.twin(fp32, folder), "fp32", threads).call(), runs)
        timed["latency"].update(threads=threads, runtime=runtime.version())
        timed["twin"].update(threads=threads, runtime=other.version())
        return timed

    return cached(cache / "timings", key, time_it,
                  name=f"{variant.path.name}-timing" + ("" if against is None else f"-{against}"))


def fastest_fp32(baseline_record: dict, records: list[dict]) -> tuple[str, float]:
    """The runtime that runs a model's FP32 weights fastest on this machine, and its median latency (ms): ONNX
    Runtime's (the baseline's own latency) or the FP32 twin of any variant's runtime."""
    medians = {baseline_record["runtime"]: baseline_record["latency_ms"]} | {
        r["runtime"]: r["fp32"]["latency_ms"] for r in records}
    runtime = min(medians, key=medians.get)
    return runtime, medians[runtime]


def _beats_its_twin(record: dict) -> bool:
    """Shown no worse than its FP32 twin by more than the margin on the validation clips, and resolvably faster."""
    return record["paired"]["val"]["a_no_worse"] and record["latency_comparison"]["faster"] == "a"


def qualifies(record: dict) -> bool:
    """Whether a variant may be deployed: it beats its FP32 twin (no worse on validation, resolvably faster) and is
    resolvably faster than FP32 in the fastest FP32 runtime too (``against_fastest_fp32``; a variant never measured
    against it does not qualify)."""
    return _beats_its_twin(record) and record.get("against_fastest_fp32", {}).get("faster") == "a"


def _against_fastest_fp32(record: dict, variant: CacheEntry, baseline: BaselineResult, cache: Path,
                          settings: Settings, runtime: str) -> dict:
    """``record`` with ``against_fastest_fp32``: the variant timed interleaved with FP32 in ``runtime``, the fastest
    FP32 runtime (:func:`fastest_fp32`), when it is a candidate at all (:func:`_beats_its_twin`); in its own runtime
    that comparison is the twin's."""
    if not _beats_its_twin(record):
        return record
    if runtime == record["runtime"]:
        comparison, twin_ms = record["latency_comparison"], record["fp32"]["latency_ms"]
    else:
        timed = _timing(variant, baseline.fp32_files, record["method"], cache, settings, against=runtime).value
        comparison, twin_ms = timed["comparison"], timed["twin"]["median_ms"]
    return with_fields(record, against_fastest_fp32={**comparison, "runtime": runtime, "fp32_latency_ms": twin_ms})


def quantize_models(data: PreparedData, settings: Settings, baselines: list[BaselineResult],
                    methods: list[str] | None = None, fields: dict | None = None) -> list[QuantizationResult]:
    """Compress every baseline with every method (default: ``settings.methods``), on every split of the protocol,
    measure and compare each variant with its FP32 twin, publish the deployed one, and upsert the records (with
    ``fields`` added: where a model that is not a baseline came from, e.g. ``{"source": "nas_finalist", ...}``).
    Calibration clips are drawn (seeded) from each split's training folds. See the module docstring for what is
    cached and which failures give an error row."""
    methods = settings.methods if methods is None else methods
    check_methods(methods, settings.calibration_method)
    # decided by the CPU, never by data: 7-bit weights avoid the AVX2 u8s8 overflow; VNNI/AMX/ARM dot products don't
    reduce_range = not data.machine["int8_dot_product"]
    run_jobs(settings, _variant, [
        (run, export, name, data.features, data.layout.cache, settings, reduce_range) for baseline in baselines
        for name in methods for seed, runs in baseline.seed_runs.items()
        for run, export in zip(runs, baseline.seed_exports[seed])], "compression jobs", failures=QUANTIZATION_FAILURES)
    results = []
    for baseline in baselines:
        mine = []  # this baseline's results, each with its deployed variant (None: it failed)
        for name in methods:
            method = METHODS[name]
            try:
                seed_variants = {seed: [_variant(run, export, name, data.features, data.layout.cache, settings,
                                                 reduce_range)
                                        for run, export in zip(runs, baseline.seed_exports[seed])]
                                 for seed, runs in baseline.seed_runs.items()}
                variants = next(iter(seed_variants.values()))  # the first seed's: the deployed one is timed
                timing = _timing(variants[-1], baseline.fp32_files, name, data.layout.cache, settings).value
            except QUANTIZATION_FAILURES as exc:
                message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                mine.append((QuantizationResult(baseline.name, name, None, f"{type(exc).__name__}: {message}"), None))
                continue
            record = _record(baseline, method, seed_variants, timing, data, reduce_range, settings.accuracy_margin)
            if method.full_integer_tflite:  # what the file costs on an Ethos-U NPU, by Arm's compiler, and as C
                record = with_fields(record, npu=with_npu_arenas(npu_reports(
                    data.layout.root / record["artifact"]["path"], data.layout.cache), record["memory"]["tflm"]),
                    **emulated_costs(data, record, settings.boards))
            if fields:
                record = with_fields(record, **fields)
            if method.suffix in DEPLOYABLE:
                published = data.layout.root / record["artifact"]["path"]
                write_card(model_card(record), published)
            mine.append((QuantizationResult(baseline.name, name, record), variants[-1]))
        floor, _ = fastest_fp32(baseline.record, [result.record for result, variant in mine if variant is not None])
        results += [result if variant is None else dataclasses.replace(result, record=_against_fastest_fp32(
            result.record, variant, baseline, data.layout.cache, settings, floor)) for result, variant in mine]
    upsert_results(data.layout.logs, [r.record for r in results if r.record is not None])
    return results


def quantize_students(data: PreparedData, settings: Settings,
                      students: list[BaselineResult]) -> list[QuantizationResult]:
    """The distilled models compressed like the search's finalists (the registry's derived methods,
    :func:`edge_audio.quantize.derived_methods`), so that they reach
    a microcontroller's budgets and the frontier as INT8 too."""
    return [result for student in students for result in quantize_models(
        data, settings, [student], derived_methods(),
        fields={"source": "distilled", "distillation": student.record["distillation"]})]


def _record(baseline: BaselineResult, method, seed_variants: dict[int, list[CacheEntry]], timing: dict,
            data: PreparedData, reduce_range: bool, margin: float) -> dict:
    """The results record of one (baseline, method): the variant pooled over splits and averaged over seeds,
    paired with its FP32 twin per seed."""
    fp32 = baseline.record
    seeds = list(seed_variants)
    variants = seed_variants[seeds[0]]

    splits = [run.split for run in baseline.seed_runs[seeds[0]]]
    test, val = test_and_val({seed: [(v.value["test"], v.value["val"]) for v in seed_variants[seed]]
                              for seed in seeds}, splits)
    twin = dict(zip(("test", "val"), test_and_val(
        {seed: [(v.value["twin"]["test"], v.value["twin"]["val"]) for v in seed_variants[seed]] for seed in seeds},
        splits)))
    deployed = variants[-1]
    twin_size = deployed.value["twin_size_bytes"]
    size = deployed.value["size_bytes"]
    artifact = deployed.file(f"variant{method.suffix}")
    published = data.layout.models / method.artifact(baseline.name)
    latency, twin_latency = timing["latency"], timing["twin"]
    shared = {k: fp32[k] for k in SHARED_FIELDS if k in fp32}
    return make_record(VariantRecord, **{
        **shared, "variant": method.name, "method": method.name, "reduce_range": reduce_range,
        "weight_bits": method.weight_bits if method.int8_weights else 32, "trains": method.trains,
        "runtime": method.runtime, "precision": method.precision, "int8_weights": method.int8_weights,
        "int8_activations": method.int8_activations, "full_integer_tflite": method.full_integer_tflite,
        "accuracy": test["accuracy"], "accuracy_std": test["fold_std"], "test": test,
        "val_accuracy": val["accuracy"], "val": val,
        "macro_f1": round(float(np.mean([v.value["test"]["macro_f1"] for v in variants])), 4),
        "per_class_accuracy": deployed.value["test"]["per_class_accuracy"],
        "confusion": deployed.value["test"]["confusion"], "size_bytes": size,
        **_memory(method, artifact, baseline.onnx_path, deployed.value["quantization"], size),
        "latency": {method.runtime: latency}, "latency_ms": latency["median_ms"],
        "fp32": {"accuracy": twin["test"]["accuracy"], "test": twin["test"],
                 "val_accuracy": twin["val"]["accuracy"], "size_bytes": twin_size,
                 "latency_ms": twin_latency["median_ms"], "latency": twin_latency},
        "paired": {"test": paired_over_seeds(test, twin["test"], margin),
                   "val": paired_over_seeds(val, twin["val"], margin)},
        "latency_comparison": timing["comparison"],
        "size_ratio": round(twin_size / size, 3), "speedup": round(twin_latency["median_ms"] / latency["median_ms"], 3),
        "accuracy_drop": round(twin["test"]["accuracy"] - test["accuracy"], 4),
        "quantization": deployed.value["quantization"],
        "artifact": publish_artifact(artifact, published, data.layout.root)})


def _memory(method, artifact: Path, fp32_onnx: Path, settings_used: dict, size: int) -> dict:
    """A variant's flash (its own file's bytes) and peak RAM (:func:`edge_audio.memory.device_memory`), counted on
    the graph its method names (``Method.ram_graph``); a variant checked by TensorFlow Lite Micro carries TFLite
    Micro's arena beside the planner's estimate."""
    graph = method.ram_graph_file(artifact, fp32_onnx, settings_used)
    fields = device_memory(graph, flash_bytes=size,
                           unpacked_weights=[bits < 8 for bits in settings_used.get("layer_bits", [])] or False)
    if "tflm" in settings_used:  # the RAM a firmware allocates: TFLite Micro's whole arena and CMSIS-NN's scratch
        tflm = settings_used["tflm"]
        fields["memory"]["tflm"] = {**tflm, "planner_difference_percent": round(
            100.0 * (fields["memory"]["arena_bytes"] - tflm["head_bytes"]) / tflm["head_bytes"], 3)}
        fields["memory"]["firmware"] = firmware_ram(tflm, fields["memory"]["scratch_bytes"])
        fields["peak_ram_bytes"] = fields["memory"]["firmware"]["arena_bytes"]
    return fields


def deployment(records: list[dict]) -> dict | None:
    """The variant to deploy among one model's variant ``records``, **decided on the validation folds**: among
    those shown no worse than their FP32 twin by more than the margin on the validation clips (the paired
    difference's interval lies above minus the margin) that are resolvably faster (paired latency test) than their
    twin and than FP32 in the fastest FP32 runtime (:func:`qualifies`), the fastest; None (deploy FP32) when there
    is none, so a deployment is never slower than not compressing. An undetermined loss is not "no loss": such a
    variant does not qualify."""
    return min((r for r in records if qualifies(r)), key=lambda r: (r["latency_ms"], r["size_bytes"]), default=None)


def deployments(results: list[QuantizationResult]) -> dict[str, dict | None]:
    """Per model of ``results`` (in their order), its :func:`deployment`."""
    records = [r.record for r in results if r.record is not None]
    return {model: deployment([r for r in records if r["model"] == model])
            for model in dict.fromkeys(r["model"] for r in records)}


def layer_sensitivity_of(baseline: BaselineResult, data: PreparedData, settings: Settings) -> list[dict]:
    """``baseline``'s per-layer sensitivity rows (:func:`edge_audio.quantize.layer_sensitivity`) on its deployed
    split's test fold, calibrated on its training folds."""
    split = baseline.deployed_run.split
    x_train, _ = data.features.select(split.train_folds)
    x_test, y_test = data.features.select([split.test_fold])
    return layer_sensitivity(data.layout.models / f"{baseline.name}.onnx",
                             calibration_set(x_train, settings.calibration_size, seed=settings.seed), x_test,
                             y_test, len(data.dataset.class_names), settings.calibration_method,
                             settings.latency_threads)


#: How close the raw-audio ONNX model's logits must be to the PyTorch model's on cached features.
WAVEFORM_TOLERANCE = 1e-3


def export_deployable(data: PreparedData, baseline: BaselineResult, clips: int = 16, threads: int = 1) -> dict:
    """Export ``models/<name>_waveform.onnx`` (front end in the graph) and compare it with the package's pipeline.

    The export is cached by the training run, the feature settings and the library versions, and published on
    every call. The first ``clips`` clips of the test fold go through both paths: files -> :func:`load_audio` ->
    the ONNX graph, and the cached log-mels -> the PyTorch model. Returns the maximum absolute logit difference,
    whether it is within :data:`WAVEFORM_TOLERANCE`, whether the predictions agree, and the file's size.
    """
    run = baseline.deployed_run
    config = data.feature_config
    library = versions()
    key = {"run": run.key, "features": config.to_dict(),
           "versions": {n: library[n] for n in ("torch", "onnx", "onnxscript", "librosa")}}

    def export(folder: Path) -> dict:
        export_waveform_model(run.load_model(), LogMelFrontEnd(config), config.num_samples, folder / "model.onnx")
        return {"size_bytes": os.path.getsize(folder / "model.onnx")}

    entry = cached(data.layout.cache / "waveform", key, export, name=f"waveform-{baseline.name}")
    path = data.layout.models / f"{baseline.name}_waveform.onnx"
    publish(entry.file("model.onnx"), path)
    write_card({**model_card(baseline.record, input_kind="waveform"), "variant": "fp32, raw audio in",
                "flash_bytes": os.path.getsize(path)}, path)
    mask = data.features.folds == run.split.test_fold
    paths = data.dataset.table["path"].to_numpy()[mask][:clips]
    waves = np.stack([load_audio(p, config) for p in paths])
    # batch 1, as a device runs it (the exported STFT graph has a fixed batch dimension of 1)
    onnx_logits = open_model(path, threads=threads).predict(waves)
    torch_logits = predict(run.load_model(), data.features.features[mask][:clips])
    difference = float(np.abs(onnx_logits - torch_logits).max())
    return {"model": baseline.name, "path": os.path.relpath(path, data.layout.root),
            "size_bytes": os.path.getsize(path), "clips": len(paths), "max_abs_logit_difference": difference,
            "tolerance": WAVEFORM_TOLERANCE, "within_tolerance": difference <= WAVEFORM_TOLERANCE,
            "predictions_agree": bool((onnx_logits.argmax(1) == torch_logits.argmax(1)).all()),
            "latency": runtime_latency("onnxruntime", path, threads, 50)}


# -- On an emulated board ----------------------------------------------------------------------------------------
#
# Step 3 (chapter 3, "On an emulated board"): every published full-integer TFLite variant as generated C
# (:mod:`edge_audio.firmware`), checked byte for byte against TensorFlow Lite Micro's reference kernels on the host
# over every test clip of the deployed split, then cross-built and run on the emulated boards
# (:data:`edge_audio.firmware.boards.BOARDS`) on the first :data:`BOARD_CLIPS` of them: outputs against the host's,
# instructions per inference and per layer (with and without the core's SIMD), the network's flash and RAM from the
# linked objects and the stack's high-water mark. Beside them: the C front end against the Python one on the same
# test clips, and the MLPerf Tiny keyword-spotting model (``benchmarks/data/mlperf-tiny-kws``, in a checkout) on the
# same boards, against its published latencies.
# 
# Board runs are cached by their inputs (:func:`edge_audio.firmware.build.board_run`). Without the cross compiler or
# the emulator the step returns why, and the chapter says it in one line.

#: Test clips the host checks against TensorFlow Lite Micro in the book (its Python interpreter takes 10 to 100 ms
#: a clip; the tests check every clip of a quick run), and clips each board runs (an emulated inference takes 0.1 to
#: 3 s; an instruction count barely moves with the input).
HOST_CLIPS = 32
BOARD_CLIPS = 1
#: The boards whose SIMD loop (the DSP extension's, Helium's) is also measured against the plain C loop.
SIMD_BOARDS = ("cortex_m4", "cortex_m55")
#: The profile whose clock turns each board's instructions into milliseconds.
BOARD_PROFILES = {"cortex_m4": "cortex_m4", "cortex_m7": "cortex_m7", "cortex_m55": "cortex_m4"}
#: MLPerf Tiny's keyword-spotting DS-CNN (a data file beside the project, see its README).
KWS_MODEL = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "mlperf-tiny-kws" / "kws_ref_model.tflite"
#: Its published latencies on a Cortex-M4 at 120 MHz (NUCLEO-L4R5ZI): every stack's MLPerf Tiny result the
#: cycles-per-MAC constants come from (:data:`edge_audio.device_latency.PUBLISHED`, each with its results file).
KWS_PUBLISHED = tuple({"stack": result.stack, "latency_ms": result.latency_ms, "source": result.source}
                      for result in PUBLISHED.values() if result.core == "Cortex-M4")
KWS_CLOCK_HZ = 120e6


def _latency(instructions: float, board: str, clock_hz: float) -> tuple[float, float]:
    low, high = BOARDS[board].cpi
    return instructions * low / clock_hz * 1e3, instructions * high / clock_hz * 1e3


def _board_rows(network, inputs: np.ndarray, reference: np.ndarray, cache: Path, macs: int, label: dict,
                plain: bool, boards: list[str]) -> list[dict]:
    """One row per board of ``boards``: ``network`` run on ``inputs`` (SIMD loop), its outputs against
    ``reference``, its counts and latencies; with ``plain``, also the plain C loop on :data:`SIMD_BOARDS`."""
    label = {**label, "layer_operators": network.operators, "layer_macs": [layer.macs for layer in network.layers]}
    rows = []
    for name in boards:
        fast = board_run(network, inputs, name, cache, simd=True)
        slow = board_run(network, inputs, name, cache, simd=False) if plain and name in SIMD_BOARDS else None
        profile = DEPLOYMENT_PROFILES[BOARD_PROFILES[name]]
        low, high = _latency(fast.mean_instructions, name, profile.clock_hz)
        rows.append({**label, "board": name, "core": BOARDS[name].core, "machine": BOARDS[name].machine,
                     "clips": len(inputs),
                     "bit_exact": bool(np.array_equal(fast.outputs, reference)
                                       and (slow is None or np.array_equal(slow.outputs, reference))),
                     "instructions": fast.mean_instructions,
                     "simd_speedup": None if slow is None else slow.mean_instructions / fast.mean_instructions,
                     "layer_instructions": fast.layer_instructions, "flash_bytes": fast.flash_bytes,
                     "ram_bytes": fast.ram_bytes, "stack_bytes": fast.stack_bytes, "profile": profile.name,
                     "clock_mhz": profile.clock_hz / 1e6, "latency_ms": [low, high],
                     "estimate_ms": macs * profile.cycles_per_mac / profile.clock_hz * 1e3,
                     "cpi": list(BOARDS[name].cpi)})
    return rows


def _host_check(network, model: Path, inputs: np.ndarray, cache: Path) -> dict:
    """The generated C on the host against TensorFlow Lite Micro on ``inputs``; cached by the model's, the
    inputs' and the sources' bytes."""
    sources = {**network.sources, **{p.name: p.read_bytes().hex() for p in sorted(KERNEL_DIR.glob("ea_nn*"))}}
    key = {"model": file_sha256(model), "inputs": stable_hash(inputs.tobytes().hex()), "sources": stable_hash(sources),
           "tflm": versions()["tflite-micro"]}

    def check(folder: Path) -> dict:
        reference, on_host = tflm_outputs(model, inputs), host_outputs(network, inputs, cache)
        return {"clips": len(inputs), "bit_exact": bool(np.array_equal(on_host, reference)),
                "differing_bytes": int(np.sum(on_host != reference))}

    return cached(cache, key, check, name=f"host-{model.stem}").value


def _quantized(features: np.ndarray, tensor) -> np.ndarray:
    info = np.iinfo(tensor.dtype)
    scaled = np.round(features / tensor.scale[0]) + tensor.zero_point[0]
    return np.clip(scaled, info.min, info.max).astype(tensor.dtype).reshape(len(features), -1)


def _board_inputs(data: PreparedData, record: dict, network) -> np.ndarray:
    """Every test clip of ``record``'s deployed split as ``network``'s quantized input."""
    mask = data.features.folds == record["test_folds"][-1]
    return _quantized(data.features.features[mask], network.input)


def emulated_costs(data: PreparedData, record: dict, boards: list[str]) -> dict:
    """``{"emulated": {board: ...}}`` for a full-integer variant's record: its generated C run on each of ``boards``
    on the first :data:`BOARD_CLIPS` test clips (instructions per inference, bit-exact with TFLite Micro, the
    network's flash and RAM); ``{}`` without boards or the toolchain (the profiles then estimate from MACs)."""
    if not boards or missing_tools():
        return {}
    path = data.layout.root / record["artifact"]["path"]
    network = generate(path.read_bytes(), path.name)
    inputs = _board_inputs(data, record, network)[:BOARD_CLIPS]
    reference = tflm_outputs(path, inputs)
    runs = {name: board_run(network, inputs, name, data.layout.cache / "firmware") for name in boards}
    return {"emulated": {name: {"instructions": run.mean_instructions, "clips": len(inputs),
                                "bit_exact": bool(np.array_equal(run.outputs, reference)),
                                "flash_bytes": run.flash_bytes, "ram_bytes": run.ram_bytes}
                         for name, run in runs.items()}}


def emulated_boards(data: PreparedData, results: list[QuantizationResult], boards: list[str]) -> dict:
    """The "On an emulated board" table's rows on ``boards``, the front-end check and the KWS anchor (see the
    module docstring); ``{"skipped": why}`` without boards or the toolchain."""
    why = ("no emulated board was asked for (emulated_boards is empty; the book runs cortex_m4, cortex_m7 and "
           "cortex_m55)") if not boards else missing_tools()
    if why:  # its one line is what the chapter says
        return {"skipped": why}
    cache = data.layout.cache / "firmware"
    rows, host = [], []
    front_end = None
    for result in results:
        record = result.record
        if record is None or record.get("error") or not METHODS[record["method"]].full_integer_tflite:
            continue
        path = data.layout.root / record["artifact"]["path"]
        network = generate(path.read_bytes(), path.name)
        inputs = _board_inputs(data, record, network)[:HOST_CLIPS]
        label = {"model": record["model"], "method": record["method"]}
        host.append({**label, **_host_check(network, path, inputs, cache), "arena_bytes": network.arena_bytes})
        reference = tflm_outputs(path, inputs[:BOARD_CLIPS])
        reference_method_ = record["method"] == full_integer_method(8).name
        rows += _board_rows(network, inputs[:BOARD_CLIPS], reference, cache, record["macs"], label,
                            plain=reference_method_, boards=boards)
        if front_end is None and reference_method_:
            if radix2(data.feature_config.n_fft):
                front_end = {"skipped": radix2(data.feature_config.n_fft)}
                continue
            mask = data.features.folds == record["test_folds"][-1]  # the deployed split's test fold
            paths = data.dataset.table["path"].to_numpy()[mask][:HOST_CLIPS]
            waves = np.stack([load_audio(p, data.feature_config) for p in paths])
            check = compare_front_ends(network, data.feature_config.to_dict(), waves)
            front_end = {**label, "clips": check.clips, "largest_difference": check.largest_difference,
                         "same_prediction": check.same_prediction}
    kws = None
    if KWS_MODEL.is_file():
        network = generate(KWS_MODEL.read_bytes(), KWS_MODEL.name)
        inputs = np.random.default_rng(0).integers(-128, 128, (HOST_CLIPS, int(np.prod(network.input.shape))),
                                                   dtype=np.int64).astype(np.int8)
        kws_rows = _board_rows(network, inputs[:BOARD_CLIPS], tflm_outputs(KWS_MODEL, inputs[:BOARD_CLIPS]), cache,
                               sum(layer.macs for layer in network.layers),
                               {"model": "MLPerf Tiny KWS (DS-CNN)", "method": "int8"}, plain=True,
                               boards=sorted({*boards, "cortex_m4"}, key=list(BOARDS).index))
        m4 = next(row for row in kws_rows if row["board"] == "cortex_m4")  # the published results' core
        low, high = _latency(m4["instructions"], "cortex_m4", KWS_CLOCK_HZ)
        best = min(p["latency_ms"] for p in KWS_PUBLISHED)
        kws = {"rows": kws_rows, "host": _host_check(network, KWS_MODEL, inputs, cache),
               "m4_latency_ms_at_120mhz": [low, high], "published": list(KWS_PUBLISHED),
               "slower_than_best": [low / best, high / best]}
    return {"skipped": None, "rows": rows, "host": host, "front_end": front_end, "kws": kws,
            "board_clips": BOARD_CLIPS}
