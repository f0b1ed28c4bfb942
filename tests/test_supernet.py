"""The weight-sharing supernet (edge_audio.supernet): a sub-network with inherited weights computes what the same
architecture with copied weights computes, BatchNorm recalibration, the sandwich rule's training, and the spaces it
refuses."""
import random

import numpy as np
import pytest
import torch
from torch import nn

from edge_audio.errors import ParameterError
from edge_audio.models import with_trained_batchnorm
from edge_audio.supernet import (Scorer, Supernet, SupernetSpace, recalibrate_batchnorm, score, train_supernet)

SPACE = SupernetSpace(stages=(2, 3), channels=((4, 8), (8, 12), (12, 16)), kernel_size=(3, 5), fc_size=(0, 8, 16),
                      pool=("max", "avg"))
SHAPE = (16, 20)  # mels, frames


def test_a_subnetwork_with_inherited_weights_computes_what_its_copy_computes():
    torch.manual_seed(0)
    supernet = with_trained_batchnorm(Supernet(SPACE, num_classes=5))
    x = torch.randn(6, 1, *SHAPE)
    rng = random.Random(0)
    archs = [SPACE.largest(), SPACE.smallest(), *(SPACE.sample(rng) for _ in range(12))]
    assert {a["fc_size"] for a in archs} >= {0, 8} and {a["pool"] for a in archs} == {"max", "avg"}
    for arch in archs:
        copy = supernet.extract(arch)
        assert copy.spec["channels"] == arch["channels"] and copy.spec["kernel_size"] == arch["kernel_size"]
        with torch.no_grad():
            assert torch.allclose(supernet(x, arch), copy(x), atol=1e-5), arch
    # the copy is the sub-network alone: its parameters are exactly the sliced ones
    small = supernet.extract(SPACE.smallest())
    first = [m for m in small.features if isinstance(m, nn.Conv2d)][0]
    assert torch.equal(first.weight, supernet.convs[0].weight[:4, :1, 1:4, 1:4])


def test_batchnorm_recalibration_takes_each_stage_statistics_and_keeps_the_weights():
    torch.manual_seed(0)
    model = with_trained_batchnorm(Supernet(SPACE, num_classes=3)).extract(SPACE.largest())
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    clips = np.random.default_rng(0).normal(2.0, 3.0, size=(64, *SHAPE)).astype(np.float32)
    recalibrate_batchnorm(model, clips)
    assert not model.training
    first = model.features[0]  # the input BatchNorm: the clips' mean and variance
    assert first.running_mean.item() == pytest.approx(float(clips.mean()), abs=1e-4)
    assert first.running_var.item() == pytest.approx(float(clips.var()), rel=1e-4)
    # every later BatchNorm normalises what reaches it over the clips: zero mean, unit variance, before its affine
    with torch.no_grad():
        x = torch.from_numpy(clips).unsqueeze(1)
        for module in model.features:
            if isinstance(module, nn.BatchNorm2d) and module is not first:
                normalised = (x - module.running_mean[None, :, None, None]) / torch.sqrt(
                    module.running_var[None, :, None, None] + module.eps)
                assert normalised.mean((0, 2, 3)).abs().max() < 1e-4
                assert (normalised.var((0, 2, 3), unbiased=False) - 1).abs().max() < 1e-3
            x = module(x)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items() if k in weights)


def test_the_scorer_computes_what_the_recalibrated_copy_computes_and_shares_stages():
    torch.manual_seed(0)
    supernet = with_trained_batchnorm(Supernet(SPACE, num_classes=4))
    rng = np.random.default_rng(1)
    calibration = rng.normal(size=(24, *SHAPE)).astype(np.float32)
    x, y = rng.normal(size=(10, *SHAPE)).astype(np.float32), rng.integers(0, 4, 10)
    scorer = Scorer(supernet, calibration, x, y)
    sampler = random.Random(3)
    for arch in [SPACE.largest(), SPACE.smallest(), *(SPACE.sample(sampler) for _ in range(10))]:
        copy = scorer.model(arch)
        with torch.no_grad():
            expected = copy(torch.from_numpy(x).unsqueeze(1))
        assert torch.allclose(scorer.logits(arch), expected, atol=1e-4), arch
        assert scorer.score(arch)["accuracy"] == score(supernet, arch, calibration, x, y)["accuracy"]
    # a stage computed once serves every sub-network that begins with it; a tiny cache still scores correctly
    assert len(scorer.stages) < 3 * 12
    small = Scorer(supernet, calibration, x, y, cache_bytes=1)
    assert torch.allclose(small.logits(SPACE.largest()), scorer.logits(SPACE.largest()), atol=1e-5)
    assert len(small.stages) == 1
    with pytest.raises(ParameterError, match="not a sub-network"):
        scorer.score({**SPACE.largest(), "kernel_size": 7})


def separable(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Clips whose class is a bright band of mel rows: what any sub-network can learn."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    x = rng.normal(0.0, 1.0, size=(n, *SHAPE)).astype(np.float32)
    for i, label in enumerate(y):
        x[i, 4 * label:4 * label + 4] += 3.0
    return x, y


def test_the_sandwich_rule_trains_the_largest_and_the_smallest_and_is_seeded():
    x, y = separable(192, 3, seed=0)
    x_val, y_val = separable(96, 3, seed=1)
    supernet, history = train_supernet(SPACE, x, y, num_classes=3, epochs=8, batch_size=32, lr=1e-2, seed=0)
    assert len(history) == 8 and history[-1]["largest_train_loss"] < history[0]["largest_train_loss"] / 5
    # both ends of the space learned the task from one training (chance is 33 %, 96 validation clips): the
    # largest from the labels, the smallest only from the largest's outputs
    assert score(supernet, SPACE.largest(), x[:64], x_val, y_val)["accuracy"] > 95.0
    assert score(supernet, SPACE.smallest(), x[:64], x_val, y_val)["accuracy"] > 60.0
    again, _ = train_supernet(SPACE, x, y, num_classes=3, epochs=8, batch_size=32, lr=1e-2, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(supernet.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("space, message", [
    (SupernetSpace(block="dsconv"), "standard blocks only"),
    (SupernetSpace(stages=(2, 6)), "need a width set for each stage"),
    (SupernetSpace(kernel_size=(4,)), "kernel sizes"),
    (SupernetSpace(pool=("median",)), "pools must be max or avg"),
])
def test_a_space_the_supernet_cannot_share_weights_over_is_refused(space, message):
    with pytest.raises(ParameterError, match=message):
        Supernet(space, num_classes=3)


def test_an_architecture_outside_the_space_is_refused():
    supernet = Supernet(SPACE, num_classes=3)
    with pytest.raises(ParameterError, match="not a sub-network"):
        supernet.extract({"channels": [4, 10], "kernel_size": 3, "fc_size": 0, "pool": "max"})


def test_an_interrupted_supernet_training_resumes_to_the_same_weights(tmp_path):
    x, y = separable(96, 3, seed=0)
    whole, history = train_supernet(SPACE, x, y, num_classes=3, epochs=3, batch_size=32, seed=0)
    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        train_supernet(SPACE, x, y, num_classes=3, epochs=3, batch_size=32, seed=0, checkpoint=checkpoint,
                       stop_after_epoch=1)
    assert checkpoint.is_file()
    resumed, again = train_supernet(SPACE, x, y, num_classes=3, epochs=3, batch_size=32, seed=0, checkpoint=checkpoint)
    assert again == history
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))


def test_a_planted_supernet_checkpoint_is_refused_and_runs_nothing(tmp_path, capsys):
    import pickle

    x, y = separable(64, 3, seed=0)
    checkpoint, witness = tmp_path / "checkpoint.pt", tmp_path / "planted"

    class Payload:
        def __reduce__(self):
            return (open, (str(witness), "w"))

    checkpoint.write_bytes(pickle.dumps({"model": Payload()}))
    train_supernet(SPACE, x, y, num_classes=3, epochs=1, batch_size=32, seed=0, checkpoint=checkpoint)
    assert not witness.exists() and "refusing to resume the supernet" in capsys.readouterr().err


def test_a_supernet_run_is_cached_by_its_space(us8k_dir, tmp_path):
    from edge_audio.steps.data import prepare_data
    from edge_audio.supernet import supernet_run
    from edge_audio.train import Split
    from helpers import small_settings

    data = prepare_data(small_settings(us8k_dir, tmp_path))
    split = Split(train_folds=(1, 2), val_fold=3, test_fold=3)
    first, entry = supernet_run(SPACE, data.features, split, 1, 16, 3e-3, 0, tmp_path / "cache")
    again, hit = supernet_run(SPACE, data.features, split, 1, 16, 3e-3, 0, tmp_path / "cache")
    assert not entry.hit and hit.hit and hit.path == entry.path
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    other = SupernetSpace(stages=(2,), channels=((4, 8), (8, 12)), kernel_size=(3,), fc_size=(0,), pool=("max",))
    _, elsewhere = supernet_run(other, data.features, split, 1, 16, 3e-3, 0, tmp_path / "cache")
    assert elsewhere.path != entry.path and not elsewhere.hit  # another space never reuses this one's weights
