"""Work shared by several workers (processes or machines) through one Optuna storage.

:func:`open_storage` opens the storage both kinds of shared work use: a database URL (``postgresql://``,
``mysql://``, ``sqlite:///``) opens Optuna's RDB storage with a heartbeat (a trial whose worker stops beating for
:data:`GRACE_PERIOD_S` is failed and re-queued once by ``RetryHeartbeatStaleTrialCallback``); ``journal:///path``
opens Optuna's journal storage, an append-only file for shared file systems without a database.

* The architecture search (:mod:`edge_audio.nas`) shares one study's trial budget.
* :func:`run_queue` shares a list of independent jobs, the training runs of chapter 2 (every model, seed and fold
  of the protocol): each job is an Optuna trial enqueued once, and a worker asks for the next waiting one. The
  queue only decides who does what; each job is a :func:`~edge_audio.storage.cached` computation (locked, and
  resumable from its partial folder), so a job two workers reach at once is computed once, and a job whose worker
  died is resumed by whichever worker reaches it next: through the queue's retry, or when the step that filled
  the queue goes over every job after it (a cache hit for each job done elsewhere, the work for any other). The
  workers must share the output folder (a shared file system), where the cached results are.
"""
from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path
from typing import Callable

from tqdm import TqdmExperimentalWarning, tqdm

with warnings.catch_warnings():  # optuna imports tqdm.auto, which warns in a kernel without ipywidgets
    warnings.simplefilter("ignore", TqdmExperimentalWarning)
    from tqdm.std import TqdmWarning

    warnings.simplefilter("ignore", TqdmWarning)
    import optuna

from .errors import ParameterError

#: Seconds between a running trial's heartbeats, and how long without one before it is taken for dead.
HEARTBEAT_S = 10
GRACE_PERIOD_S = 60
#: Seconds to wait for a database server to answer before the storage is called unreachable.
CONNECT_TIMEOUT_S = 10
JOURNAL_SCHEME = "journal:///"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The Optuna storage at ``url`` (see the module docstring): RDB with heartbeat and one retry of a failed
    trial, or a journal file for ``journal:///path``. Raises :class:`~edge_audio.errors.ParameterError` for a URL
    that is neither."""
    if url.startswith(JOURNAL_SCHEME):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path("/" + url[len(JOURNAL_SCHEME):].lstrip("/"))
        blocking = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise ParameterError(f"storage {url}: {blocking} is a file, not a folder; give a journal file in an "
                                 "existing folder")
        if not path.parent.is_dir():  # never create folders wherever a URL points
            raise ParameterError(f"storage {url}: the folder {path.parent} does not exist; create it, or give a "
                                 "journal file in an existing folder")
        if path.is_dir():
            raise ParameterError(f"storage {url}: {path} is a folder; name a journal file in it")
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ParameterError(f"storage must be a database URL (postgresql://..., sqlite:///...) or "
                             f"{JOURNAL_SCHEME}path, got {url!r}")
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    url = with_installed_driver(url)
    scheme = url.split("://", 1)[0]
    engine = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}} if scheme.startswith("postgresql") else {}

    def rdb() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # the heartbeat API is marked experimental since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_PERIOD_S,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))

    for attempt in range(2):
        try:
            return rdb()
        except (IntegrityError, ProgrammingError):
            # two workers creating Optuna's tables in an empty database at the same moment (seen with PostgreSQL):
            # the one that lost the race finds them made on its next attempt
            time.sleep(1.0 + attempt)
    return rdb()


def with_installed_driver(url: str) -> str:
    """A ``postgresql://`` URL with the PostgreSQL driver this environment has: SQLAlchemy 2.1 maps a bare
    ``postgresql://`` to psycopg 3, and the project installs psycopg2 (``postgresql+psycopg2://``)."""
    import importlib.util

    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres") and importlib.util.find_spec("psycopg") is None:
        return f"postgresql+psycopg2://{rest}"
    return url


def check_storage(url: str) -> None:
    """Open the storage at ``url`` once, so that a malformed URL, a missing driver or an unreachable database is
    one line (:class:`~edge_audio.errors.ParameterError`) before any chapter runs, not a traceback mid-run."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    try:
        open_storage(url)
    except ImportError as exc:
        raise ParameterError(f"storage {url}: no database driver for it is installed ({exc}); the project installs "
                             "psycopg2 for postgresql://") from None
    except (NoSuchModuleError, ArgumentError) as exc:
        raise ParameterError(f"storage {url} is not a database URL SQLAlchemy knows ({exc}); use postgresql://..., "
                             f"sqlite:///... or {JOURNAL_SCHEME}path") from None
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0][:200]
        raise ParameterError(f"cannot open the storage database {url}: {reason}") from None


def worker_name() -> str:
    """This worker, as recorded in shared studies: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_queue(storage: str, name: str, jobs: dict[str, Callable[[], float]], progress: bool = False) -> dict:
    """Do this worker's share of ``jobs`` (job id -> a call returning the seconds it took) from the queue ``name``.

    The first worker to open the queue enqueues every job; a later one enqueues only the jobs the queue lacks
    (it may have been made for fewer). Then the worker takes waiting jobs until none is left, and returns how
    many it ran and how many the queue holds. A job that raises is failed in the queue and the error raised. A
    second waiting copy of a job that is done or running elsewhere (two workers enqueuing at the same moment, or
    the retry of a trial whose worker was only slow) is pruned, not run.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=open_storage(storage), direction="minimize",
                                load_if_exists=True)
    state = optuna.trial.TrialState
    queued = {t.user_attrs.get("job") for t in study.get_trials(deepcopy=False) if t.state != state.FAIL}
    for job in jobs:
        if job not in queued:
            study.enqueue_trial({}, user_attrs={"job": job})
    ran = []

    def objective(trial: optuna.Trial) -> float:
        job = trial.user_attrs.get("job")  # None: another worker took the last waiting job, this trial is fresh
        if job not in jobs or any(t.user_attrs.get("job") == job and t.number != trial.number
                                  and t.state in (state.COMPLETE, state.RUNNING)
                                  for t in study.get_trials(deepcopy=False)):
            raise optuna.TrialPruned()
        trial.set_user_attr("worker", worker_name())
        seconds = jobs[job]()
        ran.append(job)
        return seconds

    bar = tqdm(total=len(jobs), desc=f"queue {name}", unit="run", disable=not progress)
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # a dead worker's job: failed, re-queued by the callback
        trials = study.get_trials(deepcopy=False)
        bar.n = len({t.user_attrs.get("job") for t in trials if t.state == state.COMPLETE})
        bar.refresh()
        if not any(t.state == state.WAITING for t in trials):
            break
        # optimize, not ask/tell: it takes the oldest waiting trial, keeps its heartbeat while the job runs, and
        # fails the trial (then raises) when the job raises
        study.optimize(objective, n_trials=1)
    bar.close()
    return {"queue": name, "jobs": len(jobs), "ran_here": len(ran)}


__all__ = ["GRACE_PERIOD_S", "HEARTBEAT_S", "JOURNAL_SCHEME", "open_storage", "run_queue", "worker_name"]
