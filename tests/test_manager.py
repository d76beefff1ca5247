"""TaskManager: keys, delivery, coalescing, exactly-once completion, bad input, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from tasker import (
    GLibDispatcher,
    ManagerShutdownError,
    Task,
    TaskManager,
    TaskNotFinishedError,
)
from tasker._context import ExecutionContext
from tasker.testing import run_until

from .conftest import Recorder


def block_until(context: ExecutionContext, gate: threading.Event) -> str:
    gate.wait(10)
    return "released"


async def sleeper(context: ExecutionContext, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


# ------------------------------------------------------------------------ keys


def test_key_replacement_cancels_the_old_task(
    task_manager: TaskManager, recorder: Recorder
) -> None:
    gate = threading.Event()

    async def gated(context: ExecutionContext) -> None:
        while not gate.is_set():  # keeps the key until the test has looked at it
            await asyncio.sleep(0.001)

    old = task_manager.add_coroutine(sleeper, 30, key="preview", when_done=recorder.when_done)
    new = task_manager.add_coroutine(gated, key="preview", when_done=recorder.when_done)
    assert task_manager.get_task("preview") is new
    gate.set()
    run_until(lambda: len(recorder.done) == 2)
    assert old.get_status() == "cancelled"
    assert new.get_status() == "completed"
    assert recorder.done[0] is old  # the old one's when_done saw "cancelled" first
    assert task_manager.get_task("preview") is None


def test_key_replacement_of_a_thread_task(task_manager: TaskManager, recorder: Recorder) -> None:
    seen: list[str] = []

    def on_done(task: Task[Any]) -> None:
        seen.append(f"{task.id}:{task.get_status()}")

    started = threading.Event()

    def cooperative(context: ExecutionContext) -> None:
        started.set()
        while not context.is_cancelled():
            threading.Event().wait(0.001)

    old = task_manager.run_thread(cooperative, key="k", when_done=on_done)
    assert started.wait(5)
    gate = threading.Event()
    new = task_manager.run_thread(block_until, gate, key="k", when_done=on_done)
    assert task_manager.get_task("k") is new
    run_until(old.is_final)
    assert old.get_status() == "cancelled"
    new.cancel()
    gate.set()
    run_until(lambda: len(seen) == 2)
    assert seen[0] == f"{old.id}:cancelled"


def test_tasks_without_key_get_unique_keys(task_manager: TaskManager) -> None:
    gate = threading.Event()
    tasks = [task_manager.run_thread(block_until, gate) for _ in range(5)]
    assert len({t.key for t in tasks}) == 5
    assert len({t.id for t in tasks}) == 5
    gate.set()
    run_until(lambda: all(t.is_final() for t in tasks))


def test_unknown_key_cancel_is_a_no_op(task_manager: TaskManager) -> None:
    assert task_manager.cancel_task("nobody") is False
    assert task_manager.get_task("nobody") is None


def test_unhashable_key_is_rejected(task_manager: TaskManager) -> None:
    with pytest.raises(TypeError):
        task_manager.run_thread(block_until, threading.Event(), key=["not", "hashable"])
    assert not task_manager.has_tasks()


# ------------------------------------------------------------ exactly once


def test_cancel_racing_completion_gives_one_final_status(task_manager: TaskManager) -> None:
    done_counts: dict[int, int] = {}

    def on_done(task: Task[Any]) -> None:
        done_counts[task.id] = done_counts.get(task.id, 0) + 1

    def quick(context: ExecutionContext) -> int:
        return 1

    tasks = []
    for _ in range(500):
        task = task_manager.run_thread(quick, when_done=on_done)
        task.cancel()  # races the worker thread finishing the task
        tasks.append(task)
    run_until(lambda: len(done_counts) == len(tasks), timeout=30)
    assert set(done_counts.values()) == {1}
    for task in tasks:
        assert task.get_status() in ("completed", "cancelled")
    assert task_manager.wait_until_settled(5)


def test_cancel_from_many_threads_at_once(task_manager: TaskManager) -> None:
    calls: list[int] = []
    gate = threading.Event()
    task = task_manager.run_thread(block_until, gate, when_done=lambda t: calls.append(t.id))
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def cancel() -> None:
        barrier.wait()
        results.append(task.cancel())

    threads = [threading.Thread(target=cancel) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gate.set()
    run_until(lambda: calls)
    assert results.count(True) == 1
    assert calls == [task.id]


def test_when_done_is_last(task_manager: TaskManager) -> None:
    order: list[str] = []

    def work(context: ExecutionContext) -> None:
        context.set_progress(0.5)
        context.send_event("a", 1)
        context.set_message("final words")
        context.set_progress(1.0)

    def on_done(task: Task[Any]) -> None:
        order.append(f"done:{task.get_progress()}:{task.get_message()}")

    task_manager.run_thread(
        work, when_event=lambda t, n, d: order.append("event"), when_done=on_done
    )
    run_until(lambda: any(o.startswith("done") for o in order))
    assert order == ["event", "done:1.0:final words"]


# ------------------------------------------------------------ coalescing


def test_a_million_progress_updates_yield_few_callbacks(task_manager: TaskManager) -> None:
    emissions: list[float] = []
    task_manager.tasks_updated.connect(lambda s, tasks, progress: emissions.append(progress))

    def hammer(context: ExecutionContext) -> None:
        context.set_total(1_000_000)
        for i in range(1_000_000):
            context.set_progress(i + 1)

    start = time.monotonic()
    task = task_manager.run_thread(hammer)
    run_until(task.is_final, timeout=60)
    run_until(lambda: not task_manager.has_tasks())
    elapsed = time.monotonic() - start
    assert task.get_progress() == 1.0
    # At most update_rate (20/s) progress ticks, plus status changes, plus slack.
    assert len(emissions) <= 20 * elapsed + 10, (len(emissions), elapsed)
    assert emissions[-1] == 1.0
    print(f"\n1,000,000 set_progress calls -> {len(emissions)} tasks_updated in {elapsed:.2f} s")


def test_tasks_updated_once_per_dispatch_for_many_changes() -> None:
    manager = TaskManager(GLibDispatcher(), max_threads=50)
    emissions: list[tuple[int, int]] = []

    def on_update(sender: object, tasks: list[Task[Any]], progress: float) -> None:
        emissions.append((len(tasks), sum(t.get_status() == "running" for t in tasks)))

    manager.tasks_updated.connect(on_update)
    gate = threading.Event()
    try:
        for _ in range(50):
            manager.run_thread(block_until, gate)
        run_until(lambda: emissions and emissions[-1] == (50, 50))
        # 50 starts and 50 status changes, but the main loop saw far fewer emissions.
        assert len(emissions) < 50
        gate.set()
        run_until(lambda: not manager.has_tasks())
        assert emissions[-1] == (0, 0)
    finally:
        gate.set()
        manager.shutdown()


def test_final_emission_is_idle_with_full_progress(task_manager: TaskManager) -> None:
    updates: list[tuple[int, float]] = []
    task_manager.tasks_updated.connect(
        lambda s, tasks, progress: updates.append((len(tasks), progress))
    )
    for _ in range(3):
        task_manager.add_coroutine(sleeper, 0)
    run_until(lambda: updates and updates[-1][0] == 0)
    assert updates[-1] == (0, 1.0)
    assert task_manager.get_overall_progress() == 1.0


def test_overall_progress_counts_finished_tasks_as_done(task_manager: TaskManager) -> None:
    gate = threading.Event()
    slow = task_manager.run_thread(block_until, gate)
    fast = task_manager.run_thread(lambda ctx: None)
    run_until(fast.is_final)
    run_until(lambda: len(task_manager) == 1)
    assert task_manager.get_overall_progress() == pytest.approx(0.5)
    gate.set()
    run_until(slow.is_final)


def test_handlers_are_kept_alive_by_default(task_manager: TaskManager) -> None:
    received: list[float] = []

    def setup() -> None:
        def on_update(sender: object, tasks: list[Any], progress: float) -> None:
            received.append(progress)

        task_manager.tasks_updated.connect(on_update)

    setup()
    import gc

    gc.collect()
    task_manager.add_coroutine(sleeper, 0)
    run_until(lambda: received and received[-1] == 1.0)


# -------------------------------------------------------------- bad callbacks


def test_raising_callbacks_are_logged_and_harmless(
    task_manager: TaskManager, tasker_errors: pytest.LogCaptureFixture
) -> None:
    def bad_handler(sender: object, tasks: list[Any], progress: float) -> None:
        raise RuntimeError("handler broke")

    good: list[float] = []
    task_manager.tasks_updated.connect(bad_handler)
    task_manager.tasks_updated.connect(lambda s, tasks, progress: good.append(progress))

    def bad_done(task: Task[Any]) -> None:
        raise RuntimeError("when_done broke")

    def bad_event(task: Task[Any], name: str, data: Any) -> None:
        raise RuntimeError("when_event broke")

    def work(context: ExecutionContext) -> int:
        context.send_event("x", 1)
        return 7

    first = task_manager.run_thread(work, when_done=bad_done, when_event=bad_event)
    run_until(lambda: not task_manager.has_tasks())
    assert first.result() == 7
    second = task_manager.run_thread(work)
    run_until(second.is_final)
    run_until(lambda: good and good[-1] == 1.0)
    messages = [r.getMessage() for r in tasker_errors.records]
    assert any("tasks_updated handler" in m for m in messages)
    assert sum("task callback" in m for m in messages) == 2
    assert second.result() == 7


# ------------------------------------------------------------------ bad input


def test_bad_callbacks_and_timeouts_are_rejected(task_manager: TaskManager) -> None:
    gate = threading.Event()
    with pytest.raises(TypeError, match="when_done"):
        task_manager.run_thread(block_until, gate, when_done="nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="when_event"):
        task_manager.run_thread(block_until, gate, when_event=3)  # type: ignore[arg-type]
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="timeout"):
            task_manager.run_thread(block_until, gate, timeout=bad)
    with pytest.raises(TypeError, match="timeout"):
        task_manager.run_thread(block_until, gate, timeout="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cancel_grace"):
        task_manager.run_thread(block_until, gate, cancel_grace=-1)
    assert not task_manager.has_tasks()


def test_bad_manager_options() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        TaskManager(max_workers=0)
    with pytest.raises(ValueError, match="update_rate"):
        TaskManager(update_rate=0)
    with pytest.raises(TypeError, match="initializer"):
        TaskManager(initializer=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scheduler"):
        TaskManager(scheduler=5).run_thread(block_until, threading.Event())
    manager = TaskManager()
    with pytest.raises(TypeError, match="unknown manager option"):
        manager.configure(colour="blue")


def test_configure_only_before_first_use() -> None:
    manager = TaskManager(GLibDispatcher())
    manager.configure(max_threads=3, update_rate=10)
    task = manager.run_thread(lambda ctx: None)
    with pytest.raises(RuntimeError, match="before the first task"):
        manager.configure(max_threads=4)
    run_until(task.is_final)
    manager.shutdown()


def test_result_before_the_end(task_manager: TaskManager) -> None:
    gate = threading.Event()
    task = task_manager.run_thread(block_until, gate)
    with pytest.raises(TaskNotFinishedError):
        task.result()
    with pytest.raises(TaskNotFinishedError):
        task.exception()
    gate.set()
    run_until(task.is_final)
    assert task.exception() is None


# ------------------------------------------------------------------- shutdown


def test_shutdown_twice_and_use_after_shutdown() -> None:
    manager = TaskManager(GLibDispatcher())
    manager.shutdown()
    manager.shutdown()
    with pytest.raises(ManagerShutdownError):
        manager.run_thread(block_until, threading.Event())
    with pytest.raises(ManagerShutdownError):
        manager.add_coroutine(sleeper, 0)


def test_shutdown_with_live_tasks_leaves_no_thread(recorder: Recorder) -> None:
    before = set(threading.enumerate())
    manager = TaskManager(GLibDispatcher())
    started = threading.Event()

    def cooperative(context: ExecutionContext) -> None:
        started.set()
        while not context.is_cancelled():
            threading.Event().wait(0.001)

    stubborn = threading.Event()
    tasks = [
        manager.run_thread(cooperative, when_done=recorder.when_done),
        manager.add_coroutine(sleeper, 60, when_done=recorder.when_done),
        manager.run_thread(block_until, stubborn, when_done=recorder.when_done),
    ]
    assert started.wait(5)
    run_until(lambda: tasks[2].get_status() == "running")  # still pending: nothing to leave
    manager.shutdown(timeout=0.5)
    assert [t.get_status() for t in tasks[:2]] == ["cancelled", "cancelled"]
    # The third ignores cancellation: shutdown reports it and leaves it; the
    # others are gone. Once it returns, its thread ends too.
    leftover = set(threading.enumerate()) - before
    assert len(leftover) == 1
    assert all(t.name.startswith("tasker-thread") for t in leftover), leftover
    stubborn.set()
    for thread in leftover:
        thread.join(5)
    assert set(threading.enumerate()) == before


def test_shutdown_delivers_when_done_on_the_main_thread(recorder: Recorder) -> None:
    manager = TaskManager(GLibDispatcher())
    task = manager.add_coroutine(sleeper, 60, when_done=recorder.when_done)
    manager.shutdown()
    assert recorder.done == [task]
    assert recorder.threads == {threading.current_thread().name}


def test_wait_until_settled_runs_the_main_loop(task_manager: TaskManager) -> None:
    done: list[Task[Any]] = []
    task_manager.add_coroutine(sleeper, 0.01, when_done=done.append)
    assert task_manager.wait_until_settled(10)
    assert len(done) == 1
    assert task_manager.wait_until_settled(0)


def test_wait_until_settled_times_out(task_manager: TaskManager) -> None:
    gate = threading.Event()
    task_manager.run_thread(block_until, gate)
    assert task_manager.wait_until_settled(0.05) is False
    gate.set()
    assert task_manager.wait_until_settled(10)


def test_iteration_and_len(task_manager: TaskManager) -> None:
    gate = threading.Event()
    tasks = [task_manager.run_thread(block_until, gate, key=f"k{i}") for i in range(3)]
    assert list(task_manager) == tasks
    assert len(task_manager) == 3
    assert task_manager.has_tasks()
    gate.set()
    run_until(lambda: not task_manager.has_tasks())
    assert list(task_manager) == []


def test_wait_until_settled_from_another_thread_while_the_loop_runs(
    task_manager: TaskManager,
) -> None:
    done: list[Task[Any]] = []
    outcome: list[bool] = []
    task_manager.add_coroutine(sleeper, 0.01, when_done=done.append)
    waiter = threading.Thread(target=lambda: outcome.append(task_manager.wait_until_settled(30)))
    waiter.start()
    run_until(lambda: outcome, timeout=10)  # long before the 30 s timeout
    waiter.join()
    assert outcome == [True]
    assert len(done) == 1


def test_cancel_is_announced_at_once(task_manager: TaskManager) -> None:
    statuses: list[bool] = []
    gate = threading.Event()
    task = task_manager.run_thread(block_until, gate)
    run_until(lambda: task.get_status() == "running")
    task_manager.tasks_updated.connect(
        lambda s, tasks, progress: statuses.append(any(t.is_cancelled() for t in tasks))
    )
    task.cancel()
    run_until(lambda: statuses and statuses[-1])
    assert task.get_status() == "running"  # still finishing, but shown as cancelling
    gate.set()
    run_until(task.is_final)


def test_status_changes_are_rate_limited_too(task_manager: TaskManager) -> None:
    emissions: list[int] = []
    task_manager.tasks_updated.connect(lambda s, tasks, progress: emissions.append(len(tasks)))
    start = time.monotonic()
    for _ in range(2000):
        task_manager.run_thread(lambda ctx: None)
    run_until(lambda: not task_manager.has_tasks(), timeout=60)
    elapsed = time.monotonic() - start
    # 4,000 status changes; emissions follow the 20/s tick, plus the idle one.
    assert len(emissions) <= 20 * elapsed + 5, (len(emissions), elapsed)
    assert emissions[-1] == 0


def test_a_when_done_still_sees_tasks_whose_when_done_has_not_run() -> None:
    # Completions delivered in one drain leave the task table one by one, right
    # before their own when_done: "all done" is seen by the last one only.
    manager = TaskManager(GLibDispatcher())
    seen: list[tuple[int, bool]] = []
    try:
        tasks = [
            manager.run_thread(
                lambda context: None,
                when_done=lambda task: seen.append((len(manager), manager.has_tasks())),
            )
            for _ in range(3)
        ]
        deadline = time.monotonic() + 10
        while not all(task.is_final() for task in tasks):  # no main-loop turn meanwhile
            assert time.monotonic() < deadline
            time.sleep(0.001)
        run_until(lambda: len(seen) == 3)
        assert seen == [(2, True), (1, True), (0, False)]
    finally:
        manager.shutdown()
