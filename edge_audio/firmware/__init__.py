"""Firmware: the model as dependency-free C (:mod:`.network`), the front end as C (:mod:`.front_end`), built for the
host and cross-built for emulated Cortex-M boards (:mod:`.boards`, :mod:`.build`).

The C is the project's own (``c/``: the integer kernels, the front end, a board's start-up and harness); nothing
from TensorFlow Lite Micro, CMSIS or a vendor is compiled in, fetched or committed. Why QEMU and Debian's Arm
toolchain, how instructions are counted and what a latency from them means: :mod:`.boards`. Adding a board is one
:data:`.boards.BOARDS` entry (QEMU's machine, the core's flags, its memory map and cycles-per-instruction range).
"""
