"""Building and running the generated network: on the host (the system's C compiler), on an emulated board
(:mod:`.boards`), and TensorFlow Lite Micro's reference kernels on the same inputs, to compare byte for byte.

A board run is cached (:func:`edge_audio.storage.cached`) by everything that changes it: the generated sources and
the kernels' bytes, the inputs' bytes, the board, the SIMD switch and the versions of the compiler and the emulator.
An image that faults prints the fault registers and ends; one that hangs is stopped after ``timeout`` seconds;
both raise :class:`EmulationError` with what was seen.
"""
from __future__ import annotations

import functools
import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..storage import cached
from .boards import BOARDS, CROSS_COMPILER, EMULATOR, Board, linker_script, require_tools
from .network import KERNEL_DIR, Network, kernel_sources

BOARD_DIR = KERNEL_DIR / "board"
#: Flags of every build: C99, optimised, and no fused multiply-add contraction (TFLite's float arithmetic).
C_FLAGS = ("-std=c99", "-O2", "-ffp-contract=off")
CROSS_FLAGS = ("-mthumb", "-ffunction-sections", "-fdata-sections", "-DEA_LAYER_HOOK=ea_layer_done")
LINK_FLAGS = ("-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections")


class EmulationError(RuntimeError):
    """An image that did not finish in the emulator: it faulted (the fault registers are in the message), hung past
    its timeout, or printed what the host cannot read."""


def host_compiler() -> str:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        require_tools("cc")
    return compiler


def write_sources(network: Network, folder: Path) -> list[Path]:
    """The generated network and the kernels in ``folder``; returns the C files to compile."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {**network.sources, **kernel_sources()}.items():
        (folder / name).write_text(text, encoding="utf-8")
    return [folder / "network.c", folder / "ea_nn.c"]


def _compile(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed on the generated C:\n{result.stderr[-3000:]}")


def host_outputs(network: Network, inputs: np.ndarray, cache_root: Path | None = None) -> np.ndarray:
    """The generated network's outputs for ``inputs`` (clips x input elements), compiled and run on the host (the
    kernels' object cached under ``cache_root`` when given)."""
    with tempfile.TemporaryDirectory(prefix="edge-audio-host-") as scratch:
        folder = Path(scratch)
        sources = write_sources(network, folder)
        if cache_root is not None:
            sources = [sources[0], *_cached_objects(host_compiler(), list(C_FLAGS), ("ea_nn",), cache_root, "host")]
        binary = folder / "network"
        _compile([host_compiler(), *C_FLAGS, "-Wall", "-o", str(binary), *map(str, sources),
                  str(KERNEL_DIR / "host_main.c"), f"-I{folder}", "-lm"])
        (folder / "inputs.bin").write_bytes(np.ascontiguousarray(inputs, network.input.dtype).tobytes())
        subprocess.run([str(binary), str(folder / "inputs.bin"), str(folder / "outputs.bin")], check=True)
        return np.frombuffer((folder / "outputs.bin").read_bytes(), network.output.dtype).reshape(len(inputs), -1)


def tflm_outputs(model: Path, inputs: np.ndarray) -> np.ndarray:
    """TensorFlow Lite Micro's outputs (its Python interpreter: the reference kernels) for ``inputs``."""
    from tflite_micro.python.tflite_micro import runtime

    from ..runtimes.base import captured_stderr
    from ..runtimes.tflm import INTERPRETER_ARENA_BYTES

    with captured_stderr():
        interpreter = runtime.Interpreter.from_file(str(model), arena_size=INTERPRETER_ARENA_BYTES)
        details = interpreter.get_input_details(0)
        outputs = []
        for clip in inputs:
            interpreter.set_input(np.asarray(clip, details["dtype"]).reshape(details["shape"]), 0)
            interpreter.invoke()
            outputs.append(interpreter.get_output(0).reshape(-1).copy())
    return np.stack(outputs)


@functools.lru_cache(maxsize=None)
def _tool_version(tool: str) -> str:
    return subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.splitlines()[0]


@dataclass
class BoardRun:
    """One image run on an emulated board: the outputs, instructions per inference and per layer (mean over the
    inputs), the stack's high-water mark, and the network's flash and RAM read from the linked objects."""

    board: str
    simd: bool
    outputs: np.ndarray
    instructions: list[int]
    layer_instructions: list[float]
    stack_bytes: int
    flash_bytes: int  # the network's code, weights and constants (network.o + ea_nn.o: .text, .rodata, .data)
    ram_bytes: int  # its static RAM (.data, .bss: the arena) + the stack it used
    image_flash_bytes: int  # the whole image's code and constants (start-up and harness included)
    seconds: float  # wall time of the emulator

    @property
    def mean_instructions(self) -> float:
        return float(np.mean(self.instructions))


def _inputs_header(network: Network, inputs: np.ndarray) -> str:
    rows = ",\n".join("    {" + ", ".join(str(int(v)) for v in clip.reshape(-1)) + "}" for clip in inputs)
    return (f"/* Generated by edge-audio: the inputs the board runs. */\n#include <stdint.h>\n"
            f"#define EA_INPUT_COUNT {len(inputs)}u\n"
            f"static const {network.input.ctype} ea_inputs[{len(inputs)}][{inputs[0].size}] = {{\n{rows}\n}};\n")


def _section_sizes(objects: list[Path]) -> dict[str, int]:
    """Bytes per section kind over ``objects`` (arm-none-eabi-size's Berkeley totals)."""
    result = subprocess.run(["arm-none-eabi-size", "-t", *map(str, objects)], capture_output=True, text=True,
                            check=True)
    text, data, bss = (int(v) for v in result.stdout.strip().splitlines()[-1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def _parse(stdout: str, network: Network, count: int) -> dict:
    fault = re.search(r"FAULT .*", stdout)
    if fault:
        raise EmulationError(f"the image faulted: {fault.group(0)}")
    numbers: dict[str, list[int]] = {}
    outputs = []
    for line in stdout.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "output":
            outputs.append(bytes.fromhex(value))
        elif value.isdigit():
            numbers.setdefault(key, []).append(int(value))
    if len(outputs) != count or "calibration_ticks" not in numbers:
        raise EmulationError(f"the image printed {len(outputs)} of {count} outputs; its last words: {stdout[-300:]!r}")
    per_tick = numbers["calibration_instructions"][0] / numbers["calibration_ticks"][0]
    return {"outputs": [o.hex() for o in outputs],
            "instructions": [round(t * per_tick) for t in numbers["inference_ticks"]],
            "layer_instructions": [t * per_tick / count for t in numbers["layer_ticks"]],
            "stack_bytes": numbers["stack_bytes"][0], "instructions_per_tick": per_tick}


def _cached_objects(compiler: str, flags: list[str], names: tuple[str, ...], cache_root: Path,
                    label: str) -> list[Path]:
    """The objects of the model-independent sources ``names`` (the kernels; a board's start-up) compiled by
    ``compiler`` with ``flags``: once per sources, flags and compiler, cached under ``cache_root``."""
    sources = {**kernel_sources(), "startup.c": (BOARD_DIR / "startup.c").read_text(encoding="utf-8")}
    key = {"sources": hashlib.sha256("\0".join(f"{k}\0{v}" for k, v in sorted(sources.items())).encode()).hexdigest(),
           "names": list(names), "flags": flags, "compiler": _tool_version(compiler)}

    def compile_them(folder: Path) -> dict:
        with tempfile.TemporaryDirectory(prefix="edge-audio-kernels-") as scratch:
            for name, text in sources.items():
                (Path(scratch) / name).write_text(text, encoding="utf-8")
            for name in names:
                _compile([compiler, *flags, f"-I{scratch}", "-c", "-o", str(folder / f"{name}.o"),
                          str(Path(scratch) / f"{name}.c")])
        return {}

    entry = cached(cache_root, key, compile_them, name=f"kernels-{label}")
    return [entry.file(f"{name}.o") for name in names]


def board_run(network: Network, inputs: np.ndarray, board_name: str, cache_root: Path, simd: bool = True,
              timeout: float = 120.0) -> BoardRun:
    """Cross-compile ``network`` with ``inputs`` embedded for the board ``board_name``, run it in the emulator and
    read what it printed (see the module docstring); cached under ``cache_root``."""
    require_tools(CROSS_COMPILER, EMULATOR)
    target: Board = BOARDS[board_name]
    inputs = np.ascontiguousarray(inputs, network.input.dtype).reshape(len(inputs), -1)
    sources = {**network.sources, **kernel_sources(),
               **{p.name: p.read_text(encoding="utf-8") for p in sorted(BOARD_DIR.glob("*.c"))}}
    key = {"sources": hashlib.sha256("\0".join(f"{k}\0{v}" for k, v in sorted(sources.items())).encode()).hexdigest(),
           "inputs": hashlib.sha256(inputs.tobytes()).hexdigest(), "board": target.name, "machine": target.machine,
           "flags": [*C_FLAGS, *CROSS_FLAGS, *LINK_FLAGS, *target.flags], "simd": simd,
           "compiler": _tool_version(CROSS_COMPILER), "emulator": _tool_version(EMULATOR)}

    def compute(folder: Path) -> dict:
        import time

        with tempfile.TemporaryDirectory(prefix="edge-audio-board-") as scratch:
            work = Path(scratch)
            write_sources(network, work)
            (work / "inputs.h").write_text(_inputs_header(network, inputs), encoding="utf-8")
            (work / "board.ld").write_text(linker_script(target), encoding="utf-8")
            flags = [*C_FLAGS, *target.flags, *CROSS_FLAGS, f"-I{work}", *([] if simd else ["-DEA_PLAIN_C"])]
            kernels, startup = _cached_objects(CROSS_COMPILER, [*C_FLAGS, *target.flags, *CROSS_FLAGS,
                                                                *([] if simd else ["-DEA_PLAIN_C"])],
                                               ("ea_nn", "startup"), cache_root,
                                               f"{target.name}{'' if simd else '-plain'}")
            network_object = work / "network.o"
            _compile([CROSS_COMPILER, *flags, "-c", "-o", str(network_object), str(work / "network.c")])
            image = folder / "image.elf"
            _compile([CROSS_COMPILER, *flags, *LINK_FLAGS, "-T", str(work / "board.ld"), "-o", str(image),
                      str(network_object), str(kernels), str(startup), str(BOARD_DIR / "board_main.c")])
            network_sizes = _section_sizes([network_object, kernels])
        image_sizes = _section_sizes([image])
        command = [EMULATOR, "-M", target.machine, "-nographic", "-monitor", "none", "-serial", "none",
                   "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(image)]
        start = time.perf_counter()
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            seen = (exc.stdout or b"")[-200:]
            raise EmulationError(f"the image on {target.name} ({target.machine}) did not finish in {timeout:g} s "
                                 f"(stopped); its last words: {seen!r}") from None
        printed = result.stdout + result.stderr  # semihosting writes to the emulator's standard error
        parsed = _parse(printed, network, len(inputs))
        if result.returncode != 0:
            raise EmulationError(f"the image on {target.name} ended with status {result.returncode}: "
                                 f"{printed[-300:]!r}")
        return {**parsed, "seconds": time.perf_counter() - start,
                "flash_bytes": network_sizes["text"] + network_sizes["data"],
                "ram_bytes": network_sizes["data"] + network_sizes["bss"] + parsed["stack_bytes"],
                "image_flash_bytes": image_sizes["text"] + image_sizes["data"]}

    value = cached(cache_root, key, compute, name=f"board-{target.name}").value
    outputs = np.stack([np.frombuffer(bytes.fromhex(o), network.output.dtype) for o in value["outputs"]])
    return BoardRun(target.name, simd, outputs, value["instructions"], value["layer_instructions"],
                    value["stack_bytes"], value["flash_bytes"], value["ram_bytes"], value["image_flash_bytes"],
                    value["seconds"])
