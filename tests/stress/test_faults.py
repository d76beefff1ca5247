"""Fault injection: each fault gets its documented outcome, and the pool keeps serving.

Most tests use a single worker process, so the same pool slot has to heal
after every fault and run the follow-up task.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasker import (
    GLibDispatcher,
    RemoteTraceback,
    Task,
    TaskError,
    TaskManager,
    WorkerCrashedError,
)
from tasker.testing import run_until

from ..conftest import Recorder
from . import _work
from ._probe import pid_alive

TIMEOUT = 30.0


@pytest.fixture
def single() -> Iterator[TaskManager]:
    """A manager with one worker process: every fault hits the slot the follow-up needs."""
    manager = TaskManager(GLibDispatcher(), max_workers=1, cancel_grace=0.5)
    try:
        yield manager
    finally:
        manager.shutdown(timeout=5.0)


def finish(task: Task[Any], timeout: float = TIMEOUT) -> Task[Any]:
    run_until(task.is_final, timeout)
    return task


def serves(manager: TaskManager) -> int:
    """Prove the pool still runs tasks; return the serving worker's pid."""
    assert finish(manager.run_process(_work.add, 2, 3)).result() == 5
    return int(finish(manager.run_process(_work.pid)).result())


# ------------------------------------------------------------ worker death


@pytest.mark.parametrize(
    ("function", "args", "exitcode"),
    [
        pytest.param(_work.kill_self, (), -signal.SIGKILL, id="SIGKILL"),
        pytest.param(_work.segfault, (), -signal.SIGSEGV, id="SIGSEGV"),
        pytest.param(_work.exit_hard, (3,), 3, id="os._exit"),
    ],
)
def test_worker_death_fails_the_task_and_the_pool_heals(
    single: TaskManager, recorder: Recorder, function: Any, args: tuple[Any, ...], exitcode: int
) -> None:
    first_pid = serves(single)
    task = single.run_process(
        function, *args, when_done=recorder.when_done, when_event=recorder.when_event
    )
    run_until(lambda: recorder.done, TIMEOUT)
    error = task.exception()
    assert isinstance(error, WorkerCrashedError), repr(error)
    assert error.exitcode == exitcode
    assert error.signal == (-exitcode if exitcode < 0 else None)
    assert error.pid == first_pid
    # What the worker sent before dying arrived, before when_done.
    assert [(name, data) for _, name, data in recorder.events] == [("before", first_pid)]
    assert recorder.threads == {threading.current_thread().name}
    second_pid = serves(single)
    assert second_pid != first_pid


def test_crash_beside_a_busy_worker_leaves_it_alone(recorder: Recorder) -> None:
    manager = TaskManager(GLibDispatcher(), max_workers=2, cancel_grace=0.5)
    try:
        busy = manager.run_process(
            _work.chatty, "busy", when_event=recorder.when_event, when_done=recorder.when_done
        )
        run_until(lambda: len(recorder.events) >= 3, TIMEOUT)
        for crash in (_work.kill_self, _work.segfault):
            crashed = finish(manager.run_process(crash))
            assert isinstance(crashed.exception(), WorkerCrashedError)
        serves(manager)
        assert not busy.is_final()
        busy_pid = recorder.events[0][2]
        assert pid_alive(busy_pid)
        assert busy.cancel()
        run_until(lambda: recorder.done, TIMEOUT)
        assert busy.get_status() == "cancelled"
        names = [name for _, name, _ in recorder.events]
        assert names[0] == "started" and names[-1] == "end"
        ticks = [data for _, name, data in recorder.events if name == "tick"]
        assert ticks == list(range(len(ticks)))
        assert recorder.events[-1][2] == len(ticks)
    finally:
        manager.shutdown(timeout=5.0)


def test_queued_tasks_survive_the_crash_ahead_of_them(single: TaskManager) -> None:
    crash = single.run_process(_work.kill_self)
    queued = [single.run_process(_work.add, i, i) for i in range(5)]
    run_until(lambda: all(t.is_final() for t in [crash, *queued]), TIMEOUT)
    assert isinstance(crash.exception(), WorkerCrashedError)
    assert [t.result() for t in queued] == [0, 2, 4, 6, 8]


# ------------------------------------------------------------------ memory


def test_memory_error_keeps_its_type_and_the_worker(single: TaskManager) -> None:
    first_pid = serves(single)
    task = finish(single.run_process(_work.raise_memory_error))
    error = task.exception()
    assert type(error) is MemoryError
    assert str(error) == "simulated out of memory"
    assert isinstance(error.__cause__, RemoteTraceback)
    assert serves(single) == first_pid  # an exception is not a crash: same worker


def test_address_space_limit(single: TaskManager) -> None:
    """Allocating past RLIMIT_AS raises MemoryError in the worker; it goes on serving.

    The limit stays in force in that worker, with room for small tasks.
    """
    first_pid = serves(single)
    task = finish(single.run_process(_work.exhaust_address_space, 64))
    error = task.exception()
    assert type(error) is MemoryError, repr(error)
    assert isinstance(error.__cause__, RemoteTraceback)
    assert serves(single) == first_pid


# ------------------------------------------------------------- initializer


def test_initializer_that_raises_once(tmp_path: Path) -> None:
    marker = str(tmp_path / "initialised-once")
    manager = TaskManager(
        GLibDispatcher(), max_workers=1, initializer=_work.fail_first_time, initargs=(marker,)
    )
    try:
        first = finish(manager.run_process(_work.add, 1, 1))
        error = first.exception()
        assert type(error) is RuntimeError, repr(error)
        assert "initializer failed on purpose" in str(error)
        assert isinstance(error.__cause__, RemoteTraceback)
        # The next submit starts a fresh worker; its initializer succeeds.
        serves(manager)
    finally:
        manager.shutdown(timeout=5.0)


def test_initializer_that_always_raises_fails_tasks_without_spinning(tmp_path: Path) -> None:
    counter = tmp_path / "initializer-calls"
    manager = TaskManager(
        GLibDispatcher(),
        max_workers=2,
        initializer=_work.always_fail_initializer,
        initargs=(str(counter),),
    )
    try:
        for round_ in range(3):
            tasks = [manager.run_process(_work.add, round_, i) for i in range(4)]
            run_until(lambda tasks=tasks: all(t.is_final() for t in tasks), TIMEOUT)
            for task in tasks:
                error = task.exception()
                assert type(error) is LookupError, repr(error)
                assert "never works" in str(error)
        # Thread and coroutine tasks on the same manager are unaffected.
        assert finish(manager.run_thread(_work.add, 1, 2)).result() == 3
        assert finish(manager.add_coroutine(_work.async_quick, "c", 4)).result() == 4
        assert manager.wait_until_settled(TIMEOUT)
        # Workers are not restarted in a loop: a bounded number of attempts per submit.
        calls = counter.read_text().split()
        assert 1 <= len(calls) <= 3 * 4 * 2, calls
    finally:
        manager.shutdown(timeout=5.0)


# ------------------------------------------------------ unpickling in parent


def test_result_that_cannot_be_unpickled_in_the_parent(single: TaskManager) -> None:
    first_pid = serves(single)
    task = finish(single.run_process(_work.return_parent_unloadable))
    error = task.exception()
    assert isinstance(error, TaskError), repr(error)
    assert "could not be unpickled in the parent" in str(error)
    assert "refusing to be unpickled" in str(error)
    assert serves(single) == first_pid


def test_exception_that_cannot_be_unpickled_in_the_parent(single: TaskManager) -> None:
    first_pid = serves(single)
    task = finish(single.run_process(_work.raise_parent_unloadable))
    error = task.exception()
    assert isinstance(error, TaskError), repr(error)
    assert error.type_name == "tests.stress._work.ParentCannotLoadError"
    assert error.message == "cannot come home"
    assert "raise_parent_unloadable" in error.traceback_text
    assert serves(single) == first_pid


# ---------------------------------------------------------------- callbacks


def test_raising_callbacks_of_process_tasks(
    single: TaskManager, tasker_errors: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def bad_event(task: Task[Any], name: str, data: Any) -> None:
        calls.append(f"event {data}")
        raise RuntimeError("when_event broke")

    def bad_done(task: Task[Any]) -> None:
        calls.append("done")
        raise RuntimeError("when_done broke")

    def bad_handler(sender: object, tasks: list[Task[Any]], progress: float) -> None:
        raise RuntimeError("handler broke")

    single.tasks_updated.connect(bad_handler)
    task = single.run_process(_work.events, "x", 3, when_event=bad_event, when_done=bad_done)
    run_until(lambda: "done" in calls, TIMEOUT)
    assert calls == ["event 0", "event 1", "event 2", "done"]  # every event despite the errors
    assert task.result() == 3
    serves(single)
    assert single.wait_until_settled(TIMEOUT)
    messages = [record.getMessage() for record in tasker_errors.records]
    assert sum("task callback" in m for m in messages) == 4
    assert any("tasks_updated handler" in m for m in messages)


def test_a_handler_that_blocks_the_main_loop_loses_nothing(single: TaskManager) -> None:
    """A tasks_updated handler blocks the main loop for a second while a worker floods it."""
    count = 20_000
    blocked = threading.Event()
    updates: list[tuple[int, float]] = []

    def blocking_handler(sender: object, tasks: list[Task[Any]], progress: float) -> None:
        updates.append((len(tasks), progress))
        if received and not blocked.is_set():  # the worker is streaming: block now
            blocked.set()
            time.sleep(1.0)  # the fault under test: a handler hogging the main loop

    single.tasks_updated.connect(blocking_handler)
    received: list[int] = []
    order: list[int] = []

    def on_event(task: Task[Any], name: str, data: Any) -> None:
        received.append(data[0])

    def on_done(task: Task[Any]) -> None:
        order.append(len(received))

    task = single.run_process(_work.many_events, count, 64, when_event=on_event, when_done=on_done)
    run_until(lambda: order, 60)
    assert blocked.is_set()
    assert task.result() == count
    assert received == list(range(count))
    assert order == [count]  # every event before when_done
    run_until(lambda: updates and updates[-1] == (0, 1.0), TIMEOUT)
    serves(single)


def test_logging_from_a_crashing_worker_is_not_lost(
    single: TaskManager, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        task = finish(single.run_process(_work.log_then_die, "last words"))
    assert isinstance(task.exception(), WorkerCrashedError)
    assert any(r.getMessage() == "last words" for r in caplog.records)
    serves(single)
