"""Which way should the browser demo run a model: the raw-audio ONNX model (its front end in the graph: ONNX
Runtime Web's STFT) or the front end in JavaScript before the log-mel model, in FP32 or INT8 (issue 40)?

    python benchmarks/browser_demo.py --models OUTPUT/models --model ds_cnn --dataset DATASET_DIR [--json FILE]

For each of the three files of one published model (``<model>_waveform.onnx``; ``<model>.onnx`` and
``<model>_ort_static.onnx`` with the page's JavaScript front end) it writes a demo (``edge-audio demo``), opens it in
headless Chromium, and gives it the same recording: ``--clips`` clips of the dataset's last fold, one after
another, at the model's rate (a WAV file, so every variant sees the same samples). The page slides its window
over it (``--hop`` seconds apart) and times each window (front end and model, ``performance.now()``); the script
computes the same windows with ``edge-audio classify``'s code in Python (ONNX Runtime). It prints and writes, per
variant: the page's median and 90th-percentile milliseconds per window (the first window, which compiles, left
out), its largest probability difference from Python running the same file (faithful to its own file), and its
agreement with the trained FP32 model's own numbers (the raw-audio model in Python): top-1 agreement and the
largest probability difference. The numbers quoted in the Reference (*The browser demo*) are the JSON file in
benchmarks/results/ that it wrote.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from edge_audio.browser import Browser, serve
from edge_audio.classify import Classifier
from edge_audio.data import load_dataset
from edge_audio.demo import write_demo
from edge_audio.machine import cpu_name


def recording(dataset: str, classifier: Classifier, clips: int, folder: Path) -> tuple[Path, np.ndarray]:
    """``clips`` clips of the dataset's last fold (evenly spaced in its table, so every class is heard), each fitted
    to the model's window, one after another, written as 16-bit PCM at the model's rate; the path and the samples
    as read back."""
    data = load_dataset(dataset)
    fold = data.table[data.table["fold"] == max(data.folds)]
    paths = fold["path"].iloc[::max(1, len(fold) // clips)][:clips]
    wave = np.concatenate([classifier.window(classifier.read(path)) for path in paths])
    path = folder / "recording.wav"
    sf.write(path, wave, classifier.config.sample_rate, subtype="PCM_16")
    return path, classifier.read(path)


def page_windows(demo: Path, audio: Path) -> tuple[list[dict], str]:
    """The page's windows of ``audio`` (probabilities, milliseconds) and the browser's version."""
    with serve(demo) as url, Browser(timeout=600) as browser:
        version = browser.send("Browser.getVersion")["product"]
        browser.open(url)
        browser.wait_for("window.demo.ready || window.demo.problem")
        browser.choose_file("#file", audio)
        browser.wait_for("window.demo.file || window.demo.problem", timeout=600)
        if problem := browser.evaluate("window.demo.problem"):
            raise SystemExit(f"{demo}: {problem}")
        return browser.evaluate("window.demo.file.windows"), version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="a run's models/ folder")
    parser.add_argument("--model", required=True, help="the model's name (e.g. ds_cnn)")
    parser.add_argument("--dataset", required=True, help="the run's dataset folder")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--hop", type=float, default=0.5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    files = {"raw-audio model (front end in the graph), FP32": args.models / f"{args.model}_waveform.onnx",
             "front end in JavaScript + log-mel model, FP32": args.models / f"{args.model}.onnx",
             "front end in JavaScript + log-mel model, INT8 (ort_static)": args.models / f"{args.model}_ort_static.onnx"}
    trained = Classifier.load(files["raw-audio model (front end in the graph), FP32"])
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        audio, wave = recording(args.dataset, trained, args.clips, Path(scratch))
        reference = np.stack([p for _, _, p in trained.stream(wave, args.hop)[0]])
        for label, model in files.items():
            classifier = Classifier.load(model)
            own = np.stack([p for _, _, p in classifier.stream(wave, args.hop)[0]])
            demo = Path(scratch) / model.stem
            write_demo(model, demo, args.hop, 3)
            windows, browser = page_windows(demo, audio)
            page = np.array([w["probabilities"] for w in windows])
            ms = np.array([w["ms"] for w in windows[1:]])
            rows.append({
                "variant": label, "file": model.name, "model_bytes": model.stat().st_size, "windows": len(windows),
                "median_ms": round(float(np.median(ms)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
                "max_abs_diff_vs_own_file": float(np.abs(page - own).max()),
                "top1_agreement_vs_own_file": float((page.argmax(1) == own.argmax(1)).mean()),
                "max_abs_diff_vs_trained_fp32": float(np.abs(page - reference).max()),
                "top1_agreement_vs_trained_fp32": float((page.argmax(1) == reference.argmax(1)).mean())})
            print(f"{label}: {rows[-1]['median_ms']} ms median per window (p90 {rows[-1]['p90_ms']}), "
                  f"{rows[-1]['model_bytes']:,} bytes; vs its own file in Python: max |dp| "
                  f"{rows[-1]['max_abs_diff_vs_own_file']:.2e}; vs the trained FP32 model: top-1 "
                  f"{100 * rows[-1]['top1_agreement_vs_trained_fp32']:.1f} %, max |dp| "
                  f"{rows[-1]['max_abs_diff_vs_trained_fp32']:.2e}", flush=True)
    result = {"cpu": cpu_name(), "browser": browser, "model": args.model, "front_end": trained.card["front_end"],
              "recording_seconds": round(wave.size / trained.config.sample_rate, 2), "hop_seconds": args.hop,
              "threads": 1, "variants": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
