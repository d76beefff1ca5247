"""Bad input at every public argument: a clear error at the call, or the documented clamp.

Never a hang and never a silent drop: after a rejected call the manager holds
no task, has started nothing it did not need, and keeps working. The
per-feature tests cover the basic cases for thread tasks and the context
arithmetic; this file covers the rest, process tasks especially.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tasker import (
    ExecutionContext,
    GLibDispatcher,
    Task,
    TaskManager,
)
from tasker._context import MAX_MESSAGE_LENGTH
from tasker.testing import run_until

from . import _work
from ._probe import tasker_threads

TIMEOUT = 30.0
KINDS = ["coroutine", "thread", "process"]


@pytest.fixture
def manager() -> Iterator[TaskManager]:
    manager = TaskManager(GLibDispatcher(), max_workers=1, cancel_grace=0.5)
    try:
        yield manager
    finally:
        manager.shutdown(timeout=5.0)


def starter(manager: TaskManager, kind: str) -> Callable[..., Task[Any]]:
    return {
        "coroutine": manager.add_coroutine,
        "thread": manager.run_thread,
        "process": manager.run_process,
    }[kind]


def good_function(kind: str) -> Callable[..., Any]:
    return _work.async_quick if kind == "coroutine" else _work.quick


def assert_untouched(manager: TaskManager) -> None:
    """A rejected call leaves no task behind and the manager idle."""
    assert not manager.has_tasks()
    assert len(manager) == 0
    assert manager.wait_until_settled(0)
    assert manager.get_overall_progress() == 1.0


def finish(task: Task[Any]) -> Task[Any]:
    run_until(task.is_final, TIMEOUT)
    return task


# ------------------------------------------------------------- the function


async def _async_fn(context: ExecutionContext) -> None:
    await asyncio.sleep(0)


async def _async_gen(context: ExecutionContext) -> Any:
    yield 1


class _AsyncCallable:
    async def __call__(self, context: ExecutionContext) -> None:
        await asyncio.sleep(0)

    async def method(self, context: ExecutionContext) -> None:
        await asyncio.sleep(0)


class _PlainCallable:
    def __call__(self, context: ExecutionContext) -> None:
        pass


def _returns_a_coroutine(context: ExecutionContext) -> Any:
    return _async_fn(context)


ASYNC_THINGS = [
    pytest.param(_async_fn, id="async-def"),
    pytest.param(_AsyncCallable(), id="async-callable-object"),
    pytest.param(_AsyncCallable().method, id="async-bound-method"),
    pytest.param(functools.partial(_async_fn), id="partial-of-async"),
]
PLAIN_THINGS = [
    pytest.param(_work.quick, id="def"),
    pytest.param(_PlainCallable(), id="callable-object"),
    pytest.param(_returns_a_coroutine, id="returns-a-coroutine"),
    pytest.param(_async_gen, id="async-generator-function"),
    pytest.param(print, id="builtin"),
]
NOT_CALLABLE = [42, "quick", None, b"fn", [_work.quick]]


@pytest.mark.parametrize("kind", ["thread", "process"])
@pytest.mark.parametrize("func", ASYNC_THINGS)
def test_async_functions_are_refused_by_run_thread_and_run_process(
    manager: TaskManager, kind: str, func: Any
) -> None:
    with pytest.raises(TypeError, match="add_coroutine"):
        starter(manager, kind)(func)
    assert_untouched(manager)


@pytest.mark.parametrize("func", PLAIN_THINGS)
def test_plain_functions_are_refused_by_add_coroutine(manager: TaskManager, func: Any) -> None:
    with pytest.raises(TypeError, match="async def"):
        manager.add_coroutine(func)
    assert_untouched(manager)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("func", NOT_CALLABLE, ids=repr)
def test_non_callables_are_refused(manager: TaskManager, kind: str, func: Any) -> None:
    with pytest.raises(TypeError, match="callable"):
        starter(manager, kind)(func)
    assert_untouched(manager)


def test_rejected_calls_start_nothing() -> None:
    before = set(threading.enumerate())
    manager = TaskManager(GLibDispatcher())
    for kind in KINDS:
        with pytest.raises(TypeError):
            starter(manager, kind)(42)
        with pytest.raises(TypeError):
            starter(manager, kind)(good_function(kind), "x", 1, key=["unhashable"])
    assert set(threading.enumerate()) == before
    assert manager._process_pool is None
    manager.shutdown()


# ------------------------------------------------------------ keys, callbacks


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("key", [[1], {"a": 1}, {1}, ("tuple", ["with a list"]), bytearray(b"k")])
def test_unhashable_keys_are_refused(manager: TaskManager, kind: str, key: Any) -> None:
    with pytest.raises(TypeError, match="unhashable"):
        starter(manager, kind)(good_function(kind), "x", 1, key=key)
    assert_untouched(manager)
    with pytest.raises(TypeError):
        manager.cancel_task(key)
    with pytest.raises(TypeError):
        manager.get_task(key)


@pytest.mark.parametrize("kind", ["coroutine", "process"])
@pytest.mark.parametrize("name", ["when_done", "when_event"])
@pytest.mark.parametrize("value", [3, "callback", (print,)], ids=repr)
def test_non_callable_callbacks_are_refused(
    manager: TaskManager, kind: str, name: str, value: Any
) -> None:
    with pytest.raises(TypeError, match=name):
        starter(manager, kind)(good_function(kind), "x", 1, **{name: value})
    assert_untouched(manager)


# ------------------------------------------------------------------ timeouts


@pytest.mark.parametrize("kind", ["coroutine", "process"])
@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (0, ValueError),
        (0.0, ValueError),
        (-1, ValueError),
        (-math.inf, ValueError),
        (math.nan, ValueError),
        ("1", TypeError),
        (True, TypeError),
        ([1], TypeError),
    ],
    ids=repr,
)
def test_bad_task_timeouts(
    manager: TaskManager, kind: str, timeout: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="timeout"):
        starter(manager, kind)(good_function(kind), "x", 1, timeout=timeout)
    assert_untouched(manager)


@pytest.mark.parametrize(
    ("grace", "error"),
    [(-0.1, ValueError), (math.nan, ValueError), (math.inf, ValueError), ("1", TypeError)],
    ids=repr,
)
def test_bad_cancel_grace_for_a_process_task(
    manager: TaskManager, grace: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="cancel_grace"):
        manager.run_process(_work.quick, "x", 1, cancel_grace=grace)
    assert_untouched(manager)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("timeout", [40 * 86400.0, 1e300, math.inf], ids=repr)
def test_huge_timeouts_mean_no_practical_limit(
    manager: TaskManager, kind: str, timeout: float
) -> None:
    """A timeout beyond any select()/epoll limit must not break the pool: the task just runs."""
    task = finish(starter(manager, kind)(good_function(kind), "x", 5, timeout=timeout))
    assert task.result() == 5
    follow = finish(starter(manager, kind)(good_function(kind), "y", 6))
    assert follow.result() == 6


@pytest.mark.parametrize("grace", [40 * 86400.0, 1e300], ids=repr)
def test_huge_cancel_grace_for_a_cooperative_process_task(
    manager: TaskManager, grace: float
) -> None:
    started: list[int] = []
    task = manager.run_process(
        _work.chatty, "x", cancel_grace=grace, when_event=lambda t, n, d: started.append(d)
    )
    run_until(lambda: started, TIMEOUT)
    assert task.cancel()
    finish(task)
    assert task.get_status() == "cancelled"
    assert finish(manager.run_process(_work.add, 1, 2)).result() == 3


# -------------------------------------------------- the context, in every kind

CONTEXT_CALLS: list[tuple[str, Any]] = [
    ("set_progress", 0.25),
    ("set_progress", math.nan),  # ValueError, progress unchanged
    ("set_progress", math.inf),  # clamped to 1
    ("set_progress", -math.inf),  # clamped to 0
    ("set_progress", -5),
    ("set_progress", 1e308 * 10),
    ("set_progress", "half"),  # TypeError
    ("set_progress", None),
    ("set_total", math.nan),
    ("set_total", math.inf),
    ("set_total", 0),
    ("set_total", -1),
    ("set_total", "3"),
    ("set_total", 4),
    ("set_progress", 3),  # 3 of 4
    ("set_progress", 1e9),  # clamped to the total
    ("set_message", "x" * 100_000),  # cut
    ("set_message", 5),  # TypeError
    ("set_message", b"bytes"),
    ("set_message", None),
    ("send_event", 5),  # TypeError: event names are strings
    ("send_event", b"name"),
    ("send_event", None),
    ("send_event", "\udcff surrogate"),  # a str all the same
    ("sub_context", (math.nan, 0.1)),
    ("sub_context", (0.5, 0.6)),
    ("sub_context", (0.0, 1.0, 0)),
]

EXPECTED: list[tuple[str, Any]] = [
    ("ok", 0.25),
    ("ValueError", "progress must be a number, not NaN"),
    ("ok", 1.0),
    ("ok", 0.0),
    ("ok", 0.0),
    ("ok", 1.0),
    ("TypeError", None),
    ("TypeError", None),
    ("ValueError", None),
    ("ValueError", None),
    ("ValueError", None),
    ("ValueError", None),
    ("TypeError", None),
    ("ok", None),
    ("ok", 0.75),
    ("ok", 1.0),
    ("ok", "x" * (MAX_MESSAGE_LENGTH - 1) + "…"),
    ("TypeError", None),
    ("TypeError", None),
    ("ok", None),
    ("TypeError", None),
    ("TypeError", None),
    ("TypeError", None),
    ("ok", None),
    ("ValueError", None),
    ("ValueError", None),
    ("ValueError", None),
]


async def _async_report(context: ExecutionContext, calls: list[tuple[str, Any]]) -> list[Any]:
    return _work.report(context, calls)


@pytest.mark.parametrize("kind", KINDS)
def test_context_input_is_checked_the_same_way_everywhere(manager: TaskManager, kind: str) -> None:
    received: list[tuple[str, Any]] = []
    done: list[Task[Any]] = []
    function = _async_report if kind == "coroutine" else _work.report
    task = starter(manager, kind)(
        function,
        CONTEXT_CALLS,
        when_event=lambda t, n, d: received.append((n, d)),
        when_done=done.append,
    )
    run_until(lambda: done, TIMEOUT)
    outcomes = task.result()
    assert len(outcomes) == len(EXPECTED)
    for call, outcome, expected in zip(CONTEXT_CALLS, outcomes, EXPECTED, strict=True):
        assert outcome[0] == expected[0], (call, outcome)
        if expected[1] is not None:
            assert outcome[1] == expected[1], (call, outcome)
    assert received == [("\udcff surrogate", None)]  # the one valid event, nothing else


@pytest.mark.parametrize("kind", KINDS)
def test_final_clamped_values_reach_the_parent(manager: TaskManager, kind: str) -> None:
    func: Any = _work.final_progress
    if kind == "coroutine":

        async def func(context: ExecutionContext, *args: Any) -> str:
            return _work.final_progress(context, *args)

    seen: list[tuple[float, str | None]] = []
    finish(
        starter(manager, kind)(
            func,
            10,
            1e12,
            "y" * 1_000_000,
            when_done=lambda t: seen.append((t.get_progress(), t.get_message())),
        )
    )
    run_until(lambda: seen, TIMEOUT)
    progress, message = seen[0]
    assert progress == 1.0
    assert message is not None and len(message) == MAX_MESSAGE_LENGTH and message.endswith("…")


def test_huge_event_payload_from_a_process(manager: TaskManager) -> None:
    size = 48 * 2**20
    received: list[Any] = []
    task = manager.run_process(
        _work.big_event, size, when_event=lambda t, n, d: received.append((n, d))
    )
    finish(task)
    run_until(lambda: received, TIMEOUT)
    digest = task.result()
    ((name, data),) = received
    assert name == "x" * 10_000
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == digest


# ----------------------------------------------------------- manager options

BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"max_workers": 0}, ValueError, "max_workers"),
    ({"max_workers": -2}, ValueError, "max_workers"),
    ({"max_workers": 2.5}, ValueError, "max_workers"),
    ({"max_workers": "2"}, ValueError, "max_workers"),
    ({"max_workers": True}, ValueError, "max_workers"),
    ({"max_threads": 0}, ValueError, "max_threads"),
    ({"start_method": "bogus"}, ValueError, "start_method"),
    ({"start_method": 5}, ValueError, "start_method"),
    ({"timeout": 0}, ValueError, "timeout"),
    ({"timeout": math.nan}, ValueError, "timeout"),
    ({"timeout": "1"}, TypeError, "timeout"),
    ({"cancel_grace": -1}, ValueError, "cancel_grace"),
    ({"cancel_grace": math.inf}, ValueError, "cancel_grace"),
    ({"cancel_grace": None}, TypeError, "cancel_grace"),
    ({"initializer": 5}, TypeError, "initializer"),
    ({"initargs": 5}, TypeError, "initargs"),
    ({"initargs": "abc"}, TypeError, "initargs"),
    ({"update_rate": 0}, ValueError, "update_rate"),
    ({"update_rate": -1}, ValueError, "update_rate"),
    ({"update_rate": math.nan}, ValueError, "update_rate"),
    ({"update_rate": math.inf}, ValueError, "update_rate"),
    ({"update_rate": "fast"}, ValueError, "update_rate"),
    ({"loop": 5}, TypeError, "loop"),
    ({"worker_nice": "x"}, TypeError, "worker_nice"),
    ({"worker_nice": 2.5}, TypeError, "worker_nice"),
    ({"colour": "blue"}, TypeError, "colour"),
]


@pytest.mark.parametrize(("options", "error", "match"), BAD_OPTIONS, ids=repr)
def test_bad_manager_options_fail_at_construction(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        TaskManager(GLibDispatcher(), **options)


def test_bad_manager_options_fail_in_configure_and_change_nothing() -> None:
    manager = TaskManager(GLibDispatcher(), max_workers=1)
    try:
        before = dict(manager._options)
        for options, error, match in BAD_OPTIONS:
            with pytest.raises(error, match=match):
                manager.configure(**options)
        assert manager._options == before
        # The manager still works with its old options.
        assert finish(manager.run_thread(_work.add, 1, 2)).result() == 3
        assert finish(manager.run_process(_work.add, 2, 2)).result() == 4
        assert finish(manager.add_coroutine(_work.async_quick, "c", 5)).result() == 5
    finally:
        manager.shutdown(timeout=5.0)


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_scheduler_leaves_no_task_behind(kind: str) -> None:
    manager = TaskManager(scheduler=5)
    with pytest.raises(TypeError, match="scheduler"):
        starter(manager, kind)(good_function(kind), "x", 1)
    assert not manager.has_tasks()
    manager.shutdown(timeout=1.0)  # does not raise, nothing to deliver


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_a_very_slow_update_rate_still_delivers_the_final_values(kind: str) -> None:
    manager = TaskManager(GLibDispatcher(), max_workers=1, update_rate=1e-9)
    try:
        task = finish(starter(manager, kind)(_work.chatty_then_stop, "slow", 20))
        assert task.result() == 20
        assert task.get_progress() == 1.0
        assert task.get_message() == "ticked 20"
        assert manager.wait_until_settled(TIMEOUT)
    finally:
        manager.shutdown(timeout=5.0)


# ------------------------------------------------------------------ shutdown


@pytest.mark.parametrize(
    ("timeout", "error"),
    [("5", TypeError), ([1], TypeError), (-1, ValueError), (math.nan, ValueError)],
    ids=repr,
)
def test_bad_shutdown_timeout_is_refused_before_anything_changes(
    timeout: Any, error: type[Exception]
) -> None:
    manager = TaskManager(GLibDispatcher())
    gate = threading.Event()
    task = manager.run_thread(_work.thread_gate, gate, 60.0)
    with pytest.raises(error, match="timeout"):
        manager.shutdown(timeout=timeout)
    assert not task.is_final()
    manager.shutdown(timeout=5.0)  # the real one still does everything
    assert task.get_status() == "cancelled"
    assert not tasker_threads()


def test_wait_until_settled_with_odd_timeouts(manager: TaskManager) -> None:
    gate = threading.Event()
    manager.run_thread(_work.thread_gate, gate, 60.0)
    assert manager.wait_until_settled(-1) is False
    assert manager.wait_until_settled(0) is False
    gate.set()
    assert manager.wait_until_settled(TIMEOUT)
