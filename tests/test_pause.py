"""Two-phase pause and resume of thread and coroutine tasks (process tasks: tests/process)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tasker import ExecutionContext, TaskManager, TaskTimeoutError
from tasker.testing import drain, run_until


class Loop:
    """A task body that calls checkpoint() until told to stop, counting its passes."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.gate = threading.Event()
        self.stop = threading.Event()
        self.passes = 0

    def __call__(self, context: ExecutionContext) -> str:
        self.started.set()
        self.gate.wait(10.0)
        while not self.stop.is_set() and not context.is_cancelled():
            context.checkpoint()
            self.passes += 1
            self.stop.wait(0.005)
        return "cancelled" if context.is_cancelled() else "done"


def test_pause_and_resume_a_thread_task(task_manager: TaskManager) -> None:
    body = Loop()
    task = task_manager.run_thread(body)
    run_until(body.started.is_set)
    assert task.get_pause_state() is None and not task.is_paused()
    assert task.pause() is True
    assert task.pause() is False  # already paused
    assert task.get_pause_state() == "pausing" and task.is_paused()
    assert task.get_status() == "running"
    body.gate.set()
    run_until(lambda: task.get_pause_state() == "paused")
    assert task.get_status() == "running"  # pausing is not a status
    passes = body.passes
    drain(0.1)
    assert body.passes == passes  # blocked in checkpoint()
    assert task.resume() is True
    assert task.resume() is False
    assert task.get_pause_state() is None
    run_until(lambda: body.passes > passes)
    body.stop.set()
    run_until(task.is_final)
    assert task.result() == "done"
    timings = task.timings
    assert timings.paused_total > 0
    assert timings.finished is not None and timings.started is not None
    assert timings.run_time == pytest.approx(
        timings.finished - timings.started - timings.paused_total
    )


def test_a_paused_pending_task_does_not_start(task_manager: TaskManager) -> None:
    task_manager.configure(max_threads=1)
    first = Loop()
    second = Loop()
    blocker = task_manager.run_thread(first)
    waiting = task_manager.run_thread(second)
    run_until(first.started.is_set)
    assert waiting.pause() is True
    assert waiting.get_pause_state() == "paused"  # a pending task is paused at once
    first.stop.set()
    first.gate.set()
    run_until(blocker.is_final)
    drain(0.1)  # the thread is free: a task that could start would start now
    assert waiting.get_status() == "pending" and not second.started.is_set()
    assert waiting.resume() is True
    run_until(second.started.is_set)
    assert waiting.get_status() == "running"
    second.stop.set()
    second.gate.set()
    run_until(waiting.is_final)
    assert waiting.result() == "done"
    assert waiting.timings.paused_total > 0


def test_cancel_a_paused_task(task_manager: TaskManager) -> None:
    body = Loop()
    body.gate.set()
    task = task_manager.run_thread(body)
    run_until(body.started.is_set)
    task.pause()
    run_until(lambda: task.get_pause_state() == "paused")
    assert task.cancel() is True
    run_until(task.is_final)
    assert task.get_status() == "cancelled"
    assert task.get_pause_state() is None
    timings = task.timings
    assert timings.cancel_requested is not None and timings.paused_total > 0


def test_cancel_a_paused_pending_task(task_manager: TaskManager) -> None:
    task_manager.configure(max_threads=1)
    first = Loop()
    first.gate.set()
    blocker = task_manager.run_thread(first)
    run_until(first.started.is_set)
    second = Loop()
    waiting = task_manager.run_thread(second)
    waiting.pause()
    waiting.cancel()
    run_until(waiting.is_final)
    assert waiting.get_status() == "cancelled" and not second.started.is_set()
    first.stop.set()
    run_until(blocker.is_final)


def test_the_timeout_clock_stops_while_paused(task_manager: TaskManager) -> None:
    body = Loop()
    task = task_manager.run_thread(body, timeout=1.0)
    run_until(body.started.is_set)
    task.pause()
    body.gate.set()
    run_until(lambda: task.get_pause_state() == "paused")
    drain(1.5)  # longer than the timeout, all of it paused
    assert not task.is_final()
    task.resume()
    run_until(task.is_final)  # the rest of its second runs out now
    assert isinstance(task.exception(), TaskTimeoutError)
    assert task.timings.run_time >= 1.0 - 0.01
    assert task.timings.paused_total >= 1.5


async def _coroutine(context: ExecutionContext, state: dict[str, Any]) -> str:
    state["started"] = True
    while not state.get("stop"):
        await context.acheckpoint()
        state["passes"] = state.get("passes", 0) + 1
        await asyncio.sleep(0.005)
    return "done"


def test_pause_and_resume_a_coroutine(task_manager: TaskManager) -> None:
    state: dict[str, Any] = {}
    task = task_manager.add_coroutine(_coroutine, state)
    run_until(lambda: state.get("passes", 0) > 0)
    task.pause()
    run_until(lambda: task.get_pause_state() == "paused")
    passes = state["passes"]
    drain(0.1)
    assert state["passes"] == passes
    task.resume()
    run_until(lambda: state["passes"] > passes)
    state["stop"] = True
    run_until(task.is_final)
    assert task.result() == "done"


def test_cancel_a_paused_coroutine(task_manager: TaskManager) -> None:
    state: dict[str, Any] = {}
    task = task_manager.add_coroutine(_coroutine, state)
    run_until(lambda: state.get("passes", 0) > 0)
    task.pause()
    run_until(lambda: task.get_pause_state() == "paused")
    task.cancel()
    run_until(task.is_final)
    assert task.get_status() == "cancelled"


def test_checkpoint_returns_at_once_without_a_pause(task_manager: TaskManager) -> None:
    def body(context: ExecutionContext) -> int:
        for _ in range(1000):
            context.checkpoint()
        return 1

    task = task_manager.run_thread(body)
    run_until(task.is_final)
    assert task.result() == 1


def test_pause_and_resume_all(task_manager: TaskManager) -> None:
    bodies = [Loop() for _ in range(3)]
    for body in bodies:
        body.gate.set()
    tasks = [task_manager.run_thread(body) for body in bodies]
    run_until(lambda: all(b.started.is_set() for b in bodies))
    assert task_manager.pause_all() == 3
    assert task_manager.pause_all() == 0
    run_until(lambda: all(t.get_pause_state() == "paused" for t in tasks))
    assert task_manager.resume_all() == 3
    assert all(t.get_pause_state() is None for t in tasks)
    for body in bodies:
        body.stop.set()
    run_until(lambda: all(t.is_final() for t in tasks))
    assert [t.result() for t in tasks] == ["done"] * 3


def test_shutdown_with_paused_tasks() -> None:
    from tasker._dispatch._glib import GLibDispatcher

    manager = TaskManager(GLibDispatcher(), max_threads=1)
    running, pending = Loop(), Loop()
    running.gate.set()
    first = manager.run_thread(running)
    second = manager.run_thread(pending)
    run_until(running.started.is_set)
    first.pause()
    second.pause()
    run_until(lambda: first.get_pause_state() == "paused")
    manager.shutdown(timeout=5.0)
    assert first.get_status() == "cancelled" and second.get_status() == "cancelled"
    assert not pending.started.is_set()


def test_bad_pause_requests(task_manager: TaskManager) -> None:
    body = Loop()
    body.gate.set()
    task = task_manager.run_thread(body)
    run_until(body.started.is_set)
    with pytest.raises(ValueError, match="freeze=True"):
        task.pause(freeze=True)
    with pytest.raises(TypeError, match="freeze"):
        task.pause(freeze="yes")  # type: ignore[arg-type]
    assert task.get_pause_state() is None  # a refused request changed nothing
    body.stop.set()
    run_until(task.is_final)
    assert task.pause() is False  # final
    assert task.resume() is False


def test_a_paused_pending_coroutine_does_not_start(task_manager: TaskManager) -> None:
    # Hold the manager's loop thread, so the coroutine is surely still pending when paused.
    loop_free = threading.Event()
    task_manager.loop.call_soon_threadsafe(loop_free.wait, 10.0)
    state: dict[str, Any] = {}
    task = task_manager.add_coroutine(_coroutine, state)
    assert task.pause() is True
    assert task.get_pause_state() == "paused"
    loop_free.set()
    drain(0.1)  # the loop is free: a coroutine that could start would start now
    assert task.get_status() == "pending" and "started" not in state
    assert task.resume() is True
    run_until(lambda: state.get("passes", 0) > 0)
    assert task.get_status() == "running"
    state["stop"] = True
    run_until(task.is_final)
    assert task.result() == "done"
