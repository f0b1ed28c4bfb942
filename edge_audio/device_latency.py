"""Latency on a microcontroller, estimated from MACs: cycles per MAC measured by published MLPerf Tiny results.

This machine is not a microcontroller, so a device latency can only be estimated. The estimate is

    latency = MACs x cycles per MAC / clock,

with one cycles-per-MAC constant per (core, inference stack), derived from a published MLPerf Tiny result: the
keyword-spotting benchmark's DS-CNN (:func:`mlperf_tiny_kws_dscnn`, the reference model: 49 x 10 MFCC input, a
10 x 4 stride-2 convolution and four depthwise-separable blocks of 64 channels) run on a named board at a named
clock, throughput as the submission's ``results.txt`` reports it. Its MACs are counted with the package's own
counter (:func:`edge_audio.profile.count_macs`), as every model's are, so the constant and the estimate count
alike. It is an estimate: the constant is one model's average, and layer shapes, memory wait states and the
kernels' efficiency on other shapes move real latencies away from it (MLPerf Tiny's image-classification ResNet
runs at a different cycles-per-MAC on the same boards). ``benchmarks/mcu_cycles_per_mac.py`` prints the
derivation.
"""
from __future__ import annotations

from dataclasses import dataclass

#: The KWS reference model's input: 49 frames x 10 MFCC (16 kHz, 1 s, 30 ms window, 20 ms stride).
KWS_INPUT = (1, 49, 10)
KWS_CLASSES = 12


@dataclass(frozen=True)
class PublishedResult:
    """One published MLPerf Tiny keyword-spotting performance result."""

    board: str
    core: str
    clock_hz: float
    stack: str
    throughput: float  # inferences per second, the submission's median
    source: str  # repository and path of the submission's results file

    @property
    def latency_ms(self) -> float:
        return 1000.0 / self.throughput


#: The results the constants come from (MLPerf Tiny closed division, keyword spotting), oldest round first per core.
#: Two stacks on one core disagree by a factor (Cortex-M4: TFLite Micro's reference kernels, microTVM with CMSIS-NN,
#: X-CUBE-AI 10.2 at 5.5, 10.0 and 23.0 inferences per second): the spread an estimate carried over by MACs inherits.
PUBLISHED = {
    "cortex_m4_tflm_reference": PublishedResult(
        "NUCLEO-L4R5ZI", "Cortex-M4", 120e6, "TensorFlow Lite Micro 2.3.1 (the v0.5 reference submission)", 5.497,
        "mlcommons/tiny_results_v0.5: closed/reference/results/Nucleo-L4R5ZI/kws/performance/results.txt"),
    "cortex_m4_cmsis_nn": PublishedResult(
        "NUCLEO-L4R5ZI", "Cortex-M4", 120e6, "microTVM with CMSIS-NN kernels (OctoML, v1.0)", 10.019,
        "mlcommons/tiny_results_v1.0: closed/OctoML/results/microtvm_cmsis_nn/NUCLEO_L4R5ZI/kws/performance/"
        "results.txt"),
    "cortex_m4_xcube_ai": PublishedResult(
        "NUCLEO-L4R5ZI-P", "Cortex-M4", 120e6, "X-CUBE-AI 10.2 (STMicroelectronics, v1.3)", 23.032,
        "mlcommons/tiny_results_v1.3: closed/STMicroelectronics/results/NUCLEO_L4R5ZI-P/kws/performance/results.txt"),
    "cortex_m7_xcube_ai_7": PublishedResult(
        "NUCLEO-H7A3ZI-Q", "Cortex-M7", 280e6, "X-CUBE-AI 7.3.0 (STMicroelectronics, v1.0)", 59.667,
        "mlcommons/tiny_results_v1.0: closed/STMicroelectronics/results/NUCLEO-H7A3ZI-Q/kws/performance/"
        "results.txt"),
    "cortex_m7_xcube_ai": PublishedResult(
        "NUCLEO-H7A3ZI-Q", "Cortex-M7", 280e6, "X-CUBE-AI 9.0.0 (STMicroelectronics, v1.2)", 88.356,
        "mlcommons/tiny_results_v1.2: closed/STMicroelectronics/results/NUCLEO_H7A3ZI_Q/kws/performance/results.txt"),
}
#: The newest result per core (what the ``cortex_m7`` profile uses; ``cortex_m4`` keeps the open CMSIS-NN kernels
#: a TensorFlow Lite Micro build links, and ``cortex_m4_xcube_ai`` has the newest M4 result).
NEWEST = {"Cortex-M4": "cortex_m4_xcube_ai", "Cortex-M7": "cortex_m7_xcube_ai"}


def mlperf_tiny_kws_dscnn():
    """The MLPerf Tiny keyword-spotting DS-CNN (``mlcommons/tiny``, ``training/keyword_spotting/keras_model.py``)
    rebuilt in PyTorch for counting its MACs: conv 64 x (10 x 4), stride 2, "same" (25 x 5 out); four blocks of
    depthwise 3 x 3 and pointwise 1 x 1, 64 channels, each with BatchNorm and ReLU; average pooling; dense 12."""
    from torch import nn

    # TensorFlow's "same" padding of a 10 x 4 kernel at stride 2 on 49 x 10: 4 above, 5 below, 1 left and right
    layers = [nn.ZeroPad2d((1, 1, 4, 5)), nn.Conv2d(1, 64, (10, 4), stride=2), nn.BatchNorm2d(64), nn.ReLU()]
    for _ in range(4):
        layers += [nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.BatchNorm2d(64), nn.ReLU(),
                   nn.Conv2d(64, 64, 1), nn.BatchNorm2d(64), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, KWS_CLASSES)]
    return nn.Sequential(*layers).eval()


def kws_macs() -> int:
    """MACs of :func:`mlperf_tiny_kws_dscnn` at batch 1, counted as every model of the book is counted."""
    from .profile import count_macs

    return count_macs(mlperf_tiny_kws_dscnn(), KWS_INPUT)["macs"]


def cycles_per_mac(result: PublishedResult, macs: int) -> float:
    """Cycles per MAC of a published result: clock / throughput / MACs."""
    return result.clock_hz / result.throughput / macs


def estimated_latency_ms(macs: int, clock_hz: float, cycles: float) -> float:
    """The estimated latency (ms) of a model of ``macs`` MACs on a core at ``clock_hz`` running ``cycles`` cycles
    per MAC."""
    return 1000.0 * macs * cycles / clock_hz
