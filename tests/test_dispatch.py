"""The main-thread dispatchers, each with a real manager."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from gi.repository import GLib

from tasker import (
    AsyncioDispatcher,
    CallableDispatcher,
    Dispatcher,
    GLibDispatcher,
    InlineDispatcher,
    TaskManager,
    ThreadDispatcher,
)
from tasker._context import ExecutionContext
from tasker._dispatch import resolve_dispatcher
from tasker.testing import run_until


def work(context: ExecutionContext, n: int) -> int:
    for i in range(n):
        context.set_progress(i / n)
        context.send_event("step", i)
    return n


def run_manager(
    manager: TaskManager, *, pump_glib: bool = False
) -> tuple[set[str], list[int], list[str]]:
    threads: set[str] = set()
    events: list[int] = []
    done: list[str] = []

    def on_event(task: Any, name: str, data: int) -> None:
        threads.add(threading.current_thread().name)
        events.append(data)

    def on_done(task: Any) -> None:
        threads.add(threading.current_thread().name)
        done.append(task.get_status())

    manager.tasks_updated.connect(
        lambda s, tasks, progress: threads.add(threading.current_thread().name)
    )
    manager.run_thread(work, 100, when_event=on_event, when_done=on_done)
    if pump_glib:
        # A foreign scheduler cannot be pumped by the manager; the test runs GLib.
        run_until(lambda: done)
    else:
        assert manager.wait_until_settled(10)
    return threads, events, done


def test_thread_dispatcher_delivers_on_its_own_thread() -> None:
    dispatcher = ThreadDispatcher()
    manager = TaskManager(dispatcher)
    try:
        threads, events, done = run_manager(manager)
        assert threads == {"tasker-dispatch"}
        assert events == list(range(100))
        assert done == ["completed"]
    finally:
        manager.shutdown()
        dispatcher.close()


def test_inline_dispatcher_runs_callbacks_at_once() -> None:
    manager = TaskManager(InlineDispatcher())
    try:
        threads, events, done = run_manager(manager)
        assert threads <= {"tasker-thread-1", threading.current_thread().name}
        assert events == list(range(100))
        assert done == ["completed"]
    finally:
        manager.shutdown()


def test_asyncio_dispatcher_delivers_on_the_loop_thread() -> None:
    loop = asyncio.new_event_loop()
    manager = TaskManager(loop)  # an asyncio loop is accepted as the scheduler
    try:
        assert isinstance(manager._get_dispatcher(), AsyncioDispatcher)
        threads, _events, done = run_manager(manager)
        assert threads == {threading.current_thread().name}
        assert done == ["completed"]
    finally:
        manager.shutdown()
        loop.close()


def test_glib_idle_add_as_scheduler_becomes_the_glib_dispatcher() -> None:
    manager = TaskManager(GLib.idle_add)
    try:
        assert isinstance(manager._get_dispatcher(), GLibDispatcher)
        threads, _, done = run_manager(manager)
        assert threads == {threading.current_thread().name}
        assert done == ["completed"]
    finally:
        manager.shutdown()


def test_any_scheduler_callable() -> None:
    calls: list[Callable[..., Any]] = []

    def schedule(fn: Callable[..., Any], *args: Any) -> None:
        calls.append(fn)
        GLib.idle_add(fn, *args)

    manager = TaskManager(schedule)
    try:
        assert isinstance(manager._get_dispatcher(), CallableDispatcher)
        threads, events, done = run_manager(manager, pump_glib=True)
        assert threads == {threading.current_thread().name}
        assert events == list(range(100))
        assert done == ["completed"]
        assert calls
    finally:
        manager.shutdown()


def test_default_scheduler_is_glib() -> None:
    assert isinstance(resolve_dispatcher(None), GLibDispatcher)
    for dispatcher in (GLibDispatcher(), ThreadDispatcher(), InlineDispatcher()):
        assert isinstance(dispatcher, Dispatcher)
        assert resolve_dispatcher(dispatcher) is dispatcher
    with pytest.raises(TypeError, match="scheduler"):
        resolve_dispatcher(42)


def test_glib_dispatcher_works_in_time_slices() -> None:
    dispatcher = GLibDispatcher(slice_ms=2.0)
    ran = 0
    slices: list[int] = []

    def slow() -> None:
        nonlocal ran
        ran += 1
        end = time.perf_counter() + 0.0005
        while time.perf_counter() < end:
            pass

    def mark() -> bool:
        slices.append(ran)
        return GLib.SOURCE_CONTINUE

    # An idle source of the same priority alternates with the dispatcher: each of its
    # runs sees how many callbacks the previous slice ran.
    marker = GLib.idle_add(mark, priority=GLib.PRIORITY_DEFAULT_IDLE)
    for _ in range(200):
        dispatcher.call_soon(slow)
    try:
        run_until(lambda: ran == 200)
    finally:
        GLib.source_remove(marker)
    steps = [b - a for a, b in itertools.pairwise(slices) if b > a]
    assert len(steps) > 10  # the 200 callbacks were spread over many main-loop iterations
    assert max(steps) <= 10  # never much more than a 2 ms slice of 0.5 ms callbacks


def test_glib_dispatcher_call_later_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = GLibDispatcher()
    order: list[str] = []
    dispatcher.call_soon(lambda: order.append("soon"))
    dispatcher.call_soon(lambda: 1 / 0)
    dispatcher.call_soon(lambda: order.append("after error"))
    # Scheduled after the soon ones: a loaded machine that lets the delay pass
    # before the loop runs must not reorder them (same priority, attach order).
    dispatcher.call_later(0.02, lambda: order.append("later"))
    run_until(lambda: len(order) == 3)
    assert order == ["soon", "after error", "later"]
    assert "ZeroDivisionError" in caplog.text


def test_thread_dispatcher_orders_timers() -> None:
    dispatcher = ThreadDispatcher()
    order: list[int] = []
    finished = threading.Event()
    dispatcher.call_later(0.03, lambda: (order.append(3), finished.set()))
    dispatcher.call_later(0.01, lambda: order.append(2))
    dispatcher.call_soon(lambda: order.append(1))
    assert finished.wait(5)
    assert order == [1, 2, 3]
    dispatcher.close()
    dispatcher.call_soon(lambda: order.append(4))  # ignored once closed
    assert order == [1, 2, 3]


def test_a_scheduler_that_raises_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    failures = 3

    def flaky(fn: Callable[..., Any], *args: Any) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise RuntimeError("scheduler is busy")
        GLib.idle_add(fn, *args)

    manager = TaskManager(flaky)
    done: list[str] = []
    try:
        first = manager.run_thread(work, 10, when_done=lambda t: done.append("first"))
        run_until(first.is_final)  # final even though its delivery was refused
        second = manager.run_thread(work, 10, when_done=lambda t: done.append("second"))
        run_until(lambda: len(done) == 2)
        assert sorted(done) == ["first", "second"]
        assert second.result() == 10
        assert "scheduler refused" in caplog.text
    finally:
        manager.shutdown()
