"""QtDispatcher on a real Qt event loop (offscreen platform), driven through pytest-qt."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tasker import TaskManager, TaskStatus

from ._work import upper
from .conftest import qt_run_until

ROOT = Path(__file__).resolve().parents[2]


def _run(dispatcher: Any, predicate: Any, timeout: float = 10.0) -> None:
    assert dispatcher.run_until(predicate, timeout) is True


def test_callbacks_from_many_threads_run_on_the_gui_thread_in_order(qapp: Any) -> None:
    from tasker.qt import QtDispatcher

    dispatcher = QtDispatcher()
    seen: dict[int, list[int]] = {}
    threads_seen: set[int] = set()

    def record(source: int, n: int) -> None:
        threads_seen.add(threading.get_ident())
        seen.setdefault(source, []).append(n)

    def produce(source: int) -> None:
        for n in range(2000):
            dispatcher.call_soon(lambda n=n: record(source, n))

    producers = [threading.Thread(target=produce, args=(i,)) for i in range(4)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    _run(dispatcher, lambda: sum(map(len, seen.values())) == 8000)
    assert threads_seen == {threading.get_ident()}
    for source in range(4):
        assert seen[source] == list(range(2000))  # each thread's calls in the order made


def test_call_later_runs_on_a_qtimer_in_delay_order(qapp: Any, tasker_errors: Any) -> None:
    from tasker.qt import QtDispatcher

    dispatcher = QtDispatcher()
    order: list[str] = []
    off_thread = threading.Thread(
        target=lambda: dispatcher.call_later(0.03, lambda: order.append("later, from a thread"))
    )
    off_thread.start()
    off_thread.join()
    dispatcher.call_later(0.01, lambda: order.append("later"))
    dispatcher.call_soon(lambda: order.append("soon"))
    dispatcher.call_soon(lambda: 1 / 0)
    dispatcher.call_soon(lambda: order.append("after error"))
    _run(dispatcher, lambda: len(order) == 4)
    assert order == ["soon", "after error", "later", "later, from a thread"]
    assert "ZeroDivisionError" in tasker_errors.text


def test_the_drain_works_in_time_slices(qapp: Any) -> None:
    from PySide6.QtCore import QTimer

    from tasker.qt import QtDispatcher

    dispatcher = QtDispatcher(slice_ms=2.0)
    ran = 0
    slices: list[int] = []

    def slow() -> None:
        nonlocal ran
        ran += 1
        end = time.perf_counter() + 0.0005
        while time.perf_counter() < end:
            pass

    # A zero-interval timer runs once per event-loop pass: each of its runs sees
    # how many callables the slices before it ran.
    marker = QTimer()
    marker.timeout.connect(lambda: slices.append(ran))
    marker.start(0)
    for _ in range(200):
        dispatcher.call_soon(slow)
    try:
        _run(dispatcher, lambda: ran == 200)
    finally:
        marker.stop()
    steps = [b - a for a, b in itertools.pairwise(slices) if b > a]
    assert len(steps) > 10  # the 200 callables were spread over many event-loop passes
    assert max(steps) <= 10  # never much more than a 2 ms slice of 0.5 ms callables


def test_run_until_times_out_and_does_nothing_off_the_gui_thread(qapp: Any) -> None:
    from tasker.qt import QtDispatcher

    dispatcher = QtDispatcher()
    assert dispatcher.run_until(lambda: False, 0.02) is False
    outcome: list[bool | None] = []
    thread = threading.Thread(target=lambda: outcome.append(dispatcher.run_until(bool, 1.0)))
    thread.start()
    thread.join()
    assert outcome == [None]
    assert dispatcher.is_dispatch_thread()
    other: list[bool] = []
    thread = threading.Thread(target=lambda: other.append(dispatcher.is_dispatch_thread()))
    thread.start()
    thread.join()
    assert other == [False]


def test_close_drops_queued_and_later_calls(qapp: Any) -> None:
    from tasker.qt import QtDispatcher

    dispatcher = QtDispatcher()
    ran: list[str] = []
    dispatcher.call_later(0.01, lambda: ran.append("timer"))
    dispatcher.call_soon(lambda: ran.append("queued"))
    dispatcher.close()
    dispatcher.call_soon(lambda: ran.append("after close"))
    marker = QtDispatcher()
    fired: list[bool] = []
    marker.call_later(0.05, lambda: fired.append(True))
    _run(marker, lambda: bool(fired))
    assert ran == []


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_bad_slice_is_refused(qapp: Any, bad: float) -> None:
    from tasker.qt import QtDispatcher

    with pytest.raises(ValueError, match="slice_ms"):
        QtDispatcher(slice_ms=bad)
    with pytest.raises(TypeError, match="slice_ms"):
        QtDispatcher(slice_ms="4")  # type: ignore[arg-type]


def test_creating_it_off_the_gui_thread_is_refused(qapp: Any) -> None:
    from tasker.qt import QtDispatcher

    errors: list[BaseException] = []

    def make() -> None:
        try:
            QtDispatcher()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert "GUI thread" in str(errors[0])


def test_manager_on_qt_runs_every_kind_and_delivers_on_the_gui_thread(
    qt_manager: TaskManager,
) -> None:
    threads: set[int] = set()
    done: list[Any] = []

    def when_done(task: Any) -> None:
        threads.add(threading.get_ident())
        done.append(task)

    async def coro(context: Any) -> str:
        context.set_progress(0.5)
        return "coroutine"

    qt_manager.add_coroutine(coro, when_done=when_done)
    qt_manager.run_thread(upper, "thread", when_done=when_done)
    qt_manager.run_process(upper, "process", when_done=when_done)
    qt_run_until(qt_manager, lambda: len(done) == 3)
    assert sorted(t.result() for t in done) == ["PROCESS", "THREAD", "coroutine"]
    assert threads == {threading.get_ident()}
    assert qt_manager.wait_until_settled(5.0)


def test_configure_with_a_qt_dispatcher(qapp: Any) -> None:
    from tasker.qt import QtDispatcher

    manager = TaskManager()
    dispatcher = QtDispatcher()
    manager.configure(scheduler=dispatcher)
    try:
        task = manager.run_thread(upper, "abc")
        qt_run_until(manager, task.is_final)
        assert task.result() == "ABC"
        assert dispatcher.managers() == [manager]  # known for aboutToQuit
    finally:
        manager.shutdown()


def _python(script: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_about_to_quit_shuts_down_qt_managers_task_mgr_included() -> None:
    """A real ``app.quit()``: every manager on a QtDispatcher stops its tasks and workers."""
    done = _python(
        """
        import json, time
        from PySide6.QtCore import QCoreApplication, QTimer
        from tasker import TaskManager, task_mgr
        from tasker.qt import QtDispatcher
        from tests.qt._work import spin

        app = QCoreApplication([])
        task_mgr.configure(scheduler=QtDispatcher(), cancel_grace=0.2)
        private = TaskManager(QtDispatcher(), cancel_grace=0.2)
        finished = []
        pids = []
        tasks = [
            task_mgr.run_thread(spin, when_done=lambda t: finished.append("global thread")),
            task_mgr.run_process(
                spin,
                when_done=lambda t: finished.append("global process"),
                when_event=lambda t, name, pid: pids.append(pid),
            ),
            private.run_thread(spin, when_done=lambda t: finished.append("private thread")),
        ]
        # Quit once both process workers run: the shutdown then has something to stop.
        give_up = time.monotonic() + 20
        def quit_when_running():
            running = pids and all(t.get_status().value == "running" for t in tasks)
            if running or time.monotonic() > give_up:
                app.quit()
            else:
                QTimer.singleShot(10, quit_when_running)
        QTimer.singleShot(10, quit_when_running)
        app.exec()
        def alive(pid):  # a zombie waits for the fork server to reap it: it runs nothing
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
            except FileNotFoundError:
                return False
        print(json.dumps({
            "statuses": [t.get_status().value for t in tasks],
            "finished": sorted(finished),
            "workers_alive": [pid for pid in pids if alive(pid)],
            "shut_down": [task_mgr._shut_down, private._shut_down],
        }))
        """
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [TaskStatus.CANCELLED.value] * 3
    assert report["finished"] == ["global process", "global thread", "private thread"]
    assert report["workers_alive"] == []
    assert report["shut_down"] == [True, True]


def test_a_queued_signal_object_storm_does_not_crash_pyside() -> None:
    """The storm that aborts CPython 3.11 with PySide6 6.12.0 (``bool_dealloc``).

    Run in a child process: a crash there fails this test instead of killing pytest.
    """
    done = _python(
        """
        import threading
        from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal

        class Emitter(QObject):
            fired = Signal(object)

        app = QCoreApplication([])
        received = []
        emitter = Emitter()
        payloads = (True, False, None, 1, "x", (1, 2), {"k": [1]})

        def storm():
            for n in range(20_000):
                emitter.fired.emit(payloads[n % len(payloads)])

        # Emitted from another thread, so every emit is a queued call to the GUI thread.
        receiver = QObject()
        emitter.fired.connect(received.append, Qt.ConnectionType.QueuedConnection)
        worker = threading.Thread(target=storm)
        worker.start()
        for n in range(20_000):
            emitter.fired.emit(payloads[n % len(payloads)])
            if n % 100 == 0:
                QCoreApplication.processEvents()
        worker.join()
        while len(received) < 40_000:
            QCoreApplication.processEvents()
        print(len(received))
        """
    )
    assert done.returncode == 0, (
        f"PySide6 crashed (exit code {done.returncode}) under a queued Signal(object) storm: "
        f"{done.stderr[-2000:]}"
    )
    assert done.stdout.split()[-1] == "40000"


def test_call_on_main_thread_runs_on_the_gui_thread(qt_manager: TaskManager) -> None:
    results: list[int] = []
    caller = threading.Thread(
        target=lambda: results.append(qt_manager.call_on_main_thread(threading.get_ident))
    )
    caller.start()
    qt_run_until(qt_manager, lambda: bool(results))
    caller.join()
    assert results == [threading.get_ident()]
    # On the GUI thread itself it runs at once instead of waiting for itself.
    assert qt_manager.call_on_main_thread(threading.get_ident) == threading.get_ident()
