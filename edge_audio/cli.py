"""``edge-audio``: the command line.

    edge-audio data synth OUT_DIR [--seed N] [--generator 1|2] [--clips-per-class-per-fold K]
    edge-audio data check PATH [--max-bad-fraction F] [--index INDEX.json]
    edge-audio data download urbansound8k|esc50 DIR [--mirror URL] [--keep-archive]
    edge-audio run [--mode full|baseline|quantization|nas|reports] [--dataset-path PATH] [--output-dir DIR]
                   [--epochs N] [--batch-size N] [--nas-generations N] [--nas-population N] [--storage URL]
                   [--executor local|ray] [--address HOST:PORT]
                   [-p NAME VALUE ...] [-f params.yaml] [--no-build] [--quick]
    edge-audio bench [--runs N] [--out FILE.json]
    edge-audio classify MODEL AUDIO... [--top K] [--stream] [--hop SECONDS]
    edge-audio export MODEL --target PROFILE OUT_DIR

A user error (a wrong path, an unknown or invalid parameter, a dataset without a required column; any
:class:`~edge_audio.errors.UserError`, also when a chapter raises it) prints one line, ``edge-audio: error: ...``,
and exits with status 2: no traceback. A failed download (:class:`~edge_audio.errors.DownloadError`) prints one
line too and exits with status 1. Anything else is a bug or a failure of the environment: its traceback is
printed and the exit status is 1.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .book import MODES
from .download import SOURCES
from .errors import DownloadError, ParameterError, UserError
from .parameters import PARAMETERS
from .processes import Stopped, end_children, stopping_on_signals

EXIT_USAGE = 2
EXIT_FAILED = 1


def _parse_value(text: str) -> Any:
    """A ``-p`` value as YAML (so ``0.5`` is a float, ``[16, 32]`` a list, ``null`` None), like papermill's ``-y``."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _load_parameter_file(path: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"parameter file {path} not found") from None
    except IsADirectoryError:
        raise ParameterError(f"parameter file {path} is a folder; give a YAML file of NAME: VALUE lines") from None
    except UnicodeDecodeError as exc:
        raise ParameterError(f"parameter file {path} is not UTF-8 text (byte {exc.start}): give a YAML file of "
                             "NAME: VALUE lines") from None
    except OSError as exc:
        raise ParameterError(f"cannot read parameter file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameter file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ParameterError(f"parameter file {path} must hold a mapping of NAME: VALUE")
    return loaded


def _cmd_synth(args: argparse.Namespace) -> int:
    from .synth import SynthConfig, generate_dataset

    config = SynthConfig(seed=args.seed, generator=args.generator,
                         clips_per_class_per_fold=args.clips_per_class_per_fold,
                         snr_db=tuple(args.snr_db), distractor_prob=args.distractor_prob)
    out = generate_dataset(args.out_dir, config, progress=not args.quiet)
    print(f"wrote {config.clips_per_class_per_fold * 100} clips in the UrbanSound8K layout to {out}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from .data import FileDigests, check_dataset, check_training_classes, leaked_clips, load_dataset
    from .download import read_index
    from .train import PROTOCOLS, Protocol

    index = None if args.index is None else read_index(args.index)
    dataset = load_dataset(args.path, layout=args.layout)
    report = check_dataset(dataset, silence_threshold=args.silence_threshold, progress=not args.quiet, index=index)
    usable = dataset.valid_only(report)
    leaked_clips(usable, FileDigests(None))
    for kind in PROTOCOLS:  # what the run checks, under either protocol a user may choose
        check_training_classes(usable, Protocol(kind))
    print(f"Checked {dataset.root}")
    print(report)
    if report.bad_fraction > args.max_bad_fraction:
        print(f"edge-audio: {100 * report.bad_fraction:.1f}% of files are unusable, above --max-bad-fraction "
              f"{100 * args.max_bad_fraction:g}%", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .data import load_dataset
    from .download import download_dataset

    report = download_dataset(args.name, args.out_dir, mirror=args.mirror, keep_archive=args.keep_archive,
                              progress=not args.quiet)
    dataset = load_dataset(report.root)
    print(report)
    print(f"{len(dataset)} clips, {dataset.num_classes} classes, folds {dataset.folds[0]}..{dataset.folds[-1]}; "
          f"run the book on it with: edge-audio run --dataset-path {report.root}")
    return 0


#: ``edge-audio run`` flags that set a chapter parameter (flag attribute -> parameter); they win over -p and -f.
RUN_FLAGS = {"epochs": "epochs", "batch_size": "batch_size", "nas_generations": "nas_generations",
             "nas_population": "nas_population", "storage": "storage", "executor": "executor",
             "address": "ray_address"}
#: The metavar and type of the RUN_FLAGS that are not positive integers.
TEXT_FLAGS = {"storage": ("URL", None), "executor": ("local|ray", None), "address": ("HOST:PORT", None)}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _cmd_run(args: argparse.Namespace) -> int:
    from .book import run_book
    from .paths import OutputLayout

    parameters: dict[str, Any] = {}
    for path in args.parameter_file or []:
        parameters.update(_load_parameter_file(path))
    for name, value in args.parameter or []:
        parameters[name] = _parse_value(value)
    for flag, name in RUN_FLAGS.items():
        if getattr(args, flag) is not None:
            parameters[name] = getattr(args, flag)
    if args.dataset_path is not None:
        parameters["dataset_path"] = args.dataset_path
    if isinstance(parameters.get("dataset_path"), str):  # a path typed here is relative to where it was typed
        parameters["dataset_path"] = str(Path(parameters["dataset_path"]).expanduser().resolve())
    output_dir = None if args.output_dir is None else Path(args.output_dir).expanduser().resolve()
    html = run_book(parameters, output_dir=output_dir, mode=args.mode, build=not args.no_build, quick=args.quick)
    print(f"book written to {html / 'index.html'}" if html is not None
          else f"executed chapters written to {OutputLayout.at(output_dir).root / 'notebooks'}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmarks, run_runtime_benchmarks

    if args.runtimes:
        from .models import preset_spec

        for name in args.models or []:
            preset_spec(name)  # an unknown name is a ParameterError that lists the presets
        run_runtime_benchmarks(latency_runs=args.runs, presets=args.models, out=args.out)
    else:
        run_benchmarks(latency_runs=args.runs, out=args.out)
    return 0


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _cmd_classify(args: argparse.Namespace) -> int:
    from .classify import Classifier

    classifier = Classifier.load(args.model)
    hop = args.hop if args.hop is not None else classifier.config.duration / 2
    failed = 0
    for audio in args.audio:
        try:
            wave = classifier.read(audio)
        except UserError as exc:  # one bad file: say so in one line, and go on with the others
            print(f"edge-audio: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        for warning in classifier.warnings(wave):
            print(f"edge-audio: warning: {audio}: {warning}", file=sys.stderr)
        seconds = wave.size / classifier.config.sample_rate
        if not args.stream:
            top = classifier.top(classifier.probabilities(classifier.window(wave)[None])[0], args.top)
            print(f"{audio}: " + ", ".join(f"{label} {p:.3f}" for label, p in top))
            continue
        labelled, factor = classifier.stream(wave, hop)
        print(f"{audio} ({seconds:.2f} s; window {classifier.config.duration:g} s, hop {hop:g} s)")
        for start, end, probabilities in labelled:
            top = classifier.top(probabilities, args.top)
            print(f"  {start:8.2f}-{end:8.2f} s  " + ", ".join(f"{label} {p:.3f}" for label, p in top))
        print(f"  real-time factor {factor:.4f} (processing time / audio time)")
    return EXIT_USAGE if failed else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .bundle import export_bundle

    bundle = export_bundle(args.model, args.target, args.out_dir)
    print(f"wrote {len(list(bundle.folder.iterdir()))} files to {bundle.folder}: the model ({bundle.model_bytes:,} bytes) as a C array "
          f"for {bundle.target}, an arena of {bundle.arena_bytes:,} bytes, operators {', '.join(bundle.operators)}; "
          f"see {bundle.folder / 'README.md'}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import write_demo

    demo = write_demo(args.model, args.out_dir, args.hop, args.top)
    size = sum((demo.folder / name).stat().st_size for name in demo.files)
    print(f"wrote the demo of {args.model} to {demo.folder}: {len(demo.files)} files, {size / 1e6:.1f} MB (the model "
          f"{demo.model_bytes:,} bytes, its front end {demo.front_end}, {demo.runtime}); serve it with "
          f"`python -m http.server --directory {demo.folder} 8000` and open http://localhost:8000")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-audio", description=(
        "How much accuracy does an audio classifier give up to fit on an edge device? "
        "Train, compress and search small CNNs, and publish the frontier as a Jupyter Book."))
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="generate or check a dataset")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    synth = data_commands.add_parser("synth", help="write the synthetic UrbanSound8K-layout dataset")
    synth.add_argument("out_dir", metavar="OUT_DIR", help="folder to create (must be empty or absent)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed: byte-identical files)")
    generator = PARAMETERS["synth_generator"]
    synth.add_argument("--generator", type=int, choices=(1, 2), default=generator.book_value,
                       help=f"{generator.meaning} (default {generator.book_value}, as the book)")
    clips = PARAMETERS["synth_clips_per_class_per_fold"].book_value
    synth.add_argument("--clips-per-class-per-fold", type=int, default=clips, metavar="K",
                       help=f"clips per class in each of the 10 folds (default {clips}: {100 * clips} clips)")
    synth.add_argument("--snr-db", type=float, nargs=2, default=(0.0, 20.0), metavar=("LOW", "HIGH"),
                       help="background-noise SNR range in dB; lower is harder (default 0 20)")
    synth.add_argument("--distractor-prob", type=float, default=0.35, metavar="P",
                       help="chance that a clip also holds a quieter sound that is not its class's (default 0.35)")
    synth.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_cmd_synth)

    check = data_commands.add_parser("check", help="validate a dataset and list every unusable file")
    check.add_argument("path", metavar="PATH", help="UrbanSound8K or ESC-50 folder, or a CSV (file, fold, label)")
    check.add_argument("--layout", default="auto", metavar="LAYOUT",
                       help="auto (detected, the default) or the name of a registered layout "
                            "(edge_audio.data.LAYOUTS; a wrong name lists them)")
    for name, metavar in (("max_bad_fraction", "F"), ("silence_threshold", "PEAK")):
        parameter = PARAMETERS[name]
        check.add_argument(f"--{name.replace('_', '-')}", type=float, default=parameter.default, metavar=metavar,
                           help=f"{parameter.meaning} (default {parameter.default:g})")
    check.add_argument("--index", default=None, metavar="INDEX.json", help="also compare every file's MD5 with "
                       "the dataset's published soundata index (edge-audio data download saves it in the folder)")
    check.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    check.set_defaults(func=_cmd_check)

    download = data_commands.add_parser("download", help="fetch UrbanSound8K or ESC-50 through soundata, resumable, "
                                        "and verify every file against the published index")
    download.add_argument("name", choices=list(SOURCES), help="the dataset")
    download.add_argument("out_dir", metavar="DIR", help="folder to put it in (created; an interrupted download "
                          "into it resumes)")
    download.add_argument("--mirror", default=None, metavar="URL",
                          help="fetch the archive and index from URL/<file name> instead of soundata's source")
    download.add_argument("--keep-archive", action="store_true", help="keep the archive after unpacking it")
    download.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    download.set_defaults(func=_cmd_download)

    run = commands.add_parser("run", help="execute the chapters with papermill and build the book")
    run.add_argument("--dataset-path", default=None, metavar="PATH",
                     help="a real dataset (default: the embedded synthetic UrbanSound8K)")
    run.add_argument("--output-dir", default=None, metavar="DIR", help="output folder (default: output/)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="a chapter parameter, e.g. -p n_mels 40 (values parsed as YAML)")
    run.add_argument("-f", "--parameter-file", action="append", metavar="params.yaml",
                     help="a YAML file of NAME: VALUE parameters (-p wins over -f)")
    run.add_argument("--mode", default="full", choices=list(MODES), help=(
        "which chapters to execute: full (all), baseline (01-02), quantization (03), nas (04), reports (05); "
        "each reuses the cached results of earlier steps, and the book is rebuilt (default: full)"))
    for flag, name in RUN_FLAGS.items():
        parameter = PARAMETERS[name]
        metavar, kind = TEXT_FLAGS.get(flag, ("N", _positive_int))
        run.add_argument(f"--{flag.replace('_', '-')}", dest=flag, metavar=metavar, type=kind,
                         help=f"sets {name}: {parameter.meaning} (book: {parameter.book_value!r})")
    run.add_argument("--no-build", action="store_true", help="execute the chapters but do not build the book")
    run.add_argument("--quick", action="store_true",
                     help="use each chapter's own small defaults instead of the book-quality sizes (a smoke run)")
    run.set_defaults(func=_cmd_run)

    bench = commands.add_parser("bench", help="measure training, feature and latency throughput on this machine")
    bench.add_argument("--runs", type=int, default=200, help="timed runs per latency measurement (default 200)")
    bench.add_argument("--out", default=None, metavar="FILE.json", help="also write the numbers as JSON")
    bench.add_argument("--runtimes", action="store_true", help="instead: each preset in every installed runtime and "
                       "precision (ONNX Runtime, LiteRT, OpenVINO), timed interleaved, against the FP32 and INT8 "
                       "floors")
    bench.add_argument("--models", nargs="+", default=None, metavar="PRESET",
                       help="with --runtimes: the presets to time (default: every preset)")
    bench.set_defaults(func=_cmd_bench)

    classify = commands.add_parser("classify", help="print the top classes of sound files with a published model")
    classify.add_argument("model", help="an ONNX or TFLite model published under models/ (FP32, INT8, full-integer "
                          "TFLite or raw-audio), with its .card.json beside it")
    classify.add_argument("audio", nargs="+", help="audio files (any sample rate, channels and length)")
    classify.add_argument("--top", type=_positive_int, default=3, help="classes printed per file (default 3)")
    classify.add_argument("--stream", action="store_true",
                          help="slide the model's window over each recording and label every position")
    classify.add_argument("--hop", type=_positive_float, default=None, metavar="SECONDS",
                          help="with --stream: seconds between windows (default: half the window)")
    classify.set_defaults(func=_cmd_classify)

    from .targets import DEPLOYMENT_PROFILES

    devices = [name for name, profile in DEPLOYMENT_PROFILES.items() if profile.full_integer_tflite]
    export = commands.add_parser("export", help="write a folder a firmware engineer builds: the model as a C array "
                                 "and header, the arena size, quantization, the front end's constants, the "
                                 "TensorFlow Lite Micro call sequence and the model card")
    export.add_argument("model", help="a published full-integer TFLite model (models/<name>_tflite_int8.tflite), "
                        "with its .card.json beside it")
    export.add_argument("--target", required=True, metavar="PROFILE",
                        help=f"the device profile: {', '.join(devices)} (an Ethos-U target embeds the file Vela "
                             "compiles for it)")
    export.add_argument("out_dir", metavar="OUT_DIR", help="a new (or empty) folder for the bundle")
    export.set_defaults(func=_cmd_export)

    demo = commands.add_parser("demo", help="write a static web page that classifies the microphone or a WAV file "
                               "with a published ONNX model, in the browser (ONNX Runtime Web, offline)")
    demo.add_argument("model", help="a published ONNX model (models/<name>_waveform.onnx: raw audio in; or a log-mel "
                      "model, models/<name>.onnx, <name>_ort_static.onnx: its front end in JavaScript), with its "
                      ".card.json beside it")
    demo.add_argument("out_dir", metavar="OUT_DIR", help="a new (or empty) folder for the page")
    demo.add_argument("--hop", type=_positive_float, default=0.5, metavar="SECONDS",
                      help="seconds between two windows of the microphone (default 0.5)")
    demo.add_argument("--top", type=_positive_int, default=3, help="classes shown per window (default 3)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .book import ChapterFailed

    try:
        with stopping_on_signals():
            return args.func(args)
    except UserError as exc:
        print(f"edge-audio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DownloadError as exc:
        print(f"edge-audio: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ChapterFailed as exc:
        if exc.is_user_error:
            print(f"edge-audio: error: {exc.chapter}: {exc.evalue}", file=sys.stderr)
            return EXIT_USAGE
        print(exc.traceback_text(), file=sys.stderr)
        print(f"edge-audio: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (Stopped)
        stopped = exc if isinstance(exc, Stopped) else Stopped(signal.SIGINT)
        end_children()
        print(f"edge-audio: {stopped}; every process it started has ended, and the cached results so far are "
              "kept", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(stopped.exit_status)  # no interpreter shutdown: the kernel client's threads would print tracebacks


if __name__ == "__main__":
    sys.exit(main())
