"""The queue of independent jobs that workers share through an Optuna storage (edge_audio.workers.run_queue), and
chapter 2's training runs shared by two worker processes through it."""
import multiprocessing
import os
import time
from collections import Counter

import optuna
import pytest

from edge_audio import workers
from edge_audio.workers import open_storage, run_queue

from helpers import small_settings


def logged(log, job, seconds=0.05):
    """A job that takes ``seconds`` and appends '<job> <pid>' to ``log``."""
    def call():
        time.sleep(seconds)
        with open(log, "a") as handle:
            handle.write(f"{job} {os.getpid()}\n")
        return seconds
    return call


def runs(log) -> Counter:
    return Counter(line.split()[0] for line in log.read_text().splitlines()) if log.exists() else Counter()


def trials_of(storage, name):
    return optuna.load_study(study_name=name, storage=open_storage(storage)).get_trials(deepcopy=False)


def test_every_job_runs_once_a_failed_one_again_on_the_next_start_and_duplicates_never(tmp_path):
    storage, log = f"sqlite:///{tmp_path / 'queue.db'}", tmp_path / "log"
    jobs = {f"job{i}": logged(log, f"job{i}") for i in range(5)}

    def boom():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_queue(storage, "q", {**jobs, "job2": boom})
    assert runs(log) == Counter({"job0": 1, "job1": 1})  # taken in order; job2 failed in the queue
    assert run_queue(storage, "q", jobs) == {"queue": "q", "jobs": 5, "ran_here": 3}
    assert runs(log) == Counter({f"job{i}": 1 for i in range(5)})
    states = Counter((t.user_attrs["job"], t.state.name) for t in trials_of(storage, "q"))
    assert states[("job2", "FAIL")] == 1 and states[("job2", "COMPLETE")] == 1

    study = optuna.load_study(study_name="q", storage=open_storage(storage))
    study.enqueue_trial({}, user_attrs={"job": "job0"})  # a second copy, as two workers enqueuing at once make
    assert run_queue(storage, "q", jobs)["ran_here"] == 0 and runs(log)["job0"] == 1
    assert Counter(t.state.name for t in trials_of(storage, "q"))["PRUNED"] == 1


def test_a_dead_workers_job_is_failed_after_the_grace_period_and_run_again(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "HEARTBEAT_S", 1)
    monkeypatch.setattr(workers, "GRACE_PERIOD_S", 2)
    storage, log = f"sqlite:///{tmp_path / 'queue.db'}", tmp_path / "log"
    study = optuna.create_study(study_name="q", storage=open_storage(storage))
    study.enqueue_trial({}, user_attrs={"job": "a"})
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna's advice for live workers, not for this dead one
        dead = study.ask()  # a worker took job a, beat once, and died
    study._storage.record_heartbeat(dead._trial_id)
    time.sleep(3.5)  # past the grace period (heartbeats are compared at one-second resolution)
    assert run_queue(storage, "q", {"a": logged(log, "a"), "b": logged(log, "b")})["ran_here"] == 2
    assert runs(log) == Counter({"a": 1, "b": 1})
    states = {(t.number, t.user_attrs["job"]): t.state.name for t in trials_of(storage, "q")}
    assert states[(dead.number, "a")] == "FAIL" and list(states.values()).count("COMPLETE") == 2


def _worker(storage, log, count):
    run_queue(storage, "shared", {f"job{i}": logged(log, f"job{i}", 0.2) for i in range(count)})


def test_two_processes_share_a_journal_queue_without_running_a_job_twice(tmp_path):
    storage, log = f"journal:///{tmp_path / 'queue.log'}", tmp_path / "log"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(storage, log, 12)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    assert runs(log) == Counter({f"job{i}": 1 for i in range(12)})
    assert len({line.split()[1] for line in log.read_text().splitlines()}) == 2  # 2.4 s of work: both took some


def _train_worker(dataset, output, storage):
    from edge_audio.steps.baselines import train_baselines
    from edge_audio.steps.data import prepare_data

    settings = small_settings(dataset, output, storage=storage, protocol="kfold", epochs=1,
                              model_configs=[{"name": "mini", "channels": [4, 8], "fc_size": 8}], latency_runs=2)
    train_baselines(prepare_data(settings, progress=False), settings)


def test_two_workers_share_the_kfold_training_runs_of_one_output_folder(esc50_dir, tmp_path):
    """Chapter 2 under the official 5-fold protocol of an ESC-50-layout set, in two processes sharing an output
    folder and a queue: every run is trained by exactly one of them, and the record lists every test fold."""
    from edge_audio.results import load_results

    storage = f"journal:///{tmp_path / 'queue.log'}"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_train_worker, args=(esc50_dir, tmp_path / "out", storage)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(600)
        assert process.exitcode == 0
    (summary,) = optuna.get_all_study_summaries(storage=open_storage(storage))
    trials = trials_of(storage, summary.study_name)
    complete = Counter(t.user_attrs["job"] for t in trials if t.state.name == "COMPLETE")
    assert len(complete) == 5 and set(complete.values()) == {1}
    assert len(list((tmp_path / "out" / "cache" / "runs").glob("*/entry.json"))) == 5
    (record,) = load_results(tmp_path / "out" / "logs")
    assert record["test_folds"] == list(range(1, 6))
