"""owner=: tasks cancelled, and their callbacks dropped, when their owner goes away."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tasker import CancelReason, TaskManager, register_owner_type
from tasker._context import ExecutionContext
from tasker.testing import run_until

from .conftest import Recorder
from .test_policies import Gates


class Panel:
    """Any Python object can own tasks; it goes away when it is collected."""


class Closable:
    """A toolkit-like object that says when it is destroyed (see register_owner_type)."""

    def __init__(self) -> None:
        self.on_destroy: list[Callable[[], None]] = []

    def destroy(self) -> None:
        for callback in self.on_destroy:
            callback()


register_owner_type(Closable, lambda owner, gone: owner.on_destroy.append(gone))


def test_owner_collected_cancels_its_tasks_without_callbacks(
    task_manager: TaskManager, recorder: Recorder
) -> None:
    gates = Gates()
    panel = Panel()
    running = task_manager.run_thread(
        gates.work, "running", owner=panel, when_done=recorder.when_done
    )
    waiting = task_manager.run_thread(
        gates.work, "waiting", key="k", owner=panel, when_done=recorder.when_done
    )
    queued = task_manager.run_thread(
        gates.work, "queued", key="k", policy="enqueue", owner=panel, when_done=recorder.when_done
    )
    unowned = task_manager.run_thread(gates.work, "unowned", when_done=recorder.when_done)
    run_until(lambda: {"running", "waiting", "unowned"} <= set(gates.started))
    del panel
    gc.collect()
    run_until(lambda: running.is_final() and waiting.is_final() and queued.is_final())
    for task in (running, waiting, queued):
        assert task.get_status() == "cancelled"
        assert task.cancel_reason is CancelReason.OWNER_GONE
    assert "queued" not in gates.started
    gates.open("unowned")
    assert task_manager.wait_until_settled(10)
    assert recorder.done == [unowned]  # none of the owned tasks' when_done ran


def test_events_queued_before_the_owner_went_away_are_dropped(
    task_manager: TaskManager, recorder: Recorder
) -> None:
    sent = threading.Event()
    release = threading.Event()

    def chatty(context: ExecutionContext) -> None:
        context.send_event("hello", 1)
        sent.set()
        release.wait(10)

    panel = Panel()
    task = task_manager.run_thread(
        chatty, owner=panel, when_event=recorder.when_event, when_done=recorder.when_done
    )
    assert sent.wait(10)  # the event is queued; the main loop has not delivered it
    del panel
    gc.collect()
    release.set()
    assert task_manager.wait_until_settled(10)
    assert task.is_final()
    assert recorder.events == []
    assert recorder.done == []


def test_a_live_owner_changes_nothing(task_manager: TaskManager, recorder: Recorder) -> None:
    panel = Panel()
    task = task_manager.run_thread(lambda ctx: 7, owner=panel, when_done=recorder.when_done)
    assert task_manager.wait_until_settled(10)
    assert recorder.done == [task]
    assert task.result() == 7
    assert task.cancel_reason is None
    # The owner is watched once however many tasks it owns.
    more = [task_manager.run_thread(lambda ctx: 1, owner=panel) for _ in range(20)]
    assert task_manager.wait_until_settled(10)
    assert all(t.result() == 1 for t in more)
    assert len(task_manager._owner_records().records) == 1


def test_a_registered_watcher_decides_when_the_owner_is_gone(
    task_manager: TaskManager, recorder: Recorder
) -> None:
    gates = Gates()
    owner = Closable()
    task = task_manager.run_thread(gates.work, "x", owner=owner, when_done=recorder.when_done)
    run_until(lambda: gates.started == ["x"])
    assert len(owner.on_destroy) == 1
    owner.destroy()  # still alive as an object, but destroyed
    run_until(task.is_final)
    assert task.cancel_reason is CancelReason.OWNER_GONE
    assert task_manager.wait_until_settled(10)
    assert recorder.done == []
    # A task given a destroyed owner is cancelled at once and never starts.
    late = task_manager.run_thread(gates.work, "late", owner=owner, when_done=recorder.when_done)
    run_until(late.is_final)
    assert late.cancel_reason is CancelReason.OWNER_GONE
    assert "late" not in gates.started
    assert task_manager.wait_until_settled(10)
    assert recorder.done == []


def test_the_manager_does_not_keep_the_owner_alive(task_manager: TaskManager) -> None:
    import weakref

    panel = Panel()
    ref = weakref.ref(panel)
    task_manager.run_thread(lambda ctx: None, owner=panel)
    assert task_manager.wait_until_settled(10)
    del panel
    gc.collect()
    assert ref() is None


def test_bad_watcher_registration() -> None:
    watch: Any = lambda owner, gone: None  # noqa: E731
    with pytest.raises(TypeError, match="class"):
        register_owner_type("Widget", watch)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        register_owner_type(Panel, 42)  # type: ignore[arg-type]
