"""tasker.compat.rayforge with worker processes: initializer(shared_state, ...), visible=False."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator

import pytest
from gi.repository import GLib

from tasker._process._pool import stop_unused_helpers
from tasker.compat.rayforge import Task, TaskManager, _tracker_running
from tasker.testing import run_until

from . import _work
from ._util import SLOW, descendants, wait_gone


@pytest.fixture
def managers() -> Iterator[list[TaskManager]]:
    made: list[TaskManager] = []
    yield made
    for manager in made:
        manager.shutdown()


def test_initializer_gets_a_shared_state_made_as_rayforge_makes_it(
    managers: list[TaskManager],
) -> None:
    manager = TaskManager(
        main_thread_scheduler=GLib.idle_add,
        worker_initializer=_work.rayforge_init,
        worker_initargs=("addons-v1",),
    )
    managers.append(manager)
    task = manager.run_process(_work.rayforge_read_init)
    run_until(task.is_final, SLOW)
    tag, pid = task.result()
    assert tag == "addons-v1"
    assert manager.shared_state[f"worker:{pid}"] == "addons-v1"  # a Manager().dict() proxy


def test_given_shared_state_is_passed_to_the_initializer(managers: list[TaskManager]) -> None:
    tracker_ran = _tracker_running()
    with multiprocessing.get_context("spawn").Manager() as sync:
        state = sync.dict()
        manager = TaskManager(GLib.idle_add, _work.rayforge_init, ("mine",), shared_state=state)
        managers.append(manager)
        task = manager.run_process(_work.rayforge_read_init)
        run_until(task.is_final, SLOW)
        assert state[f"worker:{task.result()[1]}"] == "mine"
        assert manager.shared_state is state
        manager.shutdown()
    if not tracker_ran:
        # This test's Manager started the resource tracker: leave none behind.
        stop_unused_helpers(frozenset({"tracker"}))


def test_no_initializer_no_shared_state(managers: list[TaskManager]) -> None:
    manager = TaskManager(GLib.idle_add)
    managers.append(manager)
    assert manager.shared_state is None
    assert manager.core._options["initializer"] is None


def test_hidden_process_task_and_its_callbacks(managers: list[TaskManager]) -> None:
    manager = TaskManager(GLib.idle_add)
    managers.append(manager)
    updates: list[list[Task]] = []
    manager.tasks_updated.connect(lambda sender, tasks, progress: updates.append(tasks))
    done: list[Task] = []
    events: list[tuple[Task, str]] = []
    task = manager.run_process(
        _work.events,
        3,
        visible=False,
        when_done=done.append,
        when_event=lambda t, name, data: events.append((t, name)),
    )
    run_until(lambda: done, SLOW)
    assert done == [task] and task.get_status() == "completed"
    assert len(events) == 3 and all(t is task for t, _ in events)
    assert all(task not in tasks for tasks in updates)
    assert task._visible is False and task.task_type == "process"


def test_restart_worker_pool(managers: list[TaskManager]) -> None:
    manager = TaskManager(GLib.idle_add)
    managers.append(manager)
    first = manager.run_process(_work.pid)
    run_until(first.is_final, SLOW)
    manager.restart_worker_pool()
    second = manager.run_process(_work.pid)
    run_until(second.is_final, SLOW)
    assert second.result() != first.result()


def test_shutdown_leaves_no_child_process() -> None:
    before = set(descendants(os.getpid()))
    manager = TaskManager(GLib.idle_add, _work.rayforge_init, ("x",))
    task = manager.run_process(_work.rayforge_read_init)
    run_until(task.is_final, SLOW)
    manager.shutdown()
    # The workers, the state Manager's process, and the helpers tasker started.
    wait_gone(sorted(set(descendants(os.getpid())) - before), timeout=SLOW)
