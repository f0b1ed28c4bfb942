"""The results record's declared shape: built only as declared, and checked when read back."""
import json

import pytest

from edge_audio.records import (CandidateRecord, ResultsLogError, TrainedRecord, VariantRecord, check_record,
                                holds_artifact, make_record, publish_artifact, record_type, with_fields)
from edge_audio.results import load_results, upsert_results


def candidate(**changes) -> dict:
    """The fields of a NAS candidate's record."""
    timing = {"mean_ms": 1.0, "median_ms": 1.0, "min_ms": 0.9, "p90_ms": 1.2, "runs": 5, "warmup": 2, "threads": 1,
              "runtime": "onnxruntime 1.0 CPU"}
    return {"model": "nas-0123abcd", "variant": "proxy", "precision": "fp32", "runtime": "onnxruntime",
            "int8_weights": False, "accuracy": 40.0, "macro_f1": 30.5, "latency_ms": 1.0,
            "latency": {"onnxruntime": timing}, "architecture": {"channels": [8]}, "dataset": {"name": "synth"},
            "context": {"key": "c1"}, "protocol": "NAS proxy", "protocol_kind": "nas proxy", "size_bytes": 1000,
            "params": 250, "macs": 5000, "flops": 10000, "threads": 1, "seed": 0, "features": {"n_mels": 32},
            "train": {"epochs": 1}, "source": "nas_candidate", "accuracy_kind": "proxy",
            "nas": {"sampler": "nsga2", "trial": 3, "seed": 0, "weight_bits": 8}, **changes}


def test_a_record_is_built_only_as_its_kind_declares():
    record = make_record(CandidateRecord, **candidate())
    assert record_type(record) is CandidateRecord and record["accuracy"] == 40.0
    with pytest.raises(TypeError, match=r"undeclared fields \['acuracy'\]"):  # a typo in a step
        make_record(CandidateRecord, **candidate(acuracy=41.0))
    with pytest.raises(TypeError, match=r"lacks \['macs'\]"):
        make_record(CandidateRecord, **{k: v for k, v in candidate().items() if k != "macs"})
    with pytest.raises(TypeError, match="CandidateRecord.size_bytes should be int, got str"):
        make_record(CandidateRecord, **candidate(size_bytes="1 kB"))
    with pytest.raises(TypeError, match=r"latency\.onnxruntime\.median_ms should be float"):
        make_record(CandidateRecord, **candidate(latency={"onnxruntime": {**candidate()["latency"]["onnxruntime"],
                                                                          "median_ms": None}}))
    with pytest.raises(TypeError, match="cannot have variant 'proxy'"):
        make_record(TrainedRecord, **candidate())
    with pytest.raises(TypeError, match="lacks"):  # a variant needs its FP32 twin, pairing, artifact...
        make_record(VariantRecord, **candidate(variant="ort_static"))
    # a step adding its part goes through the same check
    placed = with_fields(record, frontier={"budgets": {}, "meets_budgets": True, "pareto": {"size": True},
                                           "mmacs_per_second": 1.25, "profiles": ["gateway"],
                                           "test_folds": []})
    assert placed["frontier"]["meets_budgets"] and "frontier" not in record
    with pytest.raises(TypeError, match="frontier"):
        with_fields(record, frontier={"meets_budgets": True})


def test_an_artifact_names_the_published_file_its_bytes_and_its_source(tmp_path):
    source = tmp_path / "cache" / "entry" / "model.onnx"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"model bytes")
    artifact = publish_artifact(source, tmp_path / "models" / "m.onnx", tmp_path)
    assert artifact["path"] == "models/m.onnx" and artifact["source"] == "cache/entry/model.onnx"
    assert holds_artifact(artifact, tmp_path)
    (tmp_path / "models" / "m.onnx").write_bytes(b"another run's bytes")
    assert not holds_artifact(artifact, tmp_path)
    (tmp_path / "models" / "m.onnx").unlink()
    assert not holds_artifact(artifact, tmp_path)


def test_the_results_log_is_checked_when_read(tmp_path):
    logs = tmp_path / "logs"
    upsert_results(logs, [make_record(CandidateRecord, **candidate())])
    [record] = load_results(logs)
    check_record(record, "read back")
    assert record == candidate()
    log = logs / "all_results.json"
    # a record of an earlier layout (the artifact as three flat fields) is refused, naming the file and record
    old = {**candidate(variant="fp32"), "artifact": "models/m.pth", "artifact_sha256": "ab", "artifact_source": "c"}
    log.write_text(json.dumps([record, old]))
    with pytest.raises(ResultsLogError, match=r"all_results\.json, record 2: .*another version of edge-audio"):
        load_results(logs)
    with pytest.raises(ResultsLogError):  # and a step cannot add to such a log
        upsert_results(logs, [record])
    log.write_text('[{"model": "tiny", ')  # a write cut short
    with pytest.raises(ResultsLogError, match="is not valid JSON"):
        load_results(logs)
    log.write_text('{"model": "tiny"}')
    with pytest.raises(ResultsLogError, match="a list of records"):
        load_results(logs)

