"""Thread tasks on the manager's bounded thread pool."""

from __future__ import annotations

import threading

import pytest

from tasker import TaskManager, TaskTimeoutError
from tasker._context import ExecutionContext
from tasker.testing import run_until

from .conftest import Recorder


def count_to(context: ExecutionContext, n: int) -> int:
    context.set_total(n)
    for i in range(n):
        context.set_progress(i + 1)
    context.set_message(f"counted to {n}")
    return n


def wait_for_cancel(context: ExecutionContext, started: threading.Event) -> str:
    started.set()
    while not context.is_cancelled():
        threading.Event().wait(0.001)
    return "stopped"


def test_result_progress_and_threads(task_manager: TaskManager, recorder: Recorder) -> None:
    task = task_manager.run_thread(count_to, 1000, when_done=recorder.when_done)
    run_until(lambda: recorder.done)
    assert task.result() == 1000
    assert task.get_progress() == 1.0
    assert task.get_message() == "counted to 1000"
    assert recorder.threads == {threading.current_thread().name}


def test_function_receives_the_context(task_manager: TaskManager) -> None:
    seen: list[object] = []

    def record(context: ExecutionContext, a: int, *, b: int) -> int:
        seen.append(context)
        return a + b

    task = task_manager.run_thread(record, 1, b=2)
    run_until(task.is_final)
    assert task.result() == 3
    assert isinstance(seen[0], ExecutionContext)


def test_cooperative_cancel(task_manager: TaskManager, recorder: Recorder) -> None:
    started = threading.Event()
    task = task_manager.run_thread(
        wait_for_cancel, started, key="worker", when_done=recorder.when_done
    )
    assert started.wait(5)
    assert task_manager.cancel_task("worker") is True
    run_until(lambda: recorder.done)
    # It returned a value after being cancelled: the result is dropped.
    assert task.get_status() == "cancelled"


def test_timeout_is_cooperative(task_manager: TaskManager) -> None:
    started = threading.Event()
    task = task_manager.run_thread(wait_for_cancel, started, timeout=0.05)
    run_until(task.is_final)
    assert isinstance(task.exception(), TaskTimeoutError)


def test_exception_is_kept(task_manager: TaskManager) -> None:
    def fail(context: ExecutionContext) -> None:
        raise ValueError("nope")

    task = task_manager.run_thread(fail)
    run_until(task.is_final)
    assert isinstance(task.exception(), ValueError)


def test_bounded_pool_queues_tasks() -> None:
    from tasker import GLibDispatcher

    manager = TaskManager(GLibDispatcher(), max_threads=2)
    release = threading.Event()
    running = 0
    peak = 0
    lock = threading.Lock()

    def occupy(context: ExecutionContext) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(10)
        with lock:
            running -= 1

    try:
        tasks = [manager.run_thread(occupy) for _ in range(6)]
        run_until(lambda: sum(t.get_status() == "running" for t in tasks) == 2)
        assert sum(t.get_status() == "pending" for t in tasks) == 4
        release.set()
        run_until(lambda: all(t.is_final() for t in tasks))
        assert peak == 2
    finally:
        manager.shutdown()


def test_async_function_is_rejected(task_manager: TaskManager) -> None:
    async def coro(context: ExecutionContext) -> None:
        pass

    with pytest.raises(TypeError, match="add_coroutine"):
        task_manager.run_thread(coro)
    with pytest.raises(TypeError, match="callable"):
        task_manager.run_thread("not a function")  # type: ignore[arg-type]


def test_events_from_a_thread(task_manager: TaskManager, recorder: Recorder) -> None:
    def stream(context: ExecutionContext) -> None:
        for i in range(10_000):
            context.send_event("n", i)

    task = task_manager.run_thread(
        stream, when_event=recorder.when_event, when_done=recorder.when_done
    )
    run_until(lambda: recorder.done)
    assert [data for _, _, data in recorder.events] == list(range(10_000))
    assert all(t is task for t, _, _ in recorder.events)


def test_gio_cancellable_stops_a_blocking_gio_read(task_manager: TaskManager) -> None:
    import os

    from gi.repository import Gio, GLib

    read_fd, write_fd = os.pipe()
    started = threading.Event()

    def read(context: ExecutionContext) -> str:
        stream = Gio.UnixInputStream.new(read_fd, False)
        started.set()
        try:
            stream.read_bytes(16, context.cancellable)  # blocks: nobody writes
        except GLib.Error as error:
            return str(error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))
        return "read"

    try:
        task = task_manager.run_thread(read)
        assert started.wait(5)
        task.cancel()
        run_until(task.is_final)
        assert task.get_status() == "cancelled"
        assert task._result is None
    finally:
        os.close(read_fd)
        os.close(write_fd)
