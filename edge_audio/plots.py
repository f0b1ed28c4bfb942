"""Figures the chapters show. Each function draws one figure from the data it is given and returns it; none of them
computes an analysis of its own. A figure written under ``reports/`` is drawn once, by the step that owns it, and
saved with :func:`save_figure`; its chapter displays that same figure."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

import functools
from pathlib import Path

from .data import Dataset, ValidationReport
from .features import FeatureConfig, LogMelFrontEnd, load_audio
from .quantize import METHODS

def save_figure(figure: plt.Figure, path: Path) -> plt.Figure:
    """Write ``figure`` to ``path`` (PNG, 120 dpi) and close it (it stays displayable); returns it."""
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return figure


#: The house style of every figure: type sized for a figure about 12 inches wide shown in a book's text column
#: (about 800 px at 1400 px), so that the smallest text stays near 8 px there; on a phone, the figure links to its
#: full-size image (every ``glue:figure`` has ``:width: 100%``, and Sphinx links a scaled image to its original).
STYLE = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11,
         "legend.fontsize": 11, "figure.titlesize": 14}


def house_style(plot):
    """Draw ``plot``'s figure in :data:`STYLE`, whatever the caller's matplotlib settings."""
    @functools.wraps(plot)
    def styled(*args, **kwargs):
        with plt.rc_context(STYLE):
            return plot(*args, **kwargs)
    return styled


BIT_DEPTH_NAMES = {"PCM_16": "16-bit PCM", "PCM_24": "24-bit PCM", "PCM_32": "32-bit PCM", "FLOAT": "32-bit float",
                   "DOUBLE": "64-bit float", "PCM_U8": "8-bit PCM"}


@house_style
def plot_fold_counts(dataset: Dataset) -> plt.Figure:
    """Heatmap of clips per class (rows) and fold (columns)."""
    counts = dataset.counts()
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * counts.shape[1], 0.9 + 0.38 * counts.shape[0]))
    sns.heatmap(counts, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
    ax.set(xlabel="fold", ylabel="", title=f"Clips per class and fold ({len(dataset)} usable clips)")
    fig.tight_layout()
    return fig


@house_style
def plot_file_properties(report: ValidationReport) -> plt.Figure:
    """The spread of sample rates, bit depths, channel counts and durations over the readable files."""
    files = report.files.dropna(subset=["sample_rate"])
    fig, axes = plt.subplots(2, 2, figsize=(12, 6.4))
    axes = axes.ravel()
    rates = files["sample_rate"].astype(int).value_counts().sort_index()
    axes[0].bar([f"{r / 1000:g}" for r in rates.index], rates.values, color="tab:blue")
    axes[0].set(xlabel="sample rate (kHz)", ylabel="files")
    axes[2].set(ylabel="files")
    depths = files["subtype"].map(lambda s: BIT_DEPTH_NAMES.get(s, s)).value_counts()
    axes[1].bar(depths.index, depths.values, color="tab:orange")
    axes[1].set(xlabel="sample format")
    channels = files["channels"].astype(int).value_counts().sort_index()
    axes[2].bar([{1: "mono", 2: "stereo"}.get(c, str(c)) for c in channels.index], channels.values, color="tab:green")
    axes[2].set(xlabel="channels")
    axes[3].hist(files["duration"], bins=20, color="tab:purple")
    axes[3].set(xlabel="duration (s)")
    fig.suptitle(f"File properties of the {len(files)} readable files")
    fig.tight_layout()
    return fig


@house_style
def plot_class_examples(dataset: Dataset, config: FeatureConfig) -> plt.Figure:
    """For each class, its first clip: the waveform after loading (mono, resampled, padded) and its log-mel."""
    front_end = LogMelFrontEnd(config)
    names = dataset.class_names
    fig, axes = plt.subplots(len(names), 2, figsize=(12, 1.5 * len(names)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.3]})
    seconds = np.arange(config.num_samples) / config.sample_rate
    for row, name in enumerate(names):
        path = dataset.table.loc[dataset.table["class_name"] == name, "path"].iloc[0]
        wave = load_audio(path, config)
        with torch.no_grad():
            logmel = front_end(torch.from_numpy(wave)[None])[0, 0].numpy()
        axes[row, 0].plot(seconds, wave, linewidth=0.4, color="tab:blue")
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
        axes[row, 0].set_yticks([])
        axes[row, 1].imshow(logmel, origin="lower", aspect="auto", cmap="magma",
                            extent=(0, config.duration, 0, config.n_mels))
        axes[row, 1].set_yticks([])
        for ax in axes[row]:
            if row < len(names) - 1:
                ax.set_xticks([])
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel(f"time (s); {config.n_mels} mel bands, low to high")
    axes[0, 0].set_title("waveform (mono, resampled, padded)")
    axes[0, 1].set_title("log-mel spectrogram")
    fig.tight_layout()
    return fig


@house_style
def plot_training_curves(histories: dict[str, list[dict]]) -> plt.Figure:
    """Per model: training loss, and training (dashed) and validation (solid) accuracy per epoch."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(13, 4))
    for color, (name, history) in zip(sns.color_palette("tab10"), histories.items()):
        epochs = [h["epoch"] for h in history]
        loss_ax.plot(epochs, [h["train_loss"] for h in history], color=color, label=name)
        acc_ax.plot(epochs, [h["val_accuracy"] for h in history], color=color, label=f"{name} (validation)")
        acc_ax.plot(epochs, [h["train_accuracy"] for h in history], color=color, linestyle="--", alpha=0.6)
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="Training loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy: validation (solid), training (dashed)")
    loss_ax.legend()
    acc_ax.legend()
    fig.tight_layout()
    return fig


@house_style
def plot_confusion(record: dict) -> plt.Figure:
    """The test-fold confusion matrix of a results record, rows normalised to percent of the true class."""
    confusion = np.asarray(record["confusion"], dtype=float)
    percent = 100 * confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    names = record["class_names"]
    fig, ax = plt.subplots(figsize=(1.2 + 0.62 * len(names), 0.8 + 0.55 * len(names)))
    sns.heatmap(percent, annot=confusion.astype(int), fmt="d", cmap="Blues", vmin=0, vmax=100, cbar=True,
                xticklabels=names, yticklabels=names, ax=ax, cbar_kws={"label": "% of the true class"})
    ax.set(xlabel="predicted", ylabel="true",
           title=f"{record['model']} ({record['variant']}): test accuracy {record['accuracy']:.1f}%")
    fig.tight_layout()
    return fig


#: The capacity axes of a learning curve (:func:`plot_learning_curve`): the record's key and the axis label.
CAPACITY_AXES = (("params", "parameters (log scale)"), ("macs", "MACs per clip (log scale)"))


@house_style
def plot_learning_curve(ordered: list[dict], neighbours: list, capacity: tuple = CAPACITY_AXES) -> plt.Figure:
    """Test accuracy (with its 95% interval) against each ``capacity`` axis (default: parameters and MACs), log
    scale, for the models of a learning curve (:func:`edge_audio.frontier.learning_curve`): a solid segment joins
    neighbours the paired test tells apart, a dotted one neighbours it does not; search finalists are squares
    (the proxy search's) and diamonds (the supernet's)."""
    fig, axes = plt.subplots(1, len(capacity), figsize=(13 if len(capacity) > 1 else 11, 4.6), sharey=True,
                             squeeze=False)
    axes = axes[0]
    markers = {"nas_finalist": "s", "supernet_finalist": "D"}
    for ax, (key, label) in zip(axes, capacity):
        for pair in neighbours:
            ax.plot([pair.smaller[key], pair.larger[key]], [pair.smaller["accuracy"], pair.larger["accuracy"]],
                    color="black" if pair.resolved else "gray", linestyle="-" if pair.resolved else ":",
                    linewidth=2 if pair.resolved else 1.5, zorder=1)
        for record in ordered:
            low, high = record["test"]["ci95"]
            ax.errorbar(record[key], record["accuracy"], yerr=[[max(0.0, record["accuracy"] - low)],
                                                               [max(0.0, high - record["accuracy"])]],
                        fmt=markers.get(record.get("source"), "o"), markersize=8, capsize=4, color="tab:blue",
                        zorder=2)
            ax.annotate(record["model"], (record[key], record["accuracy"]), textcoords="offset points",
                        xytext=(7, -12))
        ax.set_xscale("log")
        ax.set(xlabel=label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("test accuracy (%), 95% interval")
    axes[0].plot([], [], color="black", linewidth=2, label="neighbours told apart (over seeds)")
    axes[0].plot([], [], color="gray", linestyle=":", linewidth=1.5, label="neighbours not told apart")
    if any(r.get("source") == "nas_finalist" for r in ordered):
        axes[0].plot([], [], "s", color="tab:blue", label="search finalist")
    if any(r.get("source") == "supernet_finalist" for r in ordered):
        axes[0].plot([], [], "D", color="tab:blue", label="supernet finalist")
    axes[0].legend(loc="lower right")
    fig.suptitle(f"Accuracy against capacity ({ordered[0]['test']['n']} test clips)")
    fig.tight_layout()
    return fig


@house_style
def plot_rank_fidelity(rows: list[dict], agreement: dict) -> plt.Figure:
    """Each sub-network's supernet score against its accuracy trained alone, with Kendall's tau and its interval."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.scatter([r["supernet"] for r in rows], [r["alone"] for r in rows], s=60, color="tab:blue", zorder=2)
    for r in rows:
        ax.annotate(f"{r['params'] / 1e3:.1f}k", (r["supernet"], r["alone"]), textcoords="offset points",
                    xytext=(6, 4), fontsize=9)
    low, high = agreement["ci95"] if agreement["tau"] is not None else (float("nan"), float("nan"))
    tau = "undefined (every score tied)" if agreement["tau"] is None else (
        f"{agreement['tau']:+.2f} (95% interval {low:+.2f} to {high:+.2f})")
    ax.set(xlabel="supernet score on the proxy fold (%), inherited weights",
           ylabel="accuracy trained alone (%), proxy fold",
           title=f"Does the supernet rank as training alone does? Kendall's tau {tau}, n = {agreement['n']}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


#: One colour per quantization method, in the registry's order: tab20's ten strong colours, then its ten light ones
#: (tab10 alone has ten, and the registry holds more methods).
METHOD_COLORS = dict(zip(METHODS, sns.color_palette("tab20", 20)[0::2] + sns.color_palette("tab20", 20)[1::2]))


@house_style
def plot_quantization_comparison(records: list[dict]) -> plt.Figure:
    """Size against accuracy: an arrow from each FP32 model to each of its compressed variants, coloured by method,
    every accuracy with its 95% interval (so a change smaller than the intervals reads as one); sizes in kB."""
    fig, ax = plt.subplots(figsize=(11, 6))
    for r in records:
        start = (r["fp32"]["size_bytes"] / 1e3, r["fp32"]["accuracy"])
        end = (r["size_bytes"] / 1e3, r["accuracy"])
        color = METHOD_COLORS.get(r["method"], "gray")
        ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": color, "lw": 1.3, "alpha": 0.8})
        for (x, y), evaluation, point_color in ((start, r["fp32"]["test"], "black"), (end, r["test"], color)):
            low, high = evaluation["ci95"]
            ax.errorbar(x, y, yerr=[[max(0.0, y - low)], [max(0.0, high - y)]], fmt="o", color=point_color,
                        markersize=5, capsize=2, alpha=0.7, zorder=3)
    for model in dict.fromkeys(r["model"] for r in records):
        first = next(r for r in records if r["model"] == model)
        ax.annotate(model, (first["fp32"]["size_bytes"] / 1e3, first["fp32"]["accuracy"]), fontweight="bold",
                    textcoords="offset points", xytext=(7, 7))
    for method, color in METHOD_COLORS.items():
        if any(r["method"] == method for r in records):
            ax.plot([], [], color=color, label=method)
    ax.plot([], [], "o", color="black", label="FP32")
    ax.set_xscale("log")
    ax.set(xlabel="size on disk (kB, log scale)", ylabel="test accuracy (%), 95% interval",
           title="FP32 → compressed (INT8, bf16): size and accuracy, each from its own outputs")
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncol=2)
    fig.tight_layout()
    return fig


@house_style
def plot_bit_widths(rows: list) -> plt.Figure:
    """Test accuracy (95% interval) against bit widths, one panel per model (two a row): FP32, then post-training
    (solid) and quantization-aware (dashed) full-integer TFLite at each pair of weight and activation bits the run
    has, most bits first
    (:func:`edge_audio.steps.quantization.bit_widths`)."""
    if not rows:
        fig, ax = plt.subplots(figsize=(12, 1.5))
        ax.text(0.5, 0.5, "No full-integer TFLite variant ran (methods: add tflite_int8, tflite_int4, qat_int8, "
                "qat_int4)", ha="center", va="center")
        ax.set_axis_off()
        return fig
    models = list(dict.fromkeys(row.model for row in rows))
    columns = min(2, len(models))
    lines = int(np.ceil(len(models) / columns))
    fig, axes = plt.subplots(lines, columns, figsize=(12, 3.6 * lines), squeeze=False)
    for ax, model in zip(axes.flat, models):
        mine = [row for row in rows if row.model == model]
        fp32 = mine[0].ptq["fp32"]
        labels = ["FP32", *(row.label for row in mine)]
        for kind, style, color in (("ptq", "-", "tab:blue"), ("qat", "--", "tab:orange")):
            points = [(0, fp32["accuracy"], fp32["test"]["ci95"])] + [
                (i, getattr(row, kind)["accuracy"], getattr(row, kind)["test"]["ci95"])
                for i, row in enumerate(mine, start=1) if getattr(row, kind) is not None]
            if len(points) < 2:
                continue
            xs, ys, cis = zip(*points)
            shift = 0.04 if kind == "qat" else -0.04
            ax.errorbar(np.array(xs) + shift, ys, yerr=[[max(0.0, y - low) for y, (low, _) in zip(ys, cis)],
                                                        [max(0.0, high - y) for y, (_, high) in zip(ys, cis)]],
                        fmt="o" + style, color=color, capsize=4, markersize=6,
                        label={"ptq": "post-training", "qat": "quantization-aware"}[kind])
        ax.set_xticks(range(len(labels)), labels)
        ax.set(title=model, xlabel="bits of weights (w) and activations (a)", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(loc="lower left")
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    fig.suptitle(f"Accuracy against bit width, full-integer TFLite ({rows[0].ptq['test']['n']} test clips, "
                 "95% intervals)")
    fig.tight_layout()
    return fig


@house_style
def plot_latency_bars(records: list[dict]) -> plt.Figure:
    """Batch-1 latency of each compressed variant beside its FP32 twin timed in the same runtime, one panel per
    runtime the variants run in (ONNX Runtime, PyTorch, LiteRT, OpenVINO), grouped by model."""
    models = list(dict.fromkeys(r["model"] for r in records))
    runtimes = list(dict.fromkeys(r["runtime"] for r in records))
    columns = min(2, len(runtimes))
    rows = int(np.ceil(len(runtimes) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(14, 4.4 * rows), squeeze=False)
    for ax, runtime in zip(axes.flat, runtimes):
        bars = [("FP32 twin", None)] + [(m, m) for m in METHOD_COLORS
                                        if any(r["method"] == m and r["runtime"] == runtime for r in records)]
        width = 0.8 / len(bars)
        for i, (label, method) in enumerate(bars):
            heights = []
            for model in models:
                match = [r for r in records if r["model"] == model and r["runtime"] == runtime
                         and (method is None or r["method"] == method)]
                value = (match[0]["fp32"]["latency_ms"] if method is None else match[0]["latency_ms"]) if match else 0
                heights.append(value)
            xs = np.arange(len(models)) + (i - (len(bars) - 1) / 2) * width
            ax.bar(xs, heights, width, label=label, color="black" if method is None else METHOD_COLORS[method],
                   alpha=0.8)
        ax.set_xticks(np.arange(len(models)), models)
        threads = records[0]["threads"]
        ax.set(ylabel="latency, batch 1 (ms, median)",
               title=f"{runtime}, {threads} thread{'' if threads == 1 else 's'}")
        ax.legend()
    for ax in list(axes.flat)[len(runtimes):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


@house_style
def plot_sensitivity(rows: list[dict], model: str) -> plt.Figure:
    """Accuracy drop when one layer alone is quantized, per-channel against per-tensor."""
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(layers)), 4))
    width = 0.38
    for offset, per_channel, color in ((-width / 2, True, "tab:blue"), (width / 2, False, "tab:cyan")):
        drops = [next(r["drop"] for r in rows if r["layer"] == layer and r["per_channel"] == per_channel)
                 for layer in layers]
        ax.bar(np.arange(len(layers)) + offset, drops, width, color=color,
               label="per-channel" if per_channel else "per-tensor")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(layers)), [layer.split(" ")[0] + " " + layer.split(" ")[1] for layer in layers],
                  rotation=30, ha="right")
    ax.set(ylabel="accuracy drop (points)", title=f"{model}: accuracy drop with one layer quantized (static INT8)")
    ax.legend()
    fig.tight_layout()
    return fig


KIND_STYLE = {"baseline": ("tab:blue", "o"), "nas finalist": ("tab:red", "*"), "supernet finalist": ("tab:purple", "P"),
              "nas candidate": ("0.6", "."),
              "distilled": ("tab:green", "D")}


@house_style
def plot_nas_evolution(history: dict[str, list[dict]], population: int,
                       fronts: dict[int, list[dict]]) -> plt.Figure:
    """Per generation of each search: proxy accuracy and latency of its trials, and NSGA-II's feasible front.

    ``history``: sampler -> history entries (see :mod:`edge_audio.nas`); untrained (infeasible) candidates appear
    in the latency panel only. ``fronts``: generation -> NSGA-II's feasible front after that generation.
    """
    fig = plt.figure(figsize=(12, 8.8))
    grid = fig.add_gridspec(2, 2)
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, :])]
    for offset, (color, (sampler, entries)) in zip((-0.15, 0.15), zip(("tab:red", "tab:gray"), history.items())):
        trained = [h for h in entries if h.trained]
        axes[0].scatter([h.number // population + offset for h in trained], [h.proxy_accuracy for h in trained],
                        color=color, alpha=0.7, label=sampler)
        axes[1].scatter([h.number // population + offset for h in entries], [h.latency_ms for h in entries],
                        color=color, alpha=0.7, marker="o", label=sampler)
    for ax, ylabel in zip(axes[:2], ("search score (%, the proxy's fold)", "latency (ms, ONNX Runtime)")):
        ax.set(xlabel="generation (trial number // population)", ylabel=ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
    palette = sns.color_palette("viridis", max(len(fronts), 1))
    drawn = False
    for color, (generation, front) in zip(palette, sorted(fronts.items())):
        front = sorted(front, key=lambda h: h.size_bytes)
        if front:
            drawn = True
            axes[2].plot([h.size_bytes / 1e3 for h in front], [h.proxy_accuracy for h in front],
                         color=color, marker="o", label=f"after generation {generation}")
    axes[2].set(xlabel="size (kB, deployed TFLite file)", ylabel="search score (%)",
                title="NSGA-II feasible front over time, by size")
    if drawn:
        axes[2].legend(ncol=2)
    else:
        axes[2].text(0.5, 0.5, "no feasible candidate", transform=axes[2].transAxes, ha="center")
    axes[0].set_title("search score per generation")
    axes[1].set_title("latency per generation (all candidates)")
    fig.tight_layout()
    return fig


@house_style
def plot_constraint_feasibility(points, budgets) -> plt.Figure:
    """Size vs latency of every candidate or model against the size and latency budgets (dashed lines).

    ``points``: a DataFrame with ``size_bytes``, ``latency_ms``, ``kind`` (see :data:`KIND_STYLE`), ``feasible``
    (meets every budget) and an optional ``label`` (drawn next to labelled points).
    """
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for kind, rows in points.groupby("kind", sort=False):
        color, marker = KIND_STYLE.get(kind, ("tab:green", "o"))
        for feasible, subset in rows.groupby("feasible"):
            ax.scatter(subset["size_bytes"] / 1e6, subset["latency_ms"], color=color if feasible else "none",
                       edgecolors=color, marker=marker, s=90 if marker == "*" else 40,
                       label=f"{kind}, {'meets' if feasible else 'breaks'} the budgets")
    if "label" in points:
        for row in points.dropna(subset=["label"]).itertuples():
            ax.annotate(row.label, (row.size_bytes / 1e6, row.latency_ms), fontsize="small", xytext=(3, 3),
                        textcoords="offset points")
    ax.axvline(budgets.max_size_mb, color="k", linestyle="--", linewidth=1)
    ax.axhline(budgets.max_latency_ms, color="k", linestyle="--", linewidth=1)
    ax.text(budgets.max_size_mb, budgets.max_latency_ms,
            f" budget: {budgets.max_size_mb:g} MB, {budgets.max_latency_ms:g} ms", va="bottom")
    ax.set(xscale="log", yscale="log", xlabel="size (MB on disk)", ylabel="latency (ms, batch 1)",
           title=f"Which models meet the budgets (accuracy ≥ {budgets.min_accuracy:g}% too; hollow: breaks one)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def _label_sparsely(ax, points: dict[str, tuple[float, float]], bold: set[str]) -> None:
    """Label points of a log-x accuracy plot: every ``bold`` one first (moved down, with a leader line, when labels
    are already near it), then any other only where no label is near; labels of the right half sit to the
    left of their point, so every label stays inside the axes."""
    logs = {label: float(np.log10(x)) for label, (x, _) in points.items()}
    middle = (min(logs.values()) + max(logs.values())) / 2 if logs else 0.0
    placed: list[tuple[float, float]] = []
    for label, (x, y) in sorted(points.items(), key=lambda item: item[0] not in bold):  # the bold ones first
        near = sum(abs(logs[label] - px) < 1.2 and abs(y - py) < 2.5 for px, py in placed)
        if label not in bold and any(abs(logs[label] - px) < 0.6 and abs(y - py) < 2.5 for px, py in placed):
            continue
        placed.append((logs[label], y))
        right = logs[label] > middle
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(-7 if right else 7, 6 - 13 * near),
                    ha="right" if right else "left", fontweight="bold" if label in bold else "normal",
                    arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6} if near else None)


@house_style
def plot_headline(points, front: list[str], picks: dict[str, str]) -> plt.Figure:
    """The answer in one figure: every evaluated variant's test accuracy (95% interval) against its deployed size
    (kB, log scale), coloured by method (FP32 black), the accuracy-size front as a step line, and labels only on
    the picks (bold; ``picks``: label -> the targets it is picked for, which the table beside the figure names)
    and on the front where there is room. ``points``: the frontier's table of evaluated models (label, variant,
    accuracy, ci_low, ci_high, size_bytes, n)."""
    fig, ax = plt.subplots(figsize=(11, 6.2))
    colors = {"fp32": "black", **METHOD_COLORS}
    for variant, rows in points.groupby("variant", sort=False):
        ax.errorbar(rows["size_bytes"] / 1e3, rows["accuracy"],
                    yerr=[(rows["accuracy"] - rows["ci_low"]).clip(lower=0),
                          (rows["ci_high"] - rows["accuracy"]).clip(lower=0)],
                    fmt="o", markersize=5, capsize=2, alpha=0.75, color=colors.get(variant, "gray"), label=variant)
    rows = points.set_index("label")
    on_front = rows.loc[front].sort_values("size_bytes")
    ax.step(on_front["size_bytes"] / 1e3, on_front["accuracy"], where="post", color="black", linewidth=1.6,
            label="accuracy-size front")
    _label_sparsely(ax, {label: (rows.at[label, "size_bytes"] / 1e3, rows.at[label, "accuracy"])
                         for label in dict.fromkeys([*picks, *front])}, bold=set(picks))
    ax.set(xscale="log", xlabel="deployed size (kB, log scale)", ylabel="test accuracy (%), 95% interval",
           ylim=(max(0.0, points["ci_low"].min() - 2), min(100.0, points["ci_high"].max() + 2)),
           title=f"What each deployment costs in accuracy ({int(points['n'].iloc[0])} test clips)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(ncol=2, loc="lower right")
    fig.tight_layout()
    return fig


@house_style
def plot_pareto_frontier(report) -> plt.Figure:
    """Accuracy against each cost axis of a :class:`~edge_audio.frontier.FrontierReport`, one panel each, in the
    units a reader uses (kB, ms, MFLOPs): every evaluated model with its 95% interval, each Pareto front drawn and
    its members labelled where there is room, the knee ringed; NAS candidates (proxy accuracy) in grey for
    context, within the range of the evaluated models; the accuracy axis fitted to the data."""
    fig, axes = plt.subplots(len(report.axes), 1, figsize=(12, 5.2 * len(report.axes)))
    tested = report.evaluated
    proxies = report.table[report.table["accuracy_kind"] == "proxy"]
    low = max(0.0, float(tested["ci_low"].min()) - 2.0)
    high = min(100.0, float(tested["ci_high"].max()) + 2.0)
    for ax, (axis, (column, label)) in zip(axes, report.axes.items()):
        scale, label = _reader_units(column, label)
        shown = proxies[(proxies["accuracy"] >= low) & (proxies["accuracy"] <= high)]
        if len(shown):
            ax.scatter(shown[column] * scale, shown["accuracy"], color="0.75", marker=".",
                       label="NAS candidates (search score, a training fold)")
        for kind, rows in tested.groupby("kind", sort=False):
            color, marker = KIND_STYLE[kind]
            ax.errorbar(rows[column] * scale, rows["accuracy"],
                        yerr=[(rows["accuracy"] - rows["ci_low"]).clip(lower=0),
                              (rows["ci_high"] - rows["accuracy"]).clip(lower=0)],
                        fmt="none", ecolor=color, alpha=0.35, capsize=2)
            ax.scatter(rows[column] * scale, rows["accuracy"], color=color, marker=marker,
                       s=90 if marker == "*" else 40, label=f"{kind} (bars: 95% interval)")
        front = report.fronts[axis]
        ax.step(front[column] * scale, front["accuracy"], where="post", color="k", linewidth=1.6,
                label="Pareto front")
        knee = front[front["label"] == report.knees[axis]].iloc[0]
        ax.scatter([knee[column] * scale], [knee["accuracy"]], s=260, facecolors="none", edgecolors="tab:orange",
                   linewidths=2, label="knee")
        _label_sparsely(ax, {row.label: (getattr(row, column) * scale, row.accuracy) for row in front.itertuples()},
                        bold={report.knees[axis]})
        ax.set(xscale="log", xlabel=label, ylabel="test accuracy (%)", ylim=(low, high),
               title=f"accuracy vs {axis} (hypervolume {report.hypervolumes[axis]:.3f}); labels: the front")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _reader_units(column: str, label: str) -> tuple[float, str]:
    """The factor and axis label that show a cost column in a reader's units: bytes as kB, FLOPs as MFLOPs."""
    if column.endswith("_bytes"):
        return 1e-3, label.replace("(bytes", "(kB")
    if column == "flops":
        return 1e-6, label.replace("FLOPs per clip", "MFLOPs per clip")
    return 1.0, label