"""The tables a reader sees (edge_audio.tables.view and readable), the counts the prose quotes
(edge_audio.glue.counted) and the check of built pages (edge_audio.book.html_problems)."""
import math

import numpy as np
import pandas as pd
import pytest

from edge_audio.book import html_problems
from edge_audio.glue import counted
from edge_audio.tables import MAX_COLUMNS, readable, view, views


@pytest.mark.parametrize("column, value, shown", [
    ("Accuracy (%)", 86.11333, "86.1"), ("Size (kB)", 1224.66, "1,224.7"), ("Size (MB)", 2.99561, "3.00"),
    ("McNemar p", 1.0, "1"), ("McNemar p", 0.000123456, "0.00012"), ("Latency (ms)", 0.068123, "0.0681"),
    ("n", 250, "250"), ("n", 250.0, "250"), ("MACs", np.int64(18993728), "18,993,728"), ("INT8", True, "yes"),
    ("INT8", np.bool_(False), "no"), ("Fold std", None, "–"), ("Fold std", math.nan, "–"),
    ("Model", "tiny", "tiny"), ("95% high", 73.0, "73.0"), ("95% low", 29.84, "29.8"),
])
def test_every_value_reads_as_a_reader_expects(column, value, shown):
    assert readable(column, value) == shown


@pytest.mark.parametrize("count, noun, plural, shown", [
    (1, "point", None, "1 point"), (1.0, "point", None, "1 point"), (0.5, "point", None, "0.5 points"),
    (0, "training run", None, "0 training runs"), (np.int64(2), "thread", None, "2 threads"),
    (1200, "clip", None, "1,200 clips"), (3, "file was", "files were", "3 files were"),
    (1, "file was", "files were", "1 file was"),
])
def test_a_count_in_prose_takes_the_number_of_its_noun(count, noun, plural, shown):
    assert counted(count, noun, plural) == shown


def test_a_raw_structure_never_reaches_a_table():
    with pytest.raises(TypeError, match="holds a dict"):
        readable("latency", {"median_ms": 1.0})


def test_a_view_shows_at_most_seven_columns_and_never_cuts_a_cell():
    long = "undetermined: -1.00 (-4.44 to +2.42), ~1,737 clips would decide"
    frame = pd.DataFrame({f"c{i}": [1.5] for i in range(MAX_COLUMNS + 1)} | {"verdict": [long]}, index=["tiny"])
    with pytest.raises(ValueError, match="too many for a reader"):
        view(frame)
    shown = view(frame, ["c0", "verdict"], caption="Accuracy")
    assert long in shown.to_html() and "Accuracy" in shown.to_html()
    # a set of columns names what the frame may lack (a k-fold column under holdout)
    assert [list(v.data.columns) for v in views(frame, ("one", ("c0", "Fold std")), ("two", ("c1",)))] == [
        ["c0"], ["c1"]]


def test_the_page_check_finds_what_a_reader_would_trip_over():
    page = """<main><img src="a.png"><figure><a href="b.png"><img src="b.png"></a><figcaption>Fig. 1</figcaption>
    </figure><figure><img src="c.png"><figcaption>Fig. 2</figcaption></figure>
    <table><tr><th>a</th><th>b</th></tr><tr><td>None</td><td>86.1...</td></tr><tr><td>NaN</td>
    <td><code>None</code></td></tr></table>
    <table><tr>""" + "".join(f"<th>{i}</th>" for i in range(9)) + """</tr></table>
    <div class="cell_input">import torch</div></main>"""
    problems = html_problems(page)
    assert problems == ["a figure without a caption (a.png)", "a figure without a full-size link (c.png)",
                        "a table cell reads 'None'",
                        "a table cell reads '86.1...'", "a table cell reads 'NaN'",
                        "a table of 9 columns (at most 8): 0, 1, 2, 3, 4, 5, 6, 7, 8", "code on show: import torch"]
    assert html_problems("<main><figure><a href='b.png'><img src='b.png'></a><figcaption>Fig. 1</figcaption>"
                         "</figure></main>") == []


def test_the_latency_figure_has_a_panel_for_every_runtime_the_variants_run_in():
    import matplotlib
    matplotlib.use("Agg")
    from edge_audio.plots import plot_latency_bars

    runtimes = {"ort_static": "onnxruntime", "pytorch_dynamic": "pytorch", "tflite_int8": "litert",
                "openvino_int8": "openvino"}
    records = [{"model": model, "method": method, "runtime": runtime, "latency_ms": 1.0, "threads": 1,
                "fp32": {"latency_ms": 2.0}} for model in ("tiny", "small") for method, runtime in runtimes.items()]
    figure = plot_latency_bars(records)
    shown = [ax for ax in figure.axes if ax.get_visible()]
    assert sorted(ax.get_title().split(",")[0] for ax in shown) == sorted(runtimes.values())
    assert all(ax.get_title().endswith("1 thread") for ax in shown)
