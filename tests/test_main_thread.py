"""schedule/run/call_on_main_thread and delayed calls, on the GLib, asyncio and thread
dispatchers, called from coroutine tasks, thread tasks and other threads."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tasker import (
    AsyncioDispatcher,
    ExecutionContext,
    GLibDispatcher,
    InlineDispatcher,
    ManagerShutdownError,
    TaskManager,
    ThreadDispatcher,
)
from tasker.testing import run_until

WAIT = 10.0


class Env:
    """A manager on one dispatcher, and how the test waits for its main thread."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._app_loop: asyncio.AbstractEventLoop | None = None
        self._app_thread: threading.Thread | None = None
        if kind == "glib":
            self.manager = TaskManager(GLibDispatcher(), cancel_grace=0.2)
        elif kind == "asyncio":
            # The application's loop runs on its own thread: that is the "main thread".
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            loop.call_soon(ready.set)
            self._app_loop = loop
            self._app_thread = threading.Thread(
                target=loop.run_forever, name="app-asyncio", daemon=True
            )
            self._app_thread.start()
            ready.wait(WAIT)
            self.manager = TaskManager(AsyncioDispatcher(loop), cancel_grace=0.2)
        else:
            self.manager = TaskManager(ThreadDispatcher(), cancel_grace=0.2)

    def is_main(self, thread: threading.Thread) -> bool:
        """Is ``thread`` the dispatcher's thread?"""
        if self.kind == "glib":
            return thread is threading.main_thread()
        if self.kind == "asyncio":
            return thread is self._app_thread
        return thread.name == "tasker-dispatch"

    def wait(self, predicate: Callable[[], object], timeout: float = WAIT) -> None:
        """Wait until ``predicate()``; on GLib the test thread runs the main loop meanwhile."""
        if self.kind == "glib":
            run_until(predicate, timeout)
            return
        assert _poll(predicate, timeout), f"still false after {timeout} s: {predicate!r}"

    def on_main(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the dispatcher's thread, the way the application would."""
        self.manager.schedule_on_main_thread(fn)

    def close(self) -> None:
        self.manager.shutdown(timeout=5.0)
        if self._app_loop is not None:
            self._app_loop.call_soon_threadsafe(self._app_loop.stop)
            assert self._app_thread is not None
            self._app_thread.join(WAIT)
            self._app_loop.close()


def _poll(predicate: Callable[[], object], timeout: float) -> bool:
    # The callbacks run on another thread, which sets nothing we could wait on:
    # check the predicate each millisecond, up to the timeout.
    event = threading.Event()
    for _ in range(int(timeout * 1000)):
        if predicate():
            return True
        event.wait(0.001)
    return bool(predicate())


@pytest.fixture(params=["glib", "asyncio", "thread"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    environment = Env(request.param)
    try:
        yield environment
    finally:
        environment.close()


CALLERS = ["coroutine task", "thread task", "other thread"]


def call_from(env: Env, caller: str, body: Callable[[], Any]) -> list[Any]:
    """Run ``body`` in the given kind of caller; the list gets its result or exception."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(body())
        except BaseException as error:
            outcome.append(error)

    if caller == "coroutine task":

        async def coro(context: ExecutionContext) -> None:
            run()

        env.manager.add_coroutine(coro)
    elif caller == "thread task":
        env.manager.run_thread(lambda context: run())
    else:
        threading.Thread(target=run, name="other").start()
    env.wait(lambda: outcome)
    return outcome


# ---------------------------------------------------------- schedule_on_main_thread


@pytest.mark.parametrize("caller", CALLERS)
def test_schedule_runs_in_order_on_the_main_thread(
    env: Env, caller: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[int, bool]] = []

    def record(i: int, *, boom: bool = False) -> None:
        seen.append((i, env.is_main(threading.current_thread())))
        if boom:
            raise RuntimeError("a broken UI callback")

    def schedule_many() -> None:
        for i in range(50):
            env.manager.schedule_on_main_thread(record, i, boom=(i == 10))

    with caplog.at_level(logging.ERROR, logger="tasker"):
        call_from(env, caller, schedule_many)
        env.wait(lambda: len(seen) == 50)
    assert seen == [(i, True) for i in range(50)]
    assert "a broken UI callback" in caplog.text  # logged, and the rest still ran


def test_schedule_follows_the_events_queued_before_it(env: Env) -> None:
    order: list[str] = []

    def work(context: ExecutionContext) -> None:
        context.send_event("first", None)
        env.manager.schedule_on_main_thread(order.append, "scheduled")
        context.send_event("second", None)

    env.manager.run_thread(work, when_event=lambda task, name, data: order.append(name))
    env.wait(lambda: len(order) == 3)
    assert order == ["first", "scheduled", "second"]


# ------------------------------------------------------------- call_on_main_thread


@pytest.mark.parametrize("caller", CALLERS)
def test_call_returns_the_result_from_the_main_thread(env: Env, caller: str) -> None:
    def where(a: int, *, b: int) -> tuple[int, bool]:
        return a + b, env.is_main(threading.current_thread())

    outcome = call_from(env, caller, lambda: env.manager.call_on_main_thread(where, 1, b=2))
    assert outcome == [(3, True)]


@pytest.mark.parametrize("caller", CALLERS)
def test_call_raises_the_functions_exception(env: Env, caller: str) -> None:
    def fails() -> None:
        raise LookupError("not on screen")

    outcome = call_from(env, caller, lambda: env.manager.call_on_main_thread(fails, timeout=WAIT))
    assert isinstance(outcome[0], LookupError)


def test_call_on_the_main_thread_runs_at_once(env: Env) -> None:
    inner: list[Any] = []

    def nested() -> None:
        # Blocking here for a call queued behind us would never end.
        inner.append(env.manager.call_on_main_thread(lambda: threading.current_thread()))

    env.on_main(nested)
    env.wait(lambda: inner)
    assert env.is_main(inner[0])


@pytest.mark.parametrize("caller", ["thread task", "other thread"])
def test_timeout_is_not_passed_on(env: Env, caller: str) -> None:
    def takes_kwargs(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    outcome = call_from(
        env, caller, lambda: env.manager.call_on_main_thread(takes_kwargs, timeout=WAIT, x=1)
    )
    assert outcome == [{"x": 1}]


def test_call_times_out_and_never_runs_late() -> None:
    manager = TaskManager(GLibDispatcher())
    try:
        ran = threading.Event()
        outcome: list[BaseException] = []

        def caller() -> None:
            try:
                manager.call_on_main_thread(ran.set, timeout=0.05)
            except TimeoutError as error:
                outcome.append(error)

        # The main thread (this one) does not run the loop until the caller gave up.
        thread = threading.Thread(target=caller)
        thread.start()
        thread.join(WAIT)
        assert len(outcome) == 1
        marker = threading.Event()
        manager.schedule_on_main_thread(marker.set)
        run_until(marker.is_set)  # queued after the abandoned call: that one was skipped
        assert not ran.is_set()
    finally:
        manager.shutdown()


def test_shutdown_frees_a_thread_waiting_for_the_main_thread() -> None:
    manager = TaskManager(GLibDispatcher())
    ran = threading.Event()
    waiting = threading.Event()
    outcome: list[BaseException] = []

    def task(context: ExecutionContext) -> None:
        waiting.set()
        try:
            manager.call_on_main_thread(ran.set)  # no timeout: only shutdown can free it
        except ManagerShutdownError as error:
            outcome.append(error)

    manager.run_thread(task)
    assert waiting.wait(WAIT)
    # Not run_until: the main loop must not run the call.
    assert _poll(lambda: manager._delivery.calls._waiting, WAIT)
    manager.shutdown(timeout=5.0)  # from the main thread, which never ran the call
    assert len(outcome) == 1 and not ran.is_set()
    with pytest.raises(ManagerShutdownError):
        manager.call_on_main_thread(ran.set)
    assert isinstance(
        call_in_thread(lambda: manager.call_on_main_thread(ran.set)), ManagerShutdownError
    )


def call_in_thread(fn: Callable[[], Any]) -> Any:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as error:
            result.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(WAIT)
    return result[0]


# ------------------------------------------------------------- run_on_main_thread


def test_run_awaited_from_a_coroutine_task(env: Env) -> None:
    def where(a: int) -> tuple[int, bool]:
        return a * 2, env.is_main(threading.current_thread())

    async def coro(context: ExecutionContext) -> tuple[int, bool]:
        return await env.manager.run_on_main_thread(where, 21)

    task = env.manager.add_coroutine(coro)
    env.wait(task.is_final)
    assert task.result() == (42, True)


@pytest.mark.parametrize("caller", CALLERS)
def test_run_from_each_caller(env: Env, caller: str) -> None:
    def where(a: int, *, b: int) -> tuple[int, bool]:
        return a - b, env.is_main(threading.current_thread())

    async def main() -> tuple[int, bool]:
        return await env.manager.run_on_main_thread(where, 5, b=3)

    if caller == "coroutine task":

        async def coro(context: ExecutionContext) -> tuple[int, bool]:
            return await main()

        task = env.manager.add_coroutine(coro)
        env.wait(task.is_final)
        assert task.result() == (2, True)
    else:
        # A thread has no loop of its own: it runs one, as an application would.
        assert call_from(env, caller, lambda: asyncio.run(main())) == [(2, True)]


@pytest.mark.parametrize("caller", CALLERS)
def test_delayed_call_from_each_caller(env: Env, caller: str) -> None:
    seen: list[bool] = []
    handles = call_from(
        env,
        caller,
        lambda: env.manager.schedule_delayed_on_main_thread(
            0.01, lambda: seen.append(env.is_main(threading.current_thread()))
        ),
    )
    env.wait(lambda: seen)
    assert seen == [True] and handles[0].done()


def test_call_that_outlives_its_timeout_while_running() -> None:
    manager = TaskManager(ThreadDispatcher())
    try:
        release = threading.Event()
        started = threading.Event()

        def slow() -> str:
            started.set()
            release.wait(WAIT)
            return "late"

        def caller() -> BaseException | str:
            try:
                return manager.call_on_main_thread(slow, timeout=0.05)
            except TimeoutError as error:
                return error

        outcome = call_in_thread(caller)
        assert isinstance(outcome, TimeoutError)
        release.set()
        assert manager.call_on_main_thread(lambda: "next", timeout=WAIT) == "next"
        if "discarded" in str(outcome):  # the usual case: it ran past the timeout
            assert started.is_set()
        else:  # a very slow machine: it had not started, and it never did
            assert "did not run" in str(outcome) and not started.is_set()
    finally:
        manager.shutdown()


def test_run_awaited_from_the_applications_own_loop(env: Env) -> None:
    def fails() -> None:
        raise PermissionError("read-only document")

    async def main() -> tuple[bool, str]:
        on_main = await env.manager.run_on_main_thread(
            lambda: env.is_main(threading.current_thread())
        )
        try:
            await env.manager.run_on_main_thread(fails)
        except PermissionError as error:
            return on_main, str(error)
        return on_main, "no error"

    outcome = call_from(env, "other thread", lambda: asyncio.run(main()))
    assert outcome == [(True, "read-only document")]


def test_run_on_the_main_loop_itself_runs_at_once() -> None:
    loop = asyncio.new_event_loop()
    try:
        manager = TaskManager(AsyncioDispatcher(loop))

        async def main() -> bool:
            # This coroutine runs on the dispatcher's own loop: waiting would deadlock.
            current = threading.current_thread()
            return await manager.run_on_main_thread(lambda: threading.current_thread() is current)

        assert loop.run_until_complete(asyncio.wait_for(main(), WAIT)) is True
        manager.shutdown()
    finally:
        loop.close()


def test_cancelled_awaiter_means_the_call_never_runs() -> None:
    manager = TaskManager(GLibDispatcher())
    try:
        ran = threading.Event()
        queued = threading.Event()

        async def coro(context: ExecutionContext) -> None:
            queued.set()
            await manager.run_on_main_thread(ran.set)

        task = manager.add_coroutine(coro)
        assert queued.wait(WAIT)
        # The main loop does not run meanwhile: the call stays queued.
        assert _poll(lambda: manager._delivery.calls._waiting, WAIT)
        task.cancel()
        assert _poll(task.is_final, WAIT)  # still without running the main loop
        marker = threading.Event()
        manager.schedule_on_main_thread(marker.set)
        run_until(marker.is_set)
        assert task.get_status() == "cancelled" and not ran.is_set()
    finally:
        manager.shutdown()


# ------------------------------------------------------------------ delayed calls


def test_delayed_call_runs_on_the_main_thread(env: Env) -> None:
    seen: list[tuple[str, bool]] = []
    handle = env.manager.schedule_delayed_on_main_thread(
        0.02, lambda text: seen.append((text, env.is_main(threading.current_thread()))), "later"
    )
    env.wait(lambda: seen)
    assert seen == [("later", True)]
    assert handle.done() and not handle.cancelled()
    assert handle.cancel() is False  # it ran already


def test_cancelled_delayed_call_never_runs(env: Env) -> None:
    ran: list[str] = []
    first = env.manager.schedule_delayed_on_main_thread(0.05, ran.append, "cancelled")
    assert first.cancel() is True
    assert first.cancel() is False  # already cancelled
    env.manager.schedule_delayed_on_main_thread(0.1, ran.append, "marker")
    env.wait(lambda: ran)
    assert ran == ["marker"] and first.cancelled()


def test_delayed_calls_are_dropped_at_shutdown(env: Env) -> None:
    ran: list[str] = []
    handle = env.manager.schedule_delayed_on_main_thread(3600, ran.append, "never")
    env.manager.shutdown()
    assert handle.cancelled() and handle.cancel() is False
    late = env.manager.schedule_delayed_on_main_thread(0, ran.append, "after shutdown")
    assert late.cancelled()
    env.manager.schedule_on_main_thread(ran.append, "after shutdown")  # dropped, no error
    assert ran == []


def test_delayed_call_with_the_inline_dispatcher_still_waits() -> None:
    manager = TaskManager(InlineDispatcher())
    try:
        done = threading.Event()
        seen: list[str] = []
        handle = manager.schedule_delayed_on_main_thread(
            0.01, lambda: (seen.append(threading.current_thread().name), done.set())
        )
        assert seen == []  # not at once, unlike the dispatcher's other calls
        assert done.wait(WAIT)
        assert handle.done()
    finally:
        manager.shutdown()


def test_delayed_call_exception_is_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    marker: list[str] = []

    def boom() -> None:
        raise ValueError("bad timer")

    with caplog.at_level(logging.ERROR, logger="tasker"):
        env.manager.schedule_delayed_on_main_thread(0, boom)
        env.manager.schedule_delayed_on_main_thread(0.05, marker.append, "after")
        env.wait(lambda: marker)
    assert "bad timer" in caplog.text


# -------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda m: m.schedule_on_main_thread(42), TypeError),
        (lambda m: m.call_on_main_thread("not callable"), TypeError),
        (lambda m: asyncio.run(m.run_on_main_thread(None)), TypeError),
        (lambda m: m.schedule_delayed_on_main_thread(1.0, 42), TypeError),
        (lambda m: m.schedule_delayed_on_main_thread(-1, print), ValueError),
        (lambda m: m.schedule_delayed_on_main_thread(float("nan"), print), ValueError),
        (lambda m: m.schedule_delayed_on_main_thread("1", print), TypeError),
        (lambda m: m.call_on_main_thread(print, timeout=-1), ValueError),
        (lambda m: m.call_on_main_thread(print, timeout=True), TypeError),
    ],
)
def test_bad_input_is_refused_clearly(call: Callable[[TaskManager], Any], error: type) -> None:
    manager = TaskManager(ThreadDispatcher())
    try:
        with pytest.raises(error):
            call(manager)
        assert manager._delivery.is_settled()  # nothing was queued
    finally:
        manager.shutdown()
