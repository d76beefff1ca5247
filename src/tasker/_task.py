"""Task: one background job, its status and its outcome."""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Generator, Hashable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._context import ProgressReport
from ._errors import CancelledError, TaskNotFinishedError

if TYPE_CHECKING:
    from gi.repository import Gio

__all__ = ["StopReason", "Task", "TaskKind", "TaskStatus"]

T = TypeVar("T")

_next_id = itertools.count(1).__next__


class TaskStatus(enum.StrEnum):
    """Where a task is in its life; compares equal to the plain strings."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for completed, failed and cancelled."""
        return self in _FINAL


_FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class TaskKind(enum.StrEnum):
    """Which backend runs a task."""

    COROUTINE = "coroutine"
    THREAD = "thread"
    PROCESS = "process"


class StopReason(enum.Enum):
    """Why a task was asked to stop; decides its final status."""

    CANCEL = "cancel"
    TIMEOUT = "timeout"


class Task(Generic[T]):
    """A background job started by a ``TaskManager``.

    Read its state with the getters from any thread; ``result()`` returns the
    value or raises the task's exception. ``await task`` works from any
    asyncio loop. Only the manager changes a task's status.
    """

    __slots__ = (
        "__weakref__",
        "_cancel_flag",
        "_cancellable",
        "_done_callbacks",
        "_error",
        "_manager",
        "_report",
        "_result",
        "_status",
        "_stop_reason",
        "id",
        "key",
        "kind",
        "timeout",
        "visible",
        "when_done",
        "when_event",
    )

    def __init__(
        self,
        manager: Any,
        kind: TaskKind,
        key: Hashable | None,
        when_done: Callable[[Task[T]], object] | None,
        when_event: Callable[[Task[T], str, Any], object] | None,
        report: ProgressReport,
        timeout: float | None = None,
        visible: bool = True,
    ) -> None:
        self.id: int = _next_id()
        self.key: Hashable = key if key is not None else f"task-{self.id}"
        self.kind = kind
        self.when_done = when_done
        self.when_event = when_event
        self.timeout = timeout
        #: False for a hidden task: left out of ``tasks_updated`` and task views.
        self.visible = visible
        self._manager = manager
        self._report = report
        self._status = TaskStatus.PENDING
        self._result: T | None = None
        self._error: BaseException | None = None
        self._stop_reason: StopReason | None = None
        # One byte the worker side polls through ExecutionContext.is_cancelled().
        self._cancel_flag = bytearray(1)
        self._cancellable: Gio.Cancellable | None = None
        self._done_callbacks: list[Callable[[Task[T]], object]] | None = None

    def __repr__(self) -> str:
        return f"<Task {self.key!r} {self.kind.value} {self._status.value}>"

    def get_status(self) -> TaskStatus:
        """Return the task's current status."""
        return self._status

    def get_progress(self) -> float:
        """Return the latest progress, 0.0 to 1.0 (1.0 once the task has completed)."""
        # A completed task is done whatever its function last reported (or if it never did).
        if self._status is TaskStatus.COMPLETED:
            return 1.0
        return self._report.progress

    def get_message(self) -> str | None:
        """Return the latest status message, or None."""
        return self._report.message

    def is_final(self) -> bool:
        """True once the task has completed, failed or been cancelled."""
        return self._status in _FINAL

    def is_cancelled(self) -> bool:
        """True if the task ended cancelled, or has been asked to cancel."""
        return self._status is TaskStatus.CANCELLED or self._stop_reason is StopReason.CANCEL

    def cancel(self) -> bool:
        """Ask the task to stop; True if it was still live. Calling it again does nothing."""
        return bool(self._manager._cancel(self, StopReason.CANCEL))

    def result(self) -> T:
        """Return the task's value, or raise its exception.

        Raises ``CancelledError`` for a cancelled task and
        ``TaskNotFinishedError`` for one that has not finished yet.
        """
        status = self._status
        if status is TaskStatus.COMPLETED:
            return self._result  # type: ignore[return-value]
        if status is TaskStatus.FAILED:
            assert self._error is not None
            raise self._error
        if status is TaskStatus.CANCELLED:
            raise CancelledError(f"task {self.key!r} was cancelled")
        raise TaskNotFinishedError(f"task {self.key!r} is {status.value}")

    def exception(self) -> BaseException | None:
        """Return the exception of a failed task, None if it completed.

        Raises like ``result()`` when cancelled or not finished.
        """
        status = self._status
        if status is TaskStatus.COMPLETED:
            return None
        if status is TaskStatus.FAILED:
            return self._error
        if status is TaskStatus.CANCELLED:
            raise CancelledError(f"task {self.key!r} was cancelled")
        raise TaskNotFinishedError(f"task {self.key!r} is {status.value}")

    @property
    def _task_exception(self) -> BaseException | None:
        """The exception of a failed task (kept for code written against the origin tasker)."""
        return self._error

    def __await__(self) -> Generator[Any, None, T]:
        import asyncio  # not at module level: it costs more than the rest of tasker to import

        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def settle(task: Task[T]) -> None:
            if future.done():
                return
            if task._status is TaskStatus.CANCELLED:
                future.cancel()
            elif task._status is TaskStatus.FAILED:
                assert task._error is not None
                future.set_exception(task._error)
            else:
                future.set_result(task._result)  # type: ignore[arg-type]

        def on_final(task: Task[T]) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(settle, task)

        self._manager._add_final_callback(self, on_final)
        return (yield from future.__await__())
