"""Every parameter of the book, in one table: its default, its book value, what it means, which chapters take it.

This table is the one source of truth for settings:

* each chapter's ``parameters`` cell is generated from it (``python scripts/sync_parameters.py``; a test compares
  every cell with the table exactly);
* the book's *Configuration* page (``book/configuration.md``) is generated the same way and tested the same way;
* ``edge-audio run`` passes the book values (unless ``--quick``), checks every ``-p`` name against the table and
  hands each chapter exactly the parameters it declares;
* :class:`Settings` (what the chapters and :class:`~edge_audio.reference.NotebookPipeline` run with) and
  :class:`~edge_audio.reference.PipelineConfig` read their defaults from it.

A *default* is the chapter's own value: small, so a plain papermill call or nbval runs in seconds. A *book value*
is what ``edge-audio run`` passes instead, for book-quality numbers. An unknown name is an error that names the
closest known names; a value of the wrong type is an error that says what was expected.
"""
from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import ParameterError

ALL_CHAPTERS = ("01", "02", "03", "04", "05")
#: Chapters whose results depend on the training settings (chapter 5 reads the records they wrote).
RESULT_CHAPTERS = ("02", "03", "04", "05")
_SAME = object()


@dataclass(frozen=True)
class Parameter:
    """One parameter: its name, chapter default, book value, meaning, the chapters declaring it, and its check."""

    name: str
    default: Any
    meaning: str
    chapters: tuple[str, ...]
    group: str
    expects: str  # what a valid value is, for error messages
    check: Callable[[Any], bool] = field(repr=False)
    book: Any = _SAME
    convert: Callable[[Any], Any] = field(default=lambda value: value, repr=False)

    @property
    def book_value(self) -> Any:
        """What ``edge-audio run`` passes (the default when the book does not override it)."""
        return copy.deepcopy(self.default if self.book is _SAME else self.book)

    @property
    def book_overrides(self) -> bool:
        return self.book is not _SAME

    def validate(self, value: Any) -> Any:
        """``value`` converted to this parameter's type, or a :class:`ParameterError` saying what was expected."""
        if not self.check(value):
            raise ParameterError(f"parameter {self.name} = {value!r}: expected {self.expects}")
        return self.convert(copy.deepcopy(value))


def _is_int(value: Any, minimum: int | None = None, maximum: int | None = None) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum))


def _is_number(value: Any, low: float | None = None, high: float | None = None, open_low: bool = False) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if low is not None and (value <= low if open_low else value < low):
        return False
    return high is None or value <= high


def _optional_text(value: Any) -> bool:
    return value is None or (isinstance(value, (str, os.PathLike)) and str(value) != "")


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _int_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(_is_int(v, 1) for v in value)


def _int_list0(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(_is_int(v, 0) for v in value)


def _model_configs(value: Any) -> bool:
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(v, str) or (isinstance(v, dict) and "name" in v) for v in value))


def _text_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(_text(v) for v in value)


#: The selections of the method registry (edge_audio/quantize) the ``methods`` parameter accepts besides a list.
METHOD_SELECTIONS = ("default", "book", "all")


def _methods(value: Any) -> bool:
    return value in METHOD_SELECTIONS or _text_list(value)


def _optional_mapping(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def _seed_list(value: Any) -> bool:
    return value is None or (_int_list0(value) and len(value) > 0 and len(set(value)) == len(value))


def _as_path(value: Any) -> Any:
    return None if value is None else os.fspath(value)


def _data(name, default, meaning, expects, check, book=_SAME, convert=lambda v: v):
    return Parameter(name, default, meaning, ALL_CHAPTERS, "data and features", expects, check, book, convert)


def _training(name, default, meaning, expects, check, chapters=RESULT_CHAPTERS, book=_SAME, convert=lambda v: v):
    return Parameter(name, default, meaning, chapters, "models and training", expects, check, book, convert)


_PARAMETERS = (
    # data and features: every chapter prepares the same data, so every chapter declares them
    _data("dataset_path", None, "None: the embedded synthetic UrbanSound8K; else an UrbanSound8K or ESC-50 folder, "
          "or a CSV (file, fold, label)", "None or a path", _optional_text, convert=_as_path),
    _data("output_dir", None, "None: $EDGE_AUDIO_OUTPUT_DIR, else output/ under the project root",
          "None or a path", _optional_text, convert=_as_path),
    _data("seed", 0, "seeds the synthetic dataset, training, calibration draws and both searches",
          "an integer >= 0", lambda v: _is_int(v, 0)),
    _data("synth_generator", 1, "the synthetic dataset's generator: 2, the benchmark, classes made of combinations "
          "of sound layers (accuracy grows with model capacity); 1, one synthesizer per class (capacity hardly "
          "matters, so the chapters' few clips and epochs learn it)", "1 or 2", lambda v: _is_int(v, 1, 2), book=2),
    _data("synth_clips_per_class_per_fold", 3, "size of the synthetic dataset: K clips per class in each of its "
          "10 folds", "an integer in [1, 1000]", lambda v: _is_int(v, 1, 1000), book=20),
    _data("synth_eval_clips_per_class_per_fold", None, "clips per class in folds 9 and 10 of the synthetic dataset "
          "(holdout's validation and test folds); None: as many as the others. Cheap to evaluate, and what resolves "
          "small differences", "None or an integer in [1, 1000]", lambda v: v is None or _is_int(v, 1, 1000),
          book=60),
    _data("sample_rate", 16000, "Hz; every clip is resampled to this", "an integer in [1000, 192000]",
          lambda v: _is_int(v, 1000, 192_000)),
    _data("duration", 4.0, "seconds; every clip is cropped or zero-padded to this", "a number in (0, 60]",
          lambda v: _is_number(v, 0, 60, open_low=True), convert=float),
    _data("n_mels", 40, "mel bands of the log-mel front end", "an integer in [1, 512] (and <= n_fft / 2 + 1)",
          lambda v: _is_int(v, 1, 512)),
    _data("n_fft", 1024, "STFT window (samples)", "an integer in [8, 65536]", lambda v: _is_int(v, 8, 65536)),
    _data("hop_length", 512, "STFT hop (samples)", "an integer >= 1 (and <= n_fft)", lambda v: _is_int(v, 1)),
    _data("max_bad_fraction", 0.05, "stop when more than this fraction of the files is unusable",
          "a number in [0, 1]", lambda v: _is_number(v, 0.0, 1.0), convert=float),
    _data("silence_threshold", 1e-4, "a clip whose peak amplitude is below this is excluded as silent",
          "a number >= 0", lambda v: _is_number(v, 0.0), convert=float),
    # models and training: chapter 5 declares them too, because they say which results belong to this run
    _training("model_configs", ["tiny", "small"], "baselines: preset names (nano, micro, tiny, small, medium, "
              "ds_cnn) "
              "or specs like {name: custom, channels: [16, 32], fc_size: 64}",
              "a non-empty list of preset names or specs with a name", _model_configs, chapters=("02", "03", "04"),
              book=["nano", "micro", "tiny", "small", "ds_cnn"], convert=list),
    _training("distill_students", 0, "baselines retrained by knowledge distillation (as <name>_kd), each paired "
              "with itself trained from labels alone: N, the N smallest by parameters (0: none); or a list of names",
              "an integer in [0, 100] or a list of distinct names of model_configs",
              lambda v: _is_int(v, 0, 100) or (isinstance(v, list) and all(isinstance(s, str) for s in v)
                                               and len(set(v)) == len(v)),
              chapters=("02", "03"), book=2),
    _training("distill_teacher", "ensemble", "the students' teacher: best (the baseline picked by validation accuracy) "
              "or ensemble (the mean logits of the three best)", "'best' or 'ensemble'",
              lambda v: v in ("best", "ensemble"), chapters=("02", "03", "04")),
    _training("distill_temperature", 2.0, "distillation temperature: both softmaxes are taken of logits / T",
              "a number in (0, 100]", lambda v: _is_number(v, 0, 100, open_low=True), chapters=("02", "03", "04"),
              convert=float),
    _training("distill_weight", 0.9, "weight of the teacher's soft targets in a student's loss (the labels' is "
              "1 - this)", "a number in [0, 1]", lambda v: _is_number(v, 0.0, 1.0), chapters=("02", "03", "04"),
              convert=float),
    _training("seeds", None, "training seeds, the replications of every trained model: a list (the book: [0, 1, 2]) "
              "trains and quantizes each model once per seed (accuracies are means over seeds, model-vs-model "
              "verdicts hold the seeds' spread; the first seed's models are deployed); None trains once, with seed, "
              "and then no model-vs-model verdict resolves (training variance not measured)",
              "None or a non-empty list of distinct integers >= 0", _seed_list, book=[0, 1, 2]),
    _training("epochs", 3, "training epochs of the baselines and of the NAS finalists", "an integer in [1, 10000]",
              lambda v: _is_int(v, 1, 10_000), book=6),
    _training("batch_size", 32, "training batch size", "an integer in [1, 8192]", lambda v: _is_int(v, 1, 8192)),
    _training("learning_rate", 0.003, "peak learning rate (one-cycle schedule, AdamW)", "a number > 0",
              lambda v: _is_number(v, 0, open_low=True), convert=float),
    _training("protocol", "holdout", "holdout (train / validation fold / test fold: the last two folds) or kfold "
              "(the dataset's official cross-validation)", "'holdout' or 'kfold'", lambda v: v in ("holdout", "kfold")),
    _training("device", "auto", "auto: CUDA when present, else CPU; or a torch device string", "a device string",
              _text, chapters=("02", "03", "04")),
    _training("accuracy_margin", 1.0, "points of accuracy that count as no loss: two models are called equal only "
              "when the 95% interval of their paired difference lies within ± this, and a variant is deployed only "
              "when shown no worse than FP32 by more than it", "a number in [0, 50]",
              lambda v: _is_number(v, 0.0, 50.0), convert=float),
    _training("latency_threads", 1, "threads for every latency measurement (1 is the edge-like figure)",
              "an integer in [1, 256]", lambda v: _is_int(v, 1, 256)),
    _training("latency_runs", 50, "timed runs per latency measurement, after warm-up (the median is reported)",
              "an integer in [1, 100000]", lambda v: _is_int(v, 1, 100_000), chapters=("02", "03", "04"), book=100),
    _training("storage", None, "Optuna storage of chapter 4's search, shared by workers that search together "
              "(postgresql://..., journal:///path); None: the search in SQLite logs/nas_study.db",
              "None or a storage URL", _optional_text, chapters=("04",)),
    _training("executor", "local", "where training runs, the supernet's training and compression jobs run: local "
              "(in the chapter's process) or ray (as tasks on a Ray cluster, ray_address; the records are the same)",
              "'local' or 'ray'", lambda v: v in ("local", "ray"), chapters=("02", "03", "04")),
    _training("ray_address", None, "with executor ray: the head node's host:port (None: a Ray instance started on "
              "this machine for each chapter)", "None or host:port", _optional_text, chapters=("02", "03", "04")),
    _training("job_threads", None, "threads each training run, supernet training and compression job computes with "
              "(and CPUs it asks a Ray cluster for); None: this machine's cores, as torch chooses. Part of every "
              "training key: results differ bit-wise with the thread count", "None or an integer in [1, 256]",
              lambda v: v is None or _is_int(v, 1, 256), chapters=("02", "03", "04")),
    # quantization
    # the registry marks which methods each selection holds (Method.default: one of each kind; Method.book); every
    # method alone runs the chapter in the test suite (tests/test_chapters_here.py)
    Parameter("methods", "default",
              "compression methods (see chapter 3): a list of method names, or a selection of the method registry: "
              "default (one method of each kind), book (the book's run) or all (every method; the Reference lists "
              "them with their traits)",
              ("03",), "quantization", "a non-empty list of method names, or default, book or all", _methods,
              convert=lambda v: v if isinstance(v, str) else list(v), book="book"),
    Parameter("mixed_weight_fraction", 0.75, "tflite_mixed's flash budget: the share of the 8-bit weights' bytes its "
              "weights may keep (0.5: every layer at 4 bits; 1: every layer at 8); the layers least sensitive on the "
              "calibration clips go to 4 bits first", ("03",), "quantization", "a number in [0.5, 1]",
              lambda v: _is_number(v, 0.5, 1.0), convert=float),
    Parameter("qat_epochs", 2, "epochs of quantization-aware fine-tuning (qat_int8, qat_int4) on the training folds; "
              "the last epoch is kept (no validation clip chooses)", ("03",), "quantization",
              "an integer in [1, 1000]", lambda v: _is_int(v, 1, 1000)),
    Parameter("qat_learning_rate", 0.0003, "learning rate of quantization-aware fine-tuning (Adam, cosine decay)",
              ("03",), "quantization", "a number in (0, 1]", lambda v: _is_number(v, 0, 1, open_low=True),
              convert=float),
    Parameter("calibration_size", 100, "clips drawn from the training folds to calibrate static INT8", ("03", "04"),
              "quantization", "an integer in [1, 100000]", lambda v: _is_int(v, 1, 100_000)),
    Parameter("calibration_method", "minmax", "static INT8 calibration: minmax, entropy or percentile", ("03", "04"),
              "quantization", "a calibration method name", _text),
    Parameter("emulated_boards", [], "emulated boards every full-integer variant runs on as generated C "
              "(chapter 3, On an emulated board; its instructions give the Cortex-M profiles' latency in chapter 5): "
              "cortex_m4, cortex_m7, cortex_m55; empty: none (the profiles then estimate from MACs)", ("03", "04"),
              "quantization", "a list of board names, each once", lambda v: isinstance(v, list) and all(
                  isinstance(n, str) for n in v) and len(set(v)) == len(v),
              book=["cortex_m4", "cortex_m7", "cortex_m55"], convert=list),
    # budgets
    Parameter("max_size_mb", 2.0, "size budget, MB (10^6 bytes): a candidate's full-integer TFLite model in the "
              "search (what is deployed); the deployed artifact in the frontier", ("04", "05"), "budgets",
              "a number > 0",
              lambda v: _is_number(v, 0, open_low=True), convert=float),
    Parameter("max_latency_ms", 50.0, "latency budget, ms, batch 1 (ONNX Runtime in the search; the record's "
              "runtime in the frontier)", ("04", "05"), "budgets", "a number > 0",
              lambda v: _is_number(v, 0, open_low=True), convert=float),
    Parameter("max_ram_kb", None, "peak-RAM budget, kB (10^3 bytes), or None: no limit. In the search, a candidate's "
              "activations deployed in INT8 (estimated from its graph before training: over it, never trained); in the "
              "frontier, the deployed variant's own peak RAM", ("04", "05"), "budgets", "None or a number > 0",
              lambda v: v is None or _is_number(v, 0, open_low=True), convert=lambda v: v if v is None else float(v)),
    Parameter("max_flash_kb", None, "flash budget, kB (10^3 bytes), or None: no limit. In the search, a candidate's "
              "full-integer TFLite model (its bytes, measured before training: over it, never trained); in the "
              "frontier, the deployed variant's file", ("04", "05"), "budgets", "None or a number > 0",
              lambda v: v is None or _is_number(v, 0, open_low=True), convert=lambda v: v if v is None else float(v)),
    Parameter("target_device", None, "None, or the name of a deployment profile (built in: cortex_m4_small, "
              "cortex_m4, cortex_m7, ethos_u55_128, ethos_u55_256, ethos_u65_256, smart_speaker, gateway, "
              "dcase_low_complexity; or one of `profiles`): its RAM, flash, size and latency limits tighten the "
              "budgets of the search and of the frontier (an Ethos-U profile's as Vela compiles each candidate)", ("04", "05"), "budgets",
              "None or a profile name", _optional_text),
    Parameter("min_accuracy", 20.0, "accuracy budget, %: the proxy's validation accuracy in the search; "
              "validation accuracy in the frontier", ("04", "05"), "budgets", "a percentage in [0, 100]",
              lambda v: _is_number(v, 0.0, 100.0), book=30.0, convert=float),
    # the search
    Parameter("nas_population", 4, "NSGA-II population size", ("04",), "architecture search", "an integer in [2, 1000]",
              lambda v: _is_int(v, 2, 1000)),
    Parameter("search_seeds", None, "None: each search runs once, with seed; a list (e.g. [0, 1, 2]): NSGA-II and "
              "the random control run once per seed, compared over seeds", ("04",), "architecture search",
              "None or a non-empty list of distinct integers >= 0", _seed_list, book=[0, 1, 2]),
    Parameter("nas_generations", 2, "NSGA-II generations (trials per search: population x generations)", ("04",),
              "architecture search", "an integer in [1, 1000]", lambda v: _is_int(v, 1, 1000)),
    Parameter("nas_mixed_machines", False, "let workers on different CPUs share one search study (their candidate "
              "latencies then mix in one objective); False: a study refuses a worker on another CPU than its first",
              ("04",), "architecture search", "true or false", lambda v: isinstance(v, bool)),
    Parameter("proxy_epochs", 3, "epochs of a candidate's proxy training", ("04",), "architecture search",
              "an integer in [1, 10000]", lambda v: _is_int(v, 1, 10_000), book=4),
    Parameter("proxy_train_folds", 2, "None: the proxy trains on all training folds; N: on the first N", ("04",),
              "architecture search", "None or an integer >= 1", lambda v: v is None or _is_int(v, 1)),
    Parameter("nas_n_mels", [], "mel-band counts to search too (e.g. [40, 64]); empty: n_mels, not searched",
              ("04",), "architecture search", "a list of integers", _int_list, convert=list),
    Parameter("nas_weight_bits", [8, 4], "bit widths of a candidate's deployed weights: [8] (not searched), or [8, 4] "
              "(a gene: at 4 its full-integer TFLite model stores packed int4 weights, counted in its size, flash "
              "and RAM, and its search score is taken with its weights on the 4-bit grid); an Ethos-U target_device "
              "searches 8 only (Vela does not compile 4-bit weights)", ("04",),
              "architecture search", "a list of distinct values of 8 and 4",
              lambda v: isinstance(v, list) and bool(v) and all(b in (8, 4) and not isinstance(b, bool) for b in v)
              and len(set(v)) == len(v), convert=list),
    Parameter("nas_distill", False, "the search's proxy runs learn from the teacher (distill_teacher) as well as "
              "the labels, and every finalist is trained twice, by distillation (nas_<k>_kd) and from labels "
              "alone, the two paired on the same test clips", ("04",), "architecture search", "true or false",
              lambda v: isinstance(v, bool), book=True),
    Parameter("supernet_epochs", 2, "epochs of the weight-sharing supernet's training (sandwich rule, in-place "
              "distillation) on the proxy split; it is trained once per run, and the supernet search scores its "
              "sub-networks with inherited weights", ("04",), "architecture search", "an integer in [1, 10000]",
              lambda v: _is_int(v, 1, 10_000), book=10),
    Parameter("supernet_evaluations", 40, "sub-networks each supernet search evaluates (NSGA-II in 20 generations, "
              "and the random control as many), per search seed", ("04",), "architecture search",
              "an integer in [40, 1000000] (NSGA-II needs a population of 2)", lambda v: _is_int(v, 40, 1_000_000),
              book=1000),
    Parameter("supernet_fidelity_subnets", 5, "sub-networks, spread over the space by parameters, trained alone "
              "(as the proxy search trains) to measure how well supernet scores rank them (Kendall's tau)",
              ("04",), "architecture search", "an integer in [5, 100]", lambda v: _is_int(v, 5, 100), book=10),
    Parameter("nas_profiles", [], "deployment profiles that each get a finalist of the supernet search (the "
              "cheapest sub-network the proxy fold cannot tell from the best that meets them, measured); empty: one "
              "finalist, for the run's budgets",
              ("04",), "architecture search", "a list of profile names", lambda v: isinstance(v, list) and all(
                  isinstance(n, str) for n in v) and len(set(v)) == len(v), book=["cortex_m4_small", "cortex_m4",
                                                                                 "cortex_m7"], convert=list),
    Parameter("top_k", 1, "finalists of the proxy search retrained with the baseline protocol from NSGA-II's "
              "feasible front; 0: none (the proxy search is then the supernet search's comparison only, and no "
              "models/nas_best_model.* is published)", ("04",), "architecture search", "an integer in [0, 100]",
              lambda v: _is_int(v, 0, 100), book=0),
    # the frontier
    Parameter("profiles", None, "None: the built-in deployment profiles; or {name: {max_size_bytes, "
              "max_latency_ms, max_int8_param_bytes, max_mmacs_per_second, max_ram_bytes, max_flash_bytes, "
              "max_device_latency_ms, clock_hz, cycles_per_mac, npu, int8_activations, full_integer_tflite}}; npu names an "
              "Ethos-U target (ethos_u55_128, ethos_u55_256, ethos_u65_256) whose Vela numbers the profile checks", ("04", "05"),
              "the frontier",
              "None or a mapping of profile name to limits", _optional_mapping),
)
PARAMETERS: dict[str, Parameter] = {p.name: p for p in _PARAMETERS}


def default(name: str) -> Any:
    """A parameter's chapter default (dataclasses whose fields are parameters take their defaults from here)."""
    return copy.deepcopy(PARAMETERS[name].default)


def check_names(names) -> None:
    """Raise :class:`ParameterError` for any name the table does not know, naming the closest known names."""
    unknown = [name for name in names if name not in PARAMETERS]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(str(name), PARAMETERS, n=3, cutoff=0.6)
        hints.append(f"{name!r} (did you mean {' or '.join(close)}?)" if close else repr(name))
    raise ParameterError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; every parameter "
                         "is listed in book/configuration.md")


def chapter_parameters(chapter: str) -> list[Parameter]:
    """The parameters chapter ``chapter`` (e.g. ``"02"``) declares, in table order."""
    return [p for p in _PARAMETERS if chapter in p.chapters]


def book_values() -> dict[str, Any]:
    """Every parameter's book value (what ``edge-audio run`` passes without ``--quick``)."""
    return {name: p.book_value for name, p in PARAMETERS.items()}


# ---------------------------------------------------------------------------------------------------------------
# What the chapters and the configuration page show, generated from the table
# ---------------------------------------------------------------------------------------------------------------

PARAMETERS_CELL_HEADER = (
    "# Parameters (generated from edge_audio/parameters.py: edit the table there, then run\n"
    "# scripts/sync_parameters.py). papermill overrides them; `edge-audio run` passes book-quality values.")


def parameters_cell(chapter: str) -> str:
    """The source of chapter ``chapter``'s ``parameters`` cell."""
    lines = [PARAMETERS_CELL_HEADER]
    group = None
    for p in chapter_parameters(chapter):
        if p.group != group:
            group = p.group
            lines.append(f"# -- {group}")
        lines.append(f"{p.name} = {p.default!r}  # {p.meaning}")
    return "\n".join(lines)


def configuration_table() -> str:
    """The Markdown table of every parameter (the body of ``book/configuration.md``)."""
    rows = ["| parameter | chapters | chapter default | `edge-audio run` | meaning |",
            "| --- | --- | --- | --- | --- |"]
    for p in _PARAMETERS:
        book = f"`{p.book!r}`" if p.book_overrides else ""
        rows.append(f"| `{p.name}` | {', '.join(p.chapters)} | `{p.default!r}` | {book} | {p.meaning} |")
    return "\n".join(rows)
