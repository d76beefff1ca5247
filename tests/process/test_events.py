"""Events and progress from workers: complete, in order, before when_done; progress coalesced."""

from __future__ import annotations

from tasker import TaskStatus

from . import _work as work
from ._util import Events, finish, settle


def test_ten_thousand_events_arrive_complete_and_in_order_before_when_done(make_manager):
    manager = make_manager()
    received: list[int] = []
    at_done: list[int] = []
    task = manager.run_process(
        work.events,
        10_000,
        when_event=lambda t, name, data: received.append(data),
        when_done=lambda t: at_done.append(len(received)),
    )
    settle(manager, 120)
    assert task.result() == 10_000
    assert received == list(range(10_000))
    assert at_done == [10_000]


def test_events_run_on_the_main_thread(make_manager):
    import threading

    manager = make_manager()
    events = Events()
    finish(manager.run_process(work.events, 3, when_event=events))
    settle(manager)
    assert events.threads == {threading.main_thread().name}


def test_events_of_concurrent_tasks_stay_with_their_task(make_manager):
    manager = make_manager(max_workers=2)
    streams = [Events() for _ in range(4)]
    tasks = [manager.run_process(work.events, 500, when_event=s) for s in streams]
    settle(manager, 60)
    for task, stream in zip(tasks, streams, strict=True):
        assert task.result() == 500
        assert [data for _, data in stream.items] == list(range(500))


def test_progress_storm_is_coalesced_and_ends_exact(make_manager):
    manager = make_manager(max_workers=1)
    updates: list[float] = []
    manager.tasks_updated.connect(lambda sender, tasks, progress: updates.append(progress))
    finals: list[tuple[float, str | None]] = []
    task = manager.run_process(
        work.progress_storm,
        300_000,
        when_done=lambda t: finals.append((t.get_progress(), t.get_message())),
    )
    settle(manager, 120)
    assert task.get_status() == TaskStatus.COMPLETED
    assert finals == [(1.0, "step 300000")]
    # 600,000 updates in the worker; the main thread saw a handful of them.
    assert len(updates) < 10_000


def test_flush_sends_progress_at_once(make_manager):
    from tasker.testing import run_until

    manager = make_manager(update_rate=0.01)  # one message per 100 s, unless flushed
    task = manager.run_process(work.flush_and_wait)
    run_until(lambda: task.get_message() == "half way", 30)
    assert task.get_progress() == 0.5
    task.cancel()
    finish(task)
