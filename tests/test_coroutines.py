"""Coroutine tasks on the manager's asyncio loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tasker import CancelledError, TaskManager, TaskStatus, TaskTimeoutError
from tasker._context import ExecutionContext
from tasker.testing import run_until

from .conftest import Recorder


async def double(context: ExecutionContext, value: int) -> int:
    context.set_message("doubling")
    await asyncio.sleep(0)
    context.set_progress(1.0)
    return value * 2


async def wait_forever(context: ExecutionContext, started: threading.Event) -> None:
    started.set()
    await asyncio.Event().wait()


def test_result_and_thread(task_manager: TaskManager, recorder: Recorder) -> None:
    task = task_manager.add_coroutine(double, 21, when_done=recorder.when_done)
    run_until(lambda: recorder.done)
    assert task.get_status() == "completed"
    assert task.result() == 42
    assert task.get_message() == "doubling"
    assert task.get_progress() == 1.0
    assert recorder.threads == {threading.current_thread().name}


def test_keyword_arguments_pass_through(task_manager: TaskManager) -> None:
    async def greet(context: ExecutionContext, name: str, *, punctuation: str = ".") -> str:
        return f"hello {name}{punctuation}"

    task = task_manager.add_coroutine(greet, "world", punctuation="!")
    run_until(task.is_final)
    assert task.result() == "hello world!"


def test_asyncio_cancellation(task_manager: TaskManager, recorder: Recorder) -> None:
    started = threading.Event()
    task = task_manager.add_coroutine(wait_forever, started, when_done=recorder.when_done)
    assert started.wait(5)
    assert task.cancel() is True
    assert task.cancel() is False  # cancelling twice is a no-op
    run_until(lambda: recorder.done)
    assert task.get_status() is TaskStatus.CANCELLED
    assert task.is_cancelled()
    with pytest.raises(CancelledError):
        task.result()
    assert recorder.done == [task]


def test_exception_keeps_its_type(task_manager: TaskManager) -> None:
    class Boom(Exception):
        pass

    async def fail(context: ExecutionContext) -> None:
        raise Boom("bad")

    task = task_manager.add_coroutine(fail)
    run_until(task.is_final)
    assert task.get_status() == "failed"
    assert isinstance(task.exception(), Boom)
    assert task._task_exception is task.exception()
    with pytest.raises(Boom, match="bad"):
        task.result()


def test_cancelled_error_raised_inside_ends_cancelled(task_manager: TaskManager) -> None:
    async def gives_up(context: ExecutionContext) -> None:
        raise asyncio.CancelledError

    task = task_manager.add_coroutine(gives_up)
    run_until(task.is_final)
    assert task.get_status() == "cancelled"


def test_timeout(task_manager: TaskManager) -> None:
    started = threading.Event()
    task = task_manager.add_coroutine(wait_forever, started, timeout=0.05)
    run_until(task.is_final)
    assert task.get_status() == "failed"
    assert isinstance(task.exception(), TaskTimeoutError)


def test_manager_default_timeout() -> None:
    from tasker import GLibDispatcher

    manager = TaskManager(GLibDispatcher(), timeout=0.05)
    try:
        task = manager.add_coroutine(wait_forever, threading.Event())
        run_until(task.is_final)
        assert isinstance(task.exception(), TaskTimeoutError)
    finally:
        manager.shutdown()


def test_plain_function_is_rejected(task_manager: TaskManager) -> None:
    def plain(context: ExecutionContext) -> None:
        pass

    with pytest.raises(TypeError, match="async def"):
        task_manager.add_coroutine(plain)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not callable"):
        task_manager.add_coroutine(42)  # type: ignore[arg-type]
    assert not task_manager.has_tasks()


def test_events_arrive_in_order_before_when_done(
    task_manager: TaskManager, recorder: Recorder
) -> None:
    async def stream(context: ExecutionContext, count: int) -> None:
        for i in range(count):
            context.send_event("item", i)
            if i % 100 == 0:
                await asyncio.sleep(0)

    order: list[str] = []
    task = task_manager.add_coroutine(
        stream,
        1000,
        when_event=lambda t, name, data: order.append("event"),
        when_done=lambda t: order.append("done"),
    )
    run_until(task.is_final)
    run_until(lambda: "done" in order)
    assert order == ["event"] * 1000 + ["done"]


def test_gio_cancellable_is_cancelled_with_the_task(task_manager: TaskManager) -> None:
    from gi.repository import Gio

    seen: list[bool] = []
    started = threading.Event()

    async def watch(context: ExecutionContext) -> None:
        cancellable = context.cancellable
        assert isinstance(cancellable, Gio.Cancellable)
        seen.append(cancellable.is_cancelled())
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            seen.append(cancellable.is_cancelled())

    task = task_manager.add_coroutine(watch)
    assert started.wait(5)
    task_manager.cancel_task(task.key)
    run_until(task.is_final)
    assert seen == [False, True]


def test_await_task_from_another_loop(task_manager: TaskManager) -> None:
    task = task_manager.add_coroutine(double, 5)

    async def waiter() -> int:
        return await task

    assert asyncio.run(waiter()) == 10


def test_await_failed_and_cancelled_tasks(task_manager: TaskManager) -> None:
    async def fail(context: ExecutionContext) -> None:
        raise KeyError("k")

    failed = task_manager.add_coroutine(fail)
    started = threading.Event()
    cancelled = task_manager.add_coroutine(wait_forever, started)

    async def waiter() -> None:
        with pytest.raises(KeyError):
            await failed
        assert started.wait(5)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled

    asyncio.run(waiter())


def test_coroutines_on_an_application_loop() -> None:
    """TaskManager(loop=...) runs coroutine tasks on a loop the application owns."""
    from tasker import AsyncioDispatcher

    loop = asyncio.new_event_loop()
    manager = TaskManager(AsyncioDispatcher(loop), loop=loop)
    threads: list[str] = []

    async def where(context: ExecutionContext) -> None:
        threads.append(threading.current_thread().name)

    async def main() -> None:
        task = manager.add_coroutine(where)
        await task

    try:
        loop.run_until_complete(main())
        assert threads == [threading.current_thread().name]
    finally:
        manager.shutdown()
        loop.close()
