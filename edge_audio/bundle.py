"""``edge-audio export MODEL --target PROFILE OUT/``: a folder a firmware engineer builds into a device's firmware.

From a published full-integer TFLite model (``models/<name>_tflite_int8.tflite`` and its card) and a device profile
(:data:`edge_audio.targets.DEPLOYMENT_PROFILES`: a Cortex-M or an Ethos-U NPU), the folder holds:

* ``model_data.h`` / ``model_data.c``: the model as a C array (16-byte aligned, as TensorFlow Lite Micro wants its
  flatbuffer) with its length, the tensor arena size, the input's and output's shape, type and quantization
  (scale, zero point), and the class labels. For an Ethos-U target the array is the file Vela compiled for it (its
  NPU operators in one ``ethos-u`` custom operator, which TensorFlow Lite Micro's Ethos-U driver runs).
* ``front_end.h`` / ``front_end.c``: the feature front end the model was trained with, as constants and arrays:
  sample rate, clip length, FFT size, hop, the periodic Hann window and the mel filterbank (librosa's Slaney
  filters, as :class:`edge_audio.features.LogMelFrontEnd` computes them).
* ``README.md``: the TensorFlow Lite Micro call sequence for this model (its operator resolver, the arena, how to
  quantize the features and read the output), what is measured and what is estimated.
* the model card (``model.card.json``, ``model.card.md``) and ``manifest.json`` (every file's SHA-256, the source
  model's, the target).

The arena size: on a Cortex-M, TensorFlow Lite Micro's own (its recording allocator after one inference of this
file, rounded up to 16 bytes). On an Ethos-U, Vela's SRAM for the compiled file plus the persistent part of
TensorFlow Lite Micro's arena for the uncompiled one: an estimate (the Python interpreter cannot run the NPU
operator).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cards import read_card
from .firmware.front_end import front_end_sources
from .firmware.network import generate, kernel_sources
from .firmware.csource import c_float as _c_float, c_header, c_rows as _c_rows, c_string as _c_string
from .errors import ModelFileError, ParameterError
from .paths import new_output_folder
from .runtimes.tflm import ALIGNMENT
from .storage import atomic_write_json, atomic_write_text, file_sha256
from .targets.base import DeviceProfile

BUNDLE_VERSION = 1
#: TensorFlow Lite Micro reads the flatbuffer in place: its array is aligned like this.
#: The C identifiers of the bundle (one prefix, so the bundle links beside anything).
PREFIX = "edge_audio"


@dataclass
class Bundle:
    """A written bundle: its folder, files (name -> SHA-256), target, the model's and the arena's bytes."""

    folder: Path
    files: dict[str, str]
    target: str
    model_bytes: int
    arena_bytes: int
    operators: list[str]


def device_profile(name: str) -> DeviceProfile:
    """The built-in device profile called ``name``: one that takes full-integer TFLite (a Cortex-M or an NPU)."""
    from .targets import DEPLOYMENT_PROFILES

    devices = [n for n, profile in DEPLOYMENT_PROFILES.items() if profile.full_integer_tflite]
    if name not in devices:
        raise ParameterError(f"--target {name!r} is not a device profile; choose one of {', '.join(devices)}")
    return DEPLOYMENT_PROFILES[name]


def _tensor_io(path: Path) -> dict:
    """Shape, type and quantization of the model's input and output (LiteRT reads them from the file)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))

    def describe(detail: dict) -> dict:
        scale, zero = detail["quantization"]
        return {"shape": [int(d) for d in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
                "scale": float(scale), "zero_point": int(zero)}

    return {"input": describe(interpreter.get_input_details()[0]),
            "output": describe(interpreter.get_output_details()[0])}


def operators(model_bytes: bytes) -> list[str]:
    """The TensorFlow Lite Micro resolver calls the model needs, in the file's order (``AddConv2D``, ...; an
    Ethos-U custom operator is ``AddEthosU``)."""
    from ai_edge_litert import schema_py_generated as schema

    from .tflite import read_model

    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    model = read_model(model_bytes)
    calls = []
    for code in model.operatorCodes:
        code_value = max(code.builtinCode, code.deprecatedBuiltinCode)
        if names[code_value] == "CUSTOM":
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            calls.append("AddEthosU" if custom == "ethos-u" else f"AddCustom(\"{custom}\", ...)")
        else:
            calls.append("Add" + "".join(part if any(c.isdigit() for c in part) else part.capitalize()
                                         for part in names[code_value].split("_")))
    return list(dict.fromkeys(calls))


def export_bundle(model: str | os.PathLike, target: str, out: str | os.PathLike) -> Bundle:
    """Write the bundle of the published full-integer TFLite ``model`` for the device profile ``target`` into the
    new folder ``out`` (see the module docstring). A wrong model, target or folder is a one-line
    :class:`~edge_audio.errors.UserError` before anything is written; a failure while writing leaves the folder as
    it was."""
    model, out = Path(model), Path(out)
    card = _deployable_card(model)
    profile = device_profile(target)
    try:
        io = _tensor_io(model)
    except (ValueError, RuntimeError) as exc:  # LiteRT's words for a file that is not a TFLite model
        raise ModelFileError(f"{model} is not a readable TFLite model ({str(exc).strip().splitlines()[0][:160]})"
                             ) from None
    # the C (network on a Cortex-M, front end) is generated first: a model it does not cover is refused here
    c_sources = front_end_sources(card["front_end"])
    if profile.npu is None:
        c_sources.update(generate(model.read_bytes(), f"{model.name}").sources, **kernel_sources())
    with new_output_folder(out, "the bundle"):
        return _write_bundle(model, card, target, profile, io, out, c_sources)


def _deployable_card(model: Path) -> dict:
    """The card of a published full-integer TFLite ``model`` that gives its arena's parts, or a ModelFileError."""
    if not model.is_file():
        raise ModelFileError(f"model file {model} does not exist" if not model.exists() else
                             f"model file {model} is not a file")
    card = read_card(model)
    if card["input"]["dtype"] not in ("int8", "int16"):  # only a full-integer TFLite model takes integer input
        raise ModelFileError(f"{model} is not a full-integer TFLite model (its card says {card['runtime']}, "
                             f"{card['input']['dtype']} input); a microcontroller runs full-integer files "
                             "(models/<name>_tflite_int8.tflite)")
    if card.get("ram") is None:
        raise ModelFileError(f"the card of {model} does not give the RAM parts of its arena (written by an older "
                             "edge-audio): run the quantization chapter again")
    return card


@dataclass
class _Deployed:
    """What runs on the device: the model's bytes (Vela's compiled file on an NPU), the arena a firmware allocates,
    TensorFlow Lite Micro's arena of the file and Vela's report (None on a Cortex-M)."""

    data: bytes
    arena: int
    tflm: dict
    vela: dict | None


def _deployed(model: Path, card: dict, target: str, profile: DeviceProfile) -> _Deployed:
    """The file a firmware embeds for ``profile`` and its arena: on an Ethos-U, compiled by Vela (a model Vela
    refuses is a ModelFileError); on a Cortex-M, the file itself with CMSIS-NN's scratch in the arena."""
    from .npu import NPUCompileError, compile_for_npu, npu_target
    from .runtimes.tflm import firmware_ram, npu_firmware_ram, tflm_arena

    tflm = tflm_arena(model)
    if profile.npu is None:
        return _Deployed(model.read_bytes(), firmware_ram(tflm, card["ram"]["scratch_bytes"])["arena_bytes"], tflm,
                         None)
    with tempfile.TemporaryDirectory(prefix="edge-audio-export-") as scratch:
        try:
            vela = compile_for_npu(model, npu_target(profile.npu), Path(scratch))
        except NPUCompileError as exc:
            raise ModelFileError(f"{model} cannot run on {target}: {exc}") from None
        return _Deployed((Path(scratch) / "model_vela.tflite").read_bytes(),
                         npu_firmware_ram(vela["sram_bytes"], tflm), tflm, vela)


def _model_sources(deployed: _Deployed, io: dict, classes: list[str]) -> dict[str, str]:
    """``model_data.h`` and ``model_data.c``: the model as an aligned C array, its arena, input and output
    quantization and shapes, and the class labels."""
    upper = PREFIX.upper()

    def io_defines(kind: str) -> list[str]:
        spec = io[kind]
        name = f"{upper}_{kind.upper()}"
        return [f"#define {name}_SCALE {_c_float(spec['scale'])}",
                f"#define {name}_ZERO_POINT ({spec['zero_point']})",
                f"#define {name}_TYPE_{spec['dtype'].upper()} 1",
                f"#define {name}_DIMS {{{', '.join(map(str, spec['shape']))}}}",
                f"#define {name}_ELEMENTS {int(np.prod(spec['shape']))}"]

    header = c_header(
        "/* Generated by edge-audio export; do not edit. The model, its arena and its input and output. */",
        "EDGE_AUDIO_MODEL_DATA_H", [
        f"#define {upper}_MODEL_BYTES {len(deployed.data)}u",
        f"#define {upper}_ARENA_BYTES {deployed.arena}u  /* see README.md: measured on a Cortex-M, estimated on an NPU */",
        f"#define {upper}_NUM_CLASSES {len(classes)}",
        *io_defines("input"), *io_defines("output"), "",
        f"extern const unsigned char {PREFIX}_model[{upper}_MODEL_BYTES];  /* {ALIGNMENT}-byte aligned */",
        f"extern const unsigned int {PREFIX}_model_len;",
        f"extern const char *const {PREFIX}_labels[{upper}_NUM_CLASSES];", ""])
    source = "\n".join([
        "/* Generated by edge-audio export; do not edit. */", '#include "model_data.h"', "",
        f"_Alignas({ALIGNMENT}) const unsigned char {PREFIX}_model[{upper}_MODEL_BYTES] = {{",
        _c_rows(deployed.data, 16, lambda b: f"0x{b:02x}"), "};",
        f"const unsigned int {PREFIX}_model_len = {upper}_MODEL_BYTES;",
        f"const char *const {PREFIX}_labels[{upper}_NUM_CLASSES] = {{",
        _c_rows(classes, 4, _c_string), "};", ""])
    return {"model_data.h": header, "model_data.c": source}


def _write_bundle(model: Path, card: dict, target: str, profile: DeviceProfile, io: dict, out: Path,
                  c_sources: dict[str, str]) -> Bundle:
    """The files of :func:`export_bundle` written into the new, empty folder ``out``, and its manifest."""
    deployed = _deployed(model, card, target, profile)
    calls = operators(deployed.data)
    files = {**_model_sources(deployed, io, card["classes"]), **c_sources,
             "README.md": _readme(card, model, target, profile, io, calls, deployed.arena, deployed.tflm,
                                  deployed.vela, len(deployed.data))}
    for name, text in files.items():
        atomic_write_text(out / name, text)
    atomic_write_json(out / "model.card.json", {**card, "bundle": {"target": target, "arena_bytes": deployed.arena}})
    card_md = model.with_name(f"{model.stem}.card.md")
    if card_md.is_file():
        atomic_write_text(out / "model.card.md", card_md.read_text(encoding="utf-8"))
    for path in out.iterdir():  # readable by whoever builds the firmware (the atomic writes made them private)
        path.chmod(0o644)
    digests = {p.name: file_sha256(p) for p in sorted(out.iterdir()) if p.is_file()}
    atomic_write_json(out / "manifest.json", {
        "bundle_version": BUNDLE_VERSION, "source_model": {"file": model.name, "sha256": file_sha256(model)},
        "target": target, "model_bytes": len(deployed.data), "arena_bytes": deployed.arena, "operators": calls,
        "vela": None if deployed.vela is None else {k: v for k, v in deployed.vela.items() if k != "description"},
        "files": digests})
    (out / "manifest.json").chmod(0o644)
    return Bundle(out, digests, target, len(deployed.data), deployed.arena, calls)


def _readme(card: dict, model: Path, target: str, profile: DeviceProfile, io: dict, calls: list[str], arena: int,
            tflm: dict, vela: dict | None, model_bytes: int) -> str:
    """The bundle's README: what it holds, the call sequence, and what is measured against what is estimated."""
    metrics = card["metrics"]
    inp, outp = io["input"], io["output"]
    ctype = {"int8": "int8_t", "int16": "int16_t"}
    fits = ("not analysed yet (run the frontier chapter)" if card.get("profiles") is None else
            "yes" if target in card["profiles"] else "no (see the book's deployment profiles)")
    if vela is None:
        memory = (f"- Arena: **{arena:,} bytes**, the whole arena, as the book's RAM budgets count it: TensorFlow "
                  f"Lite Micro's own for this file (its recording allocator after one inference, reference kernels: "
                  f"{tflm['head_bytes']:,} bytes non-persistent, activations and scratch; {tflm['tail_bytes']:,} "
                  f"persistent, tensor structs and quantization data) plus {card['ram']['scratch_bytes']:,} bytes "
                  f"of CMSIS-NN im2col scratch (the package's estimate), rounded up to {ALIGNMENT}.")
        speed = ("- Latency: not measured here. The book's estimate for this profile (MACs x cycles per MAC from MLPerf "
                 "Tiny results / clock) is good to a factor; measure on the board.")
    else:
        memory = (f"- Arena: **{arena:,} bytes**, an estimate: Vela's SRAM for the compiled file "
                  f"({vela['sram_bytes']:,} bytes) plus the persistent part of TensorFlow Lite Micro's arena for the "
                  f"uncompiled file ({tflm['tail_bytes']:,} bytes). Flash: {vela['flash_bytes']:,} bytes (Vela).")
        speed = (f"- Latency: {vela['latency_ms']:.3f} ms at {vela['clock_hz'] / 1e6:g} MHz by Vela {vela['vela']}'s "
                 f"performance model ({vela['npu_operators']} operators on the NPU, {vela['cpu_operators']} on the "
                 "Cortex-M): an estimate, not a measurement on a board.")
    resolver = "\n".join(f"resolver.{call}();" for call in calls)
    return f"""# {card['model']} ({card['variant']}) for {target}

Generated by `edge-audio export {model.name} --target {target}`. Profile: {profile.describe()}.
Fits the profile by the book's analysis: {fits}.

- `model_data.h`, `model_data.c`: the model ({model_bytes:,} bytes{', compiled by Vela for the NPU' if vela else ''}),
  {ALIGNMENT}-byte aligned, its arena size, input and output quantization, the {len(card['classes'])} labels.
- `front_end.h`, `front_end.c`: the log-mel front end the model was trained with ({card['front_end']['sample_rate']} Hz,
  {card['front_end']['duration']:g} s clips, {card['front_end']['n_fft']}-point FFT, hop {card['front_end']['hop_length']},
  {card['front_end']['n_mels']} mel bands): constants, the Hann window and the mel filterbank.
- `model.card.json` / `.md`: the model card; `manifest.json`: every file's SHA-256.

Test accuracy in the book: {metrics['test_accuracy']:.2f} % (95% interval {metrics['ci95'][0]:.1f}-{metrics['ci95'][1]:.1f},
n = {metrics['n']}) on {card['dataset'].get('name', 'its dataset')}.

## What is measured and what is estimated

{memory}
{speed}

## The network as C, without TensorFlow Lite Micro{'' if vela is None else ' (not written for an NPU target)'}

{'' if vela is not None else '''`network.h` / `network.c` are this model as plain C99 (generated by edge-audio: weights as `const` arrays, one
kernel call per layer, a static arena of `EDGE_AUDIO_NETWORK_ARENA_BYTES`), with the project's kernels `ea_nn.h`,
`ea_nn.c`, `ea_nn_ops.inc` (TFLite's integer arithmetic; `__smlad` on a core with the DSP extension, Helium on a
Cortex-M55). Its outputs equal TensorFlow Lite Micro's reference kernels byte for byte (edge-audio's tests check
it on the host and on emulated Cortex-M4 and M55 boards). `ea_front_end.c` (written when the FFT size is a power of
two) computes the features from int16 PCM (radix-2 FFT, mel, log) and quantizes them; `edge_audio_classify(pcm,
scores)` is the whole pipeline:

```c
#include "network.h"
void edge_audio_classify(const int16_t *pcm, edge_audio_value_t *scores); /* ea_front_end.c */

static int16_t pcm[EDGE_AUDIO_CLIP_SAMPLES];           /* one clip, mono, EDGE_AUDIO_SAMPLE_RATE Hz */
static edge_audio_value_t scores[EDGE_AUDIO_NETWORK_OUTPUT_ELEMENTS];
edge_audio_classify(pcm, scores);                      /* edge_audio_labels[argmax(scores)] */
```

Build all `.c` files with `-std=c99 -O2 -ffp-contract=off` (and `-lm`); no other source is needed.'''}

## Calling it with TensorFlow Lite Micro

```cpp
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "model_data.h"
#include "front_end.h"

alignas(16) static uint8_t tensor_arena[EDGE_AUDIO_ARENA_BYTES];

static tflite::MicroMutableOpResolver<{len(calls)}> resolver;
{resolver}

const tflite::Model* model = tflite::GetModel(edge_audio_model);
tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, EDGE_AUDIO_ARENA_BYTES);
interpreter.AllocateTensors();

// features[mel][frame]: log-mel of one clip (front_end.h), quantized to the input's type:
//   q = round(x / EDGE_AUDIO_INPUT_SCALE) + EDGE_AUDIO_INPUT_ZERO_POINT, clamped to the type's range
{ctype[inp['dtype']]}* input = interpreter.input(0)->data.{'int8' if inp['dtype'] == 'int8' else 'i16'};
// ... fill input[mel * EDGE_AUDIO_FRAMES + frame] ...
interpreter.Invoke();

// logits: (q - EDGE_AUDIO_OUTPUT_ZERO_POINT) * EDGE_AUDIO_OUTPUT_SCALE; the largest names the class
const {ctype[outp['dtype']]}* output = interpreter.output(0)->data.{'int8' if outp['dtype'] == 'int8' else 'i16'};
// edge_audio_labels[argmax(output)]
```

Input: {inp['dtype']} {inp['shape']} (NHWC), scale {inp['scale']:.6g}, zero point {inp['zero_point']}.
Output: {outp['dtype']} {outp['shape']}, scale {outp['scale']:.6g}, zero point {outp['zero_point']}.
"""
