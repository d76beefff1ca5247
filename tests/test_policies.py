"""Key policies (replace, keep, enqueue, keep_latest), debounce and cancel reasons."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tasker import CancelReason, KeyPolicy, Task, TaskManager
from tasker._context import ExecutionContext
from tasker.testing import run_until

from .conftest import Recorder


class Gates:
    """Thread tasks that record their start and wait for their own gate."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def gate(self, name: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(name, threading.Event())

    def work(self, context: ExecutionContext, name: str) -> str:
        with self.lock:
            self.started.append(name)
        gate = self.gate(name)
        while not gate.wait(0.005):
            if context.is_cancelled():
                return f"{name} stopped"
        return name

    def open(self, name: str) -> None:
        self.gate(name).set()


def test_policy_is_a_str_enum() -> None:
    assert KeyPolicy("keep_latest") is KeyPolicy.KEEP_LATEST
    assert KeyPolicy.ENQUEUE == "enqueue"
    assert CancelReason.OWNER_GONE == "owner_gone"


def test_replace_is_the_default_and_says_so(task_manager: TaskManager) -> None:
    gates = Gates()
    old = task_manager.run_thread(gates.work, "old", key="k")
    run_until(lambda: gates.started == ["old"])
    new = task_manager.run_thread(gates.work, "new", key="k", policy="replace")
    assert task_manager.get_task("k") is new
    run_until(old.is_final)
    assert old.get_status() == "cancelled"
    assert old.cancel_reason is CancelReason.REPLACED
    gates.open("new")
    run_until(new.is_final)
    assert new.result() == "new"
    assert new.cancel_reason is None


def test_keep_returns_the_live_task_and_attaches_nothing(
    task_manager: TaskManager, recorder: Recorder
) -> None:
    gates = Gates()
    first = task_manager.run_thread(
        gates.work, "first", key="import", policy="keep", when_done=recorder.when_done
    )
    second_done: list[object] = []
    second = task_manager.run_thread(
        gates.work, "second", key="import", policy=KeyPolicy.KEEP, when_done=second_done.append
    )
    assert second is first
    assert len(task_manager) == 1
    gates.open("first")
    assert task_manager.wait_until_settled(10)
    assert recorder.done == [first]
    assert second_done == []
    assert gates.started == ["first"]
    # Once nothing with the key is live, keep starts a new task.
    gates.open("third")
    third = task_manager.run_thread(gates.work, "third", key="import", policy="keep")
    assert third is not first
    run_until(third.is_final)
    assert third.result() == "third"


def test_keep_does_not_return_a_task_that_is_being_cancelled(task_manager: TaskManager) -> None:
    gates = Gates()
    first = task_manager.run_thread(gates.work, "first", key="k", policy="keep")
    run_until(lambda: gates.started == ["first"])
    first.cancel()
    gates.open("second")
    second = task_manager.run_thread(gates.work, "second", key="k", policy="keep")
    assert second is not first
    run_until(second.is_final)
    assert second.result() == "second"
    assert first.cancel_reason is CancelReason.USER


def test_enqueue_runs_one_at_a_time_in_call_order(task_manager: TaskManager) -> None:
    gates = Gates()
    tasks = [
        task_manager.run_thread(gates.work, name, key="save", policy="enqueue")
        for name in ("a", "b", "c")
    ]
    run_until(lambda: gates.started == ["a"])
    assert [t.get_status() for t in tasks] == ["running", "pending", "pending"]
    assert task_manager.get_task("save") is tasks[0]
    gates.open("a")
    run_until(lambda: gates.started == ["a", "b"])
    assert task_manager.get_task("save") is tasks[1]
    assert tasks[2].get_status() == "pending"
    gates.open("b")
    gates.open("c")
    assert task_manager.wait_until_settled(10)
    assert gates.started == ["a", "b", "c"]
    assert [t.result() for t in tasks] == ["a", "b", "c"]
    assert task_manager.get_task("save") is None


def test_cancel_task_cancels_every_task_with_the_key(task_manager: TaskManager) -> None:
    gates = Gates()
    tasks = [
        task_manager.run_thread(gates.work, name, key="save", policy="enqueue")
        for name in ("a", "b", "c")
    ]
    run_until(lambda: gates.started == ["a"])
    assert task_manager.cancel_task("save") is True
    assert task_manager.wait_until_settled(10)
    assert [t.get_status() for t in tasks] == ["cancelled"] * 3
    assert [t.cancel_reason for t in tasks] == [CancelReason.USER] * 3
    assert gates.started == ["a"]  # the waiting ones never started
    assert task_manager.cancel_task("save") is False


def test_keep_latest_keeps_one_waiting_and_never_kills_the_running_one(
    task_manager: TaskManager,
) -> None:
    gates = Gates()
    running = task_manager.run_thread(gates.work, "r1", key="render", policy="keep_latest")
    run_until(lambda: gates.started == ["r1"])
    waiting = [
        task_manager.run_thread(gates.work, f"r{i}", key="render", policy="keep_latest")
        for i in range(2, 6)
    ]
    for old in waiting[:-1]:
        assert old.get_status() == "cancelled"
        assert old.cancel_reason is CancelReason.SUPERSEDED
    assert waiting[-1].get_status() == "pending"
    assert task_manager.get_task("render") is running
    gates.open("r1")
    gates.open("r5")
    assert task_manager.wait_until_settled(10)
    assert running.result() == "r1"
    assert waiting[-1].result() == "r5"
    assert gates.started == ["r1", "r5"]


def test_enqueue_waits_for_a_replaced_task_that_still_runs(task_manager: TaskManager) -> None:
    gates = Gates()

    def stubborn(context: ExecutionContext) -> str:
        gates.started.append("stubborn")
        gates.gate("stubborn").wait(10)  # ignores its cancellation until the test lets go
        return "stubborn"

    old = task_manager.run_thread(stubborn, key="k")
    run_until(lambda: gates.started == ["stubborn"])
    new = task_manager.run_thread(gates.work, "new", key="k")  # replaces: old is cancelling
    run_until(lambda: "new" in gates.started)
    queued = task_manager.run_thread(gates.work, "queued", key="k", policy="enqueue")
    gates.open("new")
    run_until(new.is_final)
    assert queued.get_status() == "pending"  # the replaced one has not returned yet
    gates.open("stubborn")
    gates.open("queued")
    assert task_manager.wait_until_settled(10)
    assert old.get_status() == "cancelled"
    assert queued.result() == "queued"


def test_debounce_starts_only_the_last_of_quick_calls(task_manager: TaskManager) -> None:
    gates = Gates()
    for name in ("a", "b", "c", "d"):
        gates.open(name)
    calls = [
        task_manager.run_thread(gates.work, name, key="search", debounce=0.5)
        for name in ("a", "b", "c", "d")
    ]
    assert all(t.get_status() in ("pending", "cancelled") for t in calls)
    assert task_manager.get_task("search") is calls[-1]
    assert task_manager.wait_until_settled(10)
    assert gates.started == ["d"]
    for superseded in calls[:-1]:
        assert superseded.get_status() == "cancelled"
        assert superseded.cancel_reason is CancelReason.SUPERSEDED
    assert calls[-1].result() == "d"


def test_debounce_with_keep_latest_waits_behind_the_running_one(
    task_manager: TaskManager,
) -> None:
    gates = Gates()
    first = task_manager.run_thread(gates.work, "first", key="zoom", policy="keep_latest")
    run_until(lambda: gates.started == ["first"])
    last = task_manager.run_thread(
        gates.work, "last", key="zoom", policy="keep_latest", debounce=0.05
    )
    run_until(lambda: task_manager.get_task("zoom") is first and last.get_status() == "pending")
    gates.open("first")
    gates.open("last")
    assert task_manager.wait_until_settled(10)
    assert first.result() == "first"
    assert last.result() == "last"
    assert gates.started == ["first", "last"]


def test_cancelled_while_debouncing_never_starts(task_manager: TaskManager) -> None:
    gates = Gates()
    task = task_manager.run_thread(gates.work, "x", key="k", debounce=0.05)
    assert task.cancel() is True
    assert task.get_status() == "cancelled"
    assert task.cancel_reason is CancelReason.USER
    # Start and finish another task after the timer: the cancelled one stays out.
    gates.open("y")
    other = task_manager.run_thread(gates.work, "y", key="k", debounce=0.1)
    assert task_manager.wait_until_settled(10)
    assert other.result() == "y"
    assert gates.started == ["y"]


def test_enqueue_across_kinds_and_processes(task_manager: TaskManager) -> None:
    from .process._work import add

    gates = Gates()
    first = task_manager.run_thread(gates.work, "first", key="k", policy="enqueue")
    second = task_manager.run_process(add, 2, 3, key="k", policy="enqueue")
    run_until(lambda: gates.started == ["first"])
    assert second.get_status() == "pending"
    gates.open("first")
    assert task_manager.wait_until_settled(30)
    assert first.result() == "first"
    assert second.result() == 5


def test_policies_on_coroutines(task_manager: TaskManager) -> None:
    import asyncio

    order: list[str] = []

    async def step(context: ExecutionContext, name: str) -> str:
        order.append(f"+{name}")
        await asyncio.sleep(0.01)
        order.append(f"-{name}")
        return name

    tasks = [task_manager.add_coroutine(step, name, key="c", policy="enqueue") for name in "xyz"]
    assert task_manager.wait_until_settled(10)
    assert order == ["+x", "-x", "+y", "-y", "+z", "-z"]
    assert [t.result() for t in tasks] == ["x", "y", "z"]


def test_cancel_reasons_for_user_and_shutdown() -> None:
    from tasker import GLibDispatcher

    gates = Gates()
    manager = TaskManager(GLibDispatcher())
    try:
        by_user = manager.run_thread(gates.work, "u")
        by_shutdown = manager.run_thread(gates.work, "s")
        waiting = manager.run_thread(gates.work, "w", key="k", policy="enqueue")
        queued = manager.run_thread(gates.work, "q", key="k", policy="enqueue")
        assert by_user.cancel() is True
        run_until(by_user.is_final)
        assert by_user.cancel_reason is CancelReason.USER
    finally:
        manager.shutdown(timeout=5)
    for task in (by_shutdown, waiting, queued):
        assert task.get_status() == "cancelled"
        assert task.cancel_reason is CancelReason.SHUTDOWN
    assert "q" not in gates.started


def test_a_timeout_is_not_a_cancel_reason(task_manager: TaskManager) -> None:
    gates = Gates()
    task = task_manager.run_thread(gates.work, "t", timeout=0.05)
    run_until(task.is_final)
    assert task.get_status() == "failed"
    assert task.cancel_reason is None


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"policy": "keep"}, ValueError, "needs a key"),
        ({"policy": "enqueue"}, ValueError, "needs a key"),
        ({"key": "k", "policy": "latest"}, ValueError, "'keep_latest'"),
        ({"key": "k", "policy": 3}, ValueError, "policy must be one of"),
        ({"debounce": 0.1}, ValueError, "needs a key"),
        ({"key": "k", "debounce": 0}, ValueError, "above 0"),
        ({"key": "k", "debounce": -1.0}, ValueError, "above 0"),
        ({"key": "k", "debounce": float("nan")}, ValueError, "above 0"),
        ({"key": "k", "debounce": "1"}, TypeError, "number of seconds"),
        ({"key": "k", "debounce": True}, TypeError, "number of seconds"),
        ({"group": "thumbnails"}, TypeError, "tasker.Group"),
        ({"owner": 42}, TypeError, "weak references"),
    ],
)
def test_bad_scheduling_arguments_raise_and_register_nothing(
    task_manager: TaskManager, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    gates = Gates()
    with pytest.raises(error, match=words):
        task_manager.run_thread(gates.work, "x", **kwargs)
    assert not task_manager.has_tasks()
    assert gates.started == []


def test_policy_replace_needs_no_key(task_manager: TaskManager) -> None:
    task: Task[Any] = task_manager.run_thread(lambda ctx: 1, policy="replace")
    run_until(task.is_final)
    assert task.result() == 1
