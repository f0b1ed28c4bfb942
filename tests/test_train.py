import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from edge_audio.features import FeatureConfig
from edge_audio.data import load_dataset
from edge_audio.features import extract_features
from edge_audio.metrics import classification_metrics
from edge_audio.errors import ParameterError
from edge_audio.results import load_results
from edge_audio.steps.baselines import train_baselines
from edge_audio.steps.data import prepare_data
from helpers import small_settings
from edge_audio.train import Protocol, Split, TrainConfig, predict, train_model

SPEC = {"name": "mini", "channels": [8, 16], "fc_size": 0, "dropout": 0.0}
CONFIG = TrainConfig(epochs=4, batch_size=16, lr=0.01, seed=1, spec_augment=False)
SPLIT = Split(train_folds=(1, 2, 3, 4, 5, 6, 7, 8), val_fold=9, test_fold=10)


@pytest.fixture(scope="module")
def features(tmp_path_factory, request):
    us8k_dir = request.getfixturevalue("us8k_dir")
    config = FeatureConfig(sample_rate=8000, duration=2.0, n_mels=32, n_fft=256, hop_length=128)
    dataset = load_dataset(us8k_dir)
    return extract_features(dataset, config, tmp_path_factory.mktemp("cache"), dataset.fingerprint(), progress=False)


def test_short_training_beats_chance_and_is_deterministic(features, tmp_path):
    first = train_model(SPEC, features, SPLIT, CONFIG, tmp_path / "a", progress=False)
    second = train_model(SPEC, features, SPLIT, CONFIG, tmp_path / "b", progress=False)
    train_acc = first.history[-1]["train_accuracy"]
    assert train_acc > 25.0, f"training accuracy {train_acc}% is not above chance (10%)"
    assert first.val == second.val and first.test == second.test and first.history == second.history


def test_a_finished_run_is_loaded_not_retrained(features, tmp_path):
    first = train_model(SPEC, features, SPLIT, CONFIG, tmp_path, progress=False)
    again = train_model(SPEC, features, SPLIT, CONFIG, tmp_path, progress=False)
    assert not first.reused and again.reused and again.test == first.test
    for a, b in zip(first.load_model().state_dict().values(), again.load_model().state_dict().values()):
        assert torch.equal(a, b)


#: Every source of randomness training has: dropout (torch's global generator), SpecAugment and the data order
#: (the run's generator), mixup (NumPy, seeded per step).
RANDOM_SPEC = {**SPEC, "fc_size": 16, "dropout": 0.3}
RANDOM_CONFIG = TrainConfig(epochs=4, batch_size=16, lr=0.01, seed=1, spec_augment=True, mixup_alpha=0.2)


def test_an_interrupted_run_resumes_bit_for_bit(features, tmp_path):
    straight = train_model(RANDOM_SPEC, features, SPLIT, RANDOM_CONFIG, tmp_path / "straight", progress=False)
    for epoch in (1, 2, 3):  # killed after each of these epochs in turn, resumed each time from the checkpoint
        with pytest.raises(KeyboardInterrupt):
            train_model(RANDOM_SPEC, features, SPLIT, RANDOM_CONFIG, tmp_path / "resumed", progress=False,
                        stop_after_epoch=epoch)
        [partial] = (tmp_path / "resumed").glob("*.partial")
        assert (partial / "checkpoint.pt").is_file() and not (partial / "best.pt").exists()
    resumed = train_model(RANDOM_SPEC, features, SPLIT, RANDOM_CONFIG, tmp_path / "resumed", progress=False)
    assert resumed.history == straight.history and resumed.test == straight.test and resumed.val == straight.val
    assert resumed.checkpoint.read_bytes() == straight.checkpoint.read_bytes()  # the weights, byte for byte


class _Planted:
    """A pickle that writes a file when it is loaded: what someone with write access to the cache could plant."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_checkpoint_is_refused_and_runs_nothing(features, tmp_path, capsys):
    import pickle

    straight = train_model(SPEC, features, SPLIT, CONFIG, tmp_path / "straight", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_model(SPEC, features, SPLIT, CONFIG, tmp_path / "runs", progress=False, stop_after_epoch=1)
    [partial] = (tmp_path / "runs").glob("*.partial")
    marker = tmp_path / "pwned"
    (partial / "checkpoint.pt").write_bytes(pickle.dumps({"model": _Planted(marker)}))
    resumed = train_model(SPEC, features, SPLIT, CONFIG, tmp_path / "runs", progress=False)
    assert not marker.exists()  # the pickle's code never ran
    assert "refusing to resume" in capsys.readouterr().err
    assert resumed.history == straight.history  # trained from the start instead


def test_a_garbled_run_is_discarded_and_retrained(features, tmp_path, capsys):
    first = train_model(SPEC, features, SPLIT, CONFIG, tmp_path, progress=False)
    weights = first.checkpoint.read_bytes()
    garbled = bytearray(weights)
    garbled[len(garbled) // 2:len(garbled) // 2 + 64] = b"\xff" * 64  # same size, NaN-making bytes in the middle
    first.checkpoint.write_bytes(bytes(garbled))
    again = train_model(SPEC, features, SPLIT, CONFIG, tmp_path, progress=False)
    assert "is damaged" in capsys.readouterr().err
    assert not again.reused and again.checkpoint.read_bytes() == weights and again.test == first.test


def test_training_that_diverges_stops_and_caches_nothing(features, tmp_path):
    from edge_audio.train import TrainingDiverged

    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 1, step \d+ \(loss nan\)"):
        train_model(SPEC, features, SPLIT, TrainConfig(epochs=2, batch_size=16, lr=1e30, seed=1,
                                                       spec_augment=False), tmp_path, progress=False)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".") and not p.name.endswith(".partial")]


def test_holdout_and_kfold_use_the_datasets_own_folds():
    folds = list(range(1, 11))
    (holdout,) = Protocol("holdout").splits(folds)
    assert (holdout.val_fold, holdout.test_fold, holdout.train_folds) == (9, 10, tuple(range(1, 9)))
    kfold = Protocol("kfold").splits(folds)
    assert sorted(s.test_fold for s in kfold) == folds
    for split in kfold:
        assert set(split.train_folds) | {split.val_fold, split.test_fold} == set(folds)
        assert split.val_fold not in split.train_folds and split.test_fold not in split.train_folds
    assert Protocol("holdout").splits([1, 2, 3, 4, 5])[0].test_fold == 5
    assert Protocol().describe(folds) == "holdout (val fold 9, test fold 10)"


@pytest.mark.parametrize("protocol, folds, message", [
    (Protocol("holdout", test_fold=11), list(range(1, 11)), "not a fold"),
    (Protocol("holdout", val_fold=3, test_fold=3), list(range(1, 11)), "must differ"),
    (Protocol("holdout"), [1, 2], "at least 3 folds"),
])
def test_bad_protocols_are_rejected(protocol, folds, message):
    with pytest.raises(ValueError, match=message):
        protocol.splits(folds)


def test_unknown_protocol_and_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="protocol must be one of"):
        Protocol("random")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")


def test_metrics_of_a_known_prediction():
    metrics = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], num_classes=4)
    assert metrics["accuracy"] == 60.0
    assert metrics["per_class_accuracy"] == [50.0, 100.0, 0.0, None]
    assert metrics["confusion"][0] == [1, 1, 0, 0] and metrics["confusion"][2] == [1, 0, 0, 0]
    # F1: class 0 = 0.5, class 1 = 0.8, class 2 = 0; class 3 is absent and not averaged
    assert metrics["macro_f1"] == pytest.approx(100 * (0.5 + 0.8 + 0.0) / 3, abs=1e-3)


def test_baselines_step_writes_models_records_and_reuses_runs(us8k_dir, tmp_path):
    settings = small_settings(us8k_dir, tmp_path, epochs=2, batch_size=16, model_configs=[SPEC, "tiny"],
                              latency_runs=5)
    data = prepare_data(settings)
    first = train_baselines(data, settings)
    for result in first:
        record = result.record
        assert os.path.getsize(result.model_path) == record["size_bytes"]
        assert (tmp_path / record["artifact"]["path"]) == result.model_path
        assert record["protocol"] == "holdout (val fold 9, test fold 10)" and record["seed"] == 0
        assert record["latency"]["onnxruntime"]["threads"] == 1
        assert (tmp_path / "models" / f"{result.name}.onnx").is_file()
        # the record's accuracy is the one its run measured on the test fold
        assert record["accuracy"] == result.deployed_run.test["accuracy"]
        model = result.deployed_run.load_model()
        x_test, y_test = data.features.select([10])
        assert record["accuracy"] == classification_metrics(y_test, predict(model, x_test).argmax(1),
                                                            data.num_classes)["accuracy"]
    second = train_baselines(data, settings)
    assert all(r.deployed_run.reused for r in second)
    # what chapter 2 says of a second run: it trained nothing and reused every run
    from edge_audio.chapters.baselines import chapter_values

    values = chapter_values(second, data, settings)
    assert values["n_trained"] == 0 and values["n_reused"] == sum(len(runs) for b in second
                                                                  for runs in b.seed_runs.values())
    assert [r.record for r in second] == [r.record for r in first]
    assert len(load_results(tmp_path / "logs")) == 2  # upserted, not duplicated
    with pytest.raises(ParameterError, match="unique"):
        train_baselines(data, settings, ["tiny", "tiny"])


def test_kfold_baselines_report_mean_and_spread_over_the_official_folds(us8k_dir, tmp_path):
    settings = small_settings(us8k_dir, tmp_path, epochs=1, batch_size=16, model_configs=[SPEC], latency_runs=3,
                              protocol="kfold")
    (result,) = train_baselines(prepare_data(settings), settings)
    record = result.record
    assert record["protocol"] == "10-fold cross-validation" and record["protocol_kind"] == "kfold"
    assert sorted(record["test_folds"]) == list(range(1, 11)) and len(result.runs) == 10
    accuracies = [run.test["accuracy"] for run in result.runs]
    assert record["accuracy"] == pytest.approx(np.mean(accuracies), abs=1e-3)
    assert record["accuracy_std"] == pytest.approx(np.std(accuracies), abs=1e-3)
    assert result.deployed_run.split.test_fold == 10


def test_a_run_on_another_device_or_torch_is_another_run(features, tmp_path):
    from edge_audio.storage import stable_hash
    from edge_audio.train import run_key

    keys = {stable_hash(run_key(SPEC, features, CONFIG, SPLIT, torch.device(device))) for device in ("cpu", "cuda")}
    assert len(keys) == 2
    assert run_key(SPEC, features, CONFIG, SPLIT, torch.device("cpu"))["torch"] == torch.__version__


def test_training_uses_bf16_autocast_on_cuda_and_on_a_cpu_with_native_bf16_only(monkeypatch):
    import warnings

    from edge_audio import machine
    from edge_audio.train import mixed_precision, run_key, training_precision

    with warnings.catch_warnings():  # constructing a CUDA autocast without a GPU warns and disables it
        warnings.simplefilter("ignore")
        cuda = mixed_precision(torch.device("cuda"))
    assert isinstance(cuda, torch.autocast) and cuda.fast_dtype == torch.bfloat16 and cuda.device == "cuda"
    cpu = torch.device("cpu")
    monkeypatch.setattr(machine, "cpu_isa", lambda: ["avx2", "fma"])  # no native bf16: FP32, as before
    assert training_precision(cpu) == "fp32"
    with mixed_precision(cpu):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    fp32_key = run_key({"name": "m"}, SimpleNamespace(key="f"), TrainConfig(), Split((1,), 2, 3), cpu)
    monkeypatch.setattr(machine, "cpu_isa", lambda: ["avx2", "avx512f", "avx512_bf16"])
    assert training_precision(cpu) == "bf16"
    with mixed_precision(cpu):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    # a run trained in bf16 is another run: its key says so, and an FP32 run's cache entry is never reused for it
    assert run_key({"name": "m"}, SimpleNamespace(key="f"), TrainConfig(), Split((1,), 2, 3), cpu) != fp32_key


def test_the_distillation_loss_is_zero_only_when_the_student_matches_its_teacher():
    from edge_audio.train import distillation_loss

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    teacher = torch.softmax(logits / 4.0, dim=1)
    assert float(distillation_loss(logits, teacher, 4.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(logits.flip(1), teacher, 4.0)) > 0.1


def test_a_student_learns_what_its_teacher_says_clip_by_clip(features, tmp_path):
    # taught only by its teacher (weight 1), a student learns the classes when the teacher's logits are the
    # training clips' own, and nothing when the same logits are dealt to the wrong clips
    from edge_audio.train import Distillation

    _, y_train = features.select(SPLIT.train_folds)
    logits = 10.0 * np.eye(features.num_classes, dtype=np.float32)[y_train]
    dealt = logits[np.random.default_rng(0).permutation(len(logits))]
    config = TrainConfig(epochs=4, batch_size=16, lr=0.01, seed=1, spec_augment=False)
    taught, misled = (train_model(SPEC, features, SPLIT, config, tmp_path, progress=False,
                                  distillation=Distillation(teacher, {"runs": [name]}, temperature=1.0, weight=1.0))
                      for teacher, name in ((logits, "aligned"), (dealt, "dealt")))
    alone = train_model(SPEC, features, SPLIT, config, tmp_path, progress=False)
    assert not alone.reused and not misled.reused, "distilled and label-only runs must not share a cache entry"
    learned = [run.history[-1]["train_accuracy"] for run in (taught, misled, alone)]
    assert learned[0] > 25.0 and learned[0] > learned[1] + 10.0, learned
    with pytest.raises(ValueError, match="the teacher's logits have shape"):
        train_model(SPEC, features, SPLIT, config, tmp_path / "other", progress=False,
                    distillation=Distillation(logits[:-1], {"runs": ["short"]}))
    with pytest.raises(ParameterError, match="temperature > 0"):
        Distillation(logits, {}, temperature=0.0)
