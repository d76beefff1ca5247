"""Tasks sent to a worker ahead of time: still pending, cancellable at once, never lost."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tasker import TaskStatus, WorkerCrashedError
from tasker._process import _pool
from tasker.testing import run_until

from . import _work as work
from ._util import Events, finish, settle


@pytest.fixture
def always_ahead(monkeypatch):
    """Every task counts as quick, so the next queued task is always sent ahead."""
    monkeypatch.setattr(_pool, "PREFETCH_LIMIT", 1e9)


def _start_with_one_ahead(manager, tmp_path, ahead_func, *ahead_args, **ahead_kwargs):
    """Leave the single worker running a blocking task with ``ahead_func`` sent ahead."""
    first_gate, second_gate = tmp_path / "first", tmp_path / "second"
    first_events, second_events = Events(), Events()
    first = manager.run_process(work.wait_for_path, str(first_gate), when_event=first_events)
    first_events.wait("started")
    second = manager.run_process(work.wait_for_path, str(second_gate), when_event=second_events)
    ahead = manager.run_process(ahead_func, *ahead_args, **ahead_kwargs)
    assert ahead.get_status() == TaskStatus.PENDING
    first_gate.touch()  # its result makes `second` run and `ahead` go ahead of time
    second_pid = second_events.wait("started")
    finish(first)
    (worker,) = manager._process_pool._workers.values()
    run_until(lambda: worker.next_job is not None, 10)
    assert worker.next_job.task is ahead
    return second, second_gate, second_pid, ahead


def test_task_sent_ahead_is_pending_until_its_turn(make_manager, tmp_path, always_ahead):
    manager = make_manager(max_workers=1)
    second, gate, _pid, ahead = _start_with_one_ahead(manager, tmp_path, work.add, 2, 3)
    assert second.get_status() == TaskStatus.RUNNING
    assert ahead.get_status() == TaskStatus.PENDING
    gate.touch()
    settle(manager)
    assert ahead.result() == 5


def test_task_sent_ahead_cancelled_ends_at_once_and_never_runs(
    make_manager, tmp_path, always_ahead
):
    manager = make_manager(max_workers=1)
    events = Events()
    second, gate, _pid, ahead = _start_with_one_ahead(
        manager, tmp_path, work.sleeper, 60, when_event=events
    )
    ahead.cancel()
    finish(ahead)  # while the worker is still busy with `second`
    assert ahead.get_status() == TaskStatus.CANCELLED
    assert second.get_status() == TaskStatus.RUNNING
    gate.touch()
    after = manager.run_process(work.add, 1, 1)
    settle(manager)
    assert second.get_status() == TaskStatus.COMPLETED
    assert after.result() == 2
    assert events.items == []  # the worker skipped it


def test_task_sent_ahead_of_a_crash_runs_on_the_replacement(make_manager, tmp_path, always_ahead):
    manager = make_manager(max_workers=1)
    second, _gate, pid, ahead = _start_with_one_ahead(manager, tmp_path, work.pid)
    os.kill(pid, signal.SIGKILL)
    settle(manager)
    assert isinstance(second.exception(), WorkerCrashedError)
    assert ahead.get_status() == TaskStatus.COMPLETED
    assert ahead.result() not in (pid, os.getpid())


def test_task_sent_ahead_of_a_killed_task_runs_on_the_replacement(
    make_manager, tmp_path, always_ahead
):
    manager = make_manager(max_workers=1, cancel_grace=0)
    second, _gate, _pid, ahead = _start_with_one_ahead(manager, tmp_path, work.sleeper, 0)
    # Zero grace: the worker is killed at once (unless `second` returns first);
    # either way the task sent ahead must run.
    second.cancel()
    settle(manager)
    assert second.get_status() == TaskStatus.CANCELLED
    assert ahead.result() == "woke up"


def test_timeout_of_a_task_sent_ahead_counts_from_its_start(make_manager, tmp_path, always_ahead):
    manager = make_manager(max_workers=1)
    _second, gate, _pid, ahead = _start_with_one_ahead(
        manager, tmp_path, work.add, 1, 2, timeout=0.2
    )
    deadline = time.monotonic() + 0.4
    run_until(lambda: time.monotonic() >= deadline, 5)  # longer than its timeout, while waiting
    assert ahead.get_status() == TaskStatus.PENDING
    gate.touch()
    settle(manager)
    assert ahead.result() == 3


def test_many_tiny_tasks_keep_their_order_and_results(make_manager):
    manager = make_manager(max_workers=2)
    order: list[int] = []
    tasks = [
        manager.run_process(work.identity, i, when_done=lambda t: order.append(t.result()))
        for i in range(3000)
    ]
    for task in tasks[::7]:
        task.cancel()
    settle(manager, 60)
    cancelled = {t.id for t in tasks[::7]}
    assert all(t.get_status() == TaskStatus.CANCELLED for t in tasks if t.id in cancelled)
    assert sorted(order) == [i for i, t in enumerate(tasks) if t.id not in cancelled]


def test_several_tasks_sent_ahead_survive_a_crash_in_order(make_manager, tmp_path, always_ahead):
    manager = make_manager(max_workers=1)
    first_gate, second_gate = tmp_path / "first", tmp_path / "second"
    first_events, second_events = Events(), Events()
    first = manager.run_process(work.wait_for_path, str(first_gate), when_event=first_events)
    first_events.wait("started")
    second = manager.run_process(work.wait_for_path, str(second_gate), when_event=second_events)
    order: list[int] = []
    ahead = [
        manager.run_process(work.identity, i, when_done=lambda t: order.append(t.result()))
        for i in range(5)
    ]
    first_gate.touch()  # `second` runs; the five small tasks all go ahead of time
    pid = second_events.wait("started")
    finish(first)
    (worker,) = manager._process_pool._workers.values()
    run_until(lambda: len(worker.ahead) == 5, 10)
    assert [job.task for job in worker.ahead] == ahead
    assert all(task.get_status() == TaskStatus.PENDING for task in ahead)
    ahead[2].cancel()
    finish(ahead[2])  # ends at once, while the worker is still busy with `second`
    os.kill(pid, signal.SIGKILL)
    settle(manager)
    assert isinstance(second.exception(), WorkerCrashedError)
    assert ahead[2].get_status() == TaskStatus.CANCELLED
    assert order == [0, 1, 3, 4]  # run on the replacement, in their order
