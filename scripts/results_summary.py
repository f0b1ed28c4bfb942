"""Write the results summary of a finished book run, and paste it into the README.

    python scripts/results_summary.py [--output-dir output] [--readme README.md]

Reads only what the run wrote: the executed chapters under ``<output>/notebooks`` (their glued values) and the
records of the frontier's context in ``<output>/logs/all_results.json``. Prints Markdown; with ``--readme`` it
replaces the README's text between ``<!-- results:start -->`` and ``<!-- results:end -->``. Every number in that
part of the README therefore comes from a run's files, never from memory.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_audio.book import glued_values
from edge_audio.frontier import learning_curve
from edge_audio.glue import counted
from edge_audio.paths import OutputLayout
from edge_audio.results import load_results
from edge_audio.stats import interval_text
from edge_audio.chapters.quantization import recommendations
from edge_audio.steps.quantization import QuantizationResult
from edge_audio.tables import accuracy_verdict, latency_verdict

START, END = "<!-- results:start -->", "<!-- results:end -->"
#: Published UrbanSound8K accuracies of small models (10-fold cross-validation, real recordings), for scale only:
#: models that fit a microcontroller reach about 70%; LD-CNN (Zhang et al., ICPR 2018) about 79%; ACDNet
#: (Mohaimenuzzaman et al., Pattern Recognition 2023) about 84%.
PUBLISHED_US8K = (("models that fit a microcontroller", 70.0), ("LD-CNN", 79.0), ("ACDNet", 84.0))


def benchmark(records: list[dict], margin: float) -> str:
    """The learning curve of the run's FP32 models (baselines and NAS finalists) in one paragraph: the accuracy
    range, the neighbouring pairs the comparison over seeds tells apart, and the published UrbanSound8K range beside it."""
    models = [r for r in records if r["variant"] == "fp32" and r.get("source") in (None, "nas_finalist")
              and "distillation" not in r]  # trained from labels alone, as the curve compares capacity
    ordered, neighbours = learning_curve(models, margin)
    low, high = min(ordered, key=lambda r: r["accuracy"]), max(ordered, key=lambda r: r["accuracy"])
    published = ", ".join(f"{name} about {value:g}%" for name, value in PUBLISHED_US8K)
    lowest, highest = min(v for _, v in PUBLISHED_US8K), max(v for _, v in PUBLISHED_US8K)
    where = ("below" if high["accuracy"] < lowest else "above" if high["accuracy"] > highest else "within")
    curve = "; ".join(f"{r['model']} {r['params'] / 1e3:.1f}k parameters: {r['accuracy']:.2f}% "
                      f"({interval_text(r['test'])})" for r in ordered)
    return (f"**The benchmark.** Across the run's {len(ordered)} FP32 models (baselines and NAS finalists), test "
            f"accuracy runs from {low['accuracy']:.2f}% ({low['model']}, {low['params']:,} parameters) to "
            f"{high['accuracy']:.2f}% ({high['model']}, {high['params']:,}): a span of "
            f"{high['accuracy'] - low['accuracy']:.1f} points, and the comparison over seeds tells apart "
            f"{sum(pair.resolved for pair in neighbours)} of the {len(neighbours)} neighbouring pairs along the "
            f"curve, over the {counted(len(ordered[0]['test']['seeds']), 'training seed')} (in order of parameters: {curve}). Published UrbanSound8K results for small models, on real "
            f"recordings: {published}; the run's most accurate model lies {where} that range ({lowest:g}-{highest:g}%). "
            "The synthetic set is designed so that accuracy grows with capacity, not to reproduce these numbers; its "
            "accuracies say nothing about how these models do on real recordings.")


def summary(output_dir: Path) -> str:
    """The Markdown summary of the run in ``output_dir``."""
    layout = OutputLayout.at(output_dir)
    notebooks = layout.root / "notebooks"
    glued = {name: glued_values(notebooks / f"{name}.ipynb") for name in ("02_baselines", "03_quantization",
                                                                          "04_nas", "05_frontier")}
    frontier, nas, quant = glued["05_frontier"], glued["04_nas"], glued["03_quantization"]
    records = load_results(layout.logs, frontier["fr_context"])
    baselines = [r for r in records if r["variant"] == "fp32" and r.get("source") is None]
    variants = [r for r in records if r.get("method") and r.get("source") is None]
    machine = baselines[0]["machine"]
    lines = [benchmark(records, float(quant["q_margin"])), "", f"Book run: {frontier['fr_dataset']}; {frontier['fr_protocol']}; {frontier['fr_features']}; "
             f"latency on {frontier['fr_machine']} (ISA: {', '.join(machine['isa'])}), "
             f"{counted(int(frontier['fr_threads']), 'thread')}, batch 1. Accuracy: test clips, the mean over training seeds "
             f"{baselines[0]['test']['seeds']} with a 95% interval that holds which clips and how training fell, n "
             "clips; *val*: the validation accuracy every pick is made on.", "",
             "| baseline | test accuracy (%) | 95% interval | n | val (%) | size (kB) | peak RAM (kB) | "
             "ONNX Runtime (ms) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | {r['accuracy']:.2f} | {interval_text(r['test'])} | {r['test']['n']} | "
              f"{r['val_accuracy']:.2f} | {r['size_bytes'] / 1e3:.1f} | {r['peak_ram_bytes'] / 1e3:.1f} | "
              f"{r['latency_ms']:.3f} |" for r in baselines]
    lines += ["", f"Every compressed variant against its own FP32 weights on the same test clips, paired per seed and "
              f"pooled over seeds (clip pairs: clips x seeds): the difference in points with its 95% "
              f"interval (Tango) and its verdict at the {quant['q_margin']}-point margin; latency timed interleaved, "
              "Wilcoxon signed-rank test with a 5% margin:", "",
              "| model | method | accuracy (%) | changed | variant - FP32 | size ratio | speedup | latency | "
              "peak RAM (kB) | flash (kB) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in variants:
        paired = r["paired"]["test"]
        lines.append(f"| {r['model']} | {r['method']} | {r['accuracy']:.2f} (FP32 {r['fp32']['accuracy']:.2f}) | "
                     f"{paired['changed']} of {paired['n']} | {accuracy_verdict(paired)} | "
                     f"{r['size_ratio']:.2f}x | {r['speedup']:.2f}x | {latency_verdict(r['latency_comparison'])} | "
                     f"{r['peak_ram_bytes'] / 1e3:.1f} | {r['flash_bytes'] / 1e3:.1f} |")
    tflite = [r for r in records if r.get("full_integer_tflite")]
    lines += ["", "Full-integer TFLite (every baseline and NAS finalist, every full-integer method): the planner's "
              "arena against TensorFlow Lite Micro's (its recording allocator, reference kernels; int4 weights are "
              "unpacked in it), the whole arena a firmware allocates (TFLite Micro's non-persistent and persistent "
              "sections and CMSIS-NN's scratch: what edge-audio export writes, and what RAM budgets check), and LiteRT "
              "latency against the FP32 TFLite twin:", "",
              "| model | method | accuracy (%) | verdict vs FP32 | flash (kB) | planner arena (kB) | TFLM arena "
              "(kB) | planner - TFLM | whole arena (kB) | LiteRT / FP32 (ms) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in tflite:
        tflm = r["memory"]["tflm"]
        lines.append(f"| {r['model']} | {r['method']} | {r['accuracy']:.2f} ({interval_text(r['test'])}) | "
                     f"{accuracy_verdict(r['paired']['test'])} | "
                     f"{r['flash_bytes'] / 1e3:.1f} | {r['memory']['arena_bytes'] / 1e3:.1f} | "
                     f"{tflm['head_bytes'] / 1e3:.1f} | {tflm['planner_difference_percent']:+.2f} % | "
                     f"{r['peak_ram_bytes'] / 1e3:.1f} | {r['latency_ms']:.3f} / {r['fp32']['latency_ms']:.3f} |")
    deploy = recommendations([QuantizationResult(r["model"], r["method"], r) for r in variants])
    lines += ["", "Deployment, decided on the validation folds: " + "; ".join(
        f"{model}: {row['deploy']}" + (f" ({row['speedup']:.2f}x faster, {row['size ratio']:.2f}x smaller)"
                                       if row["deploy"] != "fp32" else "") for model, row in deploy.iterrows()) + ".",
              "", f"- Best model, picked by validation accuracy: **{frontier['fr_best_model']}**, "
              f"{frontier['fr_best_acc']} % test accuracy (95% interval {frontier['fr_best_interval']}, "
              f"n = {frontier['fr_best_n']}); against it, {counted(int(frontier['fr_n_shown_within']), 'other variant')} "
              f"shown within the margin or no worse, {frontier['fr_n_worse']} resolvably less accurate, and "
              f"{frontier['fr_n_undetermined']} that the data cannot tell from it.",
              f"- Microcontroller ({frontier['fr_mcu_profile']}): **{frontier['fr_mcu_model']}** "
              f"({frontier['fr_mcu_acc']}): {frontier['fr_mcu_tradeoff']}. It needs {frontier['fr_mcu_memory']}.",
              f"- Small microcontroller ({frontier['fr_mcu_small_profile']}): **{frontier['fr_mcu_small_model']}** "
              f"({frontier['fr_mcu_small_acc']}): {frontier['fr_mcu_small_tradeoff']}. It needs "
              f"{frontier['fr_mcu_small_memory']}.",
              f"- Ethos-U55 NPU ({frontier['fr_npu_profile']}): **{frontier['fr_npu_model']}** "
              f"({frontier['fr_npu_acc']}): {frontier['fr_npu_tradeoff']}. It needs {frontier['fr_npu_memory']}.",
              f"- The Cortex-M latency estimate and the stack: {frontier['fr_m4_spread']}. Vela compiled "
              f"{quant['npu_compiled']} full-integer variants ({quant['npu_all_on_npu']} with every operator on the "
              f"NPU; not compiled: {quant['npu_failures']}).",
              f"- Budgets: {frontier['fr_n_within']} of {frontier['fr_n_models']} variants qualify; the pick is "
              f"**{frontier['fr_budget_model']}** ({frontier['fr_budget_acc']}).",
              f"- NSGA-II against random search over the seeds {nas['nas_seeds']}: {nas['nas_winner']}. "
              f"Baselines a NAS finalist dominates: {nas['nas_dominated']}. With the weights' bit width searched "
              f"({nas['nas_bits']}), {nas['nas_int4_trials']} drew 4 bits and {nas['nas_int4_finalists']} kept "
              f"them; finalists trained {nas['nas_distilled']}"
              + (f", distilled against labels alone: {nas['nas_kd_verdicts']}" if nas["nas_kd_verdicts"] != "none"
                 else "") + ".",
              f"- Bit widths (full-integer TFLite, chapter 3): models post-training quantization makes resolvably "
              f"less accurate against FP32, by bits of weights (w) and activations (a): {quant['bits_ptq_worse']}; "
              f"its loss is first resolvable at {quant['bits_first_resolvable']}. Of the {quant['qat_lossy']} with a "
              f"resolvable loss, quantization-aware training recovered at least half of it, resolvably, for "
              f"{quant['qat_won_back']}; QAT is also further training: {quant['qat8_sentence']}. 4-bit files "
              f"are at least {quant['int4_min_ratio']}x smaller than 8-bit ones over 50k parameters, and need up to "
              f"{quant['int4_ram_growth']}x the peak RAM (TensorFlow Lite Micro unpacks each layer's weights).",
              f"- Compressed variants against FP32, of {quant['n_variants']}: {quant['n_acc_within']} shown within the "
              f"margin, {quant['n_acc_no_worse']} no worse than it below, {quant['n_acc_no_better']} no better than "
              f"it by more than the margin (a larger loss not ruled out), {quant['n_acc_loss']} resolvably less "
              f"accurate, {quant['n_acc_gain']} resolvably more accurate, {quant['n_acc_undetermined']} undetermined (the hardest would need about "
              f"{quant['q_clips_to_decide']} clips); {quant['n_faster']} resolvably faster, {quant['n_slower']} "
              "resolvably slower."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=None)
    parser.add_argument("--readme", type=Path, default=None)
    args = parser.parse_args()
    text = summary(args.output_dir)
    if args.readme is None:
        sys.stdout.write(text)
        return
    readme = args.readme.read_text(encoding="utf-8")
    if START not in readme or END not in readme:
        sys.exit(f"{args.readme} has no {START} ... {END} section")
    head, rest = readme.split(START, 1)
    args.readme.write_text(head + START + "\n" + text + END + rest.split(END, 1)[1], encoding="utf-8")
    print(f"pasted the results of {OutputLayout.at(args.output_dir).root} into {args.readme}")


if __name__ == "__main__":
    main()
