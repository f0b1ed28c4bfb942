"""The Ray executor on a real cluster on this machine: a head node started with `ray start --head` and a second
node process joining it, on the loopback interface only, token-authenticated, stopped by the tests
(tests/loopback_ray.py). The `cluster` suite: `make test` runs it after the main one (pytest -m cluster), as it
needs minutes of both cores."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import BOOK_RUN_CLIPS, BOOK_RUN_FOLDS, write_odd_class_csv
from loopback_ray import LoopbackCluster

pytestmark = pytest.mark.cluster

#: Chapters 1-2 of the end-to-end run's k-fold settings: 2 models x 2 seeds x 4 folds = 16 training runs; each
#: job with 2 threads, not the driver's own count (the root conftest.py's OMP_NUM_THREADS=1): the driver must key
#: the runs it reads back with the jobs' count, or it would train each one again.
RUN = ["run", "--mode", "baseline", "--quick", "--no-build", "--dataset-path", "odd/labels.csv",
       "-p", "protocol", "kfold", "-p", "sample_rate", "8000", "-p", "duration", "1.0", "-p", "n_mels", "32",
       "-p", "n_fft", "256", "-p", "hop_length", "128", "-p", "epochs", "8", "-p", "batch_size", "8",
       "-p", "seeds", "[0, 1]", "-p", "latency_runs", "5", "-p", "job_threads", "2",
       "-p", "model_configs", "[{name: mini, channels: [8, 16], fc_size: 16}, {name: mini2, channels: [8, 16, 32]}]"]
#: Record fields that are timings (or hold one): they differ between any two runs, wherever they ran.
MEASURED = {"latency", "latency_ms", "flop_floor_ms", "latency_floor_ratio", "train_seconds", "machine"}
CPUS = 2  # per node: a job asks for as many CPUs as a local run's threads (this machine's two cores)


@pytest.fixture
def cluster():
    with LoopbackCluster(CPUS) as started:
        yield started


def start(cluster: LoopbackCluster, *args, cwd) -> subprocess.Popen:
    """`edge-audio run` (chapters 1-2) on ``cluster``."""
    return subprocess.Popen([sys.executable, "-m", "edge_audio.cli", *RUN, "--executor", "ray", "--address",
                             cluster.address, *args], cwd=cwd, env=cluster.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finished_runs(output: Path) -> list[Path]:
    return sorted(path.parent for path in (output / "cache" / "runs").glob("*/entry.json"))


def records(output: Path) -> dict:
    return {(r["model"], r["variant"]): {k: v for k, v in r.items() if k not in MEASURED}
            for r in json.loads((output / "logs" / "all_results.json").read_text())}


def checkpoints(output: Path) -> dict:
    return {run.name: (run / "best.pt").read_bytes() for run in finished_runs(output)}


def until(condition, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture
def dataset(tmp_path) -> Path:
    write_odd_class_csv(tmp_path / "odd", folds=BOOK_RUN_FOLDS, clips=BOOK_RUN_CLIPS)
    return tmp_path


def test_a_kfold_run_across_two_nodes_survives_a_node_killed_half_way_with_the_records_of_one_process(
        cluster, dataset):
    local = subprocess.run([sys.executable, "-m", "edge_audio.cli", *RUN, "--output-dir", "local"], cwd=dataset,
                           capture_output=True, text=True)
    assert local.returncode == 0, local.stderr[-3000:]

    cluster.start_head()
    node = cluster.add_node()
    run = start(cluster, "--output-dir", "ray", cwd=dataset)
    jobs = dataset / "ray" / "logs" / "ray_jobs.jsonl"

    def nodes_done() -> set[str]:
        return {json.loads(line)["node"] for line in jobs.read_text().splitlines()} if jobs.exists() else set()

    until(lambda: len(nodes_done()) == 2, run)  # both nodes have finished jobs: now the second one dies
    os.kill(node.raylet, signal.SIGKILL)
    node.kill()  # its reaper ends the node's workers, mid-job
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr[-3000:]

    logged = [json.loads(line) for line in jobs.read_text().splitlines()]
    assert len(logged) == 16 and len({entry["node"] for entry in logged}) == 2
    assert len(finished_runs(dataset / "ray")) == 16  # no run lost, none twice
    assert records(dataset / "ray") == records(dataset / "local")
    assert checkpoints(dataset / "ray") == checkpoints(dataset / "local")  # the same weights, byte for byte


def test_a_dead_head_node_stops_the_run_on_one_line_and_a_rerun_resumes_from_the_cache(cluster, dataset):
    cluster.start_head()
    run = start(cluster, "--output-dir", "out", "-p", "seeds", "[0]", cwd=dataset)
    until(lambda: len(finished_runs(dataset / "out")) >= 2, run)
    cluster.kill_head()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 2, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith(
        f"edge-audio: error: the Ray cluster's head node at {cluster.address} stopped answering")

    done = {run_dir: (run_dir / "entry.json").stat().st_mtime_ns for run_dir in finished_runs(dataset / "out")}
    rerun = subprocess.run([sys.executable, "-m", "edge_audio.cli", *RUN, "--output-dir", "out", "-p", "seeds", "[0]"],
                           cwd=dataset, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert len(finished_runs(dataset / "out")) == 8
    assert {run_dir: (run_dir / "entry.json").stat().st_mtime_ns for run_dir in done} == done  # reused, not redone
