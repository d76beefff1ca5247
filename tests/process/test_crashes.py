"""Workers that die: the task fails with WorkerCrashedError at once and the pool heals."""

from __future__ import annotations

import os
import signal

import pytest

from tasker import TaskStatus, WorkerCrashedError

from . import _work as work
from ._util import Events, finish, settle, wait_gone


@pytest.mark.parametrize(
    ("func", "args", "event", "exitcode"),
    [
        (work.exit_hard, (3,), "before-exit", 3),
        (work.kill_self, (), "before-kill", -signal.SIGKILL),
        (work.segfault, (), "before-segv", -signal.SIGSEGV),
    ],
    ids=["os._exit", "SIGKILL", "SIGSEGV"],
)
def test_crash_fails_the_task_and_the_pool_heals(make_manager, func, args, event, exitcode):
    manager = make_manager(max_workers=1)
    events = Events()
    order: list[str] = []
    task = manager.run_process(
        func,
        *args,
        when_event=lambda t, n, d: (events(t, n, d), order.append("event")),
        when_done=lambda t: order.append("done"),
    )
    # Queued behind the crashing task: it must still run, on a replacement worker.
    after = manager.run_process(work.pid)
    settle(manager)
    assert task.get_status() == TaskStatus.FAILED
    error = task.exception()
    assert isinstance(error, WorkerCrashedError)
    assert error.exitcode == exitcode
    pid = events.first(event) if event != "before-exit" else error.pid
    assert error.pid == pid
    if exitcode < 0:
        assert error.signal == -exitcode
        assert signal.Signals(-exitcode).name in str(error)
    else:
        assert f"code {exitcode}" in str(error)
    # What the worker sent before dying arrives, before when_done.
    assert order == ["event", "done"]
    assert after.get_status() == TaskStatus.COMPLETED
    assert after.result() != pid


def test_worker_killed_from_outside(make_manager):
    manager = make_manager(max_workers=1)
    events = Events()
    task = manager.run_process(work.sleeper, 60, when_event=events)
    pid = events.wait("started")
    os.kill(pid, signal.SIGKILL)
    finish(task)
    error = task.exception()
    assert isinstance(error, WorkerCrashedError)
    assert error.signal == signal.SIGKILL
    assert finish(manager.run_process(work.add, 1, 1)).result() == 2


def test_memory_exhaustion_fails_the_task(make_manager):
    # Under an address-space limit Python raises MemoryError; the worker survives.
    manager = make_manager(max_workers=1)
    task = finish(manager.run_process(work.exhaust_memory, 512))
    assert task.get_status() == TaskStatus.FAILED
    assert isinstance(task.exception(), MemoryError | WorkerCrashedError)


def test_crash_does_not_disturb_other_workers(make_manager, tmp_path):
    manager = make_manager(max_workers=2)
    release = tmp_path / "release"
    events = Events()
    survivor = manager.run_process(work.wait_for_path, str(release), when_event=events)
    survivor_pid = events.wait("started")
    crashed = finish(manager.run_process(work.exit_hard, 9))
    assert isinstance(crashed.exception(), WorkerCrashedError)
    assert survivor.get_status() == TaskStatus.RUNNING
    release.touch()
    finish(survivor)
    assert survivor.result() == survivor_pid


def test_queued_tasks_run_after_several_crashes(make_manager):
    manager = make_manager(max_workers=2)
    crashes = [manager.run_process(work.exit_hard, 1) for _ in range(4)]
    fine = [manager.run_process(work.add, i, i) for i in range(10)]
    settle(manager)
    assert all(isinstance(t.exception(), WorkerCrashedError) for t in crashes)
    assert [t.result() for t in fine] == [2 * i for i in range(10)]


def test_crashed_worker_pids_are_reaped(make_manager):
    manager = make_manager(max_workers=1)
    task = finish(manager.run_process(work.exit_hard, 5))
    pid = task.exception().pid
    wait_gone([pid])
    assert pid not in [p.pid for p in __import__("multiprocessing").active_children()]


def test_idle_worker_killed_just_before_a_submit(make_manager):
    # Races a submit against the death of the idle worker it goes to: the task
    # either reaches a live worker or, if the send failed, is retried on the
    # replacement; a send that made it into a dying worker's socket fails it.
    manager = make_manager(max_workers=1)
    outcomes = set()
    for _ in range(10):
        pid = finish(manager.run_process(work.pid)).result()
        os.kill(pid, signal.SIGKILL)
        task = finish(manager.run_process(work.add, 1, 2))
        if task.get_status() == TaskStatus.COMPLETED:
            assert task.result() == 3
            outcomes.add("completed")
        else:
            assert isinstance(task.exception(), WorkerCrashedError)
            outcomes.add("crashed")
        wait_gone([pid])
    assert outcomes
