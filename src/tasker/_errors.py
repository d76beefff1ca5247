"""Exception types raised by tasker or carried by failed tasks."""

from __future__ import annotations

from concurrent.futures import CancelledError, InvalidStateError

__all__ = [
    "CancelledError",
    "ManagerShutdownError",
    "RemoteTraceback",
    "SerializationError",
    "TaskError",
    "TaskNotFinishedError",
    "TaskTimeoutError",
    "TaskerError",
    "WorkerCrashedError",
]


class TaskerError(Exception):
    """Base class of the errors tasker itself raises."""


class TaskError(TaskerError):
    """A task failed with an exception that could not be carried over as itself.

    Raised in place of an exception that a worker process could not pickle or
    that the parent could not unpickle; it keeps the original type name,
    message and traceback text.
    """

    def __init__(self, type_name: str, message: str, traceback_text: str = "") -> None:
        super().__init__(type_name, message, traceback_text)
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


class TaskTimeoutError(TaskerError, TimeoutError):
    """A task ran longer than its timeout and was stopped."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"task did not finish within its timeout of {timeout:g} s")
        self.timeout = timeout

    def __reduce__(self) -> tuple[type[TaskTimeoutError], tuple[float]]:
        return (type(self), (self.timeout,))


class WorkerCrashedError(TaskerError):
    """The worker process running a task died before the task finished.

    ``exitcode`` is the process's exit status; ``signal`` is the number of the
    signal that killed it, or ``None`` when it exited on its own.
    """

    def __init__(self, pid: int | None, exitcode: int | None) -> None:
        self.pid = pid
        self.exitcode = exitcode
        self.signal: int | None = -exitcode if exitcode is not None and exitcode < 0 else None
        if self.signal is not None:
            import signal as _signal

            try:
                how = f"was killed by signal {_signal.Signals(self.signal).name}"
            except ValueError:
                how = f"was killed by signal {self.signal}"
        elif exitcode is None:
            how = "died"
        else:
            how = f"exited with code {exitcode}"
        super().__init__(f"worker process {pid} {how} while running the task")

    def __reduce__(self) -> tuple[type[WorkerCrashedError], tuple[int | None, int | None]]:
        return (type(self), (self.pid, self.exitcode))


class TaskNotFinishedError(TaskerError, InvalidStateError):
    """``Task.result()`` or ``Task.exception()`` was called before the task finished."""


class ManagerShutdownError(TaskerError, RuntimeError):
    """A task was started on a manager that has been shut down."""


class SerializationError(TaskerError, TypeError):
    """A function, argument, result or event payload could not be pickled for a process."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process.

    Attached as ``__cause__`` to the exception a failed process task raises,
    so the worker's traceback is printed with it.
    """

    def __init__(self, traceback_text: str) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return f'\n"""\n{self.traceback_text.rstrip()}\n"""'
