"""Event credit and coalescing for thread and coroutine tasks, and the options' checks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tasker import ExecutionContext, Task, TaskManager, TaskStatus
from tasker._flow import DEFAULT_EVENT_BUFFER, payload_size
from tasker.testing import run_until

from .conftest import Recorder


def wait_off_loop(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait for ``predicate`` without running the main loop (so nothing is delivered)."""
    pause = threading.Event()
    end = threading.Event()
    timer = threading.Timer(timeout, end.set)
    timer.start()
    try:
        while not predicate():
            if end.is_set():
                raise TimeoutError(f"still false after {timeout:g} s: {predicate!r}")
            pause.wait(0.001)
    finally:
        timer.cancel()


def send_numbered(context: ExecutionContext, count: int, size: int, sent: list[int]) -> int:
    for i in range(count):
        context.send_event("chunk", (i, b"\x01" * size))
        sent.append(i)
    return count


def send_until_cancelled(context: ExecutionContext, size: int, returned: threading.Event) -> int:
    count = 0
    while not context.is_cancelled():
        context.send_event("chunk", b"\x01" * size)
        count += 1
    returned.set()
    return count


def thread_waiters(task: Task[Any]) -> int:
    return task._credit._thread_waiters


def test_thread_sender_waits_for_the_main_thread(task_manager: TaskManager) -> None:
    sent: list[int] = []
    received: list[int] = []
    task = task_manager.run_thread(
        send_numbered,
        10,
        300,
        sent,
        when_event=lambda t, name, data: received.append(data[0]),
        event_buffer=1000,
    )
    wait_off_loop(lambda: thread_waiters(task) == 1)
    # Two events of 428 bytes (a tuple, an int, 300 bytes) fit in 1,000; the third waits.
    assert sent == [0, 1]
    assert task._credit.outstanding <= 1000
    run_until(task.is_final)
    run_until(lambda: not task_manager.has_tasks())
    assert task.result() == 10
    assert received == list(range(10))


def test_an_event_larger_than_the_window_goes_once_the_rest_is_delivered(
    task_manager: TaskManager,
) -> None:
    sent: list[int] = []
    received: list[int] = []
    task = task_manager.run_thread(
        send_numbered,
        3,
        5000,
        sent,
        when_event=lambda t, name, data: received.append(data[0]),
        event_buffer=1000,
    )
    wait_off_loop(lambda: thread_waiters(task) == 1)
    assert sent == [0]
    run_until(lambda: not task_manager.has_tasks())
    assert received == [0, 1, 2]


def test_cancel_releases_a_waiting_thread_sender(task_manager: TaskManager) -> None:
    returned = threading.Event()
    task = task_manager.run_thread(
        send_until_cancelled, 600, returned, when_event=lambda *a: None, event_buffer=1000
    )
    wait_off_loop(lambda: thread_waiters(task) == 1)
    task.cancel()
    # The main loop does not run, so no credit comes back: only the cancel wakes it.
    assert returned.wait(10.0)
    run_until(lambda: not task_manager.has_tasks())
    assert task.get_status() == TaskStatus.CANCELLED


def test_a_waiting_thread_task_does_not_delay_others(task_manager: TaskManager) -> None:
    returned = threading.Event()
    stuck = task_manager.run_thread(
        send_until_cancelled, 600, returned, when_event=lambda *a: None, event_buffer=1000
    )
    wait_off_loop(lambda: thread_waiters(stuck) == 1)
    recorder = Recorder()
    other = task_manager.run_thread(
        send_numbered, 3, 10, [], when_event=recorder.when_event, when_done=recorder.when_done
    )
    wait_off_loop(other.is_final)  # finished while the main loop stood still
    run_until(lambda: recorder.done)
    assert [data[0] for _, _, data in recorder.events] == [0, 1, 2]  # type: ignore[index]
    assert stuck.get_status() == TaskStatus.RUNNING
    stuck.cancel()
    run_until(lambda: not task_manager.has_tasks())


def test_shutdown_releases_a_waiting_thread_sender() -> None:
    from tasker._dispatch._glib import GLibDispatcher

    manager = TaskManager(GLibDispatcher())
    returned = threading.Event()
    task = manager.run_thread(
        send_until_cancelled, 600, returned, when_event=lambda *a: None, event_buffer=1000
    )
    wait_off_loop(lambda: thread_waiters(task) == 1)
    manager.shutdown(timeout=5.0)
    assert returned.is_set()
    assert task.get_status() == TaskStatus.CANCELLED


def test_events_without_a_handler_never_wait(task_manager: TaskManager) -> None:
    task = task_manager.run_thread(send_numbered, 50, 1000, [], event_buffer=10)
    wait_off_loop(task.is_final)
    assert task.get_status() == TaskStatus.COMPLETED


def coalescing(context: ExecutionContext, count: int) -> str:
    context.send_event("row", 0)
    for i in range(count):
        context.send_event("frame", b"x" * 400 + str(i).encode(), coalesce=True)
    context.send_event("row", 1)
    context.send_event("frame", b"last", coalesce=True)
    context.send_event("other", 1, coalesce=True)
    return "sent"


def test_coalescing_keeps_the_latest_per_name_in_order(task_manager: TaskManager) -> None:
    recorder = Recorder()
    # 1,000 frames of 400 bytes in a 1,000-byte window: dropped frames return
    # their credit at once, so the sender never waits for the main thread.
    task = task_manager.run_thread(
        coalescing, 1000, when_event=recorder.when_event, event_buffer=1000
    )
    wait_off_loop(task.is_final)
    run_until(lambda: not task_manager.has_tasks())
    assert [(name, data) for _, name, data in recorder.events] == [
        ("row", 0),
        ("row", 1),
        ("frame", b"last"),
        ("other", 1),
    ]


def test_coalescing_is_per_task(task_manager: TaskManager) -> None:
    recorder = Recorder()
    tasks = [task_manager.run_thread(coalescing, 5, when_event=recorder.when_event) for _ in "ab"]
    for task in tasks:
        wait_off_loop(task.is_final)
    run_until(lambda: not task_manager.has_tasks())
    frames = [(task, data) for task, name, data in recorder.events if name == "frame"]
    assert sorted(id(task) for task, _ in frames) == sorted(id(task) for task in tasks)
    assert {data for _, data in frames} == {b"last"}


async def plain_sends(context: ExecutionContext, count: int) -> int:
    for i in range(count):
        context.send_event("n", (i, b"\x01" * 500))
    return count


def test_plain_send_event_in_a_coroutine_never_waits(task_manager: TaskManager) -> None:
    received: list[int] = []
    task = task_manager.add_coroutine(
        plain_sends, 20, when_event=lambda t, n, d: received.append(d[0]), event_buffer=1000
    )
    wait_off_loop(task.is_final)  # 10 KB queued against a 1 KB window: it did not wait
    run_until(lambda: not task_manager.has_tasks())
    assert received == list(range(20))


async def async_sends(context: ExecutionContext, count: int, sent: list[int]) -> int:
    for i in range(count):
        await context.send_event_async("n", (i, b"\x01" * 300))
        sent.append(i)
    return count


def test_send_event_async_awaits_room(task_manager: TaskManager) -> None:
    sent: list[int] = []
    received: list[int] = []
    task = task_manager.add_coroutine(
        async_sends, 6, sent, when_event=lambda t, n, d: received.append(d[0]), event_buffer=1000
    )
    wait_off_loop(lambda: task._credit._async_waiters)
    assert sent == [0, 1]
    # The loop is not blocked: another coroutine runs meanwhile.
    other = task_manager.add_coroutine(plain_sends, 1)
    wait_off_loop(other.is_final)
    run_until(lambda: not task_manager.has_tasks())
    assert task.result() == 6
    assert received == list(range(6))


def test_cancel_ends_a_coroutine_awaiting_room(task_manager: TaskManager) -> None:
    task = task_manager.add_coroutine(
        async_sends, 100, [], when_event=lambda *a: None, event_buffer=1000
    )
    wait_off_loop(lambda: task._credit._async_waiters)
    task.cancel()
    wait_off_loop(task.is_final)
    assert task.get_status() == TaskStatus.CANCELLED


def test_send_event_async_in_a_thread_task_is_send_event(task_manager: TaskManager) -> None:
    received: list[int] = []

    def in_thread(context: ExecutionContext) -> str:
        asyncio.run(context.send_event_async("n", 1))
        return "ok"

    task = task_manager.run_thread(in_thread, when_event=lambda t, n, d: received.append(d))
    run_until(lambda: not task_manager.has_tasks())
    assert task.result() == "ok"
    assert received == [1]


# ------------------------------------------------------------------ options


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-5, ValueError), (True, TypeError), ("64M", TypeError), (1.5, TypeError)],
)
def test_bad_event_buffer_is_refused(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="event_buffer"):
        TaskManager(event_buffer=value)
    manager = TaskManager()
    with pytest.raises(error, match="event_buffer"):
        manager.configure(event_buffer=value)
    with pytest.raises(error, match="event_buffer"):
        manager.run_thread(send_numbered, 1, 1, [], event_buffer=value)
    assert len(manager) == 0  # nothing was started
    manager.shutdown()


def test_event_buffer_defaults_and_overrides() -> None:
    manager = TaskManager()
    assert manager._options["event_buffer"] == DEFAULT_EVENT_BUFFER == 64 * 1024 * 1024
    manager.configure(event_buffer=1 << 20)
    wait = threading.Event()

    def block(context: ExecutionContext) -> None:
        wait.wait(10)

    try:
        assert manager.run_thread(block)._credit.window == 1 << 20
        assert manager.run_thread(block, event_buffer=None)._credit.window is None
        assert manager.run_thread(block, event_buffer=10)._credit.window == 10
    finally:
        wait.set()
        manager.shutdown()


def test_payload_sizes() -> None:
    import numpy

    assert payload_size(b"x" * 1000) == 1000
    assert payload_size(bytearray(10)) == 10
    assert payload_size(memoryview(b"abc")) == 3
    assert payload_size(numpy.zeros(100)) == 800
    assert payload_size("hello") == 5
    assert payload_size(None) == 64
    assert payload_size((1, b"x" * 100)) == 64 + 64 + 100
    assert payload_size({"data": b"x" * 100}) == 64 + 4 + 100
    assert payload_size(b"") == 1


def test_timeout_releases_a_waiting_thread_sender(task_manager: TaskManager) -> None:
    from tasker import TaskTimeoutError

    returned = threading.Event()
    task = task_manager.run_thread(
        send_until_cancelled,
        600,
        returned,
        when_event=lambda *a: None,
        event_buffer=1000,
        timeout=0.2,
    )
    assert returned.wait(10.0)  # the main loop never ran: only the timeout woke it
    run_until(lambda: not task_manager.has_tasks())
    assert isinstance(task.exception(), TaskTimeoutError)
