"""Child processes that end with the run: worker pools that die with their parent, and a clean stop on signals.

* :func:`process_pool` is the one way the package starts worker processes (feature extraction, dataset
  synthesis). Each worker watches the process that started it and exits as soon as it is gone, so a parent
  killed even by SIGKILL leaves no worker behind holding memory or a lock it inherited.
* :func:`stopping_on_signals` turns SIGINT (Ctrl-C), SIGTERM and SIGHUP into :class:`Stopped` (a
  ``KeyboardInterrupt``), after :func:`end_children` has ended whatever the process started (the chapters'
  Jupyter kernel, its worker pools), so every ``finally`` and ``with`` on the way out runs and releases its lock.

Locks are ``flock`` locks (:func:`edge_audio.storage.file_lock`): the kernel releases one when the last process
holding it ends, so a lock whose holder died is taken over at once, never waited on.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

#: Exit status of a run stopped by a signal: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """The run was asked to stop by a signal (``signum``)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, each of which exits when the process that made the pool is gone."""
    return ProcessPoolExecutor(workers, initializer=_watch_parent, initargs=(os.getpid(),))


def _watch_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)  # orphaned: the run that wanted this work is gone

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


@contextlib.contextmanager
def stopping_on_signals():
    """Within the block, SIGINT, SIGTERM and SIGHUP first end every child process (:func:`end_children`: before
    any cleanup on the way out can talk to a kernel that is mid-cell), then raise :class:`Stopped` in the main
    thread; the previous handlers come back after it."""
    def stop(signum, _frame):
        end_children()
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def end_children() -> int:
    """Kill every process this one started, and theirs; returns how many there were. SIGKILL, not SIGTERM: a
    terminated kernel prints the traceback of the cell it was running, and nothing a child holds needs it to run
    cleanup (every file is written atomically, every lock is released by the kernel when its holder ends)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(children, timeout=10)
    return len(children)
