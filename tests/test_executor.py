"""Where jobs run (edge_audio.executor): what a user gets wrong about a Ray cluster is one line before chapter 1.
The cluster itself runs in tests/test_cluster.py (the `cluster` suite)."""
import socket
import sys
from pathlib import Path

import pytest

from edge_audio.book import check_settings
from edge_audio.errors import ParameterError
from edge_audio.executor import node_problem
from helpers import run_cli


@pytest.mark.parametrize("address", ["nonsense", "10.0.0.5", "10.0.0.5:http", "10.0.0.5:70000", "ray://x/y:1"])
def test_a_malformed_address_is_refused(tmp_path, address):
    with pytest.raises(ParameterError, match="ray_address must be host:port"):
        check_settings({"executor": "ray", "ray_address": address, "output_dir": str(tmp_path)})


def test_an_unknown_executor_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="executor"):
        check_settings({"executor": "rey", "output_dir": str(tmp_path)})


def test_an_unreachable_cluster_is_one_line_and_exit_2_before_any_chapter(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("run", "--executor", "ray", "--address", f"127.0.0.1:{port}", "--output-dir", "out", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"edge-audio: error: cannot reach a Ray cluster at 127.0.0.1:{port}: Connection refused; start one with "
        f"`ray start --head --port {port}` on 127.0.0.1, or fix --address"]
    assert not (tmp_path / "out" / "notebooks").exists()


def test_without_ray_installed_the_ray_executor_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ParameterError, match=r"pip install 'edge-audio\[cluster\]'"):
        check_settings({"executor": "ray", "output_dir": str(tmp_path)})


HERE = {"edge-audio": "0.9.0", "ray": "2.60.0", "python": "3.11.7", "probe": None, "dataset": False}


@pytest.mark.parametrize("seen, expected", [
    ({**HERE, "probe": "p", "dataset": True}, None),
    ({**HERE, "edge-audio": "0.8.0", "probe": "p"}, "node n runs edge-audio 0.8.0, this process 0.9.0"),
    ({**HERE, "ray": "2.59.0", "probe": "p"}, "node n runs ray 2.59.0, this process 2.60.0"),
    ({**HERE, "python": "3.12.1", "probe": "p"}, "node n runs python 3.12.1, this process 3.11.7"),
    ({**HERE, "probe": None, "dataset": True}, "node n does not see the output folder /out"),
    ({**HERE, "probe": "p", "dataset": False}, "node n does not see the dataset at /data"),
])
def test_a_node_that_differs_or_lacks_a_folder_is_named(seen, expected):
    problem = node_problem("node n", seen, HERE, "p", Path("/out"), Path("/data"))
    assert problem is None if expected is None else problem.startswith(expected)


def test_settings_travel_to_a_ray_job_and_back():
    """A Ray job receives the run's settings pickled (and its keys are computed from them there)."""
    import pickle

    from edge_audio.settings import Settings

    settings = Settings(epochs=7, job_threads=3)
    travelled = pickle.loads(pickle.dumps(settings))
    assert travelled.as_dict() == settings.as_dict() and travelled.threads == 3
