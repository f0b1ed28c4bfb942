"""The architecture search: hard budgets before training, resumable studies, a fair random control."""
import dataclasses
import json

import numpy as np
import optuna
import pytest

from edge_audio import nas, workers
from edge_audio.errors import ParameterError
from edge_audio.nas import (SAMPLERS, SearchConfig, SearchContext, SearchOutcome, Trial, closest_candidate,
                            compare_searches, run_search, run_study, study_history, study_name)
from edge_audio.steps.baselines import train_baselines
from edge_audio.steps.data import prepare_data
from edge_audio.chapters.search import SearchChapter
from edge_audio.steps.search import run_nas
from edge_audio.targets import Budgets, profile_from
from edge_audio.train import Distillation, Protocol, train_model
from helpers import small_settings


@pytest.fixture(scope="module")
def data(us8k_dir, tmp_path_factory):
    return prepare_data(small_settings(us8k_dir, tmp_path_factory.mktemp("nas-out")))


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    """Shared by the tests of this module: candidates' measured costs and proxy runs are cached in it."""
    return tmp_path_factory.mktemp("nas-work")


class CountingTrainer:
    """Wraps train_model, records each spec it is asked to train, and can raise after ``fail_after`` calls."""

    def __init__(self, fail_after=None):
        self.specs, self.fail_after = [], fail_after

    def __call__(self, spec, *args, **kwargs):
        if self.fail_after is not None and len(self.specs) >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.specs.append({k: v for k, v in spec.items() if k != "name"})
        self.taught = getattr(self, "taught", []) + [kwargs.get("distillation")]
        return train_model(spec, *args, **kwargs)


def context_for(data, work_dir, budgets, trainer, population=3, generations=2, top_k=1, weight_bits=(8, 4),
                distillation=None):
    split = Protocol().splits(data.dataset.folds)[0]
    search = SearchConfig(population=population, generations=generations, proxy_epochs=1, top_k=top_k,
                          latency_runs=5, weight_bits=weight_bits)
    return SearchContext(lambda n_mels: data.features, data.feature_config.n_mels, split, budgets, search, work_dir,
                         "cpu", trainer, distillation=distillation)


IDENTITY = {"test": "nas"}


def storage_url(tmp_path):
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_infeasible_candidates_are_never_trained(data, work_dir, tmp_path):
    trainer = CountingTrainer()
    budgets = Budgets(max_size_mb=0.15, max_latency_ms=50.0, min_accuracy=0.0)
    outcome = run_search(context_for(data, work_dir, budgets, trainer), [0], storage_url(tmp_path), IDENTITY,
                         tmp_path / "history.json")
    entries = [h for s in SAMPLERS for h in outcome.history[s]]
    over = [h for h in entries if h.size_bytes > budgets.max_size_bytes]
    assert over, "the test needs at least one candidate over the size budget"
    assert all(not h.trained and h.proxy_accuracy is None and not h.feasible for h in over)
    assert all("size" in " ".join(h.reasons) for h in over)
    assert len(trainer.specs) == sum(h.trained for h in entries)
    assert not any(h.spec in trainer.specs for h in over)


def test_both_searches_share_the_trial_budget_and_the_history_is_complete(data, work_dir, tmp_path):
    budgets = Budgets(2.0, 50.0, 0.0)
    context = context_for(data, work_dir, budgets, CountingTrainer())
    outcome = run_search(context, [0], storage_url(tmp_path), IDENTITY, tmp_path / "history.json")
    assert [len(outcome.history[s]) for s in SAMPLERS] == [context.config.trials] * 2
    saved = json.loads((tmp_path / "history.json").read_text())
    assert len(saved["trials"]) == 2 * context.config.trials
    assert [Trial.from_dict(entry) for entry in saved["trials"]] == outcome.history["nsga2"] + outcome.history["random"]
    for entry in outcome.history["nsga2"]:
        assert entry.feasible == (not entry.reasons)
    assert saved["budgets"] == budgets.to_dict()
    for sampler in SAMPLERS:
        assert outcome.summaries[0][sampler]["trials"] == context.config.trials
    # same seed, same study: the first generation of NSGA-II is its random sampler's, so the random control's
    # first trials are the same candidates (trained once, reused)
    assert [h.spec for h in outcome.history["nsga2"][:3]] == [h.spec for h in outcome.history["random"][:3]]


def test_a_killed_search_resumes_the_same_study(data, work_dir, tmp_path):
    budgets = Budgets(2.0, 50.0, 0.0)
    storage = storage_url(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_study(context_for(data, work_dir, budgets, CountingTrainer(fail_after=2)), "nsga2", storage, IDENTITY)
    study = optuna.load_study(study_name=study_name("nsga2", IDENTITY), storage=storage)
    completed_before = len(study_history(study))
    assert completed_before == 2
    study = run_study(context_for(data, work_dir, budgets, CountingTrainer()), "nsga2", storage, IDENTITY)
    history = study_history(study)
    assert len(history) == 6  # population 3 x 2 generations, counting the trials completed before the kill
    numbers = [h.number for h in history]
    assert len(set(numbers)) == len(numbers)
    # a longer search continues the same study instead of starting again
    study = run_study(context_for(data, work_dir, budgets, CountingTrainer(), generations=3), "nsga2", storage,
                      IDENTITY)
    assert len(study_history(study)) == 9 and study_history(study)[:6] == history


def test_impossible_budgets_give_no_finalist_and_name_the_closest_candidate(data, tmp_path):
    settings = small_settings(data.dataset.root, data.layout.root, epochs=1, model_configs=["tiny"], device="cpu",
                              latency_runs=5, calibration_size=10, nas_population=2, nas_generations=1,
                              proxy_epochs=1, max_size_mb=0.0001, min_accuracy=70.0,
                              storage=storage_url(tmp_path))
    budgets = settings.budgets
    result = run_nas(data, settings, train_baselines(data, settings))
    assert result.finalists == [] and result.best is None and result.best_files == {}
    assert not (data.layout.models / "nas_best_model.pth").exists()
    entries = result.search.history["nsga2"]  # the finalists, and so the closest miss, come from NSGA-II
    near = closest_candidate(entries, budgets)
    assert near is not None and not near.trained and near.size_bytes == min(h.size_bytes for h in entries)
    # what chapter 4 shows for it: its figures, that nothing met the budgets, the closest candidate and how far
    chapter = SearchChapter.of(settings, data, train_baselines(data, settings), result)
    assert (data.layout.reports / "nas_evolution.png").is_file()
    assert (data.layout.reports / "nas_feasibility.png").is_file()
    [shown] = chapter.outcome()
    assert "No candidate of NSGA-II met these budgets" in shown.data
    assert "The closest candidate" in shown.data and "size 0." in shown.data
    answer, table, glued = chapter.dominance
    assert glued == {"nas_dominated": "none"} and answer.startswith("**No**") and "no finalist" in answer


@pytest.mark.parametrize("kwargs, message", [
    ({"population": 1}, "population must be >= 2"),
    ({"generations": 0}, "generations must be a positive integer"),
    ({"proxy_train_folds": 0}, "proxy_train_folds"),
    ({"n_mels_choices": (4,)}, "n_mels_choices"),
])
def test_invalid_search_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        SearchConfig(**kwargs)


@pytest.mark.parametrize("hypervolumes, winner", [
    ({"nsga2": [0.5], "random": [0.4]}, "tie"),  # one seed: no verdict, whatever the numbers
    ({"nsga2": [0.50, 0.52, 0.51], "random": [0.40, 0.41, 0.43]}, "nsga2"),  # higher on every seed
    ({"nsga2": [0.50, 0.40, 0.45], "random": [0.42, 0.46, 0.46]}, "tie"),  # the spread swamps the difference
    ({"nsga2": [0.30, 0.31, 0.33], "random": [0.40, 0.42, 0.41]}, "random"),
])
def test_the_winner_is_decided_over_seeds(hypervolumes, winner):
    seeds = range(len(hypervolumes["nsga2"]))
    summaries = {seed: {s: {"best_feasible_accuracy": 80.0, "hypervolume": hypervolumes[s][seed]} for s in SAMPLERS}
                 for seed in seeds}
    outcome = SearchOutcome({}, summaries, compare_searches(summaries), [], "", {}, Budgets(), SearchConfig())
    assert outcome.winner == winner
    assert outcome.comparison["hypervolume"]["seeds"] == len(seeds)


def test_finalists_are_distinct_architectures(data, work_dir, tmp_path):
    context = context_for(data, work_dir, Budgets(2.0, 50.0, 0.0), CountingTrainer(), population=2, generations=3,
                          top_k=6)
    outcome = run_search(context, [0], storage_url(tmp_path), IDENTITY, tmp_path / "history.json")
    keys = [h.architecture_key for h in outcome.finalists]
    assert keys and len(keys) == len(set(keys))


@pytest.mark.parametrize("field, budget, reason", [("int8_peak_ram_bytes", "max_ram_kb", "peak RAM"),
                                                   ("size_bytes", "max_flash_kb", "flash")])
def test_candidates_over_a_device_budget_are_never_trained(data, work_dir, tmp_path, field, budget, reason):
    """Peak RAM with INT8 activations and flash (the full-integer TFLite model's bytes), both known before
    training: a candidate over either budget is recorded with the reason and never trained."""
    generous = Budgets(max_size_mb=2.0, max_latency_ms=50.0, min_accuracy=0.0)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_search(context_for(data, work_dir, generous, CountingTrainer()), [0], storage_url(tmp_path / "a"),
                       IDENTITY, tmp_path / "a.json")
    values = sorted({getattr(h, field) for s in SAMPLERS for h in first.history[s]})
    assert len(values) > 1, f"the test needs candidates of different {field}"
    limit = (values[0] + values[1]) / 2  # the smallest candidate fits, the others do not
    budgets = Budgets(max_size_mb=2.0, max_latency_ms=50.0, min_accuracy=0.0, **{budget: limit / 1e3})
    trainer = CountingTrainer()
    outcome = run_search(context_for(data, work_dir, budgets, trainer), [0], storage_url(tmp_path / "b"),
                         {**IDENTITY, "budgets": budgets.to_dict()}, tmp_path / "b.json")
    entries = [h for s in SAMPLERS for h in outcome.history[s]]
    over = [h for h in entries if getattr(h, field) > limit]
    assert over and all(not h.trained and not h.feasible for h in over)
    assert all(reason in " ".join(h.reasons) for h in over)
    assert not any(h.spec in trainer.specs for h in over)


def test_a_journal_file_holds_a_study_for_workers_without_a_database(data, work_dir, tmp_path):
    (tmp_path / "shared").mkdir()  # a journal's folder must exist: a URL never creates folders
    journal = f"journal:///{tmp_path / 'shared' / 'nas.log'}"
    study = run_study(context_for(data, work_dir, Budgets(2.0, 50.0, 0.0), CountingTrainer()), "random", journal,
                      IDENTITY)
    assert len(study_history(study)) == 6 and (tmp_path / "shared" / "nas.log").stat().st_size > 0
    trainer = CountingTrainer()  # a second worker on the finished study: nothing left to do
    again = run_study(context_for(data, work_dir, Budgets(2.0, 50.0, 0.0), trainer), "random", journal, IDENTITY)
    assert study_history(again) == study_history(study) and trainer.specs == []
    with pytest.raises(ParameterError, match="storage must be a database URL"):
        workers.open_storage("nas.db")


def test_a_dead_workers_trial_is_failed_and_run_again(data, work_dir, tmp_path, monkeypatch):
    """A worker that died mid-trial (its trial RUNNING, its heartbeat stopped): the next worker fails the trial
    once the grace period is over, runs it again, and the study still ends with exactly its budget."""
    monkeypatch.setattr(nas, "HEARTBEAT_S", 1)
    monkeypatch.setattr(workers, "HEARTBEAT_S", 1)
    monkeypatch.setattr(workers, "GRACE_PERIOD_S", 2)
    storage = storage_url(tmp_path)
    study = optuna.create_study(study_name=study_name("nsga2", IDENTITY), storage=workers.open_storage(storage),
                                directions=["maximize", "minimize", "minimize"])
    dead = study.ask()
    study._storage.record_heartbeat(dead._trial_id)
    study = run_study(context_for(data, work_dir, Budgets(2.0, 50.0, 0.0), CountingTrainer()), "nsga2", storage,
                      IDENTITY)
    trials = study.get_trials(deepcopy=False)
    assert trials[dead.number].state == optuna.trial.TrialState.FAIL
    retried = [t for t in trials if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t)
               == dead.number]
    assert len(retried) == 1 and retried[0].state == optuna.trial.TrialState.COMPLETE
    assert len(study_history(study)) == 6


def test_a_study_refuses_a_worker_on_another_cpu_unless_told(data, work_dir, tmp_path):
    storage = storage_url(tmp_path)
    context = context_for(data, work_dir, Budgets(2.0, 50.0, 0.0), CountingTrainer(), population=2, generations=1)
    study = run_study(context, "random", storage, IDENTITY)
    assert study.user_attrs["machine"]["cpu"]  # the CPU it was started on
    study.set_user_attr("machine", {"cpu": "Some Other CPU", "isa": ["avx2"], "arch": "x86_64"})
    with pytest.raises(ParameterError, match="was started on Some Other CPU .* nas_mixed_machines true"):
        run_study(context, "random", storage, IDENTITY)
    mixed = dataclasses.replace(context, mixed_machines=True)
    assert len(study_history(run_study(mixed, "random", storage, IDENTITY))) == 2


def test_a_candidate_at_4_bits_is_costed_as_its_int4_file_and_scored_with_its_weights_on_that_grid(data, work_dir,
                                                                                                 tmp_path):
    """The bit width is a gene: a 4-bit candidate's size and flash are its packed int4 TFLite file's bytes (smaller
    than the same architecture's int8 file), its RAM counts the unpacked weights, and its search score is taken
    with its weights rounded to 4 bits (one proxy run serves both bit widths)."""
    generous = Budgets(max_size_mb=2.0, max_latency_ms=50.0, min_accuracy=0.0)
    outcome = {bits: run_search(context_for(data, work_dir, generous, CountingTrainer(), population=2,
                                            weight_bits=(bits,)), [0],
                                storage_url(tmp_path / str(bits)), IDENTITY, tmp_path / f"{bits}.json")
               for bits in (8, 4) if not (tmp_path / str(bits)).mkdir()}
    for sampler in SAMPLERS:  # the same seed draws the same architectures when the bit width is not searched
        for at8, at4 in zip(outcome[8].history[sampler], outcome[4].history[sampler]):
            assert at8.architecture_key == at4.architecture_key and (at8.weight_bits, at4.weight_bits) == (8, 4)
            assert at4.size_bytes < at8.size_bytes and at4.int8_peak_ram_bytes >= at8.int8_peak_ram_bytes
            assert at4.proxy_float_accuracy == at8.proxy_float_accuracy  # the same cached proxy run
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = {nas.suggest_candidate(study.ask(), (), (8, 4))[2] for _ in range(20)}
    assert drawn == {8, 4} and nas.suggest_candidate(study.ask(), (), (4,))[2] == 4


def test_a_distilled_search_trains_its_own_proxy_runs_in_a_study_of_its_own(data, work_dir, tmp_path):
    """With a teacher, every proxy run learns from its soft targets (a run of its own, never the label-only
    run's cache entry), and the study is another study: the two searches never mix their trials."""
    split = Protocol().splits(data.dataset.folds)[0]
    x, _ = data.features.select(split.train_folds)
    logits = np.random.default_rng(0).standard_normal((len(x), data.num_classes)).astype(np.float32)
    teacher = Distillation(logits, {"runs": ["test-teacher"]}, 2.0, 0.5)
    generous = Budgets(max_size_mb=2.0, max_latency_ms=50.0, min_accuracy=0.0)
    storage = storage_url(tmp_path)
    alone, taught = CountingTrainer(), CountingTrainer()
    plain = run_search(context_for(data, work_dir, generous, alone, weight_bits=(8,)), [0], storage, IDENTITY,
                       tmp_path / "plain.json")
    distilled = run_search(context_for(data, work_dir, generous, taught, weight_bits=(8,), distillation=teacher),
                           [0], storage, IDENTITY, tmp_path / "distilled.json")
    assert plain.study_names != distilled.study_names
    assert all(t is teacher for t in taught.taught) and all(t is None for t in alone.taught)
    seen = set()
    for sampler in SAMPLERS:  # in the order they ran: an architecture's first distilled proxy run is trained anew
        assert len(distilled.history[sampler]) == len(plain.history[sampler]) == 6
        for h in (h for h in distilled.history[sampler] if h.trained):
            assert h.distilled and (h.architecture_key in seen or not h.proxy_reused)
            seen.add(h.architecture_key)


def test_distilled_finalists_are_paired_with_their_label_only_twins_and_deployed_at_the_searched_bits(data,
                                                                                                      tmp_path):
    """nas_distill: each finalist trained twice (by distillation from chapter 2's teacher, and from labels alone),
    paired on the same test clips; a search of 4-bit weights deploys its finalists as int4 TFLite files, and the
    published best is chosen by its deployed file's validation accuracy."""
    settings = small_settings(data.dataset.root, data.layout.root, epochs=1, model_configs=["tiny", "small"],
                              device="cpu", latency_runs=5, calibration_size=10, nas_population=2,
                              nas_generations=1, proxy_epochs=1, min_accuracy=0.0, nas_distill=True,
                              nas_weight_bits=[4], distill_teacher="best", storage=storage_url(tmp_path))
    baselines = train_baselines(data, settings)
    result = run_nas(data, settings, baselines)
    [finalist], [student] = result.finalists, result.students
    assert student.name == finalist.name + "_kd" and student.record["distillation"]["student_of"] == finalist.name
    assert student.record["distillation"]["teachers"] == [max(baselines, key=lambda b: b.record["val_accuracy"]).name]
    assert all(h.distilled for s in SAMPLERS for h in result.search.history[s])
    chapter = SearchChapter.of(settings, data, baselines, result)
    [(distilled, alone, comparison)] = chapter.distillation_pairs()
    assert comparison["n"] == alone["test"]["n"] and alone["model"] == finalist.name
    assert comparison["reason"] == "training variance was not measured (one seed)"  # one seed: no verdict
    methods = {q.method for q in result.quantized if q.model == student.name}
    assert methods == {"ort_static", "tflite_int8", "tflite_int4"}
    assert finalist.record["nas"]["weight_bits"] == 4
    best = json.loads((data.layout.models / "nas_best_model.json").read_text())
    assert best["deployed"]["weight_bits"] == 4 and best["deployed"]["file"] == "nas_best_model_tflite_int4.tflite"
    assert (data.layout.models / best["deployed"]["file"]).is_file()
    from edge_audio.results import pick_key
    from edge_audio.steps.search import deployed_record

    assert best["model"] == max(result.models, key=lambda m: pick_key(deployed_record(m, result.quantized))).name
    _, dominance, _ = chapter.dominance
    assert chapter.check().startswith("all NAS invariants hold")


def test_candidates_over_an_npu_latency_budget_are_compiled_by_vela_and_never_trained(data, work_dir, tmp_path):
    """A target device that is an Ethos-U NPU: every candidate is compiled by Vela before training, its SRAM, flash
    and latency are Vela's, and one over the device's latency limit is never trained."""
    def on_npu(limit_ms):
        return Budgets(max_size_mb=2.0, max_latency_ms=50.0, min_accuracy=0.0).for_device(
            profile_from("npu", {"npu": "ethos_u55_128", "max_device_latency_ms": limit_ms}))

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_search(context_for(data, work_dir, on_npu(1e6), CountingTrainer(), weight_bits=(8,)), [0],
                       storage_url(tmp_path / "a"), IDENTITY, tmp_path / "a.json")
    entries = [h for s in SAMPLERS for h in first.history[s]]
    assert all(h.device_latency_ms == round(h.npu["ethos_u55_128"]["latency_ms"], 3)
               and h.device_ram_bytes == h.npu["ethos_u55_128"]["arena_bytes"] for h in entries)
    values = sorted({h.device_latency_ms for h in entries})
    assert len(values) > 1, "the test needs candidates of different NPU latency"
    limit = (values[0] + values[1]) / 2
    trainer = CountingTrainer()
    outcome = run_search(context_for(data, work_dir, on_npu(limit), trainer, weight_bits=(8,)), [0],
                         storage_url(tmp_path / "b"), {**IDENTITY, "limit": limit}, tmp_path / "b.json")
    over = [h for s in SAMPLERS for h in outcome.history[s] if h.device_latency_ms > limit]
    assert over and all(not h.trained and not h.feasible for h in over)
    assert all(any(r.startswith("device latency") for r in h.reasons) for h in over)
    assert not any(h.spec in trainer.specs for h in over)
