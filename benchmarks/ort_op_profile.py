"""Where ONNX Runtime spends a preset's single-thread inference, operator by operator, in FP32 and static INT8.

    python benchmarks/ort_op_profile.py [--models tiny ds_cnn] [--runs 300]

For each preset (untrained: time does not depend on the weights' values) it exports the FP32 ONNX file as the
book does, quantizes it like ``ort_static`` (QDQ, per-channel, ``reduce_range`` following the CPU), runs both in
ONNX Runtime with its profiler on (one thread, batch 1, all graph optimisations) and prints the time per kernel
per inference: every convolution on its own line (input shape, and whether ONNX Runtime runs it as an INT8
``QLinearConv`` or a float ``Conv``), the other operators summed by type. This is what found that the first
convolution, with one input channel, is the INT8 graph's most expensive operator.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_audio.features import FeatureConfig
from edge_audio.export import export_to_onnx
from edge_audio.machine import cpu_int8_dot_product, cpu_name
from edge_audio.models import PRESETS, preset_spec, untrained_like_trained
from edge_audio.quantize import quantize_onnx_static


def kernel_times(path: Path, shape: tuple[int, ...], runs: int) -> list[tuple[str, str, float]]:
    """(operator, input shape, milliseconds per inference) of every kernel ONNX Runtime ran, in graph order."""
    options = ort.SessionOptions()
    options.enable_profiling, options.intra_op_num_threads, options.inter_op_num_threads = True, 1, 1
    options.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)
    feed = {session.get_inputs()[0].name: x}
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    total, order, meta = defaultdict(float), [], {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        name = event["name"]
        if name not in meta:
            order.append(name)
            inputs = event["args"].get("input_type_shape", [])
            meta[name] = (event["args"]["op_name"], str(list(inputs[0].values())[0]) if inputs else "")
        total[name] += event["dur"] / 1000.0 / runs
    return [(*meta[name], total[name]) for name in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    shape = (1, *FeatureConfig().shape)
    print(f"{cpu_name()}; ONNX Runtime {ort.__version__}, one thread, batch 1, input {shape}; ms per inference")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            model = untrained_like_trained(preset_spec(name))
            fp32 = export_to_onnx(model, Path(scratch) / f"{name}.onnx", input_shape=(1, *shape))
            calibration = np.random.default_rng(0).standard_normal((8, *shape)).astype(np.float32)
            int8 = quantize_onnx_static(fp32, Path(scratch) / f"{name}_int8.onnx", calibration,
                                        reduce_range=not cpu_int8_dot_product())
            for label, path in (("FP32", fp32), ("INT8", int8)):
                kernels = kernel_times(Path(path), shape, args.runs)
                print(f"\n{name} {label}: {sum(ms for _, _, ms in kernels):.3f} ms in kernels")
                others = defaultdict(float)
                for op, input_shape, ms in kernels:
                    if "Conv" in op:
                        print(f"  {op:<14} {input_shape:<18} {ms:7.3f}")
                    else:
                        others[op] += ms
                for op, ms in sorted(others.items(), key=lambda item: -item[1]):
                    print(f"  {op:<33} {ms:7.3f}")


if __name__ == "__main__":
    main()
