"""Event credit across the process boundary: bounded, never stalling others, cancel-safe."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from tasker import Task, TaskStatus
from tasker.testing import run_until

from . import _flow_work as work
from ._util import SLOW, Events, finish, settle

MIB = 1 << 20


def wait_off_loop(predicate: Callable[[], object], timeout: float = SLOW) -> None:
    """Wait for ``predicate`` without running the main loop (so nothing is delivered)."""
    done = threading.Event()
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while not predicate():
            if deadline.is_set():
                raise TimeoutError(f"still false after {timeout:g} s: {predicate!r}")
            done.wait(0.001)
    finally:
        timer.cancel()


def worker_waits_for_credit(task: Task[Any]) -> bool:
    """True once the parent has heard the task's worker say it waits for credit."""
    return task._credit._remote_need is not None


def test_worker_waits_while_its_events_are_undelivered(make_manager):
    manager = make_manager(max_workers=2, event_buffer=4 * MIB)
    seen: list[int] = []
    task = manager.run_process(
        work.stream_until_cancelled, MIB, when_event=lambda t, n, d: seen.append(len(d))
    )
    wait_off_loop(lambda: worker_waits_for_credit(task))
    # Nothing was delivered, so the parent holds at most the window.
    assert 3 * MIB < task._credit.outstanding <= 4 * MIB + 64
    assert task.get_status() == TaskStatus.RUNNING
    finish(manager.run_process(work.quick, 1))
    # Delivering returns credit: the waiting worker goes on (more than the window's worth).
    run_until(lambda: len(seen) > 8)
    task.cancel()
    finish(task)
    settle(manager)
    assert task.get_status() == TaskStatus.CANCELLED


def test_parent_never_holds_more_than_the_window(make_manager):
    window = 2 * MIB
    manager = make_manager(max_workers=1)
    outstanding: list[int] = []

    def on_event(task: Task[Any], name: str, data: Any) -> None:
        outstanding.append(task._credit.outstanding)  # what still waits behind this one

    task = manager.run_process(
        work.stream, 200, 256 * 1024, when_event=on_event, event_buffer=window
    )
    settle(manager, 60)
    assert task.result() == 200
    assert len(outstanding) == 200
    assert max(outstanding) <= window


def test_cancel_wakes_a_worker_waiting_for_credit(make_manager):
    # A long grace: if the waiting send_event did not return, the task would
    # only end when its worker is killed, long after this test's timeout.
    manager = make_manager(max_workers=1, cancel_grace=120.0, event_buffer=MIB)
    task = manager.run_process(work.stream_until_cancelled, 256 * 1024, when_event=Events())
    wait_off_loop(lambda: worker_waits_for_credit(task))
    task.cancel()
    wait_off_loop(task.is_final, 20.0)  # the main loop never ran: no credit came back
    assert task.get_status() == TaskStatus.CANCELLED
    settle(manager)
    # The worker was not killed: it runs the next task.
    assert finish(manager.run_process(work.quick, 7)).result() == 7


def test_a_waiting_worker_does_not_delay_other_tasks(make_manager):
    manager = make_manager(max_workers=2, event_buffer=MIB)
    stuck = manager.run_process(work.stream_until_cancelled, 256 * 1024, when_event=Events())
    wait_off_loop(lambda: worker_waits_for_credit(stuck))
    events = Events()
    other = manager.run_process(work.stream, 5, 10, when_event=events)
    wait_off_loop(other.is_final)  # its result arrived while the main loop stood still
    assert other.get_status() == TaskStatus.COMPLETED
    assert stuck.get_status() == TaskStatus.RUNNING
    run_until(lambda: len(events.items) == 5)
    assert [data[0] for _, data in events.items] == [0, 1, 2, 3, 4]
    stuck.cancel()
    settle(manager)
    assert stuck.get_status() == TaskStatus.CANCELLED


def test_coalescing_events_keep_only_the_latest_in_order(make_manager):
    manager = make_manager(max_workers=1)
    events = Events()
    task = manager.run_process(work.coalesced_frames, 500, when_event=events)
    wait_off_loop(task.is_final)  # all its events are queued; none delivered yet
    settle(manager)
    assert task.result() == "sent"
    assert events.items == [("row", 0), ("row", 1), ("frame", 500)]


def test_events_without_a_handler_return_their_credit(make_manager):
    manager = make_manager(max_workers=1, event_buffer=1024)
    task = manager.run_process(work.stream, 50, 1000)
    wait_off_loop(task.is_final)
    assert task.get_status() == TaskStatus.COMPLETED


@pytest.mark.parametrize("window", [None, 1])
def test_unbounded_and_tiny_windows_deliver_everything(make_manager, window):
    manager = make_manager(max_workers=1)
    events = Events()
    task = manager.run_process(work.stream, 30, 5000, when_event=events, event_buffer=window)
    settle(manager)
    assert task.result() == 30
    assert [data[0] for _, data in events.items] == list(range(30))


def test_threads_of_a_worker_share_the_window(make_manager):
    # Several threads of one task wait for credit at once: one of them reads
    # the channel, the others wait for it; nothing is lost or reordered.
    manager = make_manager(max_workers=1)
    received: list[tuple[int, int]] = []
    task = manager.run_process(
        work.stream_from_threads,
        3,
        40,
        256 * 1024,
        when_event=lambda t, n, d: received.append((d[0], d[1])),
        event_buffer=MIB,
    )
    settle(manager, 60)
    assert task.result() == 120
    for index in range(3):
        assert [number for i, number in received if i == index] == list(range(40))


def test_timeout_wakes_a_worker_waiting_for_credit(make_manager):
    from tasker import TaskTimeoutError

    manager = make_manager(max_workers=1, cancel_grace=120.0, event_buffer=MIB)
    task = manager.run_process(
        work.stream_until_cancelled, 256 * 1024, when_event=Events(), timeout=0.3
    )
    wait_off_loop(task.is_final, 20.0)  # no credit came back: the timeout woke it
    assert isinstance(task.exception(), TaskTimeoutError)
