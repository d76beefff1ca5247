"""Pause and resume of process tasks: checkpoints, SIGSTOP freezing, queued tasks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tasker import TaskManager, TaskTimeoutError
from tasker.testing import drain, run_until

from . import _pause_work as work
from ._util import SLOW, Events, finish, wait_gone


def proc_state(pid: int) -> str:
    """The one-letter state of a process (T: stopped) from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def test_pause_at_a_checkpoint_and_resume(
    make_manager: Callable[..., TaskManager], tmp_path: Path
) -> None:
    manager = make_manager()
    events = Events()
    stop = tmp_path / "stop"
    task = manager.run_process(work.checkpoint_loop, str(stop), when_event=events)
    events.wait("started")
    run_until(lambda: task.get_message() is not None, SLOW)
    assert task.pause() is True
    run_until(lambda: task.get_pause_state() == "paused", SLOW)
    assert task.get_status() == "running"
    message = task.get_message()
    drain(0.2)
    assert task.get_message() == message  # it does not run on
    assert task.resume() is True
    run_until(lambda: task.get_message() != message, SLOW)
    stop.touch()
    finish(task)
    assert task.result() > 0
    assert task.timings.paused_total > 0
    assert task.timings.worker == events.first("started")


def test_freeze_stops_the_worker_and_resume_continues_it(
    make_manager: Callable[..., TaskManager],
) -> None:
    manager = make_manager()
    events = Events()
    task = manager.run_process(work.spin, 60.0, when_event=events)
    pid = events.wait("started")
    assert task.pause(freeze=True) is True
    assert task.get_pause_state() == "paused"  # at once: no checkpoint needed
    run_until(lambda: proc_state(pid) == "T", SLOW)
    assert task.resume() is True
    run_until(lambda: proc_state(pid) != "T", SLOW)
    task.cancel()
    finish(task)
    assert task.get_status() == "cancelled"


def test_cancel_a_frozen_task(make_manager: Callable[..., TaskManager]) -> None:
    manager = make_manager(cancel_grace=30.0)
    events = Events()
    task = manager.run_process(work.spin, 60.0, when_event=events)
    pid = events.wait("started")
    task.pause(freeze=True)
    run_until(lambda: proc_state(pid) == "T", SLOW)
    task.cancel()
    # Continued, it sees its cancel flag and returns (long before the 30 s grace).
    finish(task)
    assert task.get_status() == "cancelled"
    after = manager.run_process(work.pid)
    finish(after)
    assert after.result() == pid  # the same worker: it was not killed


def test_a_frozen_task_does_not_time_out(make_manager: Callable[..., TaskManager]) -> None:
    manager = make_manager()
    events = Events()
    # spin() counts its own CPU time: frozen, it uses none.
    task = manager.run_process(work.spin, 0.5, timeout=1.0, when_event=events)
    pid = events.wait("started")
    task.pause(freeze=True)
    run_until(lambda: proc_state(pid) == "T", SLOW)
    drain(1.5)  # beyond the timeout, all of it frozen
    assert not task.is_final()
    task.resume()
    finish(task)
    # It finishes its 0.5 s of CPU within the second the timeout allows, or,
    # on a loaded machine, times out: never because of the frozen 1.5 s.
    if task.get_status() == "failed":
        assert isinstance(task.exception(), TaskTimeoutError)
        assert task.timings.run_time >= 1.0 - 0.01
    else:
        assert task.get_status() == "completed"
    assert task.timings.paused_total >= 1.5


def test_a_paused_queued_task_does_not_start(
    make_manager: Callable[..., TaskManager], tmp_path: Path
) -> None:
    manager = make_manager(max_workers=1)
    events = Events()
    stop = tmp_path / "stop"
    first = manager.run_process(work.checkpoint_loop, str(stop), when_event=events)
    events.wait("started")
    queued = manager.run_process(work.pid)
    assert queued.pause() is True
    assert queued.get_pause_state() == "paused"
    stop.touch()
    finish(first)
    drain(0.2)  # the worker is free: a task that could start would start now
    assert queued.get_status() == "pending"
    assert queued.resume() is True
    finish(queued)
    assert queued.get_status() == "completed"


def test_cancel_a_paused_queued_task(
    make_manager: Callable[..., TaskManager], tmp_path: Path
) -> None:
    manager = make_manager(max_workers=1)
    events = Events()
    stop = tmp_path / "stop"
    first = manager.run_process(work.checkpoint_loop, str(stop), when_event=events)
    events.wait("started")
    queued = manager.run_process(work.pid)
    queued.pause()
    queued.cancel()
    finish(queued)
    assert queued.get_status() == "cancelled"
    stop.touch()
    finish(first)
    again = manager.run_process(work.pid)
    finish(again)
    assert again.get_status() == "completed"


def test_shutdown_with_frozen_and_paused_tasks(tmp_path: Path) -> None:
    from tasker._dispatch._glib import GLibDispatcher

    manager = TaskManager(GLibDispatcher(), max_workers=2, cancel_grace=0.5)
    events = Events()
    frozen = manager.run_process(work.spin, 60.0, when_event=events)
    paused = manager.run_process(work.checkpoint_loop, str(tmp_path / "never"), when_event=events)
    queued = manager.run_process(work.pid)
    run_until(lambda: events.names().count("started") == 2, SLOW)
    pids = [data for name, data in events.items if name == "started"]
    frozen.pause(freeze=True)
    paused.pause()
    queued.pause()
    run_until(lambda: paused.get_pause_state() == "paused", SLOW)
    manager.shutdown(timeout=5.0)
    assert {t.get_status() for t in (frozen, paused, queued)} == {"cancelled"}
    wait_gone(pids)


def test_pause_all_freezes_process_tasks_only(
    make_manager: Callable[..., TaskManager], tmp_path: Path
) -> None:
    import threading

    manager = make_manager()
    events = Events()
    process = manager.run_process(work.spin, 60.0, when_event=events)
    pid = events.wait("started")
    release = threading.Event()

    def thread_body(context: object) -> None:
        release.wait(10.0)

    thread = manager.run_thread(thread_body)
    run_until(lambda: thread.get_status() == "running")
    assert manager.pause_all(freeze=True) == 2
    run_until(lambda: proc_state(pid) == "T", SLOW)
    assert process.get_pause_state() == "paused"
    assert thread.get_pause_state() == "pausing"  # it never calls checkpoint()
    assert manager.resume_all() == 2
    run_until(lambda: proc_state(pid) != "T", SLOW)
    release.set()
    process.cancel()
    finish(process)
    finish(thread)
