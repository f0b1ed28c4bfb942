"""The supernet search (edge_audio.supernet_search): structural costs exact where they claim to be and lower bounds
of the measured file and arena, budgets before scoring, NSGA-II and the random control, and the inputs it refuses."""
import random

import numpy as np
import pytest
import torch

from edge_audio.errors import ParameterError
from edge_audio.models import count_parameters, untrained_like_trained, with_trained_batchnorm
from edge_audio.nas import candidate_cost
from edge_audio.profile import count_macs
from edge_audio.settings import Settings
from edge_audio.stats import exact_p
from edge_audio.supernet import Scorer, Supernet, SupernetSpace
from edge_audio.supernet_search import (BOOK_SPACE, SubnetSearch, candidates_for, run_subnet_searches,
                                        structural_costs)
from edge_audio.targets import DEPLOYMENT_PROFILES, Budgets

SPACE = SupernetSpace(stages=(2, 3), channels=((4, 8), (8, 12), (12, 16)), kernel_size=(3, 5), fc_size=(0, 8),
                      pool=("max", "avg"))
SHAPE = (16, 20)


def test_structural_costs_count_what_the_records_count_and_bound_what_is_measured(tmp_path):
    rng = random.Random(0)
    archs = [BOOK_SPACE.smallest(), BOOK_SPACE.largest(), *(BOOK_SPACE.sample(rng) for _ in range(3))]
    for arch in archs:
        costs = structural_costs(arch, (40, 63), 10)
        model = untrained_like_trained(BOOK_SPACE.spec(arch))
        assert costs["params"] == count_parameters(model)
        assert costs["macs"] == count_macs(model, (1, 40, 63))["macs"]  # thop's count, as every record has it
    # the deployed file and the firmware's arena, measured, are at least the structural bounds, and close to them
    for arch in archs[:2]:
        costs = structural_costs(arch, (40, 63), 10)
        measured = candidate_cost(BOOK_SPACE.spec(arch), (40, 63), 10, tmp_path, runs=2)
        assert costs["flash_bytes"] <= measured["flash_bytes"] < 1.2 * costs["flash_bytes"] + 8000
        assert costs["ram_bytes"] <= measured["peak_ram_bytes"] < 1.2 * costs["ram_bytes"] + 8000


def scorer(classes: int = 3) -> Scorer:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    supernet = with_trained_batchnorm(Supernet(SPACE, classes))
    return Scorer(supernet, rng.normal(size=(8, *SHAPE)).astype(np.float32),
                  rng.normal(size=(12, *SHAPE)).astype(np.float32), rng.integers(0, classes, 12))


def test_a_search_scores_only_what_meets_the_hardware_budgets_and_compares_nsga2_with_random():
    largest = structural_costs(SPACE.largest(), SHAPE, 3)
    budgets = Budgets(max_size_mb=10.0, max_latency_ms=100.0, min_accuracy=0.0,
                      max_flash_kb=largest["flash_bytes"] * 0.6 / 1e3)
    search = SubnetSearch(scorer(), SPACE, budgets, SHAPE, 3, evaluations=24, population=6)
    outcome = run_subnet_searches(search, [0, 1])
    entries = [h for sampler in outcome.history.values() for h in sampler]
    assert len(entries) == 2 * 2 * 24 and sorted(outcome.summaries) == [0, 1]
    assert any(not h.scored for h in entries) and any(h.scored for h in entries)
    for h in entries:  # scored exactly when the structure meets the flash budget; never a score for the others
        assert h.scored == (h.flash_bytes <= budgets.max_flash_kb * 1e3)
        assert (h.proxy_accuracy is None) == (not h.scored) and h.feasible == (not h.reasons)
    assert all(0 <= outcome.summaries[s][n]["hypervolume"] <= 1 for s in (0, 1) for n in ("nsga2", "random"))
    assert outcome.comparison["hypervolume"]["seeds"] == 2 and outcome.winner in ("nsga2", "random", "tie")
    # the same seed searches the same sub-networks
    again = run_subnet_searches(search, [0])
    assert [h.arch for h in again.history["nsga2"]] == [h.arch for h in outcome.history["nsga2"] if h.seed == 0]
    # a profile's candidates meet its limits; the first is the cheapest the scored clips cannot tell from the best
    profile = DEPLOYMENT_PROFILES["cortex_m4_small"]
    fitting = candidates_for(outcome, search, profile)
    assert fitting and all(h.flash_bytes <= profile.max_flash_bytes and h.ram_bytes <= profile.max_ram_bytes
                           for h in fitting)
    best = max(fitting, key=lambda h: (h.proxy_accuracy, -h.flash_bytes, -h.macs))
    right, right_best = search.scorer.correct[fitting[0].key], search.scorer.correct[best.key]
    assert fitting[0].macs <= best.macs
    assert exact_p(int((right & ~right_best).sum()), int((~right & right_best).sum())) >= 0.05


def test_a_budget_no_sub_network_meets_is_refused_before_any_work_and_an_npu_screens_on_size_only():
    budgets = Budgets(max_size_mb=10.0, max_latency_ms=100.0, min_accuracy=0.0, max_ram_kb=0.1)
    with pytest.raises(ParameterError, match="no sub-network can meet the budgets: the smallest .* peak RAM"):
        SubnetSearch(scorer(), SPACE, budgets, SHAPE, 3, evaluations=24, population=6)
    # an NPU's SRAM and flash are Vela's, which the structure does not bound: only size screens, nothing is
    # refused on a CPU arena the NPU would not allocate
    npu = Budgets(max_ram_kb=0.1).for_device(DEPLOYMENT_PROFILES["ethos_u55_128"])
    search = SubnetSearch(scorer(), SPACE, npu, SHAPE, 3, evaluations=6, population=6)
    assert all(h.scored for h in search.run("random", 0))
    with pytest.raises(ParameterError, match="at least one NSGA-II population"):
        SubnetSearch(scorer(), SPACE, Budgets(), SHAPE, 3, evaluations=4, population=6)


def test_nas_profiles_naming_an_unknown_profile_or_too_few_evaluations_stop_the_run_in_one_line():
    with pytest.raises(ParameterError, match=r"nas_profiles \['cortex_m44'\] are not deployment profiles"):
        Settings(nas_profiles=["cortex_m44"]).check()
    with pytest.raises(ParameterError, match=r"supernet_evaluations = 39: expected an integer in \[40,"):
        Settings(supernet_evaluations=39)
