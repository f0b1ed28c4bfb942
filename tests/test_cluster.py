"""The Ray executor on a real cluster on this machine: a head node started with `ray start --head` and a second
node process joining it, on the loopback interface only, token-authenticated, stopped by the tests. The `cluster`
suite: `make test` runs it after the main one (pytest -m cluster), as it needs minutes of both cores."""
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from helpers import BOOK_RUN_CLIPS, BOOK_RUN_FOLDS, write_odd_class_csv

pytestmark = pytest.mark.cluster

#: Chapters 1-2 of the end-to-end run's k-fold settings: 2 models x 2 seeds x 4 folds = 16 training runs.
RUN = ["run", "--mode", "baseline", "--quick", "--no-build", "--dataset-path", "odd/labels.csv",
       "-p", "protocol", "kfold", "-p", "sample_rate", "8000", "-p", "duration", "1.0", "-p", "n_mels", "32",
       "-p", "n_fft", "256", "-p", "hop_length", "128", "-p", "epochs", "8", "-p", "batch_size", "8",
       "-p", "seeds", "[0, 1]", "-p", "latency_runs", "5",
       "-p", "model_configs", "[{name: mini, channels: [8, 16], fc_size: 16}, {name: mini2, channels: [8, 16, 32]}]"]
#: Record fields that are timings (or hold one): they differ between any two runs, wherever they ran.
MEASURED = {"latency", "latency_ms", "flop_floor_ms", "latency_floor_ratio", "train_seconds", "machine"}
CPUS = 2  # per node: a job asks for as many CPUs as a local run's threads (this machine's two cores)


@pytest.fixture
def cluster(tmp_path):
    """Start Ray nodes on 127.0.0.1 (``start_head``, ``add_node``); every process they started ends with the test."""
    temp = Path(tempfile.mkdtemp(prefix="ea-ray-", dir="/tmp"))  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray binds 127.0.0.1 and nothing else
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0"}
    ray = str(Path(sys.executable).parent / "ray")
    started: list[subprocess.Popen] = []

    class Cluster:
        address = None

        def start_head(self):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                            f"--num-cpus={CPUS}", "--num-gpus=0", "--include-dashboard=false",
                            "--disable-usage-stats", "--object-store-memory=150000000", f"--temp-dir={temp}",
                            '--system-config={"health_check_period_ms": 1000, "health_check_failure_threshold": 3}'],
                           env=env, check=True, capture_output=True)
            self.address = f"127.0.0.1:{port}"

        def add_node(self) -> subprocess.Popen:
            node = subprocess.Popen([sys.executable, str(Path(__file__).parent / "ray_node.py"), self.address,
                                     str(CPUS)], env=env, stdout=subprocess.PIPE, text=True)
            started.append(node)
            node.raylet = int(node.stdout.readline())
            self.wait_for_nodes(2)
            return node

        def wait_for_nodes(self, count: int) -> None:
            subprocess.run([sys.executable, "-c", (
                "import time, ray\n"
                f"ray.init(address='{self.address}', logging_level='ERROR')\n"
                f"while sum(n['Alive'] for n in ray.nodes()) < {count}: time.sleep(0.2)\n")],
                env=env, check=True, timeout=60, capture_output=True)

        def run(self, *args, cwd) -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "edge_audio.cli", *RUN, *args], cwd=cwd, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def kill_head(self) -> None:
            kill(ours())

    def ours() -> list[psutil.Process]:
        """The head's processes (their command lines name its temp folder) and everything they started."""
        found = {}
        for process in psutil.process_iter(["cmdline"]):
            if any(str(temp) in part for part in process.info["cmdline"] or []):
                for member in (process, *process.children(recursive=True)):
                    found[member.pid] = member
        return list(found.values())

    try:
        yield Cluster()
    finally:
        for node in started:
            node.terminate()
        for node in started:
            node.wait(timeout=30)
        kill(ours())
        shutil.rmtree(temp, ignore_errors=True)


def kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


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
    run = cluster.run("--output-dir", "ray", "--executor", "ray", "--address", cluster.address, cwd=dataset)
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
    run = cluster.run("--output-dir", "out", "--executor", "ray", "--address", cluster.address, "-p", "seeds", "[0]",
                      cwd=dataset)
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
