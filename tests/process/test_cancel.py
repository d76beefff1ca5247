"""Cancellation and timeouts of process tasks: the flag, the grace period, the kill."""

from __future__ import annotations

import threading
import time

import pytest

from tasker import CancelledError, TaskStatus, TaskTimeoutError, WorkerCrashedError

from . import _work as work
from ._util import Events, finish, settle, wait_gone


def test_cooperative_task_returns_and_ends_cancelled(make_manager):
    manager = make_manager(cancel_grace=30)
    events = Events()
    done: list[object] = []
    task = manager.run_process(work.cooperative, when_event=events, when_done=done.append)
    pid = events.wait("started")
    assert manager.cancel_task(task.key)
    settle(manager)
    assert task.get_status() == TaskStatus.CANCELLED
    assert task.get_message() == "stopped"  # its last message still arrived
    assert done == [task]
    with pytest.raises(CancelledError):
        task.result()
    # It returned on its own: the worker was not killed.
    assert finish(manager.run_process(work.pid)).result() == pid


def test_task_raising_after_cancel_ends_cancelled(make_manager):
    manager = make_manager(cancel_grace=30)
    events = Events()
    task = manager.run_process(work.raise_when_cancelled, when_event=events)
    events.wait("started")
    task.cancel()
    finish(task)
    assert task.get_status() == TaskStatus.CANCELLED


def test_sleeping_task_is_killed_after_the_grace_period(make_manager):
    manager = make_manager(max_workers=1, cancel_grace=0.2)
    events = Events()
    done: list[object] = []
    task = manager.run_process(work.sleeper, 60, when_event=events, when_done=done.append)
    pid = events.wait("started")
    started = time.monotonic()
    task.cancel()
    settle(manager)
    elapsed = time.monotonic() - started
    assert task.get_status() == TaskStatus.CANCELLED
    assert done == [task]
    assert elapsed < 30  # not the 60 s sleep (a sanity bound, not a speed test)
    wait_gone([pid])
    # The slot is free again and a new worker serves it.
    new_pid = finish(manager.run_process(work.pid)).result()
    assert new_pid != pid


def test_kill_takes_the_functions_children_along(make_manager):
    manager = make_manager(cancel_grace=0.1)
    events = Events()
    task = manager.run_process(work.sleeper_with_child, when_event=events)
    child = events.wait("child")
    task.cancel()
    finish(task)
    assert task.get_status() == TaskStatus.CANCELLED
    wait_gone([child])


def test_zero_grace_kills_at_once(make_manager):
    manager = make_manager(cancel_grace=30)
    events = Events()
    task = manager.run_process(work.sleeper, 60, when_event=events, cancel_grace=0)
    events.wait("started")
    task.cancel()
    finish(task)
    assert task.get_status() == TaskStatus.CANCELLED


def test_timeout_stops_a_sleeping_task_and_fails_it(make_manager):
    manager = make_manager(cancel_grace=0.1)
    events = Events()
    task = manager.run_process(work.sleeper, 60, timeout=0.3, when_event=events)
    pid = events.wait("started")
    finish(task)
    assert task.get_status() == TaskStatus.FAILED
    error = task.exception()
    assert isinstance(error, TaskTimeoutError)
    assert error.timeout == 0.3
    assert isinstance(error.__cause__, WorkerCrashedError)
    wait_gone([pid])


def test_timeout_of_a_cooperative_task_fails_it(make_manager):
    manager = make_manager(cancel_grace=30)
    task = finish(manager.run_process(work.cooperative, False, timeout=0.2))
    assert task.get_status() == TaskStatus.FAILED
    assert isinstance(task.exception(), TaskTimeoutError)
    assert task.get_message() == "stopped"


def test_manager_default_timeout_applies(make_manager):
    manager = make_manager(cancel_grace=0.1, timeout=0.2)
    task = finish(manager.run_process(work.sleeper, 60))
    assert isinstance(task.exception(), TaskTimeoutError)


def test_timeout_not_reached_completes(make_manager):
    manager = make_manager()
    assert finish(manager.run_process(work.add, 1, 1, timeout=60)).result() == 2


def test_timeout_counts_from_start_not_from_queueing(make_manager, tmp_path):
    manager = make_manager(max_workers=1)
    release = tmp_path / "release"
    events = Events()
    blocker = manager.run_process(work.wait_for_path, str(release), when_event=events)
    events.wait("started")
    queued = manager.run_process(work.add, 1, 2, timeout=0.2)
    # Wait (on a condition, not a clock) well past the queued task's timeout.
    deadline = time.monotonic() + 0.5
    from tasker.testing import run_until

    run_until(lambda: time.monotonic() >= deadline, 5)
    assert queued.get_status() == TaskStatus.PENDING
    release.touch()
    settle(manager)
    assert blocker.get_status() == TaskStatus.COMPLETED
    assert queued.result() == 3


def test_same_key_replaces_a_running_process_task(make_manager):
    manager = make_manager(cancel_grace=0.1)
    events = Events()
    old = manager.run_process(work.sleeper, 60, key="preview", when_event=events)
    events.wait("started")
    new = manager.run_process(work.add, 1, 2, key="preview")
    settle(manager)
    assert old.get_status() == TaskStatus.CANCELLED
    assert new.result() == 3
    assert manager.get_task("preview") is None


def test_cancel_from_another_thread(make_manager):
    manager = make_manager(cancel_grace=0.1)
    events = Events()
    task = manager.run_process(work.sleeper, 60, when_event=events)
    events.wait("started")
    thread = threading.Thread(target=task.cancel)
    thread.start()
    thread.join()
    finish(task)
    assert task.get_status() == TaskStatus.CANCELLED


def test_cancelling_twice_and_after_the_end(make_manager):
    manager = make_manager(cancel_grace=0.1)
    events = Events()
    task = manager.run_process(work.sleeper, 60, when_event=events)
    events.wait("started")
    assert task.cancel() is True
    assert task.cancel() is False
    finish(task)
    done = finish(manager.run_process(work.add, 1, 1))
    assert done.cancel() is False
    assert done.result() == 2


def test_cancel_right_after_submit(make_manager):
    # Races the cancel against the task being sent to an idle worker.
    manager = make_manager(max_workers=2, cancel_grace=0.1)
    finish(manager.run_process(work.add, 0, 0))  # warm
    tasks = []
    for _ in range(50):
        task = manager.run_process(work.cooperative, False)
        task.cancel()
        tasks.append(task)
    settle(manager)
    assert all(t.get_status() == TaskStatus.CANCELLED for t in tasks)
    assert finish(manager.run_process(work.add, 2, 2)).result() == 4


def test_cancel_many_queued_tasks(make_manager, tmp_path):
    manager = make_manager(max_workers=1)
    release = tmp_path / "release"
    events = Events()
    blocker = manager.run_process(work.wait_for_path, str(release), when_event=events)
    events.wait("started")
    queued = [manager.run_process(work.add, i, 0) for i in range(2000)]
    for task in queued[::2]:
        task.cancel()
    release.touch()
    settle(manager)
    assert blocker.get_status() == TaskStatus.COMPLETED
    assert all(t.get_status() == TaskStatus.CANCELLED for t in queued[::2])
    assert [t.result() for t in queued[1::2]] == list(range(1, 2000, 2))


def test_huge_timeout_and_grace_do_not_break_the_listener(make_manager):
    manager = make_manager(cancel_grace=1e300)
    assert finish(manager.run_process(work.add, 1, 1, timeout=float("inf"))).result() == 2
    task = manager.run_process(work.cooperative, False, timeout=40 * 86400.0)
    task.cancel()  # the kill deadline is 1e300 s away: the task returns by itself
    finish(task)
    assert task.get_status() == TaskStatus.CANCELLED
    assert finish(manager.run_process(work.add, 2, 2)).result() == 4
