"""Stopping a run: real signals sent to real process trees."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest



def _descendants_once(process: psutil.Process, at_least: int, timeout: float) -> set[int]:
    """Wait until ``process`` has a grandchild (a chapter kernel's worker pool) and ``at_least`` descendants."""
    deadline, seen = time.time() + timeout, set()
    while time.time() < deadline:
        children = process.children(recursive=True)
        seen |= {child.pid for child in children}
        if len(children) >= at_least and any(child.ppid() != process.pid for child in children):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"no worker pool appeared within {timeout} s")


def _alive(pids: set[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_the_whole_run_and_the_next_run_goes_on(tmp_path, signum, status):
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "edge_audio.cli", "run", "--quick", "--no-build", "--output-dir",
                            str(out)], stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        pids = _descendants_once(psutil.Process(run.pid), at_least=3, timeout=120)
        # Ctrl-C reaches the terminal's whole process group; SIGTERM (kill, timeout, systemd) the run alone
        os.killpg(run.pid, signum) if signum == signal.SIGINT else run.send_signal(signum)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == status
    assert err.strip().splitlines()[-1].startswith(f"edge-audio: stopped by {signal.Signals(signum).name}")
    assert "Traceback" not in err
    time.sleep(1.0)  # an orphaned worker notices within half a second
    assert not _alive(pids), "processes of the stopped run are still alive"
    if signum == signal.SIGINT:
        return
    # nothing it held is still held: the same data is prepared in this process (dataset, validation, features)
    from edge_audio.settings import Settings
    from edge_audio.steps.data import prepare_data

    data = prepare_data(Settings(output_dir=str(out)))
    assert len(data.features.features) == len(data.dataset)


def test_a_lock_whose_holder_was_killed_is_taken_over(tmp_path):
    from edge_audio.storage import file_lock

    lock = tmp_path / ".entry.lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from edge_audio.storage import file_lock
        with file_lock(Path({str(lock)!r})):
            print("held", flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(10)
    started = time.perf_counter()
    with file_lock(lock):
        assert time.perf_counter() - started < 2.0


def test_pool_workers_end_when_their_parent_is_killed(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from edge_audio.processes import process_pool
        with process_pool(2) as pool:
            futures = [pool.submit(time.sleep, 600) for _ in range(2)]
            time.sleep(1.0)
            print(" ".join(str(p) for p in pool._processes), flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    workers = {int(pid) for pid in parent.stdout.readline().split()}
    assert len(workers) == 2
    parent.kill()  # SIGKILL: no handler runs in the parent
    parent.wait(10)
    time.sleep(1.5)
    assert not _alive(workers)
