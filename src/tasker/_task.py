"""Task: one background job, its status and its outcome."""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ._context import ProgressReport
from ._errors import CancelledError, TaskNotFinishedError
from ._flow import EventCredit

if TYPE_CHECKING:
    import threading

    from gi.repository import Gio

    from ._progress import RateEstimator

__all__ = [
    "CancelReason",
    "PauseState",
    "StopReason",
    "Task",
    "TaskKind",
    "TaskStatus",
    "TaskTimings",
]

#: What ``Task.get_pause_state()`` returns for a task asked to pause.
PauseState = Literal["pausing", "paused"]

#: Pause intervals kept per task for the trace (the total is always exact).
_MAX_PAUSES = 64

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


@dataclass(frozen=True, slots=True)
class TaskTimings:
    """When a task went through each stage of its life (``task.timings``).

    Points in time are ``time.monotonic()`` values, ``None`` until reached:
    ``created``, ``started`` (its function began), ``first_progress`` (the
    manager first saw progress above 0), ``cancel_requested`` (cancel, key
    replacement, timeout or shutdown) and ``finished`` (its final status was
    set). Durations are in seconds and leave out time spent paused:
    ``queue_wait`` (created until started, or until finished if it never
    started), ``run_time`` (started until finished, or until now) and
    ``paused_total``. ``worker`` is the worker process id of a process task,
    the thread name of a thread task and ``None`` for a coroutine.
    """

    created: float
    started: float | None
    first_progress: float | None
    cancel_requested: float | None
    finished: float | None
    paused_total: float
    queue_wait: float
    run_time: float
    worker: int | str | None


class CancelReason(enum.StrEnum):
    """Why a task was cancelled (``task.cancel_reason``); compares equal to the plain strings."""

    #: ``cancel_task()``, ``task.cancel()``, ``cancel_all()``.
    USER = "user"
    #: A newer task with the same key replaced it (``policy="replace"``).
    REPLACED = "replaced"
    #: A newer call took its place before it started (``keep_latest``, ``debounce``).
    SUPERSEDED = "superseded"
    #: Its ``owner`` went away.
    OWNER_GONE = "owner_gone"
    #: ``group.cancel()``.
    GROUP = "group"
    #: The manager shut down.
    SHUTDOWN = "shutdown"


class Task(Generic[T]):
    """A background job started by a ``TaskManager``.

    Read its state with the getters from any thread; ``result()`` returns the
    value or raises the task's exception. ``await task`` works from any
    asyncio loop. Only the manager changes a task's status.
    """

    __slots__ = (
        "__weakref__",
        "_cancel_flag",
        "_cancel_reason",
        "_cancel_requested",
        "_cancellable",
        "_created",
        "_credit",
        "_done_callbacks",
        "_error",
        "_estimator",
        "_finished",
        "_first_progress",
        "_frozen",
        "_held",
        "_manager",
        "_pause_began",
        "_pause_state",
        "_paused_pending",
        "_paused_run",
        "_pauses",
        "_report",
        "_result",
        "_resumed",
        "_sched",
        "_started",
        "_status",
        "_stop_reason",
        "_worker",
        "id",
        "key",
        "kind",
        "timeout",
        "visible",
        "weight",
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
        weight: float = 1.0,
        credit: EventCredit | None = None,
    ) -> None:
        self._created = time.monotonic()
        self.id: int = _next_id()
        self.key: Hashable = key if key is not None else f"task-{self.id}"
        self.kind = kind
        self.when_done = when_done
        self.when_event = when_event
        self.timeout = timeout
        #: False for a hidden task: left out of ``tasks_updated`` and task views.
        self.visible = visible
        #: How much this task counts in the manager's overall progress (default 1.0).
        self.weight = weight
        self._manager = manager
        self._report = report
        self._status = TaskStatus.PENDING
        self._result: T | None = None
        self._error: BaseException | None = None
        self._stop_reason: StopReason | None = None
        self._cancel_reason: CancelReason | None = None
        # Scheduling state (_scheduling.Ticket) of a task started with a policy,
        # debounce, group or owner; None for a plain task, handed on at once.
        self._sched: Any = None
        # Bytes the worker side polls: [0] through ExecutionContext.is_cancelled(),
        # [1] (a pause is requested) through checkpoint().
        self._cancel_flag = bytearray(2)
        self._cancellable: Gio.Cancellable | None = None
        self._done_callbacks: list[Callable[[Task[T]], object]] | None = None
        # Timeline (monotonic clock), written by the manager under its lock at
        # the transitions; see TaskTimings.
        self._started: float | None = None
        self._first_progress: float | None = None
        self._cancel_requested: float | None = None
        self._finished: float | None = None
        self._worker: int | str | None = None
        # Pause: the state, when the current pause began (None: not paused),
        # closed pause time before and after the start, the intervals (trace),
        # whether the worker process is stopped (SIGSTOP), how to start a paused
        # pending task once resumed, and what a paused thread task waits on.
        self._pause_state: PauseState | None = None
        self._pause_began: float | None = None
        self._paused_pending = 0.0
        self._paused_run = 0.0
        self._pauses: list[tuple[float, float]] | None = None
        self._frozen = False
        self._held: Callable[[], object] | None = None
        self._resumed: threading.Event | None = None
        # Rate and ETA, fed on the main thread from coalesced updates.
        self._estimator: RateEstimator | None = None
        # Bytes of undelivered events and who waits for room (see _flow.py).
        self._credit = credit if credit is not None else EventCredit(None)

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

    @property
    def cancel_reason(self) -> CancelReason | None:
        """Why the task was asked to cancel (a ``CancelReason``), or None if it was not."""
        return self._cancel_reason

    def cancel(self) -> bool:
        """Ask the task to stop; True if it was still live. Calling it again does nothing."""
        return bool(self._manager._cancel(self, StopReason.CANCEL))

    # ------------------------------------------------------------ pause, resume

    def pause(self, *, freeze: bool = False) -> bool:
        """Ask the task to pause; True if it was live and not paused yet.

        A pending task stays pending and does not start until resumed. A
        running task is ``"pausing"`` until its function calls
        ``context.checkpoint()`` (``acheckpoint()`` in a coroutine), then
        ``"paused"``. ``freeze=True`` (process tasks only) stops the worker's
        process group at once (SIGSTOP), for functions that never check.
        """
        return bool(self._manager._pause(self, freeze))

    def resume(self) -> bool:
        """Let a paused task go on; True if it was paused or pausing."""
        return bool(self._manager._resume(self))

    def is_paused(self) -> bool:
        """True from ``pause()`` until ``resume()`` (while pausing and while paused)."""
        return self._pause_state is not None

    def get_pause_state(self) -> PauseState | None:
        """Return ``None``, ``"pausing"`` (asked, not yet at a checkpoint) or ``"paused"``."""
        return self._pause_state

    # -------------------------------------------------------------- rate, ETA

    def get_rate(self) -> float | None:
        """Return the progress rate in fractions per second, or None until it is meaningful.

        Meaningful means at least 3 updates over at least 1 s of unpaused time.
        """
        estimator = self._estimator
        if estimator is None or self._status.is_final:
            return None
        return estimator.rate

    def get_eta(self) -> float | None:
        """Return the estimated seconds left, or None until the rate is meaningful.

        It counts down between updates and stands still while the task is paused.
        """
        estimator = self._estimator
        if estimator is None or self._status.is_final:
            return None
        return estimator.eta(self._active_clock(time.monotonic()))

    # ----------------------------------------------------------------- timings

    @property
    def timings(self) -> TaskTimings:
        """A snapshot of the task's timeline (see ``TaskTimings``)."""
        now = time.monotonic()
        end = self._finished if self._finished is not None else now
        started = self._started
        pending_paused = self._paused_pending
        run_paused = self._paused_run
        began = self._pause_began
        if began is not None:
            if started is None or began < started:
                pending_paused += max(0.0, end - began)
            else:
                run_paused += max(0.0, end - began)
        if started is None:
            queue_wait = end - self._created - pending_paused
            run_time = 0.0
        else:
            queue_wait = started - self._created - pending_paused
            run_time = end - started - run_paused
        return TaskTimings(
            created=self._created,
            started=started,
            first_progress=self._first_progress,
            cancel_requested=self._cancel_requested,
            finished=self._finished,
            paused_total=pending_paused + run_paused,
            queue_wait=max(0.0, queue_wait),
            run_time=max(0.0, run_time),
            worker=self._worker,
        )

    def _active_clock(self, now: float) -> float:
        """``now`` minus all the time paused so far: the clock rate and ETA use."""
        paused = self._paused_pending + self._paused_run
        began = self._pause_began
        if began is not None:
            paused += max(0.0, now - began)
        return now - paused

    def _active_run_time(self, now: float) -> float:
        """Seconds run since the start, paused time left out (what timeouts count)."""
        started = self._started
        if started is None:
            return 0.0
        paused = self._paused_run
        began = self._pause_began
        if began is not None and began >= started:
            paused += max(0.0, now - began)
        return now - started - paused

    def _end_pause_locked(self, now: float) -> None:
        """Close the current pause interval (the manager holds its lock)."""
        began = self._pause_began
        if began is None:
            return
        self._pause_began = None
        if self._started is None or began < self._started:
            self._paused_pending += max(0.0, now - began)
        else:
            self._paused_run += max(0.0, now - began)
        pauses = self._pauses
        if pauses is None:
            pauses = self._pauses = []
        if len(pauses) < _MAX_PAUSES:
            pauses.append((began, now))

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
