"""A search shared by two workers through PostgreSQL, really run: a server on loopback, two `edge-audio run` processes.

The server comes from the system's PostgreSQL package (initdb and pg_ctl); the test starts it on a free loopback
port in a temporary folder and stops it. Where the binaries are absent the test is skipped and says what to install.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest

from edge_audio.nas import SAMPLERS

POPULATION, GENERATIONS = 2, 2
WORKER_RUN = ["-p", "sample_rate", "8000", "-p", "duration", "1.0", "-p", "n_mels", "32", "-p", "n_fft", "256",
              "-p", "hop_length", "128", "-p", "epochs", "2", "-p", "batch_size", "16", "-p", "latency_runs", "5",
              "-p", "model_configs", "[{name: mini, channels: [8, 16], fc_size: 16}]", "-p", "calibration_size", "10",
              "-p", "nas_population", str(POPULATION), "-p", "nas_generations", str(GENERATIONS),
              "-p", "proxy_epochs", "1", "-p", "min_accuracy", "0", "-p", "top_k", "1"]


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run the server's commands as the ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture
def postgres():
    """A PostgreSQL server on 127.0.0.1 with a database ``edge_audio``; its URL. Stopped and removed afterwards."""
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install the system's postgresql package")
    if os.geteuid() == 0:
        try:
            server_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    base = Path(tempfile.mkdtemp(prefix="edge-audio-pg-"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        os.chown(data, server_user.pw_uid, server_user.pw_gid)
        os.chown(base, server_user.pw_uid, server_user.pw_gid)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(_as_server_user([initdb, "-D", str(data), "-U", "edge", "--auth=trust", "-E", "UTF8"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user="edge", dbname="postgres")
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE edge_audio")
        connection.close()
        yield f"postgresql+psycopg2://edge@127.0.0.1:{port}/edge_audio"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(postgres, tmp_path):
    """Two `edge-audio run --mode nas` processes, as two machines would (each its own output folder), on one
    study: each search ends with exactly population x generations completed trials, none run twice."""
    from helpers import write_odd_class_csv

    write_odd_class_csv(tmp_path / "data")  # 30 short clips: the search's sharing is under test, not its data
    workers = [subprocess.Popen([sys.executable, "-m", "edge_audio.cli", "run", "--mode", "nas", "--no-build",
                                 "--quick", "--output-dir", f"worker{i}", "--storage", postgres,
                                 "--dataset-path", "data/labels.csv", *WORKER_RUN],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    results = [worker.communicate(timeout=900) for worker in workers]
    for worker, (_, err) in zip(workers, results):
        assert worker.returncode == 0, err[-3000:]
    studies = optuna.get_all_study_summaries(storage=postgres)
    assert sorted(s.study_name.split("-")[3] for s in studies) == sorted(SAMPLERS)  # one study per search, shared
    done_by = set()
    for summary in studies:
        study = optuna.load_study(study_name=summary.study_name, storage=postgres)
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        assert len(complete) == POPULATION * GENERATIONS, summary.study_name
        assert len({t.number for t in complete}) == len(complete)
        assert not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        done_by |= {t.user_attrs["entry"]["worker"] for t in complete}
    assert 1 <= len(done_by) <= 2
    # both workers read the same finished studies: their histories hold the same trials
    histories = [(tmp_path / f"worker{i}" / "logs" / "nas_history.json").read_text() for i in range(2)]
    import json

    trials = [sorted((t["sampler"], t["number"]) for t in json.loads(h)["trials"]) for h in histories]
    assert trials[0] == trials[1] and len(trials[0]) == len(SAMPLERS) * POPULATION * GENERATIONS
