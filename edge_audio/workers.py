"""The Optuna storage that the architecture search's workers share (processes or machines searching one study).

:func:`open_storage` opens it: a database URL (``postgresql://``, ``mysql://``, ``sqlite:///``) opens Optuna's RDB
storage with a heartbeat (a trial whose worker stops beating for :data:`GRACE_PERIOD_S` is failed and re-queued
once by ``RetryHeartbeatStaleTrialCallback``); ``journal:///path`` opens Optuna's journal storage, an append-only
file for shared file systems without a database. The search (:mod:`edge_audio.nas`) shares one study's trial
budget through it. Independent jobs (training runs, compression) are not shared through a storage: they run where
the run's executor says (:mod:`edge_audio.executor`, Ray for several machines).
"""
from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path

from tqdm import TqdmExperimentalWarning

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


__all__ = ["GRACE_PERIOD_S", "HEARTBEAT_S", "JOURNAL_SCHEME", "open_storage", "worker_name"]
