"""Groups: max_concurrency (changeable at run time), priority, and the batch-handle API."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tasker import CancelReason, GLibDispatcher, Group, TaskManager
from tasker._context import ExecutionContext
from tasker.testing import run_until

from .test_policies import Gates


@pytest.fixture
def one_thread() -> Iterator[TaskManager]:
    """A manager with one worker thread: a second thread task waits for a slot."""
    manager = TaskManager(GLibDispatcher(), max_threads=1, max_workers=1, cancel_grace=0.5)
    try:
        yield manager
    finally:
        manager.shutdown(timeout=5.0)


def statuses(tasks: list[Any]) -> list[str]:
    return [str(t.get_status()) for t in tasks]


def test_max_concurrency_limits_the_group(task_manager: TaskManager) -> None:
    gates = Gates()
    thumbs = Group("thumbnails", max_concurrency=2)
    tasks = [task_manager.run_thread(gates.work, f"t{i}", group=thumbs) for i in range(5)]
    run_until(lambda: len(gates.started) == 2)
    assert statuses(tasks) == ["running", "running", "pending", "pending", "pending"]
    assert thumbs.tasks == tasks
    gates.open("t0")
    run_until(lambda: len(gates.started) == 3)
    # t0 and t1 start on two threads at once, in either order; t2 only after t0 ended.
    assert sorted(gates.started[:2]) == ["t0", "t1"] and gates.started[2] == "t2"
    for name in ("t1", "t2", "t3", "t4"):
        gates.open(name)
    assert thumbs.wait_until_settled(10)
    assert [t.result() for t in tasks] == [f"t{i}" for i in range(5)]
    assert thumbs.is_idle()
    assert thumbs.tasks == []


def test_max_concurrency_changes_at_run_time(task_manager: TaskManager) -> None:
    gates = Gates()
    group = Group("g", max_concurrency=1)
    tasks = [task_manager.run_thread(gates.work, f"t{i}", group=group) for i in range(4)]
    run_until(lambda: gates.started == ["t0"])
    group.max_concurrency = 3
    assert group.max_concurrency == 3
    run_until(lambda: len(gates.started) == 3)  # at once, without any task ending
    group.max_concurrency = 1  # the running ones go on; the next waits until one is left
    for name in ("t0", "t1"):
        gates.open(name)
    run_until(lambda: tasks[1].is_final())
    assert tasks[3].get_status() == "pending"
    group.max_concurrency = None
    run_until(lambda: len(gates.started) == 4)
    gates.open("t2")
    gates.open("t3")
    assert group.wait_until_settled(10)


def test_higher_priority_starts_first_fifo_within_a_priority(one_thread: TaskManager) -> None:
    gates = Gates()
    low = Group("thumbnails", priority=0)
    high = Group("export", priority=10)
    blocker = one_thread.run_thread(gates.work, "blocker")
    run_until(lambda: gates.started == ["blocker"])
    for name in ("l1", "h1", "l2", "h2"):
        gates.open(name)
        one_thread.run_thread(gates.work, name, group=high if name[0] == "h" else low)
    gates.open("blocker")
    assert one_thread.wait_until_settled(10)
    assert blocker.result() == "blocker"
    assert gates.started == ["blocker", "h1", "h2", "l1", "l2"]


def test_plain_tasks_wait_behind_a_higher_priority_group(one_thread: TaskManager) -> None:
    gates = Gates()
    urgent = Group("urgent", priority=1)
    one_thread.run_thread(gates.work, "blocker")
    run_until(lambda: gates.started == ["blocker"])
    for name in ("u1", "plain", "u2"):
        gates.open(name)
    one_thread.run_thread(gates.work, "u1", group=urgent)
    one_thread.run_thread(gates.work, "plain")
    one_thread.run_thread(gates.work, "u2", group=urgent)
    gates.open("blocker")
    assert one_thread.wait_until_settled(10)
    assert gates.started == ["blocker", "u1", "u2", "plain"]


def test_fifo_across_kinds_in_one_group(task_manager: TaskManager) -> None:
    from .process._work import add

    order: list[str] = []
    lock = threading.Lock()

    def thread_step(context: ExecutionContext, name: str) -> str:
        with lock:
            order.append(name)
        return name

    async def coroutine_step(context: ExecutionContext, name: str) -> str:
        with lock:
            order.append(name)
        await asyncio.sleep(0)
        return name

    gates = Gates()
    serial = Group("serial", max_concurrency=1)
    first = task_manager.run_thread(gates.work, "first", group=serial)
    run_until(lambda: gates.started == ["first"])
    coro = task_manager.add_coroutine(coroutine_step, "coroutine", group=serial)
    proc = task_manager.run_process(add, 1, 2, group=serial)
    thread = task_manager.run_thread(thread_step, "thread", group=serial)
    assert statuses([coro, proc, thread]) == ["pending"] * 3
    gates.open("first")
    assert serial.wait_until_settled(30)
    assert first.result() == "first"
    assert order == ["coroutine", "thread"]
    assert proc.result() == 3
    # The process task started after the coroutine finished and before the thread one.
    assert coro.timings.finished is not None and proc.timings.started is not None
    assert coro.timings.finished <= proc.timings.started
    assert thread.timings.started is not None and proc.timings.finished is not None
    assert proc.timings.finished <= thread.timings.started


def test_group_cancel_progress_and_idle_signal(task_manager: TaskManager) -> None:
    gates = Gates()
    group = Group("batch", max_concurrency=1)
    idle: list[tuple[object, str]] = []
    group.idle.connect(lambda sender: idle.append((sender, threading.current_thread().name)))
    done = task_manager.run_thread(gates.work, "done", group=group)
    gates.open("done")
    run_until(done.is_final)
    run_until(lambda: len(idle) == 1)  # its last task finished: idle once
    assert idle[0][0] is group
    assert idle[0][1] == threading.current_thread().name  # the main thread
    assert group.get_progress() == 1.0

    running = task_manager.run_thread(gates.work, "running", group=group)
    waiting = task_manager.run_thread(gates.work, "waiting", group=group)
    other = task_manager.run_thread(gates.work, "other")  # not in the group
    run_until(lambda: "running" in gates.started)
    assert group.get_progress() == 0.0
    assert not group.is_idle()
    assert group.cancel() == 2
    assert group.cancel() == 0  # asking again changes nothing
    assert group.wait_until_settled(10)
    assert running.cancel_reason is CancelReason.GROUP
    assert waiting.cancel_reason is CancelReason.GROUP
    assert waiting.get_status() == "cancelled"
    assert "waiting" not in gates.started
    assert not other.is_final()
    assert len(idle) == 2
    gates.open("other")
    run_until(other.is_final)


def test_group_progress_counts_finished_tasks_as_done(task_manager: TaskManager) -> None:
    gates = Gates()
    group = Group("progress")
    first = task_manager.run_thread(gates.work, "a", group=group)
    task_manager.run_thread(gates.work, "b", group=group)
    run_until(lambda: len(gates.started) == 2)
    gates.open("a")
    run_until(lambda: first.is_final() and len(group.tasks) == 1)
    assert group.get_progress() == pytest.approx(0.5)
    gates.open("b")
    assert group.wait_until_settled(10)
    assert group.get_progress() == 1.0


def test_await_group_settled_in_an_asyncio_application() -> None:
    async def work(context: ExecutionContext, n: int) -> int:
        await asyncio.sleep(0.01)
        return n

    async def main() -> list[int]:
        manager = TaskManager(asyncio.get_running_loop())
        try:
            group = Group("async", max_concurrency=2)
            tasks = [manager.add_coroutine(work, n, group=group) for n in range(5)]
            await asyncio.wait_for(group.settled(), 10)
            assert group.is_idle()
            await group.settled()  # idle: returns at once
            return [t.result() for t in tasks]
        finally:
            manager.shutdown(timeout=5)

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]


def test_an_unused_group_is_idle() -> None:
    group = Group("unused", max_concurrency=3, priority=2)
    assert group.is_idle()
    assert group.tasks == []
    assert group.cancel() == 0
    assert group.get_progress() == 1.0
    assert group.wait_until_settled(0)
    assert group.name == "unused"
    assert group.priority == 2
    group.max_concurrency = 1
    assert group.max_concurrency == 1
    asyncio.run(group.settled())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_concurrency": 0}, ValueError),
        ({"max_concurrency": -2}, ValueError),
        ({"max_concurrency": 1.5}, TypeError),
        ({"max_concurrency": True}, TypeError),
        ({"priority": "high"}, TypeError),
        ({"priority": 1.0}, TypeError),
    ],
)
def test_bad_group_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Group("g", **kwargs)


def test_bad_group_name_and_limit_change() -> None:
    with pytest.raises(TypeError, match="name"):
        Group(3)  # type: ignore[arg-type]
    group = Group("g", max_concurrency=2)
    with pytest.raises(ValueError, match="positive"):
        group.max_concurrency = 0
    assert group.max_concurrency == 2


def test_a_group_belongs_to_one_manager(task_manager: TaskManager) -> None:
    group = Group("mine")
    first = task_manager.run_thread(lambda ctx: 1, group=group)
    other = TaskManager(GLibDispatcher())
    try:
        with pytest.raises(ValueError, match="another TaskManager"):
            other.run_thread(lambda ctx: 2, group=group)
        assert not other.has_tasks()
    finally:
        other.shutdown(timeout=5)
    run_until(first.is_final)
    assert first.result() == 1
