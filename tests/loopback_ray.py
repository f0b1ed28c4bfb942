"""A Ray cluster on this machine's loopback interface, for the cluster tests and benchmarks/full_size.py: a head
node started with `ray start --head` and worker nodes joining it, token-authenticated, every process ended on exit.

Ray binds 127.0.0.1 and nothing else with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, under which `ray start --address`
refuses a second node on one machine; so a worker node is this file run as a script, which starts one as
`ray start --address` does (the same ``Node`` class) and prints its raylet's pid:

    python tests/loopback_ray.py 127.0.0.1:PORT CPUS
"""
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


class LoopbackCluster:
    """Use as a context manager; ``start_head``, ``add_node``, ``kill_head``; ``env`` for any process that talks
    to the cluster (drivers included)."""

    def __init__(self, cpus: int):
        self.cpus = cpus
        self.temp = Path(tempfile.mkdtemp(prefix="ea-ray-", dir="/tmp"))  # Ray's socket paths must stay short
        self.env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": secrets.token_hex(16), "RAY_USAGE_STATS_ENABLED": "0"}
        self.address = None
        self.nodes: list[subprocess.Popen] = []

    def __enter__(self) -> "LoopbackCluster":
        return self

    def __exit__(self, *_exc) -> None:
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.wait(timeout=30)
        kill(self.processes())
        shutil.rmtree(self.temp, ignore_errors=True)

    def start_head(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        subprocess.run([str(Path(sys.executable).parent / "ray"), "start", "--head", "--node-ip-address=127.0.0.1",
                        f"--port={port}", f"--num-cpus={self.cpus}", "--num-gpus=0", "--include-dashboard=false",
                        "--disable-usage-stats", "--object-store-memory=300000000", f"--temp-dir={self.temp}",
                        '--system-config={"health_check_period_ms": 1000, "health_check_failure_threshold": 3}'],
                       env=self.env, check=True, capture_output=True)
        self.address = f"127.0.0.1:{port}"
        return self.address

    def add_node(self) -> subprocess.Popen:
        """A worker node (``.raylet``: its raylet's pid), once the cluster counts it alive."""
        node = subprocess.Popen([sys.executable, __file__, self.address, str(self.cpus)], env=self.env,
                                stdout=subprocess.PIPE, text=True)
        self.nodes.append(node)
        node.raylet = int(node.stdout.readline())
        subprocess.run([sys.executable, "-c", (
            "import time, ray\n"
            f"ray.init(address='{self.address}', logging_level='ERROR')\n"
            f"while sum(n['Alive'] for n in ray.nodes()) < {1 + len(self.nodes)}: time.sleep(0.2)\n")],
            env=self.env, check=True, timeout=60, capture_output=True)
        return node

    def kill_head(self) -> None:
        kill(self.processes())

    def processes(self):
        """The head's processes (their command lines name its temp folder) and everything they started."""
        import psutil

        found = {}
        for process in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.NoSuchProcess):
                if any(str(self.temp) in part for part in process.info["cmdline"] or []):
                    for member in (process, *process.children(recursive=True)):
                        found[member.pid] = member
        return list(found.values())


def kill(processes) -> None:
    import psutil

    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(processes, timeout=10)


def _node(address: str, cpus: int) -> None:
    import ray._private.node
    import ray._private.parameter

    params = ray._private.parameter.RayParams(gcs_address=address, node_ip_address="127.0.0.1", num_cpus=cpus,
                                              num_gpus=0, object_store_memory=300 * 1024 * 1024)
    node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
    print(node.all_processes["raylet"][0].process.pid, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a graceful stop: the node's processes end with it
    signal.pause()


if __name__ == "__main__":
    _node(sys.argv[1], int(sys.argv[2]))
