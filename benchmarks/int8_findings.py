"""Reproduce the README's INT8 findings on this machine: S8S8 vs U8S8 activations, 8-bit vs 7-bit weights
(``reduce_range``), QDQ vs QOperator, each against its FP32 twin on the same test clips.

    python benchmarks/int8_findings.py [--output-dir output] [-p NAME VALUE ...] [--runs 200]

Reuses a finished book run (default: the book's parameters and ``output/``; pass the same ``-p`` values as that
run): the baselines and their FP32 ONNX files come from its caches, nothing is retrained. For every baseline and
every static INT8 configuration, it quantizes the deployed FP32 ONNX model (calibrated on the training folds, as
chapter 3 does), scores it on the test fold, compares it with FP32 on the same clips (changed predictions, exact
McNemar p) and times it interleaved with FP32 (ONNX Runtime, one thread, batch 1). It prints the CPU and its
instruction sets first: the saturation finding depends on them (AVX2 without VNNI multiplies with
``vpmaddubsw``, whose 16-bit pair sums overflow with 8-bit weights).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml

from edge_audio.machine import cpu_int8_dot_product, machine_identity
from edge_audio.settings import Settings, book_values
from edge_audio.profile import compare_latency
from edge_audio.runtimes import open_model
from edge_audio.quantize import calibration_set, evaluate_onnx, quantize_onnx_static
from edge_audio.stats import paired_difference
from edge_audio.steps.baselines import train_baselines
from edge_audio.steps.data import prepare_data

#: name -> keyword arguments of quantize_onnx_static
CONFIGURATIONS = {
    "S8S8 QDQ, 8-bit weights": dict(reduce_range=False),
    "S8S8 QDQ, 7-bit weights (reduce_range)": dict(reduce_range=True),
    "U8S8 QDQ, 7-bit weights": dict(reduce_range=True, activations="uint8"),
    "U8S8 QOperator, 7-bit weights": dict(reduce_range=True, activations="uint8", quant_format="qoperator"),
    "S8S8 QOperator, 7-bit weights": dict(reduce_range=True, quant_format="qoperator"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--runs", type=int, default=200, help="interleaved timed calls per pair")
    args = parser.parse_args()
    values = {**book_values(), "output_dir": args.output_dir,
              **{name: yaml.safe_load(value) for name, value in args.parameter}}
    settings = Settings(**values)
    data = prepare_data(settings)
    identity = machine_identity()
    print(f"CPU: {identity['cpu']}; ISA: {', '.join(identity['isa'])}; INT8 dot product: "
          f"{'yes' if cpu_int8_dot_product() else 'no'}")
    print("| model | configuration | test accuracy (%) | FP32 (%) | changed | McNemar p | speedup (interleaved) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for baseline in train_baselines(data, settings):
        run = baseline.deployed_run
        x_train, _ = data.features.select(run.split.train_folds)
        x_test, y_test = data.features.select([run.split.test_fold])
        calibration = calibration_set(x_train, settings.calibration_size, seed=settings.seed)
        fp32 = evaluate_onnx(baseline.onnx_path, x_test, y_test, data.num_classes)
        with tempfile.TemporaryDirectory() as scratch:
            for name, options in CONFIGURATIONS.items():
                path = quantize_onnx_static(baseline.onnx_path, Path(scratch) / "int8.onnx", calibration,
                                           settings.calibration_method, **options)
                int8 = evaluate_onnx(path, x_test, y_test, data.num_classes)
                paired = paired_difference(int8, fp32, settings.accuracy_margin)
                timing = compare_latency(open_model(path).call(), open_model(baseline.onnx_path).call(), args.runs)
                speedup = timing["twin"]["median_ms"] / timing["latency"]["median_ms"]
                print(f"| {baseline.name} | {name} | {int8['accuracy']:.2f} | {fp32['accuracy']:.2f} | "
                      f"{paired['changed']} of {paired['n']} | {paired['p_value']:.3g} | {speedup:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
