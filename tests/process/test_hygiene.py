"""No leftovers: parent death, shutdown, signals, many tasks."""

from __future__ import annotations

import gc
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tasker import TaskManager, TaskStatus
from tasker._dispatch._glib import GLibDispatcher
from tasker._process import _pool
from tasker._process._pool import LISTENER_NAME
from tasker.testing import drain

from ..stress._probe import new_shm_of_ours
from . import _work as work
from ._util import Events, descendants, fd_count, finish, process_gone, settle, wait_gone

ROOT = Path(__file__).resolve().parents[2]


def _read_lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    """Read ``count`` lines from the child's stdout, failing after ``timeout`` seconds."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while len(lines) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError(f"child printed only {lines!r}")
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"child exited early; printed {lines!r}")
            lines.append(line.strip())
    return lines


PARENT_SCRIPT = textwrap.dedent(
    """
    import multiprocessing.forkserver
    import sys

    sys.path.insert(0, {root!r})

    from tasker import task_mgr
    from tests.process import _work as work

    if __name__ == "__main__":
        from gi.repository import GLib

        task_mgr.configure(max_workers=2)
        seen = {{}}

        def on_event(task, name, data):
            seen[name] = data
            if len(seen) == 3:
                server = multiprocessing.forkserver._forkserver._forkserver_pid
                print("pids", seen["started"], seen["worker"], seen["child"], server, flush=True)

        task_mgr.run_process(work.sleeper, 60, when_event=on_event)
        task_mgr.run_process(work.sleeper_with_child_and_pid, when_event=on_event)
        GLib.MainLoop().run()
    """
)


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(PARENT_SCRIPT.format(root=str(ROOT)))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        (line,) = _read_lines(proc, 1, 60)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    pids = [int(p) for p in line.split()[1:]]
    assert len(set(pids)) == 4 and os.getpid() not in pids
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Both workers, the grandchild and the fork server go, on their own.
    wait_gone(pids, timeout=10)
    proc.stdout.close()


def test_shutdown_leaves_no_process_thread_fd_or_segment(tmp_path):
    from multiprocessing import forkserver, resource_tracker

    # Another live pool (say the global task_mgr used by another test) keeps
    # the shared helper processes; then only our own leftovers are checked.
    alone = not _pool._live_pools and forkserver._forkserver._forkserver_pid is None
    drain(0.01)  # let GLib set up whatever it keeps for its own main context
    gc.collect()
    fds_before = fd_count()
    shm_before = set(os.listdir("/dev/shm"))
    descendants_before = set(descendants(os.getpid()))
    threads_before = set(threading.enumerate())

    manager = TaskManager(GLibDispatcher(), max_workers=2, cancel_grace=0.2)
    release = tmp_path / "release"
    first = Events()
    running = manager.run_process(work.wait_for_path, str(release), when_event=first)
    stubborn_events = Events()
    stubborn = manager.run_process(work.sleeper_with_child, when_event=stubborn_events)
    queued = manager.run_process(work.add, 1, 2)
    pids = [first.wait("started"), stubborn_events.wait("child")]
    server_pid = forkserver._forkserver._forkserver_pid
    pool_pids = {w.pid for w in manager._process_pool._workers.values()}

    manager.shutdown(timeout=2.0)

    assert running.get_status() == TaskStatus.CANCELLED
    assert stubborn.get_status() == TaskStatus.CANCELLED
    assert queued.get_status() == TaskStatus.CANCELLED
    wait_gone([*pids, *pool_pids], timeout=10)
    assert set(threading.enumerate()) - threads_before == set()
    if alone:
        wait_gone([server_pid], timeout=10)
        assert not [t for t in threading.enumerate() if t.name == LISTENER_NAME]
        assert forkserver._forkserver._forkserver_pid is None
        assert resource_tracker._resource_tracker._pid is None
    assert set(descendants(os.getpid())) - descendants_before == set()
    gc.collect()
    assert fd_count() == fds_before
    # /dev/shm is machine-wide: only names this process tree can create count
    # (a concurrent loky run, say, adds its own semaphores there).
    assert new_shm_of_ours(shm_before, set(os.listdir("/dev/shm"))) == set()
    manager.shutdown(timeout=1.0)  # idempotent


def test_shutdown_kills_a_task_that_ignores_cancellation(make_manager):
    manager = make_manager(cancel_grace=60)
    events = Events()
    task = manager.run_process(work.sleeper, 60, when_event=events)
    pid = events.wait("started")
    manager.shutdown(timeout=0.2)  # less than the grace: the shutdown deadline kills it
    assert task.get_status() == TaskStatus.CANCELLED
    wait_gone([pid])


def test_shutdown_of_an_unused_pool_and_before_any_task(make_manager):
    manager = make_manager()
    manager.run_thread(lambda context: 1)
    settle(manager)
    manager.shutdown(timeout=1.0)
    assert manager._process_pool is None


def test_workers_ignore_sigint(make_manager, tmp_path):
    manager = make_manager(max_workers=1)
    release = tmp_path / "release"
    events = Events()
    task = manager.run_process(work.wait_for_path, str(release), when_event=events)
    pid = events.wait("started")
    os.kill(pid, signal.SIGINT)
    release.touch()
    finish(task)
    assert task.result() == pid
    assert not process_gone(pid)


def test_workers_are_not_multiprocessing_children(make_manager):
    # The pool reaps its own workers; multiprocessing must not join them at exit.
    import multiprocessing

    manager = make_manager(max_workers=1)
    pid = finish(manager.run_process(work.pid)).result()
    assert pid not in [p.pid for p in multiprocessing.active_children()]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_ten_thousand_tasks_leave_memory_and_descriptors_flat(make_manager):
    manager = make_manager(max_workers=2)

    def batch(count: int) -> None:
        tasks = [manager.run_process(work.add, i, 1) for i in range(count)]
        settle(manager, 120)
        assert tasks[-1].result() == count
        del tasks
        gc.collect()

    batch(2_000)  # warm up: workers started, caches and allocator pools filled
    fds, rss = fd_count(), _rss_bytes()
    batch(10_000)
    assert fd_count() == fds
    assert _rss_bytes() - rss < 16 * 2**20


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_shutdown_with_other_start_methods(make_manager, method):
    manager = make_manager(start_method=method, max_workers=2)
    tasks = [manager.run_process(work.pid) for _ in range(4)]
    settle(manager)
    pids = {t.result() for t in tasks}
    manager.shutdown(timeout=2.0)
    wait_gone(list(pids))


def test_two_managers_share_the_fork_server(make_manager):
    from multiprocessing import forkserver

    alone = not _pool._live_pools and forkserver._forkserver._forkserver_pid is None
    first = make_manager(max_workers=1)
    second = make_manager(max_workers=1)
    assert finish(first.run_process(work.add, 1, 1)).result() == 2
    assert finish(second.run_process(work.add, 2, 2)).result() == 4
    server = forkserver._forkserver._forkserver_pid
    first.shutdown(timeout=2.0)  # must neither hang nor stop what `second` uses
    assert forkserver._forkserver._forkserver_pid == server
    assert finish(second.run_process(work.add, 3, 3)).result() == 6
    second.shutdown(timeout=2.0)
    if alone:  # the last tasker pool stops the fork server a tasker pool started
        assert forkserver._forkserver._forkserver_pid is None
        wait_gone([server])
