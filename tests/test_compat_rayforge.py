"""tasker.compat.rayforge: Rayforge's names and units over tasker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gi.repository import GLib

import tasker
from tasker.compat import rayforge
from tasker.compat.rayforge import (
    CancelledError,
    ExecutionContext,
    Task,
    TaskManager,
    TaskManagerProxy,
)
from tasker.testing import run_until


def _direct_scheduler(callback: Any, *args: Any, **kwargs: Any) -> None:
    callback(*args, **kwargs)  # Rayforge's headless tests schedule like this


@pytest.fixture
def manager() -> Iterator[TaskManager]:
    made = TaskManager(main_thread_scheduler=GLib.idle_add)
    yield made
    made.shutdown()


def wait_gate(context: ExecutionContext, gate: threading.Event) -> str:
    while not gate.wait(0.01):
        if context.is_cancelled():
            return "stopped"
    return "opened"


def test_the_names_an_application_imports() -> None:
    assert CancelledError is asyncio.CancelledError
    assert ExecutionContext is tasker.ExecutionContext
    assert set(rayforge.__all__) == {
        "CancelledError",
        "ExecutionContext",
        "Task",
        "TaskManager",
        "TaskManagerProxy",
        "task_mgr",
    }
    assert isinstance(rayforge.task_mgr, TaskManagerProxy)


def test_callbacks_get_the_same_rayforge_task(manager: TaskManager) -> None:
    done: list[Task] = []
    task = manager.run_thread(lambda context, x: x * 2, 21, when_done=done.append)
    assert isinstance(task, Task)
    run_until(lambda: done)
    assert done == [task] and done[0] is task
    assert task.get_status() == "completed" and task.result() == 42
    assert task.get_progress() == 1.0 and task.is_final() and not task.is_running()
    assert task.task_type == "asyncio" and task.core.kind == "thread"


def test_canceled_is_spelled_as_rayforge_spells_it(manager: TaskManager) -> None:
    gate = threading.Event()
    task = manager.run_thread(wait_gate, gate, key="job")
    with pytest.raises(asyncio.InvalidStateError):
        task.result()  # not finished
    manager.cancel_task("job")
    run_until(task.is_final)
    assert task.get_status() == "canceled"
    assert task.is_cancelled()
    with pytest.raises(asyncio.CancelledError):
        task.result()


def test_failed_task_raises_its_exception(manager: TaskManager) -> None:
    def fails(context: ExecutionContext) -> None:
        raise ValueError("bad svg")

    task = manager.run_thread(fails)
    run_until(task.is_final)
    assert task.get_status() == "failed"
    assert isinstance(task._task_exception, ValueError)
    with pytest.raises(ValueError, match="bad svg"):
        task.result()


def test_tasks_updated_sends_rayforge_tasks(manager: TaskManager) -> None:
    seen: list[tuple[object, list[Task], float]] = []

    def on_update(sender: object, tasks: list[Task], **kwargs: Any) -> None:
        seen.append((sender, tasks, kwargs["progress"]))

    manager.tasks_updated.connect(on_update)
    gate = threading.Event()
    task = manager.run_thread(wait_gate, gate)
    run_until(lambda: any(task in tasks for _, tasks, _ in seen))
    assert all(sender is manager for sender, _, _ in seen)
    gate.set()
    run_until(lambda: seen[-1][1] == [] and seen[-1][2] == 1.0)
    assert list(manager) == [] and len(manager) == 0 and not manager.has_tasks()


def test_wait_until_settled_takes_milliseconds(manager: TaskManager) -> None:
    gate = threading.Event()
    manager.run_thread(wait_gate, gate)
    assert manager.wait_until_settled(20) is False  # 20 ms, not 20 s
    gate.set()
    assert manager.wait_until_settled(10_000) is True


def test_delayed_call_takes_milliseconds_and_can_be_cancelled() -> None:
    manager = TaskManager(main_thread_scheduler=_direct_scheduler)
    try:
        fired = threading.Event()
        results: list[str] = []
        kept = manager.schedule_delayed_on_main_thread(
            50, lambda value: (results.append(value), fired.set()), "done"
        )
        dropped = manager.schedule_delayed_on_main_thread(5, results.append, "cancelled")
        assert dropped.cancel() is True
        assert fired.wait(10)
        assert results == ["done"] and kept.done()
    finally:
        manager.shutdown()


def test_schedule_on_main_thread_with_a_direct_scheduler_runs_at_once() -> None:
    manager = TaskManager(main_thread_scheduler=_direct_scheduler)
    try:
        results: list[int] = []
        manager.schedule_on_main_thread(results.append, 42)
        assert results == [42]
    finally:
        manager.shutdown()


def test_loop_run_on_main_thread_and_run_in_executor(manager: TaskManager) -> None:
    main = threading.current_thread()

    async def switch(context: ExecutionContext) -> tuple[bool, int]:
        on_main = await manager.run_on_main_thread(lambda: threading.current_thread() is main)
        total = await manager.run_in_executor(sum, [1, 2, 3])
        return on_main, total

    task = manager.add_coroutine(switch)
    run_until(task.is_final)
    assert task.result() == (True, 6)
    future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, "on the loop"), manager.loop)
    assert future.result(10) == "on the loop"


def test_call_on_main_thread_from_a_thread_task(manager: TaskManager) -> None:
    main = threading.current_thread()
    task = manager.run_thread(
        lambda context: manager.call_on_main_thread(lambda: threading.current_thread() is main)
    )
    run_until(task.is_final)
    assert task.result() is True


def test_cancel_task_by_id_and_cancel_all(manager: TaskManager) -> None:
    gate = threading.Event()
    first = manager.run_thread(wait_gate, gate)
    second = manager.run_thread(wait_gate, gate, visible=False)
    third = manager.run_thread(wait_gate, gate)
    assert manager.cancel_task_by_id(second.id) is True
    assert manager.cancel_task_by_id(second.id) is False  # already cancelling
    assert manager.cancel_task_by_id(-1) is False
    assert manager.cancel_all() == 2
    run_until(lambda: all(t.is_final() for t in (first, second, third)))
    assert {t.get_status() for t in (first, second, third)} == {"canceled"}


def test_get_task_and_iteration_give_rayforge_tasks(manager: TaskManager) -> None:
    gate = threading.Event()
    task = manager.run_thread(wait_gate, gate, key="k")
    assert manager.get_task("k") is task
    assert manager.get_task("missing") is None
    assert list(manager) == [task]
    gate.set()
    assert manager.wait_until_settled(10_000)


def test_proxy_is_lazy_and_initialize_only_before_first_use() -> None:
    proxy = TaskManagerProxy()
    proxy.restart_worker_pool()  # nothing created yet: nothing to restart
    assert proxy._instance is None
    with pytest.raises(TypeError, match="unknown TaskManager argument"):
        proxy.initialize(scheduler=GLib.idle_add)
    proxy.initialize(main_thread_scheduler=_direct_scheduler)
    assert proxy._instance is None
    try:
        results: list[str] = []
        proxy.schedule_on_main_thread(results.append, "now")
        assert results == ["now"]
        assert isinstance(proxy._instance, TaskManager)
        assert len(proxy) == 0 and list(proxy) == []
        with pytest.raises(RuntimeError, match="already been initialized"):
            proxy.initialize(main_thread_scheduler=None)
    finally:
        proxy.shutdown()


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda m: m.wait_until_settled(-1), ValueError),
        (lambda m: m.wait_until_settled("10"), TypeError),
        (lambda m: m.schedule_delayed_on_main_thread(-5, print), ValueError),
        (lambda m: m.schedule_delayed_on_main_thread(True, print), TypeError),
    ],
)
def test_bad_input(manager: TaskManager, make: Any, error: type) -> None:
    with pytest.raises(error):
        make(manager)


def test_tasker_options_pass_through() -> None:
    manager = TaskManager(GLib.idle_add, max_workers=1, cancel_grace=0.25)
    try:
        assert manager.core._options["max_workers"] == 1
        assert manager.core._options["cancel_grace"] == 0.25
    finally:
        manager.shutdown()


def test_bad_constructor_arguments() -> None:
    with pytest.raises(TypeError, match="use worker_initializer="):
        TaskManager(initializer=print)
    with pytest.raises(TypeError, match="unknown TaskManager argument"):
        TaskManager(bogus=1)
    with pytest.raises(TypeError, match="unknown TaskManager argument"):
        TaskManagerProxy().initialize(bogus=1)
    with pytest.raises(TypeError, match="worker_initializer must be callable"):
        TaskManager(worker_initializer=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="worker_initargs must be a tuple"):
        TaskManager(worker_initargs="abc")  # type: ignore[arg-type]
