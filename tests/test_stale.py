"""Nothing stale: run 2, then 3, then 2 epochs over one output folder; every artifact and record matches the last
run."""
import numpy as np
import pytest

from edge_audio.runtimes import open_model
from edge_audio.records import holds_artifact
from edge_audio.results import load_results
from edge_audio.steps.baselines import train_baselines
from edge_audio.steps.data import prepare_data
from edge_audio.steps.frontier import build_frontier
from edge_audio.steps.quantization import quantize_models
from edge_audio.steps.search import NAS_BEST_FILES, run_nas
from edge_audio.storage import file_sha256, read_json
from edge_audio.train import predict
from helpers import small_settings

SPEC = {"name": "mini", "channels": [8, 16], "fc_size": 16}


def stale_files(data, settings) -> list[str]:
    """Published files whose bytes are not the ones the current run's records name."""
    stale = []
    for record in load_results(data.layout.logs, data.context(settings)["key"]):
        for artifact in (record.get("artifact"), record.get("onnx_artifact")):
            if artifact and not holds_artifact(artifact, data.layout.root):
                stale.append(artifact["path"])
    return stale


@pytest.fixture(scope="module")
def runs(us8k_dir, tmp_path_factory):
    """Every step at 2, then 3, then 2 epochs, over one output folder: (settings, data, baselines, search, frontier,
    the published files that did not match the run's records right after it)."""
    base = small_settings(us8k_dir, tmp_path_factory.mktemp("stale"), model_configs=[SPEC], latency_runs=3,
                          methods=["ort_static", "pytorch_dynamic"], calibration_size=10, nas_population=2,
                          nas_generations=1, proxy_epochs=1, top_k=1, min_accuracy=0.0, device="cpu")
    done = []
    for epochs in (2, 3, 2):
        settings = base.replace(epochs=epochs)
        data = prepare_data(settings)
        baselines = train_baselines(data, settings)
        quantize_models(data, settings, baselines)
        nas = run_nas(data, settings, baselines)
        done.append((settings, data, baselines, nas, build_frontier(data, settings), stale_files(data, settings)))
    return done


def test_after_every_run_the_published_files_are_that_runs(runs):
    assert [run[-1] for run in runs] == [[], [], []]


def test_published_files_and_records_are_the_last_runs(runs):
    settings, data, baselines, nas, frontier, _ = runs[-1]
    context = data.context(settings)["key"]
    assert context == runs[0][1].context(runs[0][0])["key"] != runs[1][1].context(runs[1][0])["key"]
    records = load_results(data.layout.logs, context)
    assert {(r["model"], r["variant"]) for r in records} >= {
        ("mini", "fp32"), ("mini", "ort_static"), ("mini", "pytorch_dynamic"), ("nas_1", "fp32"),
        ("nas_1", "ort_static")}
    for record in records:
        assert record["context"]["train"]["epochs"] == 2
        if "artifact" in record:  # every published file holds exactly the bytes its record of the last run names
            assert file_sha256(data.layout.root / record["artifact"]["path"]) == record["artifact"]["sha256"]
        if "onnx_artifact" in record:
            assert file_sha256(data.layout.root / record["onnx_artifact"]["path"]) == record["onnx_artifact"]["sha256"]
    # the published ONNX model is the 2-epoch model (loaded from its cache, not retrained): the same logits
    run = baselines[0].deployed_run
    assert run.epochs_run == 2 and run.reused
    x = data.features.features[:8]
    logits = open_model(data.layout.models / "mini.onnx").predict(x[:, None])
    assert np.abs(logits - predict(run.load_model(), x)).max() < 1e-4
    # the published best search model is this run's finalist, and the frontier read this run's records only
    best = read_json(data.layout.models / NAS_BEST_FILES["spec"])
    assert file_sha256(data.layout.models / NAS_BEST_FILES["onnx"]) == best["sha256"]["onnx"] \
        == nas.best.record["onnx_artifact"]["sha256"]
    assert all(r["context"]["key"] == context for r in frontier.records)
    assert len(frontier.report.table) == len(records)


def test_records_of_other_settings_keep_files_that_match_them(runs):
    data = runs[-1][1]
    records = load_results(data.layout.logs)
    assert {r["context"]["train"]["epochs"] for r in records} == {2, 3}  # both settings' records are kept
    for record in records:
        if "artifact" in record:
            assert file_sha256(data.layout.root / record["artifact"]["source"]) == record["artifact"]["sha256"]
    [three] = [r for r in records if r["context"]["train"]["epochs"] == 3 and r["variant"] == "fp32"
               and r["model"] == "mini"]
    assert not holds_artifact(three["artifact"], data.layout.root)  # models/ moved on


def test_latency_caches_are_keyed_by_the_machine(runs, monkeypatch):
    import edge_audio.steps.baselines as baselines_step

    settings, data, _, _, _, _ = runs[-1]
    monkeypatch.setattr(baselines_step, "machine_identity", lambda: {"cpu": "another CPU", "isa": [], "cores": 2,
                                                                     "arch": "x86_64"})
    [again] = train_baselines(data, settings)
    assert again.deployed_run.reused  # the training run is the same...
    assert again.record["artifact"]["source"] == runs[-1][2][0].record["artifact"]["source"]  # so is its export...
    assert again.record["profile_source"] != runs[-1][2][0].record["profile_source"]  # ...but it is re-profiled


def test_records_whose_cache_entry_is_discarded_leave_the_log(runs, capsys):
    data = runs[-1][1]
    records = load_results(data.layout.logs)
    [three] = [r for r in records if r["context"]["train"]["epochs"] == 3 and r["variant"] == "ort_static"
               and r["model"] == "mini"]
    source = data.layout.root / three["artifact"]["source"]
    original = source.read_bytes()
    try:
        source.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # its entry no longer holds its bytes
        left = load_results(data.layout.logs)
        assert "1 record(s)" in capsys.readouterr().err
        assert len(left) == len(records) - 1 and three not in left
    finally:
        source.write_bytes(original)
    assert len(load_results(data.layout.logs)) == len(records)
