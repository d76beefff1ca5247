"""Process lifetime: nothing outlives the application, however it ends.

The application is a child Python process (``tests/stress/_app.py``) with a
marker in its environment; every process it starts (fork server, workers,
a worker's own child) inherits the marker, so after the application is gone
a scan of /proc finds anything it left behind, wherever it was reparented.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasker import GLibDispatcher, TaskManager, WorkerCrashedError
from tasker.testing import run_until

from . import _work
from ._probe import descendant_pids, pid_alive, tasker_threads, wait_for

ROOT = Path(__file__).resolve().parents[2]
#: How long workers may outlive a SIGKILLed application (SPEC: "exit when the application dies").
WORKER_DEADLINE = 1.0


def marked_pids(marker: str) -> set[int]:
    """Live processes whose environment carries ``marker``."""
    needle = f"TASKER_STRESS_MARK={marker}".encode()
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as file:
                environ = file.read()
        except OSError:
            continue
        if needle in environ.split(b"\0") and pid_alive(int(entry)):
            found.add(int(entry))
    return found


class App:
    """The child application and the lines it printed."""

    def __init__(self, mode: str) -> None:
        self.marker = uuid.uuid4().hex
        env = dict(os.environ, TASKER_STRESS_MARK=self.marker, PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.stress._app", mode],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self._buffer = b""

    def read_until(self, last: str, timeout: float = 60.0) -> list[str]:
        """Read stdout lines until one equals ``last``."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while last not in self.lines:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {last!r} from the app; got {self.lines}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise AssertionError(f"the app ended early: {self.lines} {self.stderr()}")
            self._buffer += chunk
            *complete, self._buffer = self._buffer.split(b"\n")
            self.lines += [line.decode() for line in complete]
        return self.lines

    def pids(self, kind: str) -> set[int]:
        return {int(line.split()[1]) for line in self.lines if line.startswith(f"{kind} ")}

    def stderr(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        return self.process.stderr.read().decode(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        # Should a test fail, do not leave its processes to the next one.
        for pid in marked_pids(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def app_factory() -> Iterator[type[App]]:
    apps: list[App] = []

    class Tracked(App):
        def __init__(self, mode: str) -> None:
            super().__init__(mode)
            apps.append(self)

    yield Tracked
    for app in apps:
        app.close()


def test_sigkilled_application_leaves_no_worker(app_factory: type[App]) -> None:
    app = app_factory("wait")
    app.read_until("ready")
    workers, grandchildren = app.pids("worker"), app.pids("grandchild")
    assert len(workers) == 2 and len(grandchildren) == 1
    # A process in the middle of exec() has no readable environment for a moment:
    # wait until /proc shows the marker on every one of them.
    assert wait_for(lambda: workers | grandchildren <= marked_pids(app.marker), 5.0), (
        workers | grandchildren
    ) - marked_pids(app.marker)
    assert all(pid_alive(pid) for pid in workers | grandchildren)

    app.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    app.process.wait(10)
    gone = wait_for(lambda: not any(pid_alive(p) for p in workers | grandchildren), 5.0)
    took = time.monotonic() - killed_at
    survivors = [p for p in workers | grandchildren if pid_alive(p)]
    assert gone, f"workers or their children alive 5 s after the app was killed: {survivors}"
    assert took <= WORKER_DEADLINE, (
        f"workers outlived the SIGKILLed application by {took:.2f} s "
        f"(the bound is {WORKER_DEADLINE} s)"
    )
    # The fork server and anything else follow.
    assert wait_for(lambda: not marked_pids(app.marker), 10.0), marked_pids(app.marker)


def test_application_killed_while_workers_start(app_factory: type[App]) -> None:
    app = app_factory("kill-early")
    app.read_until("submitted")
    app.process.send_signal(signal.SIGKILL)
    app.process.wait(10)
    assert wait_for(lambda: not marked_pids(app.marker), 10.0), marked_pids(app.marker)


@pytest.mark.parametrize(
    ("mode", "exitcode"),
    [("return", 0), ("raise", 1), ("exit", 0), ("sigterm", -signal.SIGTERM)],
)
def test_interpreter_exit_without_shutdown_leaves_nothing(
    app_factory: type[App], mode: str, exitcode: int
) -> None:
    app = app_factory(mode)
    app.read_until("ready")
    assert len(app.pids("worker")) == 2
    # The atexit hook (or, without one, the workers' own watch on the app) cleans up;
    # the app must not hang on its way out.
    try:
        code = app.process.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the app did not exit within 30 s (mode {mode})")
    stderr = app.stderr()
    assert code == exitcode, stderr
    if mode == "raise":
        assert "the application crashed" in stderr
    assert wait_for(lambda: not marked_pids(app.marker), 10.0), (
        marked_pids(app.marker),
        stderr,
    )


# --------------------------------------------------------- shutdown bound


def test_shutdown_with_every_worker_busy_returns_within_grace_plus_a_second() -> None:
    grace = 0.5
    bound = grace + 1.0
    threads_before = set(threading.enumerate())
    descendants_before = descendant_pids()
    manager = TaskManager(GLibDispatcher(), max_workers=2, cancel_grace=grace)
    busy_pids: list[int] = []
    done: list[str] = []

    def on_event(task: object, name: str, data: object) -> None:
        if name == "busy":
            busy_pids.append(int(data))  # type: ignore[call-overload]

    tasks = [
        manager.run_process(
            _work.busy, 120.0, when_event=on_event, when_done=lambda t: done.append(t.get_status())
        )
        for _ in range(2)
    ]
    queued = manager.run_process(_work.busy, 120.0, when_done=lambda t: done.append("queued"))
    gate = threading.Event()
    thread_task = manager.run_thread(_work.thread_gate, gate, 120.0)
    coroutine = manager.add_coroutine(_work.async_chatty, "c")
    run_until(lambda: len(busy_pids) == 2, 60)

    started = time.monotonic()
    manager.shutdown(timeout=5.0)
    took = time.monotonic() - started

    assert took <= bound, (
        f"shutdown() with every worker busy took {took:.2f} s; "
        f"the bound is cancel_grace + 1 s = {bound} s"
    )
    assert [t.get_status() for t in tasks] == ["cancelled", "cancelled"]
    assert queued.get_status() == "cancelled"
    assert thread_task.get_status() == "cancelled"
    assert coroutine.get_status() == "cancelled"
    assert sorted(map(str, done)) == ["cancelled", "cancelled", "queued"]
    assert not any(pid_alive(p) for p in busy_pids)
    assert not tasker_threads()
    assert set(threading.enumerate()) <= threads_before
    assert wait_for(lambda: descendant_pids() <= descendants_before, 5.0)


def test_busy_worker_killed_by_grace_reports_a_cancel_not_a_crash() -> None:
    manager = TaskManager(GLibDispatcher(), max_workers=1, cancel_grace=0.2)
    try:
        pids: list[int] = []
        task = manager.run_process(
            _work.busy, 120.0, when_event=lambda t, n, d: pids.append(int(d))
        )
        run_until(lambda: pids, 60)
        task.cancel()
        run_until(task.is_final, 30)
        assert task.get_status() == "cancelled"
        assert not isinstance(task._task_exception, WorkerCrashedError)
        assert wait_for(lambda: not pid_alive(pids[0]), 5.0)
        assert run_until_result(manager) == 5
    finally:
        manager.shutdown(timeout=5.0)


def run_until_result(manager: TaskManager) -> int:
    task = manager.run_process(_work.add, 2, 3)
    run_until(task.is_final, 30)
    return int(task.result())


def test_shutdown_ends_a_coroutine_that_ignores_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its loop is closed after shutdown(): it can never run again, so it ends cancelled."""
    manager = TaskManager(GLibDispatcher())
    done: list[str] = []
    events: list[str] = []
    task = manager.add_coroutine(
        _work.async_ignore_cancel,
        when_done=lambda t: done.append(t.get_status()),
        when_event=lambda t, n, d: events.append(n),
    )
    run_until(lambda: events, 30)
    manager.shutdown(timeout=0.3)
    assert task.get_status() == "cancelled"
    assert done == ["cancelled"]
    assert not manager.has_tasks()
    assert not tasker_threads()
    assert any("ignored cancellation" in r.getMessage() for r in caplog.records)
