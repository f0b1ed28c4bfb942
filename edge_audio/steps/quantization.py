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
(:func:`recommendations`).

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
import pandas as pd
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from .. import plots
from ..glue import counted
from ..cards import model_card, write_card
from ..claims import Claims
from ..errors import ModelFileError, invariant
from ..export import export_waveform_model
from ..features import LogMelFrontEnd, load_audio
from ..machine import machine_identity, versions
from ..memory import device_memory
from ..metrics import classification_metrics
from ..npu import npu_reports, with_npu_arenas
from ..runtimes.tflm import firmware_ram
from ..settings import Settings
from ..profile import compare_latency, runtime_latency
from ..quantize import (BIT_WIDTHS, METHODS, QuantizationInputs, calibration_set, check_methods,
                        layer_sensitivity)
from ..records import VariantRecord, holds_artifact, make_record, publish_artifact, with_fields
from ..results import as_chosen, pick_key, upsert_results
from ..stats import interval_text, paired_over_seeds, seeded_difference, test_and_val
from ..tables import accuracy_verdict
from ..runtimes import DEPLOYABLE, FP32Model, open_model
from ..runtimes import get as get_runtime
from ..runtimes.onnxruntime import onnx_session
from ..storage import CacheEntry, cached, publish
from ..train import TrainResult, predict
from .baselines import BaselineResult
from .data import PreparedData

#: Bump when a variant or timing entry gains or changes fields, so cached entries are recomputed.
QUANT_VERSION = 7
#: What a model beyond the baselines (a search finalist, a distilled student) is compressed with: static INT8,
#: per channel, as ONNX QDQ and as full-integer TFLite, the two a deployment needs.
DERIVED_MODEL_METHODS = ["ort_static", "tflite_int8"]
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


def _variant(run: TrainResult, export: CacheEntry, method_name: str, data: PreparedData, settings: Settings,
             reduce_range: bool) -> CacheEntry:
    """One split's model quantized with one method, and the variant's own evaluation of the split's test and
    validation folds beside its FP32 twin's, both run in the method's runtime; cached."""
    method = METHODS[method_name]
    runtime = get_runtime(method.runtime)
    library = versions()
    key = {"export": export.path.name, "method": method_name,
           "calibration": {"clips": settings.calibration_size, "method": settings.calibration_method,
                           "seed": settings.seed},
           "reduce_range": reduce_range, "version": QUANT_VERSION,
           **({"options": {name: getattr(settings, name) for name in method.options}} if method.options else {}),
           "versions": {n: library[n] for n in ("torch", "onnx", "onnxruntime", "ai-edge-litert", "tflite-micro",
                                                "openvino")}}

    def quantize(folder: Path) -> dict:
        model = run.load_model()
        fp32 = FP32Model(export.file("model.onnx"), export.file("fp32.pth"))
        onnx_session(fp32.onnx)  # an unusable FP32 file is named here, not deep inside the quantizer
        x_train, y_train = data.features.select(run.split.train_folds)
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
            x, y = data.features.select(folds)
            for name, session in sessions.items():
                evaluations.setdefault(name, {})[part] = classification_metrics(
                    y, session.predict(x[:, None]).argmax(1), data.num_classes)
        return {"size_bytes": os.path.getsize(artifact), "twin_size_bytes": os.path.getsize(twin_file),
                "quantization": settings_used, **evaluations["variant"],
                "twin": evaluations["twin"]}

    return cached(data.layout.cache / "quantized", key, quantize, name=f"{run.spec['name']}-{method_name}")


def _timing(variant: CacheEntry, fp32: FP32Model, method_name: str, data: PreparedData,
            settings: Settings, against: str | None = None) -> CacheEntry:
    """The deployed variant timed interleaved with the FP32 model in the runtime ``against`` (None: its own
    runtime, its FP32 twin), at the same threads; cached."""
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

    return cached(data.layout.cache / "timings", key, time_it,
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


def _against_fastest_fp32(record: dict, variant: CacheEntry, baseline: BaselineResult, data: PreparedData,
                          settings: Settings, runtime: str) -> dict:
    """``record`` with ``against_fastest_fp32``: the variant timed interleaved with FP32 in ``runtime``, the fastest
    FP32 runtime (:func:`fastest_fp32`), when it is a candidate at all (:func:`_beats_its_twin`); in its own runtime
    that comparison is the twin's."""
    if not _beats_its_twin(record):
        return record
    if runtime == record["runtime"]:
        comparison, twin_ms = record["latency_comparison"], record["fp32"]["latency_ms"]
    else:
        timed = _timing(variant, baseline.fp32_files, record["method"], data, settings, against=runtime).value
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
    results = []
    for baseline in baselines:
        mine = []  # this baseline's results, each with its deployed variant (None: it failed)
        for name in methods:
            method = METHODS[name]
            try:
                seed_variants = {seed: [_variant(run, export, name, data, settings, reduce_range)
                                        for run, export in zip(runs, baseline.seed_exports[seed])]
                                 for seed, runs in baseline.seed_runs.items()}
                variants = next(iter(seed_variants.values()))  # the first seed's: the deployed one is timed
                timing = _timing(variants[-1], baseline.fp32_files, name, data, settings).value
            except QUANTIZATION_FAILURES as exc:
                message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                mine.append((QuantizationResult(baseline.name, name, None, f"{type(exc).__name__}: {message}"), None))
                continue
            record = _record(baseline, method, seed_variants, timing, data, reduce_range, settings.accuracy_margin)
            if method.full_integer_tflite:  # what the file costs on an Ethos-U NPU, by Arm's compiler
                record = with_fields(record, npu=with_npu_arenas(npu_reports(
                    data.layout.root / record["artifact"]["path"], data.layout.cache), record["memory"]["tflm"]))
            if fields:
                record = with_fields(record, **fields)
            if method.suffix in DEPLOYABLE:
                published = data.layout.root / record["artifact"]["path"]
                write_card(model_card(record), published)
            mine.append((QuantizationResult(baseline.name, name, record), variants[-1]))
        floor, _ = fastest_fp32(baseline.record, [result.record for result, variant in mine if variant is not None])
        results += [result if variant is None else dataclasses.replace(result, record=_against_fastest_fp32(
            result.record, variant, baseline, data, settings, floor)) for result, variant in mine]
    upsert_results(data.layout.logs, [r.record for r in results if r.record is not None])
    return results


def quantize_students(data: PreparedData, settings: Settings,
                      students: list[BaselineResult]) -> list[QuantizationResult]:
    """The distilled models compressed like the search's finalists (:data:`DERIVED_MODEL_METHODS`), so that they reach
    a microcontroller's budgets and the frontier as INT8 too."""
    return [result for student in students for result in quantize_models(
        data, settings, [student], DERIVED_MODEL_METHODS,
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
    graph = {"artifact": lambda: artifact, "fp32": lambda: fp32_onnx,
             "source": lambda: artifact.with_name(settings_used["source_graph"])}[method.ram_graph]()
    fields = device_memory(graph, flash_bytes=size,
                           unpacked_weights=[bits < 8 for bits in settings_used.get("layer_bits", [])] or False)
    if "tflm" in settings_used:  # the RAM a firmware allocates: TFLite Micro's whole arena and CMSIS-NN's scratch
        tflm = settings_used["tflm"]
        fields["memory"]["tflm"] = {**tflm, "planner_difference_percent": round(
            100.0 * (fields["memory"]["arena_bytes"] - tflm["head_bytes"]) / tflm["head_bytes"], 3)}
        fields["memory"]["firmware"] = firmware_ram(tflm, fields["memory"]["scratch_bytes"])
        fields["peak_ram_bytes"] = fields["memory"]["firmware"]["arena_bytes"]
    return fields


def recommendations(results: list[QuantizationResult]) -> pd.DataFrame:
    """Per model, the variant to deploy, **decided on the validation folds**: among the variants shown no worse
    than their FP32 twin by more than the margin on the validation clips (the paired difference's interval lies
    above minus the margin) that are resolvably faster (paired latency test) than their twin and than FP32 in the
    fastest FP32 runtime (:func:`qualifies`), the fastest; FP32 when there is none, so a deployment is never slower
    than not compressing.
    An undetermined loss is not "no loss": such a variant is not recommended. Reported with its test-fold numbers,
    which decide nothing (under k-fold the deployed split's test fold: :func:`edge_audio.results.as_chosen`)."""
    rows = []
    records = [r.record for r in results if r.record is not None]
    for model in dict.fromkeys(r["model"] for r in records):
        eligible = [r for r in records if r["model"] == model and qualifies(r)]
        best = min(eligible, key=lambda r: (r["latency_ms"], r["size_bytes"]), default=None)
        if best is None:
            rows.append({"model": model, "deploy": "fp32", "why (validation folds)": "no variant is shown no worse "
                         "than FP32 by more than the margin and resolvably faster than FP32 in its own runtime and "
                         "in the fastest", "test accuracy (%)": "", "test: against FP32": "", "speedup": "",
                         "size ratio": ""})
            continue
        reported = as_chosen(best)
        val, test = best["paired"]["val"], reported["paired"]["test"]
        floor = best["against_fastest_fp32"]
        rows.append({"model": model, "deploy": best["variant"],
                     "why (validation folds)": f"{accuracy_verdict(val)}; {best['speedup']:.2f}x faster than its "
                                               f"twin, {1 / floor['ratio']:.2f}x than FP32 in {floor['runtime']}",
                     "test accuracy (%)": f"{reported['accuracy']:.2f} ({interval_text(reported['test'])})",
                     "test: against FP32": accuracy_verdict(test),
                     "speedup": best["speedup"], "size ratio": best["size_ratio"]})
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


def failure_note(results: list[QuantizationResult]) -> str:
    """A sentence for the chapter's prose: every (model, method) that failed and why, or that none did."""
    failed = [r for r in results if r.error]
    if not failed:
        return f"All {len(results)} (model, method) pairs were quantized and evaluated; none failed."
    listed = "; ".join(f"{r.model} with {r.method} ({r.error})" for r in failed)
    return (f"**{len(failed)} of {len(results)} (model, method) pairs failed** and are absent from every table, "
            f"figure and record: {listed}.")


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


# ---------------------------------------------------------------------------------------------------------------
# What chapter 3 shows
# ---------------------------------------------------------------------------------------------------------------

def _machine_sentence(machine: dict) -> str:
    """What the CPU's INT8 instructions mean for ONNX Runtime's kernels and the weights' bit width."""
    isa = ", ".join(machine["isa"]) or "no listed SIMD extension"
    if machine["int8_dot_product"]:
        return (f"This machine ({machine['cpu']}; {isa}) has an INT8 dot-product instruction, so ONNX Runtime's "
                "INT8 kernels use it and weights keep 8 bits.")
    return (f"This machine ({machine['cpu']}; {isa}) has no INT8 dot-product instruction (VNNI, AMX or ARM dot "
            "product): ONNX Runtime's INT8 kernels run on AVX2 multiply-add, and weights are quantized to 7 bits "
            "(reduce_range) to keep its 16-bit intermediate sums from saturating. That choice follows the CPU, "
            "never the data.")


def _deployment_sentences(results: list[QuantizationResult], claims: Claims) -> str:
    """What each model's recommended deployment gives up on the test clips, each sentence made by ``claims`` from
    the paired difference at the margin."""
    records = {(r.record["model"], r.record["variant"]): r.record for r in results if r.record is not None}
    sentences = []
    for model, row in recommendations(results).iterrows():
        if row["deploy"] == "fp32":
            sentences.append(f"{model}: FP32 (no variant qualified)")
            continue
        comparison = as_chosen(records[(model, row["deploy"])])["paired"]["test"]
        sentences.append(claims.accuracy(f"{model} ({row['deploy']})", f"{model} (fp32)", comparison))
    return "; ".join(sentences) if sentences else "none"


def chapter_values(results: list[QuantizationResult], deployable: dict, data: PreparedData,
                   settings: Settings, claims: Claims) -> dict:
    """Every value chapter 3's prose quotes (the sentences on what each deployment gives up stated through
    ``claims``)."""
    records = [r.record for r in results if r.record is not None]
    static = [r for r in records if r["method"] == "ort_static"]
    pytorch = [r for r in records if r["method"] == "pytorch_dynamic"]
    tflm = [abs(r["memory"]["tflm"]["planner_difference_percent"]) for r in records if r["full_integer_tflite"]]
    verdicts = [r["paired"]["test"]["verdict"] for r in records]
    undetermined = [r["paired"]["test"]["clips_to_decide"] for r in records
                    if r["paired"]["test"]["verdict"] == "undetermined"]
    values = {
        "q_threads": int(settings.latency_threads), "q_runs": int(settings.latency_runs),
        "q_threads_counted": counted(int(settings.latency_threads), "thread"),
        "q_margin_points": counted(float(settings.accuracy_margin), "point"),
        "q_clips": int(records[0]["test"]["n"]) if records else 0,
        "q_protocol": records[0]["protocol"] if records else "none",
        "q_tflm_sentence": (f"Planner - TFLM is their difference, at most {max(tflm):g} % on these models." if tflm
                            else f"Full-integer TFLite: {absent('tflite_int8')}."),
        "q_margin": float(settings.accuracy_margin),
        "n_acc_within": verdicts.count("within the margin"), "n_acc_loss": verdicts.count("worse"),
        "n_acc_gain": verdicts.count("better"), "n_acc_no_worse": verdicts.count("no worse"),
        "n_acc_no_better": verdicts.count("no better"), "n_acc_undetermined": verdicts.count("undetermined"),
        "q_clips_to_decide": (f"{max(c for c in undetermined if c):,}" if any(undetermined) else
                              "more than the reach of this estimate" if undetermined else "none needed"),
        "n_faster": sum(r["latency_comparison"]["faster"] == "a" for r in records),
        "n_slower": sum(r["latency_comparison"]["faster"] == "b" for r in records), "n_variants": len(records),
        "q_machine": _machine_sentence(records[0]["machine"]),
        "wave_rate": int(data.feature_config.sample_rate),
        "wave_diff": float(f"{deployable['max_abs_logit_difference']:.2e}"),
        "wave_tol": float(deployable["tolerance"]), "wave_agree": "yes" if deployable["predictions_agree"] else "no",
    }
    values["q_deployments"] = _deployment_sentences(results, claims)
    values["static_sentence"] = (
        f"Static INT8 (per-channel) made the models {min(r['size_ratio'] for r in static):.2f}x to "
        f"{max(r['size_ratio'] for r in static):.2f}x smaller than their FP32 ONNX files, at speedups from "
        f"{min(r['speedup'] for r in static):.2f}x to {max(r['speedup'] for r in static):.2f}x single-thread."
        if static else f"Static INT8: {absent('ort_static')}.")
    values["pytorch_sentence"] = (
        f"PyTorch dynamic quantization changed size by a factor of {max(r['size_ratio'] for r in pytorch):.2f} at "
        "most: it leaves every convolution in FP32." if pytorch else
        f"PyTorch dynamic quantization: {absent('pytorch_dynamic')}.")
    return values


def absent(method: str) -> str:
    """What a section that needs ``method`` says when the run's methods leave it out (in one clause)."""
    return f"{method} was not among this run's methods (add it with -p methods)"


@dataclass(frozen=True)
class BitWidth:
    """One model's full-integer TFLite variants at one pair of bit widths (weights, activations): post-training
    (``ptq``) and, when it ran, quantization-aware (``qat``), each record paired with FP32 on the test clips, and
    ``qat_against_ptq``, the difference QAT - PTQ on the same clips over seeds (QAT trains again:
    :func:`edge_audio.stats.seeded_difference`)."""

    model: str
    label: str  # the bits of weights and activations, e.g. "w4 a8" (:data:`edge_audio.quantize.BIT_WIDTHS`)
    ptq: dict
    qat: dict | None
    qat_against_ptq: dict | None

    @property
    def ptq_loss(self) -> float:
        """Points PTQ lost against FP32 on the test clips (negative: it gained)."""
        return self.ptq["fp32"]["accuracy"] - self.ptq["accuracy"]

    @property
    def recovered(self) -> float | None:
        """The share of PTQ's loss that QAT won back (1: all of it), or None without QAT or without a loss."""
        if self.qat is None or self.ptq_loss <= 0:
            return None
        return (self.qat["accuracy"] - self.ptq["accuracy"]) / self.ptq_loss


def bit_widths(results: list[QuantizationResult], margin: float) -> list[BitWidth]:
    """Every (model, bit widths) with a post-training full-integer TFLite variant (``tflite_int16x8``,
    ``tflite_int8``, ``tflite_mixed``, ``tflite_int4``), most bits first (:data:`edge_audio.quantize.BIT_WIDTHS`),
    with its quantization-aware twin of the same bit widths (``qat_int8``, ``qat_int4``) when it ran."""
    records = [r.record for r in results if r.record is not None and r.record["full_integer_tflite"]]
    rows = []
    for model in dict.fromkeys(r["model"] for r in records):
        mine = [r for r in records if r["model"] == model]
        for label in BIT_WIDTHS:
            same = [r for r in mine if METHODS[r["method"]].bits == label]
            ptq = next((r for r in same if not METHODS[r["method"]].trains), None)
            qat = next((r for r in same if METHODS[r["method"]].trains), None)
            if ptq is None:
                continue
            rows.append(BitWidth(model, label, ptq, qat,
                                 None if qat is None else seeded_difference(qat["test"], ptq["test"], margin)))
    return rows


def npu_values(records: list[dict]) -> dict:
    """What chapter 3's Ethos-U section quotes: how many full-integer variants Vela compiled, how many run every
    operator on the NPU, the range of the estimated latency on the smallest target, and why the others failed."""
    from ..npu import NPU_TARGETS

    first = next(iter(NPU_TARGETS))
    reports = [r["npu"][first] for r in records if r.get("npu")]
    compiled = [report for report in reports if "error" not in report]
    refused = [r for r in records if r.get("npu") and "error" in r["npu"][first]]
    errors = sorted({r["npu"][first]["error"].split(";")[0] for r in refused})
    methods = ", ".join(dict.fromkeys(r["method"] for r in refused))
    return {"npu_target": first, "npu_description": NPU_TARGETS[first].description,
            "npu_vela": compiled[0]["vela"] if compiled else "not used",
            "npu_compiled": f"{len(compiled)} of {len(reports)}",
            "npu_all_on_npu": counted(sum(report["cpu_operators"] == 0 for report in compiled), "variant"),
            "npu_latency_range": (f"{min(r['latency_ms'] for r in compiled):.3f} to "
                                  f"{max(r['latency_ms'] for r in compiled):.3f} ms" if compiled else "n/a"),
            "npu_failures": f"{counted(len(refused), 'variant')} ({methods}): {'; '.join(errors)}" if refused
                            else "none"}


def bit_width_values(rows: list[BitWidth], qat_epochs: int) -> dict:
    """What chapter 3's *Bits* section quotes: per bit width how many models PTQ makes resolvably less accurate than
    FP32, the widest bit width where that happens, how many of those losses QAT won back by at least half
    (resolvably: QAT better than PTQ), what the extra epochs alone did at 8 bits, and the int4 files' size and RAM
    against int8's."""
    labels = list(dict.fromkeys(row.label for row in rows))
    worse = {label: [row for row in rows if row.label == label and row.ptq["paired"]["test"]["verdict"] == "worse"]
             for label in labels}
    lossy = [row for row in rows if row.ptq["paired"]["test"]["verdict"] == "worse" and row.qat is not None]
    won_back = [row for row in lossy if row.qat_against_ptq["verdict"] == "better" and row.recovered >= 0.5]
    qat8 = [row.qat["paired"]["test"]["verdict"] for row in rows if row.label == "w8 a8" and row.qat is not None]
    by_model = {(row.model, row.label): row.ptq for row in rows}
    pairs = [(by_model[(m, "w8 a8")], by_model[(m, "w4 a8")]) for m, label in by_model
             if label == "w4 a8" and (m, "w8 a8") in by_model]
    ratios = [int8["size_bytes"] / int4["size_bytes"] for int8, int4 in pairs if int8["params"] > 50_000]
    return {
        "bits_ptq_worse": "; ".join(f"{label}, {len(worse[label])} of "
                                    f"{counted(sum(r.label == label for r in rows), 'model')}" for label in labels)
                          or "no full-integer TFLite variant ran",
        "bits_first_resolvable": next((label for label in labels if worse[label]), "none of the bit widths run"),
        "qat_lossy": counted(len(lossy), "model"), "qat_won_back": len(won_back),
        "qat8_sentence": (
            f"at 8 bits, where PTQ loses little, qat_int8 is resolvably better against FP32 for "
            f"{qat8.count('better')} of {counted(len(qat8), 'model')}, "
            + ("so part of what QAT recovers at 4 bits comes from the extra epochs, not from the bit width"
               if "better" in qat8 else "so the data show no gain from the extra epochs alone at 8 bits, and the "
               "4-bit recovery is not explained by further training there")
            if qat8 else f"whether its gain at 4 bits comes from the extra epochs is what qat_int8 tells at 8 bits, "
            f"and {absent('qat_int8')}"),
        "int4_min_ratio": round(min(ratios), 2) if ratios else "n/a (no int8 and int4 pair over 50k parameters)",
        "int4_ram_growth": round(max(int4["peak_ram_bytes"] / int8["peak_ram_bytes"] for int8, int4 in pairs), 2)
                           if pairs else "n/a",
        "qat_epochs_counted": counted(qat_epochs, "epoch"),
    }


def report_figures(results: list[QuantizationResult], layout, widths: list[BitWidth]) -> dict[str, object]:
    """Chapter 3's figures, drawn once and written under ``reports/``: every variant against its FP32 twin
    (``quantization_comparison.png``), the latencies (``quantization_latency.png``) and accuracy against weight
    bits (``bit_widths.png``, from :func:`bit_widths`)."""
    records = [r.record for r in results if r.record is not None]
    return {"quantization_comparison": plots.save_figure(plots.plot_quantization_comparison(records),
                                                         layout.reports / "quantization_comparison.png"),
            "quantization_latency": plots.save_figure(plots.plot_latency_bars(records),
                                                      layout.reports / "quantization_latency.png"),
            "bit_widths": plots.save_figure(plots.plot_bit_widths(widths), layout.reports / "bit_widths.png")}


def state_recommendations(results: list[QuantizationResult], claims: Claims) -> pd.DataFrame:
    """:func:`recommendations`, with each recommended variant's speedup over its FP32 twin stated through
    ``claims`` from its paired latency test."""
    records = [r.record for r in results if r.record is not None]
    deploy = recommendations(results)
    for model, row in deploy.iterrows():
        if row["deploy"] != "fp32":
            r = next(r for r in records if r["model"] == model and r["variant"] == row["deploy"])
            lat = r["latency_comparison"]
            claims.state(f"{model} ({row['deploy']}) is faster than its FP32 twin: {r['speedup']:.2f}x, "
                         f"Wilcoxon p = {lat['p_value']:.3g}", lat["faster"] == "a", lat["p_value"], lat["test"])
    return deploy


def export_checks(results: list[QuantizationResult], baselines: list[BaselineResult]) -> pd.DataFrame:
    """Per baseline: how far its ONNX export is from PyTorch, and the operators static INT8 left in float."""
    static = [r.record for r in results if r.record is not None and r.record["method"] == "ort_static"]
    return pd.DataFrame([{
        "model": b.name, "ONNX vs PyTorch, max abs logit difference": b.record["onnx_max_abs_difference"],
        "operators left in float (static INT8)": ", ".join(
            f"{op} x{count}" for r in static if r["model"] == b.name
            for op, count in r["quantization"]["float_operators"].items()),
    } for b in baselines]).set_index("model")


def most_sensitive(results: list[QuantizationResult], baselines: list[BaselineResult]) -> tuple[str, str]:
    """The model the per-layer sensitivity analysis is of, and the sentence that says why: the one whose
    ``ort_static`` variant lost the most validation accuracy against its FP32 twin; without ``ort_static`` among
    the run's methods, the baseline picked by validation accuracy."""
    static = [r.record for r in results if r.record is not None and r.record["method"] == "ort_static"]
    if static:
        model = max(static, key=lambda r: r["fp32"]["val_accuracy"] - r["val_accuracy"])["model"]
        return model, f"The model whose static INT8 lost the most accuracy on the validation folds is {model}."
    model = max(baselines, key=lambda b: pick_key(b.record)).name
    return model, (f"Static INT8: {absent('ort_static')}, so no model's loss to it is known; the analysis is of "
                   f"the pick by validation accuracy, {model}.")


def sensitivity_of_most_sensitive(results: list[QuantizationResult], baselines: list[BaselineResult],
                                  data: PreparedData, settings: Settings) -> tuple[str, str, list[dict]]:
    """The most sensitive model and why it is the one (:func:`most_sensitive`), and its per-layer sensitivity rows
    (:func:`edge_audio.quantize.layer_sensitivity`) on its test fold, calibrated on its training folds."""
    name, why = most_sensitive(results, baselines)
    split = next(b for b in baselines if b.name == name).deployed_run.split
    x_train, _ = data.features.select(split.train_folds)
    x_test, y_test = data.features.select([split.test_fold])
    return name, why, layer_sensitivity(data.layout.models / f"{name}.onnx",
                                   calibration_set(x_train, settings.calibration_size, seed=settings.seed), x_test,
                                   y_test, len(data.dataset.class_names), settings.calibration_method,
                                   settings.latency_threads)


def check(results: list[QuantizationResult], baselines: list[BaselineResult], deploy: pd.DataFrame,
          deployable: dict, data: PreparedData) -> str:
    """Chapter 3's invariants (an InvariantError names the first that fails); returns a one-line summary."""
    records = [r.record for r in results if r.record is not None]
    for r in records:
        invariant(holds_artifact(r["artifact"], data.layout.root), f"{r['artifact']['path']} is not this run's variant")
        invariant(os.path.getsize(data.layout.root / r["artifact"]["path"]) == r["size_bytes"], r["artifact"])
        invariant(r["latency_ms"] > 0 and r["fp32"]["latency_ms"] > 0, "every variant and its twin were timed")
        # every variant was paired with its FP32 twin on the same clips, seed by seed, test and validation
        seeds = len(r["test"]["seeds"])
        invariant(r["test"]["seeds"] == r["fp32"]["test"]["seeds"] and r["test"]["n"] == r["fp32"]["test"]["n"],
                  "a variant and its twin are scored on the same clips and seeds")
        invariant(r["paired"]["test"]["n"] == seeds * r["test"]["n"]
                  and r["paired"]["val"]["n"] == seeds * r["val"]["n"],
                  "a variant is paired with its twin on every seed's clips")
        invariant(r["paired"]["test"]["changed"] <= r["paired"]["test"]["n"],
                  "no more predictions changed than there are clips")
        if r["int8_weights"] and r["int8_activations"] or r["full_integer_tflite"]:  # integer weights and activations
            invariant(r["size_bytes"] < r["fp32"]["size_bytes"],
                      f"{r['model']} ({r['method']}) is not smaller than FP32")
        if r["full_integer_tflite"]:  # it ran in TensorFlow Lite Micro, and the planner is within 5% of its arena
            invariant(r["flash_bytes"] == r["size_bytes"] and r["quantization"]["activations"] in ("int8", "int16"),
                      "a full-integer file is its own flash, with integer activations")
            invariant(abs(r["memory"]["tflm"]["planner_difference_percent"]) <= 5.0, (r["model"], r["memory"]["tflm"]))
    # a recommended variant is never resolvably less accurate than FP32 on the validation clips, and resolvably faster
    # than FP32 in its own runtime and in the fastest
    for model, row in deploy.iterrows():
        picked = [r for r in records if r["model"] == model and r["variant"] == row["deploy"]]
        invariant(all(qualifies(r) for r in picked),
                  "every recommended variant qualifies on validation and against the fastest FP32")
    # every failed (model, method) is named in the chapter's prose, under the table
    failures = failure_note(results)
    invariant(all(f"{r.model} with {r.method}" in failures for r in results if r.error), failures)
    # the FP32 ONNX files the variants were made from compute what PyTorch computes, and so does the raw-audio model
    invariant(all(b.record["onnx_max_abs_difference"] < 1e-4 for b in baselines),
              "every baseline's ONNX export computes what its PyTorch model computes")
    invariant(deployable["within_tolerance"] and deployable["predictions_agree"], deployable)
    # (model, method) pairs, not variants: how many methods a CPU can run (bf16) is the machine's, not the chapter's
    return f"all quantization invariants hold ({len(results)} (model, method) pairs)"
