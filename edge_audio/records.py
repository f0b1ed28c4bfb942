"""The results record: what one evaluated model variant is, as a declared type.

Every line of ``logs/all_results.json`` is one of three kinds, each a :class:`~typing.TypedDict` whose fields are
named and typed here, and nowhere else:

* :class:`TrainedRecord`: a trained FP32 model (a baseline, or a NAS finalist retrained with the baseline
  protocol), variant ``"fp32"``;
* :class:`VariantRecord`: a compressed variant of a trained model (variant = its method), paired with the
  model's FP32 twin on the same clips (``fp32``, ``paired``);
* :class:`CandidateRecord`: a NAS candidate scored by the search's short proxy training, variant ``"proxy"``.

A record is built by :func:`make_record` (or extended by :func:`with_fields`) and only there: it refuses a
field its kind does not declare, a missing required field and a value of the wrong type, so a typo in a step
fails at once instead of writing a record the frontier would silently misread. :func:`check_record` is the same check on a record read back from
the log (:func:`edge_audio.results.load_results` runs it on every record).

A published file is described by an :class:`Artifact`: the file under ``models/`` (``path``, relative to the
output folder), the SHA-256 of its bytes, and the keyed cache file it was copied from (``source``).
:func:`publish_artifact` makes one.
"""
import functools
import os
import types
import typing
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from .errors import UserError
from .storage import file_sha256, publish


class ResultsLogError(UserError, ValueError):
    """A results log whose records do not have the declared shape (written by another version, or damaged)."""


class Artifact(TypedDict):
    """A published file: ``path`` under the output folder, the SHA-256 of its bytes, and the keyed cache file it
    was published from (which always holds this record's bytes, while ``path`` holds the latest run's)."""
    path: str
    sha256: str
    source: str


class Evaluation(TypedDict):
    """An accuracy with its evidence (:func:`edge_audio.stats.pooled`): clips, correct, accuracy (%), its 95%
    interval (and how it was made), the labels and predictions, the folds they came from (one per protocol split,
    in split order) with their clip counts, and the folds' accuracies with their mean and standard deviation."""
    n: int
    correct: int
    accuracy: float
    ci95: list[float]
    interval: str
    labels: list[int]
    predictions: list[int]
    folds: list[int]
    fold_sizes: list[int]
    fold_accuracies: list[float]
    fold_mean: float
    fold_std: float | None


class SeededEvaluation(TypedDict):
    """A trained model's accuracy over its training seeds (:func:`edge_audio.stats.over_seeds`): the mean over
    seeds, its 95% interval holding both which clips and how training fell, the seeds and their accuracies, the
    folds' accuracies averaged over seeds, and each seed's :class:`Evaluation` (``by_seed``, in ``seeds`` order)."""
    n: int
    correct: int
    accuracy: float
    ci95: list[float]
    interval: str
    seeds: list[int]
    seed_accuracies: list[float]
    seed_std: float | None
    fold_accuracies: list[float]
    fold_std: float | None
    by_seed: list[Evaluation]


class Timing(TypedDict):
    """Batch-1 latency of one runtime (:func:`edge_audio.profile.measure_latency`)."""
    mean_ms: float
    median_ms: float
    min_ms: float
    p90_ms: float
    runs: int
    warmup: int
    threads: int
    runtime: str


class Twin(TypedDict):
    """A variant's FP32 twin, evaluated and timed in the variant's own runtime on the same clips."""
    accuracy: float
    test: SeededEvaluation
    val_accuracy: float
    size_bytes: int
    latency_ms: float
    latency: Timing


class NasInfo(TypedDict):
    """Where a NAS record came from: its search's sampler, trial and seed, and the bit width of its deployed
    weights (and, for a finalist, its search score and rank)."""
    sampler: str
    trial: int
    seed: int
    weight_bits: int
    proxy_accuracy: NotRequired[float]
    rank: NotRequired[int]


class DistillationInfo(TypedDict):
    """How a distilled model was taught (:class:`edge_audio.steps.baselines.Teacher`): the model it repeats
    (a baseline, or a search finalist), its teachers (``teacher_kind``: ``best`` or ``ensemble``), the temperature and the soft targets'
    weight."""
    student_of: str
    teachers: list[str]
    teacher_kind: str
    temperature: float
    weight: float


class NPUReport(TypedDict):
    """What Vela reported for one Ethos-U target (:func:`edge_audio.npu.npu_report`): an estimate of its
    performance model at the stated clock, and the compiled model's memory; or why it did not compile."""
    target: str
    error: NotRequired[str]
    accelerator: NotRequired[str]
    system_config: NotRequired[str]
    memory_mode: NotRequired[str]
    description: NotRequired[str]
    vela: NotRequired[str]
    clock_hz: NotRequired[float]
    cycles: NotRequired[int]
    latency_ms: NotRequired[float]
    npu_operators: NotRequired[int]
    cpu_operators: NotRequired[int]
    sram_bytes: NotRequired[int]
    arena_bytes: NotRequired[int]  # what a firmware allocates: Vela's SRAM and TFLite Micro's persistent section
    flash_bytes: NotRequired[int]
    macs: NotRequired[int]
    compiled_bytes: NotRequired[int]


class Placement(TypedDict):
    """Where the frontier step placed a record: the budgets, whether it meets them, on which Pareto fronts it lies,
    its throughput, the device profiles it fits, and the test folds its accuracy there was measured on (under
    k-fold the deployed split's alone: :func:`edge_audio.results.as_chosen`; none for a search candidate)."""
    budgets: dict[str, Any]
    meets_budgets: bool
    pareto: dict[str, bool]
    mmacs_per_second: float
    profiles: list[str]
    test_folds: list[int]


class Record(TypedDict):
    """What every record has: the model, how it was evaluated and its costs."""
    model: str
    variant: str
    precision: str
    runtime: str  # the runtime its headline latency (``latency_ms``) was measured in
    int8_weights: bool
    accuracy: float  # test accuracy (%): all test clips pooled, mean over seeds; a candidate's is its proxy score
    macro_f1: float
    latency_ms: float
    latency: dict[str, Timing]  # by runtime
    architecture: dict[str, Any]
    dataset: dict[str, Any]
    context: dict[str, Any]  # :func:`edge_audio.results.run_context`
    protocol: str
    protocol_kind: str
    size_bytes: int
    params: int
    macs: int
    flops: int
    threads: int
    seed: int
    features: dict[str, Any]
    train: dict[str, Any]
    source: NotRequired[str]  # "nas_candidate", "nas_finalist", "supernet_finalist" or "distilled"; absent: baseline
    nas: NotRequired[NasInfo]
    supernet: NotRequired[dict[str, Any]]  # a supernet finalist's sub-network and supernet score
    distillation: NotRequired[DistillationInfo]
    frontier: NotRequired[Placement]  # added by the frontier step


class EvaluatedRecord(Record):
    """A model evaluated with the run's protocol: test and validation folds, per-class results, device memory and
    its published file."""
    test: SeededEvaluation
    val: SeededEvaluation
    val_accuracy: float
    accuracy_std: float | None
    test_folds: list[int]
    per_class_accuracy: list[float]
    confusion: list[list[int]]
    class_names: list[str]
    int8_activations: bool
    full_integer_tflite: bool
    flash_bytes: int
    peak_ram_bytes: int
    memory: dict[str, Any]  # :func:`edge_audio.memory.device_memory`
    flop_counter_flops: int
    machine: dict[str, Any]
    artifact: Artifact


class TrainedRecord(EvaluatedRecord):
    """A trained FP32 model: its training runs, seeds, ONNX export and profile."""
    onnx_artifact: Artifact
    onnx_size_bytes: int
    onnx_max_abs_difference: float
    best_epoch: int
    epochs_run: int
    train_seconds: float
    device: str
    flop_floor_ms: float
    flop_gap_percent: float
    latency_floor_ratio: dict[str, Any]
    profile_source: str
    run_keys: list[str]


class VariantRecord(EvaluatedRecord):
    """A compressed variant, paired with its FP32 twin on the same clips."""
    method: str
    reduce_range: bool
    weight_bits: int  # bits of the narrowest stored weight: 8, or 4 (int4 TFLite, all or some layers); 32: FP32 kept
    trains: bool  # its method trains the weights again (QAT): a training of its own, not its FP32 model's
    fp32: Twin
    paired: dict[str, dict[str, Any]]  # "test" and "val": :func:`edge_audio.stats.paired_difference`
    latency_comparison: dict[str, Any]  # :func:`edge_audio.stats.latency_comparison`
    accuracy_drop: float
    size_ratio: float
    speedup: float
    quantization: dict[str, Any]  # the settings the method used
    npu: NotRequired[dict[str, NPUReport]]  # a full-integer TFLite variant: Vela's report per Ethos-U target
    # a full-integer TFLite variant as generated C on each emulated board (edge_audio.steps.quantization.
    # emulated_costs): instructions per inference, bit-exact with TFLite Micro, the network's flash and RAM
    emulated: NotRequired[dict[str, dict[str, Any]]]
    # a deployment candidate (no worse on validation, faster than its twin): timed interleaved with FP32 in the
    # fastest FP32 runtime, :func:`edge_audio.stats.latency_comparison` with ``runtime`` and ``fp32_latency_ms``
    against_fastest_fp32: NotRequired[dict[str, Any]]


class CandidateRecord(Record):
    """A NAS candidate, scored by proxy training on a training fold (``accuracy_kind`` = "proxy")."""
    accuracy_kind: str


def record_type(record: dict) -> type:
    """The declared kind of a record, by its variant."""
    return {"fp32": TrainedRecord, "proxy": CandidateRecord}.get(record.get("variant"), VariantRecord)


def make_record(kind: type, **fields: Any) -> dict:
    """A record of ``kind`` (:class:`TrainedRecord`, :class:`VariantRecord` or :class:`CandidateRecord`) from its
    fields, checked against the declaration; a wrong field is a bug in the step that built it (TypeError)."""
    if record_type(fields) is not kind:
        raise TypeError(f"a {kind.__name__} cannot have variant {fields.get('variant')!r}")
    problem = _mismatch(kind, fields, kind.__name__)
    if problem:
        raise TypeError(problem)
    return fields


def with_fields(record: dict, **changes: Any) -> dict:
    """A copy of ``record`` with ``changes``, checked like :func:`make_record` (a step adding its part)."""
    return make_record(record_type(record), **{**record, **changes})


def check_record(record: Any, where: str) -> None:
    """Refuse a record read back from a log that does not have its kind's declared shape."""
    problem = _mismatch(record_type(record), record, "record") if isinstance(record, dict) else "not an object"
    if problem:
        raise ResultsLogError(f"{where}: {problem}; it was written by another version of edge-audio or damaged: "
                              f"remove the file and run again (the cached steps recompute it quickly)")


def publish_artifact(source: Path, published: Path, root: Path) -> Artifact:
    """Copy ``source`` (a keyed cache file) to ``published`` atomically and describe it."""
    return Artifact(path=os.path.relpath(published, root), sha256=publish(source, published),
                    source=os.path.relpath(source, root))


def holds_artifact(artifact: Artifact, root: Path, where: str = "path") -> bool:
    """Whether the artifact's published file (``where="path"``), or the cache file it came from (``"source"``), is
    there and holds the bytes the record names (and not another run's)."""
    path = Path(root) / artifact[where]
    return path.is_file() and file_sha256(path) == artifact["sha256"]


def sources_hold(record: dict, root: Path) -> bool:
    """Whether the cache entries a record was made from still hold what it names: each artifact's source file
    has the record's SHA-256, and its profile's entry is there. A record whose entry was discarded (damaged,
    removed) or recomputed to other bytes no longer holds."""
    artifacts = [record[name] for name in ("artifact", "onnx_artifact") if name in record]
    if not all(holds_artifact(artifact, root, "source") for artifact in artifacts):
        return False
    return "profile_source" not in record or (Path(root) / record["profile_source"]).is_dir()


@functools.cache
def _hints(declared: type) -> dict[str, Any]:
    return typing.get_type_hints(declared)


def _mismatch(declared: Any, value: Any, name: str) -> str | None:
    """Why ``value`` does not match the declared type, or None."""
    origin = typing.get_origin(declared)
    if declared is Any:
        return None
    if typing.is_typeddict(declared):
        if not isinstance(value, dict):
            return f"{name} should be an object, got {type(value).__name__}"
        hints = _hints(declared)
        unknown = sorted(set(value) - set(hints))
        missing = sorted(declared.__required_keys__ - set(value))
        if unknown or missing:
            label = f"{name} ({value.get('model')} / {value.get('variant')})" if "variant" in value else name
            return (f"{label} " + "; ".join(part for part in (
                f"has undeclared fields {unknown}" if unknown else "",
                f"lacks {missing}" if missing else "") if part))
        for key, item in value.items():
            problem = _mismatch(hints[key], item, f"{name}.{key}")
            if problem:
                return problem
        return None
    if origin in (types.UnionType, typing.Union):
        problems = [_mismatch(option, value, name) for option in typing.get_args(declared)]
        return None if None in problems else problems[-1]
    if declared is type(None):
        return None if value is None else f"{name} should be null, got {type(value).__name__}"
    if origin is list:
        if not isinstance(value, list):
            return f"{name} should be a list, got {type(value).__name__}"
        [item_type] = typing.get_args(declared)
        if item_type in (int, str) and all(type(item) is item_type for item in value):  # labels, predictions
            return None
        return next((p for i, item in enumerate(value) if (p := _mismatch(item_type, item, f"{name}[{i}]"))), None)
    if origin is dict:
        if not isinstance(value, dict):
            return f"{name} should be an object, got {type(value).__name__}"
        _, item_type = typing.get_args(declared)
        return next((p for key, item in value.items() if (p := _mismatch(item_type, item, f"{name}.{key}"))), None)
    accepted = (int, float) if declared is float else declared
    if not isinstance(value, accepted) or (declared in (int, float) and isinstance(value, bool)):
        return f"{name} should be {declared.__name__}, got {type(value).__name__} {value!r:.40}"
    return None
