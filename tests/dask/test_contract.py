"""The behaviour contract of run_process, on DaskBackend's embedded LocalCluster.

One module-scoped cluster of 2 single-thread workers serves every test.
Synchronisation is by events and the main loop (run_until), never sleeps.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from tasker import (
    CancelledError,
    RemoteTraceback,
    SerializationError,
    Task,
    TaskManager,
    TaskStatus,
    TaskTimeoutError,
    WorkerCrashedError,
)
from tasker._dispatch._glib import GLibDispatcher
from tasker.dask import DaskBackend
from tasker.testing import run_until

from ..process._util import descendants, process_gone
from . import _work as work

SLOW = 60.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[DaskBackend, TaskManager]]:
    backend = DaskBackend(n_workers=2)
    manager = TaskManager(GLibDispatcher(), process_backend=backend, cancel_grace=0.5)
    backend.start()
    yield backend, manager
    manager.shutdown(timeout=10.0)


@pytest.fixture
def backend(cluster: tuple[DaskBackend, TaskManager]) -> DaskBackend:
    return cluster[0]


@pytest.fixture
def manager(cluster: tuple[DaskBackend, TaskManager]) -> TaskManager:
    return cluster[1]


class Recorder:
    def __init__(self) -> None:
        self.order: list[tuple[str, Any]] = []
        self.done = 0

    def when_event(self, task: Task[Any], name: str, data: Any) -> None:
        self.order.append((name, data))

    def when_done(self, task: Task[Any]) -> None:
        self.done += 1
        self.order.append(("done", task.get_status()))

    def first(self, name: str) -> Any:
        run_until(lambda: any(n == name for n, _ in self.order), SLOW)
        return next(d for n, d in self.order if n == name)


def finish(task: Task[Any], recorder: Recorder | None = None) -> Task[Any]:
    run_until(task.is_final, SLOW)
    if recorder is not None:
        run_until(lambda: recorder.done, SLOW)
    return task


def test_result_and_embedded_cluster_on_loopback(backend: DaskBackend, manager: TaskManager):
    task = finish(manager.run_process(work.add, 2, 3))
    assert task.result() == 5
    client = backend.client
    assert client is not None
    info = client.scheduler_info()
    assert info["address"].startswith("tcp://127.0.0.1:")
    assert all(address.startswith("tcp://127.0.0.1:") for address in info["workers"])


def test_progress_is_coalesced_and_final_values_arrive(manager: TaskManager):
    seen: list[tuple[float, str | None]] = []

    def on_updated(sender: object, tasks: list[Task[Any]], progress: float) -> None:
        for task in tasks:
            seen.append((task.get_progress(), task.get_message()))

    manager.tasks_updated.connect(on_updated)
    try:
        task = manager.run_process(work.progress_until_cancelled, 20_000)
        # Intermediate progress reaches the main thread while the task runs.
        run_until(lambda: task.get_progress() == 0.5 and task.get_message() == "half", SLOW)
        assert task.get_status() == TaskStatus.RUNNING
        task.cancel()
        finish(task)
        assert task.get_status() == TaskStatus.CANCELLED
        # 20,000 reports were coalesced on the worker into a few messages.
        assert len({value for value, _ in seen}) < 1000
        done = finish(manager.run_process(work.progress_then_finish, 5000))
        assert (done.get_progress(), done.get_message()) == (1.0, "step 5000")
    finally:
        manager.tasks_updated.disconnect(on_updated)


def test_events_arrive_in_order_before_when_done(manager: TaskManager):
    recorder = Recorder()
    task = manager.run_process(
        work.many_events, 300, when_event=recorder.when_event, when_done=recorder.when_done
    )
    finish(task, recorder)
    assert task.result() == 300
    assert recorder.order == [("n", index) for index in range(300)] + [
        ("done", TaskStatus.COMPLETED)
    ]


def test_cooperative_cancellation(manager: TaskManager):
    recorder = Recorder()
    task = manager.run_process(
        work.loop_until_cancelled, when_event=recorder.when_event, when_done=recorder.when_done
    )
    recorder.first("started")
    assert task.cancel()
    finish(task, recorder)
    assert task.get_status() == TaskStatus.CANCELLED
    with pytest.raises(CancelledError):
        task.result()
    # The function saw its flag and returned; what it sent first still arrived, before when_done.
    assert [name for name, _ in recorder.order] == ["started", "saw-cancel", "done"]
    assert recorder.done == 1


def test_cancel_while_queued_ends_at_once(manager: TaskManager, tmp_path: Path):
    # Both workers busy, so the third task waits in Dask's queue.
    release = tmp_path / "release"
    blockers = [manager.run_process(work.ignore_cancel, str(release)) for _ in range(2)]
    run_until(lambda: all(b.get_status() == TaskStatus.RUNNING for b in blockers), SLOW)
    recorder = Recorder()
    queued = manager.run_process(
        work.loop_until_cancelled, when_event=recorder.when_event, when_done=recorder.when_done
    )
    assert queued.cancel()
    # It ends cancelled without waiting for a worker.
    finish(queued, recorder)
    assert queued.get_status() == TaskStatus.CANCELLED
    assert recorder.order == [("done", TaskStatus.CANCELLED)]
    release.touch()
    for blocker in blockers:
        assert finish(blocker).result() == "late result"
    # The freed workers serve new work: the cancelled task holds none of them.
    assert [finish(manager.run_process(work.add, i, 1)).result() for i in range(3)] == [1, 2, 3]


def test_grace_expiry_ends_cancelled_and_drops_the_late_result(
    manager: TaskManager, tmp_path: Path
):
    recorder = Recorder()
    release = tmp_path / "release"
    task = manager.run_process(
        work.ignore_cancel,
        str(release),
        cancel_grace=0.2,
        when_event=recorder.when_event,
        when_done=recorder.when_done,
    )
    recorder.first("started")
    task.cancel()
    finish(task, recorder)
    assert task.get_status() == TaskStatus.CANCELLED
    release.touch()  # the function now returns its late result, which nobody sees
    after = finish(manager.run_process(work.add, 2, 2))
    assert after.result() == 4
    assert recorder.done == 1
    assert task.get_status() == TaskStatus.CANCELLED


def test_timeout_fails_with_task_timeout_error(manager: TaskManager):
    task = finish(manager.run_process(work.loop_until_cancelled, timeout=0.3))
    assert task.get_status() == TaskStatus.FAILED
    assert isinstance(task.exception(), TaskTimeoutError)


def test_errors_keep_type_and_remote_traceback(manager: TaskManager):
    task = finish(manager.run_process(work.fail, "boom"))
    error = task.exception()
    assert type(error) is ValueError and str(error) == "boom"
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "in fail" in error.__cause__.traceback_text
    custom = finish(manager.run_process(work.fail_custom)).exception()
    assert isinstance(custom, work.CustomError) and custom.code == 7


def test_unpicklable_data_fails_clearly(manager: TaskManager):
    lock = threading.Lock()
    argument = finish(manager.run_process(work.add, lock, 1))
    error = argument.exception()
    assert isinstance(error, SerializationError)
    assert "argument 1" in str(error) and "lock" in str(error)
    result = finish(manager.run_process(work.unpicklable_result))
    assert isinstance(result.exception(), SerializationError)
    assert "result" in str(result.exception())
    event = finish(manager.run_process(work.unpicklable_event))
    assert event.result().startswith("SerializationError: the payload of event 'bad'")
    # Nothing hangs and the cluster still works.
    assert finish(manager.run_process(work.add, 1, 2)).result() == 3


def test_killed_worker_fails_once_and_never_reruns(manager: TaskManager, tmp_path: Path):
    log = tmp_path / "runs"
    recorder = Recorder()
    task = manager.run_process(
        work.record_start_then_wait,
        str(log),
        when_event=recorder.when_event,
        when_done=recorder.when_done,
    )
    pid = recorder.first("started")
    os.kill(pid, signal.SIGKILL)
    finish(task, recorder)
    assert task.get_status() == TaskStatus.FAILED
    error = task.exception()
    assert isinstance(error, WorkerCrashedError)
    assert error.pid == pid
    # Work submitted after the crash runs (on the surviving or restarted worker)...
    for _ in range(2):
        assert finish(manager.run_process(work.add, 1, 1)).result() == 2
    # ...and the killed task was never started again.
    assert log.read_text().split() == [str(pid)]
    assert recorder.done == 1


def test_restart_on_grace_restarts_the_stuck_worker(backend: DaskBackend, tmp_path: Path):
    restarting = DaskBackend(backend.client, restart_on_grace=True)
    manager = TaskManager(GLibDispatcher(), process_backend=restarting, cancel_grace=0.2)
    try:
        recorder = Recorder()
        task = manager.run_process(
            work.ignore_cancel, str(tmp_path / "never"), when_event=recorder.when_event
        )
        pid = recorder.first("started")
        task.cancel()
        finish(task)
        assert task.get_status() == TaskStatus.CANCELLED
        run_until(lambda: process_gone(pid), SLOW)
        assert finish(manager.run_process(work.add, 3, 4)).result() == 7
    finally:
        manager.shutdown(timeout=10.0)
    # The shared client stays usable: shutting down a backend leaves a passed-in client open.
    assert backend.client is not None and backend.client.status == "running"


def test_bad_input_is_refused_clearly():
    with pytest.raises(TypeError, match="client_or_address"):
        DaskBackend(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_workers"):
        DaskBackend(n_workers=0)
    with pytest.raises(TypeError, match="LocalCluster options"):
        DaskBackend("tcp://127.0.0.1:1", processes=False)
    with pytest.raises(TypeError, match="process_backend"):
        TaskManager(process_backend=object())  # type: ignore[arg-type]
    unattached = DaskBackend()
    with pytest.raises(RuntimeError, match="process_backend"):
        unattached.cancel(None)  # type: ignore[arg-type]


def test_one_backend_serves_one_manager(backend: DaskBackend):
    other = TaskManager(GLibDispatcher(), process_backend=backend)
    try:
        with pytest.raises(RuntimeError, match="another TaskManager"):
            other.run_process(work.add, 1, 1)
    finally:
        other.shutdown(timeout=1.0)


def test_connect_by_address(backend: DaskBackend, caplog: pytest.LogCaptureFixture):
    client = backend.client
    assert client is not None
    remote = DaskBackend(client.scheduler.address)
    manager = TaskManager(GLibDispatcher(), process_backend=remote)
    try:
        recorder = Recorder()
        task = manager.run_process(
            work.many_events, 3, when_event=recorder.when_event, when_done=recorder.when_done
        )
        finish(task, recorder)
        assert task.result() == 3
        assert recorder.order == [("n", 0), ("n", 1), ("n", 2), ("done", TaskStatus.COMPLETED)]
    finally:
        manager.shutdown(timeout=10.0)
    # The embedded scheduler runs nothing twice (allowed-failures is 0): no warning.
    assert "re-runs" not in caplog.text
    # Our own connection is closed; the cluster it reached is not.
    assert remote.client is not None and remote.client.status == "closed"
    assert client.status == "running"


def test_unreachable_scheduler_fails_tasks_clearly():
    backend = DaskBackend("tcp://127.0.0.1:9", start_timeout=0.5)
    manager = TaskManager(GLibDispatcher(), process_backend=backend)
    try:
        task = finish(manager.run_process(work.add, 1, 1))
        assert task.get_status() == TaskStatus.FAILED
        error = task.exception()
        assert isinstance(error, OSError)
        assert "127.0.0.1:9" in str(error)
    finally:
        manager.shutdown(timeout=2.0)


def test_shutdown_stops_a_stuck_task_and_leaves_no_process(tmp_path: Path):
    before = set(descendants(os.getpid()))
    backend = DaskBackend(n_workers=1)
    manager = TaskManager(GLibDispatcher(), process_backend=backend, cancel_grace=0.2)
    recorder = Recorder()
    task = manager.run_process(
        work.ignore_cancel, str(tmp_path / "never"), when_event=recorder.when_event
    )
    pid = recorder.first("started")
    manager.shutdown(timeout=4.0)
    assert task.get_status() == TaskStatus.CANCELLED
    run_until(lambda: process_gone(pid), SLOW)
    run_until(lambda: set(descendants(os.getpid())) <= before, SLOW)


def test_tls_embedded_cluster_and_address():
    pytest.importorskip("cryptography")  # Security.temporary() makes its certificates with it
    from distributed import Security

    security = Security.temporary()
    backend = DaskBackend(security=security, n_workers=1)
    manager = TaskManager(GLibDispatcher(), process_backend=backend)
    try:
        address = backend.start().scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        assert finish(manager.run_process(work.add, 1, 2)).result() == 3
        # The address, reached with the same Security, serves another manager.
        remote = TaskManager(
            GLibDispatcher(), process_backend=DaskBackend(address, security=security)
        )
        try:
            assert finish(remote.run_process(work.add, 3, 4)).result() == 7
        finally:
            remote.shutdown(timeout=5.0)
        # Without it, the task fails with Dask's own explanation, and nothing hangs.
        plain = TaskManager(GLibDispatcher(), process_backend=DaskBackend(address, start_timeout=5))
        try:
            error = finish(plain.run_process(work.add, 1, 1)).exception()
            assert error is not None and "TLS" in str(error)
        finally:
            plain.shutdown(timeout=5.0)
    finally:
        manager.shutdown(timeout=10.0)
