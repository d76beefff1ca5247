"""restart_worker_pool(): fresh workers at once, nothing lost, nothing run twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasker import ManagerShutdownError, TaskManager
from tasker.testing import run_until

from . import _work
from ._util import SLOW, Events, finish, process_gone, settle


def runs(log: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in log.read_text().splitlines())


def test_restart_moves_queued_and_new_tasks_to_fresh_workers(
    make_manager: Callable[..., TaskManager], tmp_path: Path
) -> None:
    manager = make_manager(max_workers=1)
    log = tmp_path / "runs.log"
    gate = tmp_path / "gate"
    events = Events()
    running = manager.run_process(_work.wait_for_path, str(gate), when_event=events)
    old_pid = events.wait("started")
    queued = manager.run_process(_work.log_run, str(log), "queued")
    assert queued.get_status() == "pending"  # the only worker is busy

    manager.restart_worker_pool()
    fresh = manager.run_process(_work.log_run, str(log), "fresh")
    # Both run on a new worker while the old one still runs its task.
    finish(queued)
    finish(fresh)
    assert running.get_status() == "running"
    assert queued.result() != old_pid and fresh.result() != old_pid

    gate.touch()
    assert finish(running).result() == old_pid  # finished where it started
    run_until(lambda: process_gone(old_pid), SLOW)  # ... and that worker exited
    settle(manager)
    assert runs(log) == {"queued": 1, "fresh": 1}
    # The new worker keeps serving.
    assert finish(manager.run_process(_work.pid)).result() == fresh.result()


def test_restart_replaces_idle_workers(
    make_manager: Callable[..., TaskManager], tmp_path: Path
) -> None:
    manager = make_manager(max_workers=2)
    before = {finish(manager.run_process(_work.pid)).result() for _ in range(2)}
    manager.restart_worker_pool()
    for pid in before:
        run_until(lambda pid=pid: process_gone(pid), SLOW)
    log = tmp_path / "runs.log"
    tasks = [manager.run_process(_work.log_run, str(log), f"t{i}") for i in range(6)]
    for task in tasks:
        assert finish(task).result() not in before
    assert runs(log) == {f"t{i}": 1 for i in range(6)}


def test_restart_under_a_stream_of_tiny_tasks_loses_and_repeats_nothing(
    make_manager: Callable[..., TaskManager], tmp_path: Path
) -> None:
    # Tiny tasks are sent to workers ahead of time: those must run exactly once too.
    manager = make_manager(max_workers=2)
    log = tmp_path / "runs.log"
    tasks = [manager.run_process(_work.log_run, str(log), f"a{i}") for i in range(200)]
    manager.restart_worker_pool()
    tasks += [manager.run_process(_work.log_run, str(log), f"b{i}") for i in range(200)]
    manager.restart_worker_pool()
    settle(manager)
    assert [t.get_status() for t in tasks] == ["completed"] * 400
    counts = runs(log)
    assert len(counts) == 400 and set(counts.values()) == {1}


def test_restart_before_the_first_process_task_does_nothing(
    make_manager: Callable[..., TaskManager],
) -> None:
    manager = make_manager()
    manager.restart_worker_pool()
    assert manager._process_pool is None  # nothing was started for it
    assert finish(manager.run_process(_work.add, 1, 2)).result() == 3


def test_cancel_a_task_on_a_retiring_worker(
    make_manager: Callable[..., TaskManager], tmp_path: Path
) -> None:
    manager = make_manager(max_workers=1)
    events = Events()
    running = manager.run_process(_work.wait_for_path, str(tmp_path / "never"), when_event=events)
    old_pid = events.wait("started")
    manager.restart_worker_pool()
    running.cancel()
    assert finish(running).get_status() == "cancelled"
    run_until(lambda: process_gone(old_pid), SLOW)


def test_restart_after_shutdown_raises(make_manager: Callable[..., TaskManager]) -> None:
    manager = make_manager()
    manager.shutdown()
    with pytest.raises(ManagerShutdownError):
        manager.restart_worker_pool()


class CallingBackend:
    """A minimal process backend of an application's own: runs each call in the submitting
    thread (no workers, so nothing to restart)."""

    def attach(self, host: Any, *, update_rate: float) -> None:
        self.host = host

    def submit(self, task: Any, fn: Any, args: Any, kwargs: Any, **options: Any) -> None:
        if self.host._mark_running(task):
            self.host._finish(task, result=fn(None, *args, **kwargs))

    def cancel(self, task: Any) -> None:
        self.host._finish(task)

    def shutdown(self, timeout: float) -> None:
        pass


def test_restart_with_a_backend_that_cannot(make_manager: Callable[..., TaskManager]) -> None:
    manager = make_manager(process_backend=CallingBackend())
    manager.restart_worker_pool()  # nothing submitted yet: nothing to restart
    assert finish(manager.run_process(_work.add, 2, 3)).result() == 5
    with pytest.raises(NotImplementedError, match="CallingBackend cannot restart"):
        manager.restart_worker_pool()
    assert finish(manager.run_process(_work.add, 1, 1)).result() == 2  # still serving
