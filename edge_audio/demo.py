"""The browser demo: ``edge-audio demo MODEL OUT/`` writes a static web page that classifies the microphone (a
sliding window, in real time) or a WAV file with a published ONNX model, in the browser.

The page (``edge_audio/web/``: ``index.html``, ``demo.js``, ``demo.css``, ``capture.js``) runs the model with ONNX
Runtime Web in WebAssembly. Its runtime comes from the npm registry, pinned in ``edge_audio/web/package-lock.json``
and installed by ``make web`` (``npm ci``); its files are copied into every demo, so a demo needs no network: any
static server serves it (``python -m http.server --directory OUT``). The microphone needs a secure page: localhost,
or https when it is opened from another device.

The front end is the model's own: a raw-audio model (``models/<name>_waveform.onnx``) carries it in its graph; for
a log-mel model the page computes it in JavaScript from the filterbank written here (``demo.json``), the one
:class:`~edge_audio.features.LogMelFrontEnd` uses. Which of the two is faster and more faithful is measured by
``benchmarks/browser_demo.py`` (Reference > The browser demo).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from .classify import Classifier
from .errors import ModelFileError, PathError
from .features import LOG_EPSILON, FeatureConfig, LogMelFrontEnd
from .paths import new_output_folder
from .runtimes import DEPLOYABLE, RUNTIMES, for_file
from .storage import atomic_write_json, atomic_write_text

WEB = Path(__file__).resolve().parent / "web"
#: The page's own files, copied as they are.
APP_FILES = ("index.html", "demo.js", "demo.css", "capture.js")
#: ONNX Runtime Web's files the page loads (the WebAssembly build; single-threaded SIMD).
RUNTIME_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
RUNTIME_PACKAGE = "onnxruntime-web"
#: ONNX Runtime Web runs the files ONNX Runtime runs.
PAGE_RUNTIME = RUNTIMES["onnxruntime"]
INSTALL_HINT = "run `make web` in the edge-audio checkout (npm ci --prefix edge_audio/web)"


@dataclass
class Demo:
    """A written demo: its folder, the files in it and what it runs."""

    folder: Path
    files: list[str]
    model_bytes: int
    front_end: str  # "in the model" or "in JavaScript"
    runtime: str


def runtime_version() -> str:
    """The version of ONNX Runtime Web the lock file pins."""
    lock = json.loads((WEB / "package-lock.json").read_text(encoding="utf-8"))
    return lock["packages"][f"node_modules/{RUNTIME_PACKAGE}"]["version"]


def runtime_folder() -> Path:
    """The installed ONNX Runtime Web's ``dist/``: a :class:`~edge_audio.errors.PathError` when it is missing or
    is not the version the lock file pins."""
    package = WEB / "node_modules" / RUNTIME_PACKAGE
    pinned = runtime_version()
    try:
        installed = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        raise PathError(f"ONNX Runtime Web is not installed in {WEB}: {INSTALL_HINT}") from None
    if installed != pinned:
        raise PathError(f"ONNX Runtime Web {installed} is installed in {WEB} but the lock file pins {pinned}: "
                        f"{INSTALL_HINT}")
    missing = [name for name in RUNTIME_FILES if not (package / "dist" / name).is_file()]
    if missing:
        raise PathError(f"ONNX Runtime Web in {WEB} lacks {', '.join(missing)}: {INSTALL_HINT}")
    return package / "dist"


def runs_in_page(model: str | os.PathLike) -> bool:
    """Whether the page can run the model file ``model`` (an ONNX file; not a TFLite file or a checkpoint)."""
    return Path(model).suffix in DEPLOYABLE and for_file(model) is PAGE_RUNTIME


def _demo_model(model: Path) -> Classifier:
    """The published ONNX ``model`` with its card, or a one-line ModelFileError: a TFLite file, a file that is not
    a model, a card of another file, a log-mel model whose FFT the page cannot compute."""
    if model.is_file() and not runs_in_page(model):
        raise ModelFileError(f"{model} is not an ONNX model: the demo runs ONNX Runtime Web; give the ONNX file of "
                             f"the same model (models/<name>.onnx, models/<name>_ort_static.onnx or "
                             "models/<name>_waveform.onnx)")
    classifier = Classifier.load(model)
    n_fft = classifier.config.n_fft
    if not classifier.raw_audio and n_fft & (n_fft - 1):
        raise ModelFileError(f"{model} takes log-mel input with an FFT of {n_fft} points, and the page's front end "
                             "computes FFTs of a power of two: give the model's raw-audio export "
                             f"(models/{classifier.card['model']}_waveform.onnx)")
    return classifier


def _front_end(classifier: Classifier) -> dict | None:
    """What the page needs to compute a log-mel model's front end (None for a raw-audio model): the package's own
    filterbank, so the page and :class:`~edge_audio.features.LogMelFrontEnd` share it."""
    if classifier.raw_audio:
        return None
    config: FeatureConfig = classifier.config
    filterbank = LogMelFrontEnd(config).mel_filterbank.numpy()
    return {"n_fft": config.n_fft, "hop_length": config.hop_length, "n_mels": config.n_mels,
            "log_epsilon": LOG_EPSILON, "mel_filterbank": [[float(v) for v in row] for row in filterbank]}


def write_demo(model: str | os.PathLike, out: str | os.PathLike, hop: float = 0.5, top: int = 3) -> Demo:
    """Write the demo of the published ONNX ``model`` into the new folder ``out`` (see the module docstring): a
    window every ``hop`` seconds, the ``top`` classes shown. A wrong model or folder, or a runtime not installed,
    is a one-line :class:`~edge_audio.errors.UserError` before anything is written; a failure while writing leaves
    the folder as it was."""
    model, out = Path(model), Path(out)
    classifier = _demo_model(model)
    runtime = runtime_folder()
    with new_output_folder(out, "the demo"):
        return _write(classifier, runtime, out, hop, top)


def _write(classifier: Classifier, runtime: Path, out: Path, hop: float, top: int) -> Demo:
    front_end = _front_end(classifier)
    for name in APP_FILES:
        shutil.copyfile(WEB / name, out / name)
    (out / "ort").mkdir()
    for name in RUNTIME_FILES:
        shutil.copyfile(runtime / name, out / "ort" / name)
    shutil.copyfile(classifier.path, out / "model.onnx")
    atomic_write_json(out / "card.json", classifier.card)
    runtime_name = f"ONNX Runtime Web {runtime_version()}"
    atomic_write_json(out / "demo.json", {
        "model": "model.onnx", "model_file": classifier.path.name, "model_bytes": classifier.path.stat().st_size,
        "hop_seconds": hop, "top": min(top, len(classifier.card["classes"])), "front_end": front_end,
        "runtime": runtime_name, "written_by": f"edge-audio {version('edge-audio')} (edge-audio demo)"})
    atomic_write_text(out / "README.md", _readme(classifier, hop))
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    for name in files:  # readable by whoever serves it (the atomic writes made them private)
        (out / name).chmod(0o644)
    return Demo(out, files, classifier.path.stat().st_size, "in JavaScript" if front_end else "in the model",
                runtime_name)


def _readme(classifier: Classifier, hop: float) -> str:
    card = classifier.card
    return "\n".join([
        f"# edge-audio demo: {card['model']} ({card['variant']})", "",
        f"Written by `edge-audio demo {classifier.path.name}`: a static page that classifies the microphone (a "
        f"{card['front_end']['duration']:g} s window every {hop:g} s) or a WAV file with `{classifier.path.name}` "
        "(here `model.onnx`, its card `card.json`), run in the browser by ONNX Runtime Web (WebAssembly). It "
        "needs no network.", "",
        "Serve this folder and open it:", "",
        "```", "python -m http.server --directory . 8000   # then open http://localhost:8000", "```", "",
        "A browser gives the microphone to a secure page only: `localhost`, or `https://` when the page is opened "
        "from another device (a phone). Over plain http from another device, classify WAV files instead.", ""])
