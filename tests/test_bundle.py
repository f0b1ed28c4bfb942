"""edge-audio export: the bundle a firmware engineer builds, from the end-to-end run's published models. Its C
sources compile with the system's C compiler, its array reads back into LiteRT with the same predictions, its
front-end arrays are the front end's, and a wrong model, target or folder is one line and exit 2."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from edge_audio.cli import main
from edge_audio.features import FeatureConfig, LogMelFrontEnd
from edge_audio.npu import NPU_TARGETS, compile_for_npu
from edge_audio.results import load_results
from helpers import run_cli

COMPILER = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include "model_data.h"
#include "front_end.h"

int main(void) {
    int aligned = ((uintptr_t)edge_audio_model % 16) == 0;
    printf("%d %u %u %d %s %.9g %.9g\n", aligned, edge_audio_model_len, (unsigned)EDGE_AUDIO_ARENA_BYTES,
           EDGE_AUDIO_NUM_CLASSES, edge_audio_labels[EDGE_AUDIO_NUM_CLASSES - 1], edge_audio_window[1],
           edge_audio_mel_filterbank[EDGE_AUDIO_N_MELS - 1][EDGE_AUDIO_N_BINS / 2]);
    return 0;
}
"""


def book_run_output(model):
    """The logs folder of the run that published ``model`` (models/NAME in its output folder)."""
    return model.parent.parent / "logs"


def c_array(source: str, name: str) -> str:
    return re.search(rf"{name}\[[^\]]*\](?:\[[^\]]*\])? = \{{(.*?)\n\}};", source, re.S).group(1)


def floats(text: str) -> np.ndarray:
    return np.array([float(v.rstrip("f")) for v in re.findall(r"-?[\d.]+(?:e[-+]?\d+)?f", text)], np.float32)


@pytest.fixture(scope="module")
def exported(book_run, tmp_path_factory):
    model = book_run.output / "models" / "mini_tflite_int8.tflite"
    out = tmp_path_factory.mktemp("bundle") / "mini-m4"
    result = run_cli("export", model, "--target", "cortex_m4", out)
    assert result.returncode == 0, result.stderr
    return model, out


@pytest.mark.skipif(COMPILER is None, reason="no C compiler on this machine")
def test_the_bundle_compiles_and_links_and_says_what_its_header_says(exported, tmp_path):
    model, out = exported
    (tmp_path / "main.c").write_text(PROGRAM)
    binary = tmp_path / "check"
    built = subprocess.run([COMPILER, "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{out}",
                            str(tmp_path / "main.c"), str(out / "model_data.c"), str(out / "front_end.c"),
                            "-o", str(binary)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    aligned, length, arena, classes, last_label, window, filter_value = subprocess.run(
        [str(binary)], capture_output=True, text=True, check=True).stdout.split()
    card = json.loads((out / "model.card.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert aligned == "1" and int(length) == model.stat().st_size == manifest["model_bytes"]
    assert int(arena) == manifest["arena_bytes"] and int(arena) % 16 == 0
    # the arena the firmware allocates is the RAM the book's budgets checked for this file: the whole arena
    record = next(r for r in load_results(book_run_output(model)) if r["artifact"]["path"] == "models/" + model.name)
    assert record["peak_ram_bytes"] == int(arena) == record["memory"]["firmware"]["arena_bytes"]
    parts = record["memory"]["firmware"]
    assert int(arena) >= parts["non_persistent_bytes"] + parts["persistent_bytes"] + parts["scratch_bytes"] > int(
        arena) - 16 and parts["persistent_bytes"] > 0
    assert int(classes) == len(card["classes"]) and last_label == card["classes"][-1]
    front_end = LogMelFrontEnd(FeatureConfig(**card["front_end"]))
    assert np.float32(window) == front_end.window[1].item()
    mels = front_end.mel_filterbank.numpy()
    assert np.float32(filter_value) == mels[-1, mels.shape[1] // 2]
    if CXX is not None:  # the headers are C++ too, as TensorFlow Lite Micro's callers are
        (tmp_path / "use.cpp").write_text('#include "model_data.h"\n#include "front_end.h"\n'
                                          "unsigned f() { return edge_audio_model_len + EDGE_AUDIO_N_MELS; }\n")
        syntax = subprocess.run([CXX, "-std=c++17", "-fsyntax-only", f"-I{out}", str(tmp_path / "use.cpp")],
                                capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr


def test_the_array_reads_back_into_litert_with_the_same_predictions_and_quantization(exported):
    from ai_edge_litert.interpreter import Interpreter

    model, out = exported
    source = (out / "model_data.c").read_text()
    array = bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", c_array(source, "edge_audio_model")))
    assert array == model.read_bytes()
    original, again = Interpreter(model_path=str(model)), Interpreter(model_content=array)
    header = (out / "model_data.h").read_text()
    clips = np.random.default_rng(0).integers(-128, 128, (8, *original.get_input_details()[0]["shape"][1:]))
    outputs = []
    for interpreter in (original, again):
        interpreter.allocate_tensors()
        detail, result = interpreter.get_input_details()[0], []
        for clip in clips:
            interpreter.set_tensor(detail["index"], clip[None].astype(np.int8))
            interpreter.invoke()
            result.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy())
        outputs.append(np.concatenate(result))
    assert np.array_equal(*outputs)
    scale, zero = original.get_input_details()[0]["quantization"]
    assert f"#define EDGE_AUDIO_INPUT_ZERO_POINT ({zero})" in header
    assert np.float32(re.search(r"EDGE_AUDIO_INPUT_SCALE ([\d.e-]+)f", header).group(1)) == np.float32(scale)


def test_the_front_end_arrays_are_the_front_ends(exported):
    _, out = exported
    card = json.loads((out / "model.card.json").read_text())
    front_end = LogMelFrontEnd(FeatureConfig(**card["front_end"]))
    source = (out / "front_end.c").read_text()
    assert np.array_equal(floats(c_array(source, "edge_audio_window")), front_end.window.numpy())
    assert np.array_equal(floats(c_array(source, "edge_audio_mel_filterbank")),
                          front_end.mel_filterbank.numpy().ravel())


def test_an_ethos_u_bundle_holds_the_file_vela_compiled_for_it(book_run, tmp_path):
    model = book_run.output / "models" / "mini_tflite_int8.tflite"
    result = run_cli("export", model, "--target", "ethos_u55_128", tmp_path / "npu")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "npu" / "manifest.json").read_text())
    compiled = compile_for_npu(model, NPU_TARGETS["ethos_u55_128"], tmp_path / "vela")
    source = (tmp_path / "npu" / "model_data.c").read_text()
    array = bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", c_array(source, "edge_audio_model")))
    assert array == (tmp_path / "vela" / "model_vela.tflite").read_bytes()
    assert manifest["operators"] == ["AddEthosU"] and manifest["vela"]["latency_ms"] == compiled["latency_ms"]
    assert manifest["arena_bytes"] >= compiled["sram_bytes"]
    record = next(r for r in load_results(book_run.output / "logs") if r["artifact"]["path"] == "models/" + model.name)
    assert record["npu"]["ethos_u55_128"]["arena_bytes"] == manifest["arena_bytes"]  # what the NPU budget checked
    assert "AddEthosU" in (tmp_path / "npu" / "README.md").read_text()


def test_a_wrong_model_target_or_folder_is_one_line_and_nothing_is_written(book_run, tmp_path, capsys):
    models = book_run.output / "models"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    cases = [((models / "mini_qat_int4.tflite", "ethos_u55_128", tmp_path / "a"), "4-bit weights"),
             ((models / "mini_tflite_int8.tflite", "cortex_m5", tmp_path / "b"), "not a device profile"),
             ((models / "mini_tflite_int8.tflite", "smart_speaker", tmp_path / "c"), "not a device profile"),
             ((models / "mini.onnx", "cortex_m4", tmp_path / "d"), "not a full-integer TFLite model"),
             ((models / "mini_ort_static.onnx", "cortex_m4", tmp_path / "g"), "not a full-integer TFLite model"),
             ((models / "nothing.tflite", "cortex_m4", tmp_path / "e"), "does not exist"),
             ((models / "mini_tflite_int8.tflite", "cortex_m4", tmp_path / "full"), "not an empty folder")]
    for (model, target, out), message in cases:  # in this process: the one-line handling is main()'s
        assert main(["export", str(model), "--target", target, str(out)]) == 2, target
        stderr = capsys.readouterr().err
        assert message in stderr and len(stderr.strip().splitlines()) == 1, (target, stderr)
        assert not out.exists() or out.name == "full"
    assert main(["export", str(models / "mini_qat_int4.tflite"), "--target", "cortex_m4", str(tmp_path / "f")]) == 0


def test_a_model_beside_another_models_card_or_not_a_tflite_file_is_refused(book_run, tmp_path, capsys):
    """Another model's file under this card's name (same class count, same kind) is refused by the card's SHA-256,
    and a file LiteRT cannot read is one line: no bundle folder is left behind."""
    from edge_audio.cards import read_card, write_card

    models = book_run.output / "models"
    swapped, garbage = tmp_path / "swapped", tmp_path / "garbage"
    swapped.mkdir(), garbage.mkdir()
    shutil.copy(models / "mini2_tflite_int8.tflite", swapped / "mini_tflite_int8.tflite")
    shutil.copy(models / "mini_tflite_int8.card.json", swapped)
    (garbage / "m.tflite").write_bytes(bytes(range(256)) * 20)
    write_card(read_card(models / "mini_tflite_int8.tflite"), garbage / "m.tflite")  # a card that matches it
    for model, message in ((swapped / "mini_tflite_int8.tflite", "is another file's card"),
                           (garbage / "m.tflite", "is not a readable TFLite model")):
        assert main(["export", str(model), "--target", "cortex_m4", str(tmp_path / "out")]) == 2
        stderr = capsys.readouterr().err
        assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
        assert not (tmp_path / "out").exists()


@pytest.mark.skipif(COMPILER is None, reason="no C compiler on this machine")
def test_the_bundle_builds_from_pcm_to_scores_without_tflite_micro(exported, tmp_path):
    """The bundle's generated network, kernels and front-end code, built alone: int16 PCM in, the scores the C
    front end and network give on the host out."""
    from edge_audio.firmware.build import C_FLAGS
    from edge_audio.firmware.front_end import compare_front_ends
    from edge_audio.firmware.network import generate
    model, out = exported
    main = tmp_path / "main.c"
    main.write_text('#include <stdio.h>\n#include "network.h"\n#include "front_end.h"\n'
                    "void edge_audio_classify(const int16_t *pcm, edge_audio_value_t *scores);\n"
                    "static int16_t pcm[EDGE_AUDIO_CLIP_SAMPLES];\n"
                    "int main(void) { edge_audio_value_t s[EDGE_AUDIO_NETWORK_OUTPUT_ELEMENTS];\n"
                    "  fread(pcm, sizeof pcm, 1, stdin); edge_audio_classify(pcm, s);\n"
                    "  for (int i = 0; i < EDGE_AUDIO_NETWORK_OUTPUT_ELEMENTS; ++i) printf(\"%d \", s[i]); return 0; }\n")
    sources = [str(p) for p in out.glob("*.c") if p.name != "model_data.c"]
    subprocess.run([COMPILER, *C_FLAGS, "-o", str(tmp_path / "app"), str(main), *sources, f"-I{out}", "-lm"],
                   check=True)
    card = json.loads((out / "model.card.json").read_text())
    waves = np.random.default_rng(3).uniform(-0.5, 0.5, (1, FeatureConfig(**card["front_end"]).num_samples))
    network = generate(model.read_bytes())
    pcm = np.clip(np.round(waves[0] * 32768), -32768, 32767).astype(np.int16)
    printed = subprocess.run([str(tmp_path / "app")], input=pcm.tobytes(), capture_output=True, check=True).stdout
    scores = np.array(printed.split(), np.int64)
    check = compare_front_ends(network, card["front_end"], waves[:1])
    assert np.array_equal(scores, check.c_scores[0])
