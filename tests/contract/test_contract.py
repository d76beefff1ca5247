"""The behaviour contract (README "Behaviour you can rely on"), on every dispatcher alike.

Each test takes ``env`` (see conftest.py) and runs once per dispatcher: GLib,
Qt, asyncio and a private dispatch thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from tasker import CancelledError, TaskStatus

from . import _work
from .conftest import Env

KINDS = ("coroutine", "thread", "process")


def start(env: Env, kind: str, fn: Any, *args: Any, **options: Any) -> Any:
    manager = env.manager
    if kind == "coroutine":
        return manager.add_coroutine(fn, *args, **options)
    if kind == "thread":
        return manager.run_thread(fn, *args, **options)
    return manager.run_process(fn, *args, **options)


class Calls:
    """Every callback the manager makes, with the thread it ran on."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.threads: set[int] = set()
        self.updates: list[float] = []

    def _note(self, what: str, value: Any) -> None:
        self.threads.add(threading.get_ident())
        self.log.append((what, value))

    def when_done(self, task: Any) -> None:
        self._note("done", task.key)

    def when_event(self, task: Any, name: str, data: Any) -> None:
        self._note(f"event {task.key}", data)

    def on_updated(self, sender: Any, *, tasks: Any, progress: float, **_: Any) -> None:
        self.threads.add(threading.get_ident())
        self.updates.append(time.monotonic())

    def on_task_done(self, sender: Any, *, task: Any, **_: Any) -> None:
        self._note("task_done", task.key)

    def done(self) -> list[Any]:
        return [key for what, key in self.log if what == "done"]


def test_callbacks_run_on_the_main_thread(env: Env) -> None:
    calls = Calls()
    env.manager.tasks_updated.connect(calls.on_updated)
    env.manager.task_done.connect(calls.on_task_done)

    async def coro(context: Any) -> str:
        context.send_event("hello", 1)
        context.set_progress(0.5)
        return "ok"

    tasks = [
        env.manager.add_coroutine(
            coro, key="coroutine", when_done=calls.when_done, when_event=calls.when_event
        ),
        start(
            env,
            "thread",
            _work.events,
            3,
            key="thread",
            when_done=calls.when_done,
            when_event=calls.when_event,
        ),
        start(
            env,
            "process",
            _work.events,
            3,
            key="process",
            when_done=calls.when_done,
            when_event=calls.when_event,
        ),
    ]
    env.wait(lambda: len(calls.done()) == 3)
    env.wait(lambda: len([w for w, _ in calls.log if w == "task_done"]) == 3)
    assert all(task.get_status() is TaskStatus.COMPLETED for task in tasks)
    assert calls.updates  # tasks_updated ran, too
    assert calls.threads == {env.main_ident}, env.name


@pytest.mark.parametrize("kind", ["thread", "process"])
def test_progress_is_coalesced_at_a_bounded_rate(env: Env, kind: str) -> None:
    calls = Calls()
    env.manager.tasks_updated.connect(calls.on_updated)
    final: list[tuple[str | None, float]] = []
    updates = 200_000
    started = time.monotonic()
    task = start(
        env,
        kind,
        _work.storm,
        updates,
        when_done=lambda t: final.append((t.get_message(), t.get_progress())),
    )
    env.wait(lambda: bool(final))
    elapsed = time.monotonic() - started
    # 20 updates a second by default: far fewer emissions than reports, and no
    # more than the rate allows over the time it took (plus start and idle).
    rate = 20.0
    assert len(calls.updates) <= elapsed * rate * 1.5 + 4, (len(calls.updates), elapsed)
    assert len(calls.updates) < updates / 100
    assert task.result() == updates
    assert final == [("final", 1.0)]  # final values are delivered before when_done


@pytest.mark.parametrize("kind", KINDS)
def test_events_arrive_in_order_before_when_done(env: Env, kind: str) -> None:
    calls = Calls()
    count = 300
    fn = _work.async_events if kind == "coroutine" else _work.events
    tasks = [
        start(
            env,
            kind,
            fn,
            count,
            key=f"{kind}-{n}",
            when_done=calls.when_done,
            when_event=calls.when_event,
        )
        for n in range(2)
    ]
    env.wait(lambda: len(calls.done()) == 2)
    for task in tasks:
        mine = [
            (what, value)
            for what, value in calls.log
            if what in (f"event {task.key}", "done") and (what != "done" or value == task.key)
        ]
        assert mine == [(f"event {task.key}", n) for n in range(count)] + [("done", task.key)]
    assert calls.threads == {env.main_ident}


def test_every_task_ends_exactly_once(env: Env) -> None:
    calls = Calls()
    env.manager.task_done.connect(calls.on_task_done)
    manager = env.manager
    tasks = []
    waiting = []
    for n, (kind, what) in enumerate(
        [(k, w) for k in ("thread", "process") for w in ("ok", "fail", "wait")] * 2
    ):
        task = start(env, kind, _work.outcome, what, key=f"{n}", when_done=calls.when_done)
        tasks.append(task)
        if what == "wait":
            waiting.append(task)
    # Replacing a live key cancels the old task; it still ends once, as cancelled.
    first = manager.run_thread(_work.outcome, "wait", key="shared", when_done=calls.when_done)
    second = manager.run_thread(_work.outcome, "ok", key="shared", when_done=calls.when_done)
    tasks += [first, second]
    # The waiting ones are cancelled, some while queued, some while running.
    for task in waiting:
        assert task.cancel() is True
    env.wait(lambda: len(calls.done()) == len(tasks))
    assert manager.wait_until_settled(10)
    env.wait(lambda: len([w for w, _ in calls.log if w == "task_done"]) == len(tasks))
    assert Counter(calls.done()) == Counter(t.key for t in tasks)
    # when_done is last among a task's callbacks, task_done right after it
    per_key = Counter(key for what, key in calls.log if what == "task_done")
    assert set(per_key.values()) == {1, 2} and per_key["shared"] == 2
    statuses = Counter(t.get_status() for t in tasks)
    assert statuses == {
        TaskStatus.COMPLETED: 5,
        TaskStatus.FAILED: 4,
        TaskStatus.CANCELLED: 5,
    }
    assert first.get_status() is TaskStatus.CANCELLED
    with pytest.raises(CancelledError):
        first.result()
    assert second.result() == "ok"


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("process", _work.stubborn),  # killed after the grace period
        ("coroutine", _work.awaits_forever),  # asyncio cancellation
        ("thread", _work.cooperative),  # cooperative, through is_cancelled()
    ],
)
def test_cancellation_escalates(env: Env, kind: str, body: Any) -> None:
    calls = Calls()
    started = threading.Event()
    task = start(
        env,
        kind,
        body,
        when_done=calls.when_done,
        when_event=lambda t, name, data: started.set(),
    )
    env.wait(started.is_set)
    assert task.cancel() is True
    assert task.cancel() is False  # once
    env.wait(lambda: calls.done() == [task.key])
    assert task.get_status() is TaskStatus.CANCELLED
    # The slot is free again: the same kind of task runs to the end.
    follow = start(env, kind, _work.outcome if kind != "coroutine" else _async_ok, "ok")
    env.wait(follow.is_final)
    assert follow.result() == "ok"
    assert calls.threads == {env.main_ident}


async def _async_ok(context: Any, value: str) -> str:
    return value
