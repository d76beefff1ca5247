"""Error types: messages, hierarchy, and pickling (they cross process boundaries)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import pickle
import signal

from tasker import (
    CancelledError,
    ManagerShutdownError,
    RemoteTraceback,
    SerializationError,
    TaskerError,
    TaskError,
    TaskNotFinishedError,
    TaskTimeoutError,
    WorkerCrashedError,
)


def test_worker_crashed_names_signal_or_exit_code() -> None:
    killed = WorkerCrashedError(1234, -signal.SIGKILL)
    assert killed.signal == signal.SIGKILL
    assert "SIGKILL" in str(killed) and "1234" in str(killed)
    exited = WorkerCrashedError(99, 3)
    assert exited.signal is None
    assert "exited with code 3" in str(exited)


def test_errors_survive_pickling() -> None:
    for error in (
        WorkerCrashedError(5, -11),
        TaskTimeoutError(2.5),
        TaskError("ValueError", "bad", "Traceback ..."),
        SerializationError("argument 1 of type generator cannot be pickled"),
        RemoteTraceback("Traceback (most recent call last): ..."),
    ):
        clone = pickle.loads(pickle.dumps(error))
        assert type(clone) is type(error)
        assert str(clone) == str(error)


def test_hierarchy() -> None:
    assert issubclass(TaskTimeoutError, TimeoutError)
    assert issubclass(SerializationError, TypeError)
    assert issubclass(ManagerShutdownError, RuntimeError)
    assert issubclass(TaskNotFinishedError, concurrent.futures.InvalidStateError)
    assert CancelledError is concurrent.futures.CancelledError
    assert CancelledError is not asyncio.CancelledError
    for error in (TaskError, TaskTimeoutError, WorkerCrashedError, SerializationError):
        assert issubclass(error, TaskerError)


def test_task_error_text() -> None:
    error = TaskError("my.Module.Error", "it broke", "Traceback: line 1")
    assert str(error) == "my.Module.Error: it broke"
    assert error.traceback_text == "Traceback: line 1"
    assert "line 1" in str(RemoteTraceback("Traceback: line 1"))
