"""Where the package's independent compute jobs run: in this process (``local``, the default), or as tasks on a
Ray cluster (``ray``).

A *job* is one call of a module-level function whose result is a :func:`~edge_audio.storage.cached` entry: a
training run of the protocol (model x seed x split), the supernet's training, a compression job (model x method x
seed x split). :func:`run_jobs` computes a list of them where the run's ``executor`` says; the step that asked then
goes over the same calls in its own order and finds each one in the cache. So the records a run writes do not
depend on where its jobs ran: the same seeds give the same records with either executor (each job computes with
the same number of threads, :attr:`~edge_audio.settings.Settings.threads`, which every training key holds).

With Ray, every node must see the run's output folder at the same path (a shared file system: the cache is
there) and have the same edge-audio, Ray and Python (:func:`check_cluster` says which node differs, before
chapter 1). A job asks for ``threads`` CPUs and, where the cluster has GPUs and the run's ``device`` allows CUDA,
one GPU. A worker or node that dies mid-job: Ray runs the job again elsewhere (:data:`RETRIES` times), and the job
resumes from its partial cache folder; a job is computed once, under its cache lock, however often it is started.
A head node that dies is :class:`ClusterError` (one line); a re-run resumes from the cache.

Decisions (Reference > Decisions, "Ray as the executor"): Ray tasks, not Ray Tune; the search's trials are not
distributed (a study's trials run in order in one process: its sampler's history, and so its result, would
otherwise depend on timing, and a candidate's latency is an objective measured on an idle CPU).
"""
from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from .errors import ParameterError, UserError

EXECUTORS = ("local", "ray")
#: How often Ray runs a job again whose worker or node died (Ray's own default for tasks is 3).
RETRIES = 3
#: Seconds to wait for a TCP connection to a cluster's address before it is called unreachable.
CONNECT_TIMEOUT_S = 5
#: Seconds the driver keeps trying to reach a head node that stopped answering, before it gives up (Ray: 60).
HEAD_TIMEOUT_S = 20
#: Where the Ray executor records each finished job (what, node id, host, seconds), under the run's logs/.
JOBS_LOG = "ray_jobs.jsonl"
#: Objects at least this large are put into Ray's object store once and shared by every job that takes them.
SHARED_BYTES = 64 * 1024


class ClusterError(UserError):
    """The Ray cluster cannot run the jobs: unreachable, different versions, a node missing a folder, or a head
    node that died. One line, exit status 2."""


def run_jobs(settings, function: Callable[..., Any], calls: Sequence[tuple], what: str, progress: bool = False,
             gpu: bool = False, failures: tuple[type[BaseException], ...] = ()) -> None:
    """Compute ``function(*call)`` for every call, in this process or on the cluster (``settings.executor``),
    each with ``settings.threads`` threads; a job raising one of ``failures`` is left to the caller, which calls
    it again and handles what it raises. ``gpu``: the job trains, and may take a GPU."""
    import torch

    torch.set_num_threads(settings.threads)  # here too: the caller's own calls key the runs with this count
    if settings.executor == "local" or not calls:
        for call in calls:
            _tolerating(failures, function, *call)
        return
    _run_on_ray(settings, function, calls, what, progress, gpu, failures)


def _tolerating(failures: tuple, function: Callable[..., Any], *args) -> None:
    try:
        function(*args)
    except failures:
        pass


def _job(threads: int, failures: tuple, function: Callable[..., Any], *args) -> dict:
    """One job on a Ray worker: ``threads`` torch threads (as a local run), then the call; where and how long."""
    import time

    import ray
    import torch

    started = time.perf_counter()
    torch.set_num_threads(threads)
    _tolerating(failures, function, *args)
    return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
            "seconds": round(time.perf_counter() - started, 2)}


def _run_on_ray(settings, function, calls, what, progress, gpu, failures) -> None:
    ray = connect(settings.ray_address)
    shared: dict[int, Any] = {}

    def argument(value):  # a large argument (features, soft targets, a model) goes into the object store once
        if id(value) not in shared and _nbytes(value) >= SHARED_BYTES:
            shared[id(value)] = ray.put(value)
        return shared.get(id(value), value)

    gpus = 1 if gpu and settings.device in ("auto", "cuda") and ray.cluster_resources().get("GPU", 0) >= 1 else 0
    task = ray.remote(_job).options(num_cpus=settings.threads, num_gpus=gpus, max_retries=RETRIES,
                                    retry_exceptions=False, name=f"edge-audio {what}")
    pending = [task.remote(settings.threads, failures, function, *map(argument, call)) for call in calls]
    bar = tqdm(total=len(pending), desc=f"{what} on Ray", unit="job", disable=not progress)
    log = settings.layout.logs / JOBS_LOG
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                with log.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"what": what, **_result(ray, ref, settings.ray_address)}) + "\n")
            bar.update(len(done))
    finally:
        bar.close()
        ray.shutdown()  # a Ray started here stops with its jobs (the next step starts its own); a cluster stays


def _result(ray, ref, address: str | None) -> dict:
    from ray.exceptions import RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as exc:  # the job raised: raise what it raised (a UserError stays one line)
        raise exc.cause from None
    except (ConnectionError, ray.exceptions.NodeDiedError) as exc:  # any other system error is a bug: traceback
        raise ClusterError(f"the Ray cluster at {address or 'this machine'} stopped answering "
                           f"({type(exc).__name__}); re-run to resume from the cache") from None


def check_head(address: str | None, chapter: str) -> None:
    """After a chapter's process died: :class:`ClusterError` if the head node at ``address`` no longer answers
    (Ray ends a driver that loses its head), so the run stops on one line; otherwise nothing (a bug: its
    traceback)."""
    if address is None:
        return
    host, port = parse_address(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError:
        raise ClusterError(f"the Ray cluster's head node at {address} stopped answering while {chapter} ran; what "
                           "its jobs finished is in the cache: start the cluster again (or run with --executor "
                           "local) and re-run to resume") from None


def _nbytes(value: Any) -> int:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.nbytes
    arrays = [v for v in getattr(value, "__dict__", {}).values() if isinstance(v, np.ndarray)]
    if arrays:
        return sum(a.nbytes for a in arrays)
    try:  # a torch module: its parameters' bytes
        return sum(p.numel() * p.element_size() for p in value.parameters())
    except AttributeError:
        return 0


def connect(address: str | None):
    """Ray, connected to the cluster at ``address`` (``host:port``; None: a Ray instance on this machine, started
    for the run); once per process. Raises :class:`ClusterError` for an unreachable or malformed address, or a
    cluster whose Ray or Python differs from this process's."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    if address is not None:
        host, port = parse_address(address)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise ClusterError(f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}; start one with "
                               f"`ray start --head --port {port}` on {host}, or fix --address") from None
    os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(HEAD_TIMEOUT_S))
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, include_dashboard=False,
                 configure_logging=True, namespace="edge-audio",
                 **({"num_cpus": os.cpu_count()} if address is None else {}))
    except RuntimeError as exc:
        if "version mismatch" in str(exc).lower():
            line = " ".join(str(exc).split())
            raise ClusterError(f"the Ray cluster at {address} runs another Ray or Python than this process: "
                               f"{line[:300]}") from None
        raise
    except ConnectionError as exc:
        raise ClusterError(f"cannot connect to the Ray cluster at {address}: {exc}") from None
    return ray


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` as (host, port); :class:`~edge_audio.errors.ParameterError` for anything else."""
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host or " " in host:
        raise ParameterError(f"ray_address must be host:port (the head node's address, e.g. 10.0.0.5:6379), "
                             f"got {address!r}")
    return host.strip("[]"), int(port)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ParameterError("executor ray needs Ray, which is not installed: pip install 'edge-audio[cluster]'"
                             ) from None
    return ray


def check_cluster(address: str | None, output: Path, dataset: Path | None) -> None:
    """Before chapter 1: connect to the cluster at ``address`` and ask every live node for its edge-audio, Ray
    and Python versions, whether it sees this run's output folder (a probe file written here and read there) and
    the dataset; :class:`ClusterError` naming the first node that differs or lacks one. Without an address (Ray
    on this machine, started by each chapter), only that Ray is installed."""
    if address is None:
        _import_ray()
        return
    ray = connect(address)
    try:
        _check_nodes(ray, output, dataset)
    finally:
        ray.shutdown()  # the chapters connect on their own


def _check_nodes(ray, output: Path, dataset: Path | None) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    output.mkdir(parents=True, exist_ok=True)
    probe = output / f".cluster-probe-{uuid.uuid4().hex}"
    probe.write_text(probe.name)
    try:
        nodes = [node for node in ray.nodes() if node["Alive"]]
        remote = ray.remote(num_cpus=0)(_node_facts)
        facts = ray.get([remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                         .remote(str(probe), None if dataset is None else str(dataset)) for node in nodes])
    finally:
        probe.unlink(missing_ok=True)
    here = _node_facts(str(probe), None)
    for node, seen in zip(nodes, facts):
        problem = node_problem(f"node {node['NodeManagerAddress']} ({node['NodeID'][:8]})", seen, here, probe.name,
                               output, dataset)
        if problem:
            raise ClusterError(problem)


def package_identity() -> str:
    """This edge-audio: its version and a digest of its source files (a node with other code under the same
    version number differs too)."""
    import hashlib
    from importlib.metadata import version

    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".c", ".h", ".inc") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{version('edge-audio')} (source {digest.hexdigest()[:12]})"


def node_problem(name: str, seen: dict, here: dict, probe: str, output: Path, dataset: Path | None) -> str | None:
    """What keeps node ``name`` (its facts ``seen``, :func:`_node_facts`) from running this run's jobs, against
    this process's facts ``here``; None: nothing."""
    for what in ("edge-audio", "ray", "python"):
        if seen[what] != here[what]:
            return f"{name} runs {what} {seen[what]}, this process {here[what]}: install the same version on every node"
    if seen["probe"] != probe:
        return (f"{name} does not see the output folder {output} (a shared file system at the same path on every "
                "node holds the run's cache)")
    if dataset is not None and not seen["dataset"]:
        return f"{name} does not see the dataset at {dataset}: mount it at the same path on every node"
    return None


def _node_facts(probe: str, dataset: str | None) -> dict:
    """What a node has: versions, the probe file's text (None: not there), whether the dataset path exists."""
    import platform

    import ray

    try:
        seen = Path(probe).read_text()
    except OSError:
        seen = None
    return {"edge-audio": package_identity(), "ray": ray.__version__, "python": platform.python_version(),
            "probe": seen,
            "dataset": dataset is not None and Path(dataset).exists()}


__all__ = ["EXECUTORS", "ClusterError", "check_cluster", "connect", "parse_address", "run_jobs"]
