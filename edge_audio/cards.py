"""Model cards: what a published model is, what it expects, and how well it does, beside its file.

Every ONNX and TFLite model published under ``models/`` gets ``<file stem>.card.json`` and ``<file stem>.card.md``: its
classes (in the order of its outputs), the front end it was trained with, the input it expects (log-mel features
or raw audio), the protocol, its test accuracy with the interval and n (and its validation accuracy), flash,
peak RAM, latency on the machine that measured it, and the deployment profiles it meets (filled in by the
frontier step; ``null`` until it has run). ``edge-audio classify`` reads the card to know how to feed the model.

A card names its file (``file``) and that file's SHA-256 (``file_sha256``), written beside it by :func:`write_card`
and checked by :func:`read_card`: a model copied or re-published beside another model's card is refused, never
run under the other model's labels, metrics or quantization.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelFileError
from .storage import atomic_write_json, atomic_write_text, file_sha256

CARD_VERSION = 2


def card_path(model_file: str | Path) -> Path:
    """The card of ``model_file``: ``models/tiny_ort_static.onnx`` -> ``models/tiny_ort_static.card.json``."""
    model_file = Path(model_file)
    return model_file.with_name(f"{model_file.stem}.card.json")


def model_card(record: dict, input_kind: str = "log-mel", profiles: list[str] | None = None) -> dict:
    """The card of a results record's published model (``input_kind``: ``log-mel`` or ``waveform``); its file and
    the file's SHA-256 are added by :func:`write_card`."""
    features = record["features"]
    samples = int(round(features["sample_rate"] * features["duration"]))
    frames = 1 + samples // features["hop_length"]
    test = record["test"]
    this = test["by_seed"][0]
    return {
        "card_version": CARD_VERSION, "model": record["model"], "variant": record["variant"],
        "runtime": record["runtime"], "precision": record["precision"],
        "int8_activations": record.get("int8_activations", False),
        "input": ({"kind": "log-mel", "shape": [1, features["n_mels"], frames, 1], "dtype": "int8",
                   "description": "log-mel features in NHWC, quantized with the input tensor's scale and zero point "
                                  "(edge-audio classify does this)"}
                  if record.get("full_integer_tflite") else
                  {"kind": "log-mel", "shape": [1, 1, features["n_mels"], frames], "dtype": "float32"}
                  if input_kind == "log-mel" else
                  {"kind": "waveform", "shape": [1, samples], "dtype": "float32",
                   "description": f"mono audio at {features['sample_rate']} Hz, {features['duration']:g} s"}),
        "classes": record["class_names"], "front_end": features,
        "dataset": record["dataset"], "protocol": record["protocol"],
        # this file's own accuracy (the first training seed's model), and the mean over the seeds it stands for
        "metrics": {"test_accuracy": this["accuracy"], "test_accuracy_std_over_folds": record["accuracy_std"],
                    "ci95": this["ci95"], "interval": this["interval"], "n": this["n"],
                    "val_accuracy": record["val"]["by_seed"][0]["accuracy"], "macro_f1": record["macro_f1"],
                    "over_seeds": {"seeds": test["seeds"], "test_accuracy": record["accuracy"], "ci95": test["ci95"],
                                   "interval": test["interval"]}},
        "size_bytes": record["size_bytes"], "flash_bytes": record.get("flash_bytes"),
        "peak_ram_bytes": record.get("peak_ram_bytes"),
        # a full-integer TFLite file's arena on a Cortex-M, in parts (runtimes.tflm.firmware_ram); None otherwise
        "ram": record.get("memory", {}).get("firmware"),
        "latency": {"median_ms": record["latency_ms"], "runtime": record["runtime"], "threads": record["threads"],
                    "cpu": record["machine"]["cpu"]},
        "profiles": profiles,
    }


def write_card(card: dict, model_file: Path) -> Path:
    """Write ``card`` as JSON and Markdown beside ``model_file``, naming that file and the SHA-256 of its bytes;
    returns the JSON path."""
    path = card_path(model_file)
    card = {**card, "file": Path(model_file).name, "file_sha256": file_sha256(model_file)}
    atomic_write_json(path, card)
    atomic_write_text(path.with_suffix("").with_suffix(".card.md"), card_markdown(card))
    return path


def card_markdown(card: dict) -> str:
    """The card as a short Markdown page."""
    m = card["metrics"]
    ram = "n/a" if card["peak_ram_bytes"] is None else f"{card['peak_ram_bytes'] / 1e3:.1f} kB"
    flash = "n/a" if card["flash_bytes"] is None else f"{card['flash_bytes'] / 1e3:.1f} kB"
    profiles = ("not analysed yet (run the frontier chapter)" if card["profiles"] is None
                else ", ".join(card["profiles"]) or "none")
    front = card["front_end"]
    return "\n".join([
        f"# {card['model']} ({card['variant']})", "",
        f"- File: `{card['file']}` ({card['runtime']}, {card['precision']}); input: {card['input']['kind']} "
        f"{card['input']['shape']}",
        f"- Front end: {front['sample_rate']} Hz mono, {front['duration']:g} s, {front['n_mels']} log-mel bands, "
        f"{front['n_fft']}-point FFT, hop {front['hop_length']}",
        f"- Classes ({len(card['classes'])}): {', '.join(card['classes'])}",
        f"- Protocol: {card['protocol']}",
        f"- Test accuracy: {m['test_accuracy']:.2f} % (95% interval {m['ci95'][0]:.1f}-{m['ci95'][1]:.1f}, "
        f"n = {m['n']}); validation {m['val_accuracy']:.2f} %" + (
            "" if len(m["over_seeds"]["seeds"]) == 1 else
            f"; over training seeds {m['over_seeds']['seeds']}: {m['over_seeds']['test_accuracy']:.2f} % (95% "
            f"interval {m['over_seeds']['ci95'][0]:.1f}-{m['over_seeds']['ci95'][1]:.1f})"),
        f"- Flash: {flash}; peak RAM: {ram}; latency: {card['latency']['median_ms']:.3f} ms "
        f"({card['latency']['runtime']}, {card['latency']['threads']} thread, {card['latency']['cpu']})",
        f"- Deployment profiles met: {profiles}", ""])


def read_card(model_file: str | Path) -> dict:
    """The card beside ``model_file``; :class:`~edge_audio.errors.ModelFileError` when there is none, it is
    unreadable, or it describes another file (another name, or other bytes than ``model_file`` holds)."""
    path = card_path(model_file)
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"no model card beside {model_file} (expected {path}); the models edge-audio "
                             "publishes under models/ have one") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"model card {path} is not valid JSON ({exc})") from None
    if card.get("card_version") != CARD_VERSION:
        raise ModelFileError(f"model card {path} has version {card.get('card_version')}, expected {CARD_VERSION}: "
                             "re-publish the model with this edge-audio (edge-audio run)")
    model_file = Path(model_file)
    held = file_sha256(model_file)
    if card.get("file") != model_file.name or card.get("file_sha256") != held:
        raise ModelFileError(f"model card {path} is another file's card: it names {card.get('file')!r} with SHA-256 "
                             f"{str(card.get('file_sha256'))[:12]}..., and {model_file} holds {held[:12]}... (a model "
                             "copied or re-published beside it); re-publish the model, or use the file the card names")
    return card
