"""What the origin app (Rayforge) needs of the manager: hidden tasks, cancel_all,
``loop``, ``run_in_executor``, and the contract fixes (completed => 1.0, shutdown
leaves no task live)."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from tasker import ExecutionContext, GLibDispatcher, ManagerShutdownError, TaskManager
from tasker.testing import run_until

from .conftest import Recorder


def wait_gate(context: ExecutionContext, gate: threading.Event) -> str:
    while not gate.wait(0.01):
        if context.is_cancelled():
            return "stopped"
    return "opened"


def silent(context: ExecutionContext) -> str:
    return "never reported"


async def silent_coroutine(context: ExecutionContext) -> str:
    return "never reported"


async def half_then_wait(context: ExecutionContext, gate: asyncio.Event | None = None) -> None:
    context.set_progress(0.5)
    context.flush()
    await asyncio.sleep(30)


# ------------------------------------------------------------------ visible=


def test_hidden_task_is_left_out_of_tasks_updated_and_overall_progress(
    task_manager: TaskManager, recorder: Recorder
) -> None:
    task_manager.tasks_updated.connect(recorder.on_updated)
    gate = threading.Event()
    shown = task_manager.add_coroutine(half_then_wait, key="shown")
    run_until(lambda: shown.get_progress() == 0.5)
    recorder.updates.clear()
    # The hidden task's start and its status change are news, but not shown.
    hidden = task_manager.run_thread(wait_gate, gate, key="hidden", visible=False)
    assert shown.visible and not hidden.visible
    run_until(lambda: hidden.get_status() == "running" and recorder.updates)
    _, progress = recorder.updates[-1]
    assert all(update_tasks == [shown] for update_tasks, _ in recorder.updates)
    assert progress == pytest.approx(0.5)  # the hidden task's 0.0 does not drag it down
    assert task_manager.get_overall_progress() == pytest.approx(0.5)
    # A hidden task is a normal task otherwise: listed, found, cancelled, awaited.
    assert hidden in list(task_manager) and len(task_manager) == 2
    assert task_manager.get_task("hidden") is hidden
    gate.set()
    shown.cancel()
    assert task_manager.wait_until_settled(10)
    assert hidden.result() == "opened"


def test_hidden_task_gets_its_callbacks(task_manager: TaskManager, recorder: Recorder) -> None:
    task = task_manager.add_coroutine(silent_coroutine, visible=False, when_done=recorder.when_done)
    run_until(lambda: recorder.done)
    assert recorder.done == [task]
    assert task.result() == "never reported"


def test_hidden_only_work_reports_an_idle_overall_progress(
    task_manager: TaskManager, recorder: Recorder
) -> None:
    task_manager.tasks_updated.connect(recorder.on_updated)
    gate = threading.Event()
    task = task_manager.run_thread(wait_gate, gate, visible=False)
    run_until(lambda: task.get_status() == "running" and recorder.updates)
    assert all(tasks == [] for tasks, _ in recorder.updates)
    assert task_manager.get_overall_progress() == 1.0
    gate.set()
    assert task_manager.wait_until_settled(10)


@pytest.mark.parametrize("bad", [0, 1, "no", None])
def test_visible_must_be_a_bool(task_manager: TaskManager, bad: Any) -> None:
    with pytest.raises(TypeError, match="visible must be True or False"):
        task_manager.run_thread(silent, visible=bad)
    with pytest.raises(TypeError, match="visible must be True or False"):
        task_manager.add_coroutine(silent_coroutine, visible=bad)
    assert len(task_manager) == 0  # nothing was registered


def test_visible_is_not_passed_to_the_function(task_manager: TaskManager) -> None:
    def takes_kwargs(context: ExecutionContext, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    task = task_manager.run_thread(takes_kwargs, visible=False, other=1)
    assert task_manager.wait_until_settled(10)
    assert task.result() == {"other": 1}


# ---------------------------------------------------------------- cancel_all


def test_cancel_all_cancels_every_live_task_and_counts_them(
    task_manager: TaskManager, recorder: Recorder
) -> None:
    gate = threading.Event()
    tasks = [
        task_manager.run_thread(wait_gate, gate, when_done=recorder.when_done),
        task_manager.run_thread(wait_gate, gate, visible=False, when_done=recorder.when_done),
        task_manager.add_coroutine(half_then_wait, when_done=recorder.when_done),
    ]
    run_until(lambda: all(t.get_status() == "running" for t in tasks))
    assert task_manager.cancel_all() == 3
    run_until(lambda: len(recorder.done) == 3)
    assert [t.get_status() for t in tasks] == ["cancelled"] * 3
    assert task_manager.cancel_all() == 0  # nothing live is left


def test_cancel_all_does_not_count_a_task_already_cancelling(task_manager: TaskManager) -> None:
    gate = threading.Event()
    first = task_manager.run_thread(wait_gate, gate)
    second = task_manager.run_thread(wait_gate, gate)
    run_until(lambda: first.get_status() == second.get_status() == "running")
    assert first.cancel()
    assert task_manager.cancel_all() == 1
    assert task_manager.wait_until_settled(10)


# ------------------------------------------------- completed => progress 1.0


@pytest.mark.parametrize("kind", ["coroutine", "thread"])
def test_completed_task_reports_full_progress(task_manager: TaskManager, kind: str) -> None:
    seen: list[float] = []

    def when_done(task: Any) -> None:
        seen.append(task.get_progress())

    if kind == "coroutine":
        task = task_manager.add_coroutine(silent_coroutine, when_done=when_done)
    else:
        task = task_manager.run_thread(silent, when_done=when_done)
    assert task_manager.wait_until_settled(10)
    assert task.get_status() == "completed"
    assert task.get_progress() == 1.0
    assert seen == [1.0]


def test_failed_and_cancelled_tasks_keep_their_last_progress(task_manager: TaskManager) -> None:
    def half_then_fail(context: ExecutionContext) -> None:
        context.set_progress(0.25)
        raise ValueError("boom")

    failed = task_manager.run_thread(half_then_fail)
    cancelled = task_manager.add_coroutine(half_then_wait)
    run_until(lambda: failed.is_final() and cancelled.get_progress() == 0.5)
    cancelled.cancel()
    assert task_manager.wait_until_settled(10)
    assert failed.get_progress() == 0.25
    assert cancelled.get_progress() == 0.5


# --------------------------------------------------------- shutdown, stuck threads


def test_shutdown_ends_a_thread_that_ignores_cancellation(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    manager = TaskManager(GLibDispatcher(), cancel_grace=0.1)
    release = threading.Event()
    returned = threading.Event()

    def stubborn(context: ExecutionContext) -> str:
        release.wait(30)  # never looks at is_cancelled()
        returned.set()
        return "too late"

    task = manager.run_thread(stubborn, when_done=recorder.when_done)
    run_until(lambda: task.get_status() == "running")
    with caplog.at_level(logging.WARNING, logger="tasker"):
        manager.shutdown(timeout=0.2)
        assert task.get_status() == "cancelled"
        assert recorder.done == [task]  # its when_done ran, on the main thread
        assert not manager.has_tasks()
        release.set()
        assert returned.wait(10)
        # The thread's late result is discarded, and said so.
        run_until(lambda: "discarded" in caplog.text)
    assert task.get_status() == "cancelled"
    assert recorder.done == [task]


# -------------------------------------------------------- loop, run_in_executor


def test_loop_is_the_loop_coroutine_tasks_run_on(task_manager: TaskManager) -> None:
    async def which_loop(context: ExecutionContext) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    loop = task_manager.loop
    assert loop.is_running()
    task = task_manager.add_coroutine(which_loop)
    assert task_manager.wait_until_settled(10)
    assert task.result() is loop
    # Usable as Rayforge uses it: hand a coroutine to it from any thread.
    future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, "ran"), loop)
    assert future.result(10) == "ran"


def test_loop_is_the_applications_loop_when_configured() -> None:
    app_loop = asyncio.new_event_loop()
    try:
        manager = TaskManager(GLibDispatcher(), loop=app_loop)
        assert manager.loop is app_loop
        with pytest.raises(RuntimeError, match="configure"):
            manager.configure(update_rate=5)  # the loop is in use: options are fixed
        manager.shutdown()
    finally:
        app_loop.close()


def test_loop_after_shutdown_without_a_loop_raises() -> None:
    manager = TaskManager(GLibDispatcher())
    manager.shutdown()
    with pytest.raises(ManagerShutdownError):
        _ = manager.loop


def test_run_in_executor_from_a_coroutine_task(task_manager: TaskManager) -> None:
    main = threading.current_thread()

    def blocking(a: int, b: int) -> tuple[int, bool]:
        return a + b, threading.current_thread() is main

    async def uses_executor(context: ExecutionContext) -> tuple[int, bool]:
        return await task_manager.run_in_executor(blocking, 2, 3)

    task = task_manager.add_coroutine(uses_executor)
    assert task_manager.wait_until_settled(10)
    total, on_main = task.result()
    assert total == 5 and not on_main


def test_run_in_executor_from_the_applications_loop_raises_fn_errors(
    task_manager: TaskManager,
) -> None:
    def fails() -> None:
        raise KeyError("missing")

    async def main() -> str:
        with pytest.raises(KeyError, match="missing"):
            await task_manager.run_in_executor(fails)
        return threading.current_thread().name

    assert asyncio.run(main()) == threading.current_thread().name


def test_run_in_executor_rejects_a_non_callable(task_manager: TaskManager) -> None:
    async def main() -> None:
        await task_manager.run_in_executor(42)  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="needs a callable"):
        asyncio.run(main())


def test_run_in_executor_waiting_at_shutdown_raises_manager_shutdown() -> None:
    manager = TaskManager(GLibDispatcher(), max_threads=1)
    gate = threading.Event()
    busy = manager.run_thread(wait_gate, gate)  # takes the only thread
    run_until(lambda: busy.get_status() == "running")
    ran = threading.Event()
    outcome: list[BaseException] = []

    async def waits() -> None:
        try:
            await manager.run_in_executor(ran.set)
        except ManagerShutdownError as error:
            outcome.append(error)

    runner = threading.Thread(target=asyncio.run, args=(waits(),))
    runner.start()
    run_until(lambda: manager._executor_calls is not None and manager._executor_calls._pending)
    manager.shutdown(timeout=5.0)
    runner.join(10)
    assert len(outcome) == 1 and not ran.is_set()
    with pytest.raises(ManagerShutdownError):
        asyncio.run(manager.run_in_executor(ran.set))
