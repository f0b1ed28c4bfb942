"""Pareto sets, hypervolume, knee, budgets and deployment profiles (edge_audio.frontier)."""
import numpy as np
import pytest

from edge_audio.errors import ParameterError, UserError
from edge_audio.frontier import analyze_frontier, comparison_table
from edge_audio.pareto import hypervolume, knee_index, pareto_mask
from edge_audio.stats import evaluation, over_seeds, pooled
from edge_audio.settings import Settings
from edge_audio.device_latency import KWS_INPUT
from edge_audio.targets import CYCLES_PER_MAC, DEPLOYMENT_PROFILES, Budgets, check_profiles


def test_pareto_mask_keeps_exactly_the_non_dominated_points():
    points = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5]])
    assert pareto_mask(points).tolist() == [True, True, False, True, True, False]


def test_hypervolume_matches_hand_computed_areas_and_volumes():
    assert hypervolume(np.array([[1.0, 3.0], [2.0, 1.0]]), np.array([4.0, 4.0])) == pytest.approx(3 * 1 + 2 * 2)
    assert hypervolume(np.array([[0.5, 0.5, 0.5]]), np.ones(3)) == pytest.approx(0.125)
    # two overlapping boxes in 3-D: 0.5*0.5*1 + 1*0.5*0.5 - 0.5*0.5*0.5
    points = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    assert hypervolume(points, np.ones(3)) == pytest.approx(0.25 + 0.25 - 0.125)
    assert hypervolume(np.array([[2.0, 2.0]]), np.array([1.0, 1.0])) == 0.0  # outside the reference


def test_knee_is_where_the_front_bends():
    costs = np.array([1e3, 1e4, 1e5, 1e6])
    accuracies = np.array([50.0, 88.0, 90.0, 91.0])
    assert knee_index(costs, accuracies) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"max_size_mb": -1.0}, "max_size_mb must be a positive number"),
    ({"max_latency_ms": 0}, "max_latency_ms must be a positive number"),
    ({"min_accuracy": 101.0}, "min_accuracy must be a percentage in [0, 100]"),
    ({"min_accuracy": -5}, "min_accuracy must be a percentage"),
    ({"max_size_mb": "big"}, "max_size_mb must be a positive number"),
])
def test_invalid_budgets_are_clear_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Budgets(**kwargs)


@pytest.mark.parametrize("profiles, message", [
    ({"mcu": {"max_size_kb": 3}}, "unknown limit"),
    ({"mcu": {}}, "sets no limit"),
    ({"mcu": {"max_latency_ms": -2}}, "must be a positive number"),
    ({"mcu": {"max_ram_bytes": 256_000, "int8_activations": "yes"}}, "int8_activations must be true or false"),
    ([1, 2], "must be a mapping"),
])
def test_invalid_profiles_are_clear_errors(profiles, message):
    with pytest.raises(ParameterError, match=message):
        check_profiles(profiles)


SEED_SHIFTS = (0, 2, -2)


def scored(right: int, n: int = 200, shifts=SEED_SHIFTS) -> dict:
    """An evaluation over seeds of ``n`` shared clips, each seed's first ``right + shift`` right: two models differ
    on exactly the clips between their counts, by the same amount at every seed (training moved both alike), so
    the comparison over seeds sees every point of difference and no spread between seeds."""
    return over_seeds([pooled([evaluation([0] * n, [0] * (right + s) + [1] * (n - right - s))], [1]) for s in shifts],
                      list(range(len(shifts))))


def record(model, variant, right, val, size, latency, macs, params, source=None, kind="test", ram=None,
           shifts=SEED_SHIFTS):
    test = scored(right, shifts=shifts)
    r = {"model": model, "variant": variant, "accuracy": test["accuracy"], "size_bytes": size, "latency_ms": latency,
         "runtime": "onnxruntime", "latency": {"onnxruntime": {"median_ms": latency, "p90_ms": latency}},
         "flops": 2 * macs, "macs": macs, "params": params, "macro_f1": test["accuracy"], "features": {"duration": 4.0},
         "context": {"key": "c"}, "protocol": "holdout (val fold 9, test fold 10)", "protocol_kind": "holdout",
         "int8_weights": variant.startswith("int8"), "int8_activations": variant.startswith("int8"),
         "full_integer_tflite": variant == "int8_tflite",
         "peak_ram_bytes": ram, "flash_bytes": size, "accuracy_kind": kind, "artifact": {"path": f"models/{model}.onnx", "sha256": "0" * 64, "source": f"cache/{model}.onnx"}}
    if kind == "test":
        r.update(test=test, val_accuracy=val)
    if source:
        r["source"] = source
    return r


# 200 shared test clips; a model right on more clips is right on every clip a weaker one gets right, so 4 points
# (8 clips, all one way) is resolved, by the interval and the exact test (2 points, 4 clips, is not: p 0.125), while two models with the same predictions cannot be shown within 1 point
# (the interval is +-1.9 points at n = 200).
RECORDS = [
    record("big", "fp32", 190, 94.0, 3_000_000, 4.0, 200_000_000, 750_000, ram=2_000_000),
    record("mid", "fp32", 184, 92.0, 1_200_000, 2.0, 90_000_000, 300_000, ram=800_000),
    record("mid", "int8_tflite", 184, 92.0, 330_000, 1.5, 90_000_000, 300_000, ram=200_000),
    record("small", "fp32", 170, 85.0, 500_000, 1.0, 40_000_000, 120_000, ram=400_000),
    record("small", "int8_tflite", 168, 84.0, 120_000, 1.2, 40_000_000, 120_000, ram=100_000),
    record("worse", "fp32", 160, 80.0, 900_000, 3.0, 100_000_000, 200_000, ram=600_000),
    # fits a Cortex-M4's RAM and flash, but its activations are float: no microcontroller runs it
    record("nas_1", "fp32", 176, 90.0, 400_000, 0.9, 30_000_000, 100_000, source="nas_finalist", ram=200_000),
    record("nas-abc", "proxy", 198, None, 10_000, 0.1, 1_000_000, 2_000, source="nas_candidate", kind="proxy"),
]


def test_a_cheaper_model_dominates_only_when_shown_no_worse_within_the_margin():
    report = analyze_frontier(RECORDS, Budgets(1.0, 50.0, 85.0), margin=1.0)
    # mid int8 predicts what mid fp32 predicts, seed by seed: paired over 3 seeds (600 clip pairs) that is shown
    # within 1 point, so the cheaper variant dominates it on size
    same = report.compare("mid (int8_tflite)", "mid (fp32)")
    assert same["changed"] == 0 and same["n"] == 600 and same["verdict"] == "within the margin"
    assert list(report.fronts["size"]["label"]) == ["small (int8_tflite)", "mid (int8_tflite)", "big (fp32)"]
    assert "nas-abc (proxy)" not in set(report.table[report.table["front_size"]]["label"])  # proxies never
    # two trainings: 8 clips all one way at every seed (92 % vs 88 %), the seeds agree: resolved over seeds (the
    # exact test too), so nas_1 (faster) does not dominate mid int8
    across = report.compare("mid (int8_tflite)", "nas_1 (fp32)")
    assert across["verdict"] == "better" and across["seeds"] == 3
    assert list(report.fronts["latency"]["label"]) == ["nas_1 (fp32)", "mid (int8_tflite)", "big (fp32)"]
    assert not report.dominates("nas_1 (fp32)", "mid (int8_tflite)", "latency")
    assert report.verdicts_against("mid (fp32)") == {"better": 1, "within the margin": 1, "worse": 4}
    assert report.best == "big (fp32)" and 0 < report.hypervolumes["size"] < 1


def test_with_one_seed_no_model_dominates_another_training():
    """One training seed: the variants of one model are still paired (200 clips cannot show 1 point, 2 points
    they can), but no two trainings are told apart, so the fronts keep every model a cheaper one cannot beat."""
    records = [record(r["model"], r["variant"], r["test"]["by_seed"][0]["correct"], r["val_accuracy"],
                      r["size_bytes"], r["latency_ms"], r["macs"], r["params"], r.get("source"),
                      ram=r["peak_ram_bytes"], shifts=(0,)) for r in RECORDS if r["accuracy_kind"] == "test"]
    report = analyze_frontier(records, Budgets(1.0, 50.0, 85.0), margin=1.0)
    assert report.compare("mid (int8_tflite)", "mid (fp32)")["verdict"] == "undetermined"
    across = report.compare("mid (int8_tflite)", "nas_1 (fp32)")
    assert across["verdict"] == "undetermined" and "training variance was not measured" in across["reason"]
    assert report.verdicts_against("mid (fp32)") == {"undetermined": 6}
    assert list(report.fronts["latency"]["label"]) == ["nas_1 (fp32)", "small (fp32)", "mid (int8_tflite)",
                                                       "mid (fp32)", "worse (fp32)", "big (fp32)"]
    wide = analyze_frontier(records, Budgets(1.0, 50.0, 85.0), margin=2.0)
    assert wide.compare("mid (int8_tflite)", "mid (fp32)")["verdict"] == "within the margin"
    assert wide.dominates("mid (int8_tflite)", "mid (fp32)", "size")


def test_picks_are_made_on_validation_accuracy():
    records = [dict(r) for r in RECORDS]
    # a model the test folds favour but validation does not is not the pick
    records[5] = record("worse", "fp32", 197, 80.0, 900_000, 3.0, 100_000_000, 200_000)
    report = analyze_frontier(records, Budgets(1.0, 50.0, 85.0))
    assert report.best == "big (fp32)"  # validation 94 %, though worse scores 99.5 % on the test clips
    # the accuracy budget (85 %) is applied to validation accuracy: small int8 (84 % val) misses it
    assert set(report.within_budgets()["label"]) == {"mid (int8_tflite)", "small (fp32)", "nas_1 (fp32)"}
    best = report.profile_best["best model (validation)"]
    # full-integer TFLite, 200 kB peak RAM, 330 kB flash; 90 M MACs x 1.07 cycles / 480 MHz = 0.2 s estimated
    assert best["cortex_m7"] == "mid (int8_tflite)"
    assert report.profile_best.at["cortex_m7", "latency (ms)"] == pytest.approx(1000 * 90e6 * 1.07 / 480e6, abs=0.1)
    assert report.profile_best.at["cortex_m7", "latency from"] == "estimated (MACs)"
    # a host target's latency is this CPU's, in the pick's runtime
    host = report.profile_best.loc["smart_speaker"]
    assert host["latency from"] == "this CPU (onnxruntime)"
    assert host["latency (ms)"] == report.table.set_index("label").at[host["best model (validation)"], "latency_ms"]
    # no record here was compiled by Vela: nothing fits an Ethos-U profile (an unknown cost never fits)
    assert all(best[name] == "none fits" for name in ("ethos_u55_128", "ethos_u55_256", "ethos_u65_256"))
    # on a Cortex-M4 (4.06 cycles per MAC at 120 MHz) the full-integer models need 1.4 s and more: none fits
    assert best["cortex_m4"] == "none fits"
    assert best["smart_speaker"] == "mid (int8_tflite)"  # ties mid fp32 at 92 % validation; the faster wins
    # DCASE counts INT8 parameters (one byte each) and MACs per second of audio: only INT8 variants qualify
    assert best["dcase_low_complexity"] == "small (int8_tflite)"


def test_placement_and_comparison_table_cover_every_record():
    report = analyze_frontier(RECORDS, Budgets(1.0, 50.0, 85.0))
    placements = {f"{r['model']} ({r['variant']})": report.placement(r) for r in RECORDS}
    # nas_1 is resolvably more accurate at fewer FLOPs and less latency; nothing is smaller at 84 %
    assert placements["small (int8_tflite)"]["pareto"] == {"size": True, "latency": False, "flops": False,
                                                           "ram": True}
    # small int8 fits a Cortex-M4's memory, but its 40 M MACs take an estimated 1.35 s there with CMSIS-NN (limit
    # 1 s), 0.59 s with X-CUBE-AI's constant: the stack decides
    assert set(placements["small (int8_tflite)"]["profiles"]) == {"cortex_m4_xcube_ai", "cortex_m7", "smart_speaker",
                                                                   "gateway", "dcase_low_complexity"}
    assert "cortex_m4" not in placements["nas_1 (fp32)"]["profiles"]  # float activations
    assert "cortex_m4" not in placements["mid (fp32)"]["profiles"]
    # INT8 activations in an ONNX Runtime graph are not enough: a microcontroller runs full-integer TFLite
    onnx_int8 = record("mid", "int8_ort_static", 184, 92.0, 330_000, 1.5, 90_000_000, 300_000, ram=200_000)
    placed = analyze_frontier(RECORDS + [onnx_int8], Budgets(1.0, 50.0, 85.0)).placement(onnx_int8)
    assert "cortex_m4" not in placed["profiles"] and "smart_speaker" in placed["profiles"]
    assert placements["nas-abc (proxy)"]["profiles"] == []  # a proxy accuracy qualifies for nothing
    assert not placements["big (fp32)"]["meets_budgets"] and placements["mid (int8_tflite)"]["meets_budgets"]
    table = comparison_table(report)
    assert len(table) == len(RECORDS)
    assert set(table.loc[table["model"] == "nas-abc", "accuracy measured on"]) == {"a training fold (NAS proxy)"}
    big = table[table["model"] == "big"].iloc[0]
    assert big["n"] == 200 and big["95% low"] < 95.0 < big["95% high"]


def test_no_evaluated_model_is_a_clear_error():
    with pytest.raises(UserError, match="run the baselines chapter with the same parameters first"):
        analyze_frontier([RECORDS[-1]])


def test_a_ram_budget_counts_the_deployed_variants_peak_ram():
    budgets = Budgets(1.0, 50.0, 85.0, max_ram_kb=250)
    report = analyze_frontier(RECORDS, budgets)
    # mid int8 (200 kB of activations) fits; mid FP32 is over 1 MB anyway, small FP32 needs 400 kB
    assert set(report.within_budgets()["label"]) == {"mid (int8_tflite)", "nas_1 (fp32)"}
    assert budgets.reasons(500_000, 1.0, 90.0, 400_000) == ["peak RAM 400.0 kB > 250 kB"]
    assert budgets.violations(500_000, 1.0, 90.0, None)["ram_kb"] == float("inf")  # unknown never fits
    assert Budgets(1.0, 50.0, 85.0).violations(500_000, 1.0, 90.0, None)["ram_kb"] < 0  # no budget: met
    with pytest.raises(ParameterError, match="max_ram_kb must be a positive number or None"):
        Budgets(1.0, 50.0, 85.0, max_ram_kb=-1)


def test_a_flash_budget_counts_the_deployed_file_and_a_target_device_tightens_the_budgets():
    budgets = Budgets(1.0, 50.0, 85.0, max_flash_kb=350)  # mid int8 (330 kB) fits; nas_1 (400 kB) and small fp32 do not
    assert set(analyze_frontier(RECORDS, budgets).within_budgets()["label"]) == {"mid (int8_tflite)"}
    assert budgets.reasons(500_000, 1.0, 90.0, None, 500_000) == ["flash 500.0 kB > 350 kB"]
    assert budgets.violations(1, 1.0, 90.0, None, None)["flash_kb"] == float("inf")  # unknown never fits
    device = Budgets(1.0, 50.0, 85.0, max_ram_kb=100).for_device(DEPLOYMENT_PROFILES["cortex_m4"])
    assert (device.max_ram_kb, device.max_flash_kb, device.max_size_mb) == (100, 1000, 1.0)  # the tighter of each
    with pytest.raises(ParameterError, match="max_flash_kb must be a positive number or None"):
        Budgets(1.0, 50.0, 85.0, max_flash_kb=0)


def test_a_new_kind_of_device_target_is_one_class_and_one_registry_line(monkeypatch):
    """Adding a kind of target: a DeviceProfile subclass with its own fields and costs, and its line in KINDS; a
    user's profile that sets its fields is of that kind, and the frontier picks for it by what a model costs there."""
    from dataclasses import dataclass
    from typing import ClassVar

    from edge_audio.targets import KINDS, DeviceCosts, DeviceProfile

    @dataclass(frozen=True, kw_only=True)
    class FixedRate(DeviceProfile):  # a DSP that runs every model at a fixed rate of MACs
        kind: ClassVar[str] = "fixed_rate"
        macs_per_ms: float

        def check(self) -> None:  # it can estimate a device latency: nothing to refuse
            pass

        def costs(self, model):
            return DeviceCosts(model["peak_ram_bytes"], model["flash_bytes"], model["macs"] / self.macs_per_ms,
                               "estimated (fixed rate)")

    monkeypatch.setitem(KINDS, FixedRate.kind, FixedRate)
    profiles = check_profiles({"dsp": {"macs_per_ms": 1e6, "max_device_latency_ms": 50.0}})
    assert isinstance(profiles["dsp"], FixedRate)  # inferred from its own field
    report = analyze_frontier(RECORDS, Budgets(1.0, 50.0, 85.0), profiles)
    pick = report.profile_best.loc["dsp"]
    # within 50 ms: the models of at most 50 M MACs (small, both variants, and nas_1), nas_1 best on validation
    assert pick["best model (validation)"] == "nas_1 (fp32)" and pick["latency from"] == "estimated (fixed rate)"
    assert pick["latency (ms)"] == 30.0 and pick["models that fit"] == 3


def test_the_cycles_per_mac_constants_are_what_the_published_mlperf_tiny_results_give():
    """Each constant: the board's clock / its published KWS throughput / the reference DS-CNN's MACs."""
    from edge_audio.device_latency import PUBLISHED, cycles_per_mac, kws_macs, mlperf_tiny_kws_dscnn

    import torch
    assert mlperf_tiny_kws_dscnn()[:2](torch.zeros(1, *KWS_INPUT)).shape == (1, 64, 25, 5)  # TF "same", stride 2
    macs = kws_macs()
    assert {name: round(cycles_per_mac(result, macs), 2) for name, result in PUBLISHED.items()} == CYCLES_PER_MAC
    assert PUBLISHED["cortex_m4_cmsis_nn"].latency_ms == pytest.approx(99.81, abs=0.01)
    # the newest results per core: the MLPerf Tiny v1.3 Cortex-M4 (43.4 ms) and v1.2 Cortex-M7 (11.3 ms)
    assert PUBLISHED["cortex_m4_xcube_ai"].latency_ms == pytest.approx(43.42, abs=0.01)
    assert PUBLISHED["cortex_m7_xcube_ai"].latency_ms == pytest.approx(11.32, abs=0.01)
    # one Cortex-M4 board, three stacks: the estimate moves by more than a factor of 4 with the stack alone
    m4 = [DEPLOYMENT_PROFILES[name].cycles_per_mac for name in
          ("cortex_m4_xcube_ai", "cortex_m4", "cortex_m4_tflm_reference")]
    assert m4 == sorted(m4) and m4[-1] / m4[0] > 4


def test_a_device_latency_limit_needs_its_clock_and_cycles():
    with pytest.raises(ParameterError, match="give both"):
        check_profiles({"mcu": {"max_device_latency_ms": 100, "clock_hz": 64e6}})
    with pytest.raises(ParameterError, match="cycles_per_mac must be a positive number"):
        check_profiles({"mcu": {"max_ram_bytes": 1000, "cycles_per_mac": 0}})
    fast = record("fast", "int8_tflite", 180, 90.0, 50_000, 1.0, 10_000_000, 50_000, ram=60_000)
    report = analyze_frontier(RECORDS + [fast], Budgets(1.0, 50.0, 85.0))
    assert "cortex_m4" in report.placement(fast)["profiles"]  # 10 M MACs x 4.06 / 120 MHz = 0.34 s


def test_the_target_device_must_be_a_profile_and_tightens_the_runs_budgets():
    settings = Settings(target_device="cortex_m7", max_ram_kb=300)
    assert (settings.budgets.max_ram_kb, settings.budgets.max_flash_kb) == (300, 2000)
    with pytest.raises(ParameterError, match="target_device 'cortex_m3' is not a deployment profile; choose one of "
                                             "cortex_m4_small, cortex_m4, cortex_m4_tflm_reference, "
                                             "cortex_m4_xcube_ai, cortex_m7, ethos_u55_128"):
        Settings(target_device="cortex_m3").budgets
    mine = {"board": {"max_ram_bytes": 64_000, "full_integer_tflite": True}}
    assert Settings(target_device="board", profiles=mine).budgets.max_ram_kb == 64


def test_the_learning_curve_orders_by_parameters_and_tests_each_pair_of_neighbours():
    from edge_audio.frontier import learning_curve
    from edge_audio.tables import learning_curve_table

    models = [r for r in RECORDS if r["variant"] == "fp32"]
    ordered, neighbours = learning_curve(models, margin=1.0)
    assert [r["model"] for r in ordered] == ["nas_1", "small", "worse", "mid", "big"]
    assert [(n.smaller["model"], n.larger["model"]) for n in neighbours] == [
        ("nas_1", "small"), ("small", "worse"), ("worse", "mid"), ("mid", "big")]
    # nas_1 is right on 176 clips, small on 170: the larger is resolvably worse, and that counts as told apart
    assert neighbours[0].comparison["verdict"] == "worse" and neighbours[0].resolved
    assert neighbours[0].comparison["difference"] == pytest.approx(-3.0)
    table = learning_curve_table(ordered, neighbours)
    assert list(table.index) == ["nas_1", "small", "worse", "mid", "big"] and len(table.columns) <= 7
    assert table["Against the next smaller"].iloc[0] == ""
    assert table["Against the next smaller"].iloc[1].startswith("worse: -3.00")
    assert not table.isna().any().any()


def test_the_learning_curve_figure_joins_told_apart_neighbours_with_a_solid_line():
    import matplotlib
    matplotlib.use("Agg")
    from edge_audio.frontier import learning_curve
    from edge_audio.plots import plot_learning_curve

    ordered, neighbours = learning_curve([r for r in RECORDS if r["variant"] == "fp32"], margin=1.0)
    figure = plot_learning_curve(ordered, neighbours)
    params_axis, macs_axis = figure.axes
    assert params_axis.get_xscale() == macs_axis.get_xscale() == "log"
    segments = [line for line in params_axis.get_lines() if len(line.get_xdata()) == 2]
    assert [line.get_linestyle() == "-" for line in segments] == [n.resolved for n in neighbours]
    assert {t.get_text() for t in params_axis.texts} == {r["model"] for r in ordered}


def test_the_headline_labels_every_pick_and_draws_the_front():
    import matplotlib
    matplotlib.use("Agg")
    from edge_audio.plots import plot_headline

    report = analyze_frontier(RECORDS, Budgets(1.0, 50.0, 85.0), margin=1.0)
    picks = {report.best: "best overall", "small (int8_tflite)": "cortex_m4"}
    figure = plot_headline(report.evaluated, list(report.fronts["size"]["label"]), picks)
    axis = figure.axes[0]
    labels = {text.get_text() for text in axis.texts}
    assert set(picks) <= labels <= set(picks) | set(report.fronts["size"]["label"])
    assert axis.get_xscale() == "log" and axis.get_xlabel().startswith("deployed size (kB")
    low, high = axis.get_ylim()
    assert low >= report.evaluated["ci_low"].min() - 2.01 and high <= report.evaluated["ci_high"].max() + 2.01


def test_every_method_has_a_colour_of_its_own():
    from edge_audio.plots import METHOD_COLORS
    from edge_audio.quantize import METHODS

    assert list(METHOD_COLORS) == list(METHODS) and len(set(METHOD_COLORS.values())) == len(METHODS)


def test_an_ethos_u_profile_picks_among_what_vela_compiled_by_vela_s_numbers():
    """An NPU profile checks the arena of each variant's compile (Vela's SRAM and TFLite Micro's persistent
    section), Vela's flash and latency, not the planner's: the more accurate variant whose compile needs too much
    SRAM does not fit, however small its planner arena."""
    def vela(sram, ms):
        return {"ethos_u55_128": {"target": "ethos_u55_128", "latency_ms": ms, "sram_bytes": sram,
                                  "arena_bytes": sram + 2_000, "flash_bytes": 300_000, "npu_operators": 10,
                                  "cpu_operators": 0}}

    records = [dict(r) for r in RECORDS]
    records[2] = {**records[2], "npu": vela(600_000, 0.8)}  # mid int8: 200 kB by the planner, 600 kB by Vela
    records[4] = {**records[4], "npu": vela(100_000, 0.3)}  # small int8
    report = analyze_frontier(records, Budgets(1.0, 50.0, 85.0))
    assert report.profile_best.at["ethos_u55_128", "best model (validation)"] == "small (int8_tflite)"
    assert report.profile_best.at["ethos_u55_128", "peak RAM (kB)"] == 102.0  # Vela's SRAM and the persistent part
    assert report.profile_best.at["ethos_u55_128", "latency (ms)"] == 0.3
    assert report.profile_best.at["ethos_u55_128", "latency from"] == "estimated (Vela)"
    records[4] = {**records[4], "npu": vela(100_000, 20.0)}  # over the profile's 10 ms
    assert analyze_frontier(records, Budgets(1.0, 50.0, 85.0)).profile_best.at[
        "ethos_u55_128", "best model (validation)"] == "none fits"


def test_what_a_pick_gives_up_names_the_size_ratio_both_ways():
    """A pick smaller than the reference is "Nx fewer bytes", a larger one "Nx more", N >= 1 either way."""
    from edge_audio.chapters.frontier import pick_answer
    from edge_audio.claims import Claims

    records = RECORDS + [record("huge", "fp32", 180, 90.0, 6_000_000, 5.0, 300_000_000, 900_000, ram=3_000_000)]
    report = analyze_frontier(records, Budgets(1.0, 50.0, 85.0))
    tested = report.evaluated.set_index("label")
    assert report.best == "big (fp32)"
    assert pick_answer(report, "mid (int8_tflite)", "x", tested, Claims())["x_tradeoff"].endswith("9.1x fewer bytes")
    assert pick_answer(report, "huge (fp32)", "x", tested, Claims())["x_tradeoff"].endswith("2.0x more bytes")


def test_what_a_pick_gives_up_is_measured_against_a_reference_chosen_on_validation():
    """A variant that happens to score best on the test clips (but not on validation) is not the reference: the
    reference is the best model overall, picked on validation accuracy, and the headline compares with it."""
    from edge_audio.chapters.frontier import pick_answer
    from edge_audio.claims import Claims

    lucky = record("lucky", "fp32", 196, 80.0, 2_000_000, 3.0, 100_000_000, 500_000, ram=900_000)
    records = RECORDS + [lucky]
    report = analyze_frontier(records, Budgets(1.0, 50.0, 85.0))
    assert report.evaluated.set_index("label")["accuracy"].idxmax() == "lucky (fp32)"
    assert report.best == "big (fp32)"  # 94 % on validation
    tested = report.evaluated.set_index("label")
    answer = pick_answer(report, "lucky (fp32)", "x", tested, Claims())["x_tradeoff"]
    assert answer.startswith("lucky (fp32) is more accurate than big (fp32)")  # reported, not chosen
    assert pick_answer(report, "big (fp32)", "x", tested, Claims())["x_tradeoff"].startswith(
        "it is the best model overall")


def variant_record(method, runtime, latency, twin_latency, own, floor=None, val_no_worse=True):
    """A variant record as chapter 3's recommendation reads it: its validation verdict, its latency against its own
    FP32 twin (``own``: who is faster) and, when it was a candidate, against FP32 in the fastest runtime."""
    from edge_audio.stats import evaluation, over_seeds, paired_over_seeds, pooled

    test = over_seeds([pooled([evaluation([0] * 10, [0] * 10)], [10])], [0])
    record = {"model": "micro", "variant": method, "method": method, "runtime": runtime, "latency_ms": latency,
              "size_bytes": 1000, "accuracy": 100.0, "test": test, "speedup": twin_latency / latency,
              "size_ratio": 1.0, "fp32": {"latency_ms": twin_latency},
              "paired": {"val": {**paired_over_seeds(test, test, 1.0), "a_no_worse": val_no_worse},
                         "test": paired_over_seeds(test, test, 1.0)},
              "latency_comparison": {"faster": own, "ratio": latency / twin_latency}}
    if floor is not None:
        record["against_fastest_fp32"] = {"faster": floor[0], "ratio": latency / floor[2], "runtime": floor[1],
                                          "fp32_latency_ms": floor[2]}
    return record


def test_a_deployment_is_never_slower_than_fp32_in_the_fastest_runtime():
    """micro in the issue: openvino_bf16 (0.261 ms) beats OpenVINO's FP32 twin, but ONNX Runtime runs micro's FP32
    model in 0.105 ms: FP32 is the answer. A variant faster than both is deployed."""
    from edge_audio.chapters.quantization import recommendations
    from edge_audio.steps.quantization import QuantizationResult, fastest_fp32, qualifies

    baseline = {"runtime": "onnxruntime", "latency_ms": 0.105}
    bf16 = variant_record("openvino_bf16", "openvino", 0.261, 0.30, "a", ("b", "onnxruntime", 0.105))
    slow_int8 = variant_record("ort_static", "onnxruntime", 0.2, 0.105, "b")  # slower than its twin: no candidate
    assert fastest_fp32(baseline, [bf16, slow_int8]) == ("onnxruntime", 0.105)
    assert not qualifies(bf16) and not qualifies(slow_int8)
    picked = recommendations([QuantizationResult("micro", r["method"], r) for r in (bf16, slow_int8)])
    assert picked.at["micro", "deploy"] == "fp32"
    fast = variant_record("tflite_int8", "litert", 0.05, 0.09, "a", ("a", "onnxruntime", 0.105))
    unmeasured = variant_record("openvino_int8", "openvino", 0.01, 0.30, "a")  # never timed against the fastest
    picked = recommendations([QuantizationResult("micro", r["method"], r) for r in (bf16, fast, unmeasured)])
    assert picked.at["micro", "deploy"] == "tflite_int8"
    assert "2.10x than FP32 in onnxruntime" in picked.at["micro", "why (validation folds)"]


def test_a_variant_trained_again_is_compared_with_its_model_over_seeds_a_post_training_one_paired():
    """Quantization-aware training trains again, so a QAT variant against its own model's FP32 (or PTQ) variant is
    a comparison of two trainings: over seeds (one seed: no verdict); a post-training variant stays paired."""
    fp32 = record("mid", "fp32", 184, 92.0, 1_200_000, 2.0, 90_000_000, 300_000, ram=800_000, shifts=(0,))
    ptq = record("mid", "int8_tflite", 184, 92.0, 330_000, 1.5, 90_000_000, 300_000, ram=200_000, shifts=(0,))
    qat = {**record("mid", "qat_int8", 184, 92.0, 330_000, 1.5, 90_000_000, 300_000, ram=200_000, shifts=(0,)),
           "method": "qat_int8", "trains": True}
    report = analyze_frontier([fp32, ptq, qat], Budgets(1.0, 50.0, 85.0), margin=2.0)
    assert report.compare("mid (int8_tflite)", "mid (fp32)")["verdict"] == "within the margin"  # paired
    retrained = report.compare("mid (qat_int8)", "mid (int8_tflite)")
    assert retrained["verdict"] == "undetermined" and "training variance was not measured" in retrained["reason"]
