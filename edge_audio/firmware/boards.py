"""The emulated boards the generated C runs on, and the tools that build and run it.

**Decision: Debian's ``gcc-arm-none-eabi`` and ``qemu-system-arm`` over PyPI's ``ziglang`` and ``unicorn``.** QEMU
emulates whole Arm development boards (MPS2 AN386: Cortex-M4; AN500: Cortex-M7; MPS3 AN547: Cortex-M55 with
Helium): the image runs from its reset vector with the board's memory map, SysTick and fault handling, as it would
on the FPGA board, and prints over semihosting. Unicorn emulates a CPU only (no board, no exceptions) and counts by
a Python hook per instruction, thousands of times slower at the millions of instructions of one inference; zig's
clang would need a C library for Thumb, which newlib (Debian's ``libnewlib-arm-none-eabi``) already is, built for
every M-profile variant. GCC 12 knows the M4's and M7's DSP instructions (ACLE ``__smlad``) and the M55's Helium
(``arm_mve.h``).

**Counting instructions.** QEMU runs with ``-icount shift=0``: every instruction advances the virtual clock by the
same time, so a timer on that clock counts instructions. The image reads the core's SysTick (processor clock)
around every inference and layer and first times a loop of known length (two instructions per iteration); the
ratio of the two gives instructions per tick, so the count does not depend on the board's clock frequency. The
resolution is one tick (25 to 40 instructions); an inference is millions.

**Latency** = instructions x cycles per instruction / the profile's clock. QEMU does not model the pipeline, wait
states or caches, so the cycles per instruction are a stated range per core (:attr:`Board.cpi`), not a
measurement: Cortex-M4 1.0 to 1.6 (single issue; loads and taken branches cost 2 to 3 cycles), Cortex-M7 0.6 to 1.3
(dual issue, but flash wait states without its caches), Cortex-M55 0.8 to 1.6 (Helium beats overlap, a
single-issue scalar pipe).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass

from ..errors import UserError

#: The Debian packages the firmware needs (``make firmware-tools`` installs them where it can).
DEBIAN_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
CROSS_COMPILER = "arm-none-eabi-gcc"
EMULATOR = "qemu-system-arm"


class ToolMissingError(UserError):
    """A compiler or the emulator the firmware needs is not installed (named in the message, with the install)."""


@dataclass(frozen=True)
class Region:
    origin: int
    length: int


@dataclass(frozen=True)
class Board:
    """An emulated board: QEMU's machine, the core and its compiler flags, where code, constants and RAM live, and
    the stated cycles-per-instruction range of the core."""

    name: str
    machine: str
    core: str
    flags: tuple[str, ...]
    code: Region  # the vector table and code (the reset vector is read at its origin)
    constants: Region  # weights and other read-only data ("flash")
    ram: Region  # .data, .bss (the arena) and the stack
    cpi: tuple[float, float]
    stack_bytes: int = 32 * 1024


MiB = 1024 * 1024
BOARDS: dict[str, Board] = {board.name: board for board in [
    Board("cortex_m4", "mps2-an386", "Cortex-M4", ("-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
          Region(0x00000000, 2 * MiB), Region(0x00200000, 2 * MiB), Region(0x20000000, 4 * MiB), (1.0, 1.6)),
    Board("cortex_m7", "mps2-an500", "Cortex-M7", ("-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"),
          Region(0x00000000, 2 * MiB), Region(0x00200000, 2 * MiB), Region(0x20000000, 4 * MiB), (0.6, 1.3)),
    Board("cortex_m55", "mps3-an547", "Cortex-M55", ("-mcpu=cortex-m55", "-mfloat-abi=hard"),
          Region(0x00000000, 512 * 1024), Region(0x01000000, 2 * MiB), Region(0x21000000, 4 * MiB), (0.8, 1.6)),
]}


def board(name: str) -> Board:
    """The board named ``name``, or a one-line :class:`~edge_audio.errors.ParameterError`."""
    from ..errors import ParameterError

    if name not in BOARDS:
        raise ParameterError(f"unknown emulated board {name!r}; choose from {', '.join(BOARDS)}")
    return BOARDS[name]


def missing_tools(*tools: str) -> str | None:
    """The one line saying which of ``tools`` (default: the cross compiler and the emulator) are not on the PATH
    and how to get them; None when all are there."""
    missing = [tool for tool in tools or (CROSS_COMPILER, EMULATOR) if shutil.which(tool) is None]
    if not missing:
        return None
    return (f"{', '.join(missing)} not found: install Debian's {' '.join(DEBIAN_PACKAGES)} (`make firmware-tools` as "
            f"root, or `sudo apt-get install -y {' '.join(DEBIAN_PACKAGES)}`)")


def require_tools(*tools: str) -> None:
    """Raise :class:`ToolMissingError` naming every tool of ``tools`` that is not on the PATH, and how to get it."""
    why = missing_tools(*tools)
    if why:
        raise ToolMissingError(why)


def tools_present() -> bool:
    return missing_tools() is None


def linker_script(target: Board) -> str:
    """The image's memory layout on ``target``: vectors and code, constants, then data, .bss and the stack."""
    return f"""/* Generated by edge-audio for {target.machine} ({target.core}). */
MEMORY {{
  CODE (rx) : ORIGIN = {target.code.origin:#x}, LENGTH = {target.code.length:#x}
  CONST (r) : ORIGIN = {target.constants.origin:#x}, LENGTH = {target.constants.length:#x}
  RAM (rwx) : ORIGIN = {target.ram.origin:#x}, LENGTH = {target.ram.length:#x}
}}
ENTRY(ea_reset_handler)
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) }} > CODE
  .rodata : {{ *(.rodata*) . = ALIGN(4); }} > CONST
  .ARM.exidx : {{ *(.ARM.exidx*) }} > CONST
  .data : ALIGN(16) {{ _data_start = .; *(.data*) . = ALIGN(4); _data_end = .; }} > RAM AT > CONST
  _data_load = LOADADDR(.data);
  .bss (NOLOAD) : ALIGN(16) {{ _bss_start = .; *(.bss*) *(COMMON) . = ALIGN(4); _bss_end = .; }} > RAM
  .stack (NOLOAD) : ALIGN(8) {{ _stack_limit = .; . += {target.stack_bytes}; _stack_top = .; }} > RAM
}}
"""
